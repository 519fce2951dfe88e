//! Samples, their medians over rounds, the tables and the JSON file.

use std::{collections::BTreeMap, fmt::Write as _};

use serde_json::{Value, json};

/// One measurement of one load on one configuration: metric name → value.
pub(crate) type Sample = BTreeMap<&'static str, f64>;

/// The configurations, in column order.
pub(crate) const CONFIGS: [&str; 5] = ["local", "redis", "nats", "raw", "raw-redis"];

/// A row of a table: the metric's key in the samples, its label, and whether the
/// ratio to `raw` means something for it.
pub(crate) type Row = (&'static str, &'static str, bool);

/// Rows of the throughput loads (bursts).
pub(crate) const BURST_ROWS: &[Row] = &[
    ("deliveries_per_s", "deliveries/s", false),
    ("broadcasts_per_s", "broadcasts/s", true),
    ("lost", "lost", false),
    ("wall_ms", "wall ms", false),
    ("emit_ms", "emit ms (node)", false),
    ("client_cpu_ms", "client CPU ms", false),
    ("nodes_cpu_ms", "nodes CPU ms", false),
    ("broker_cpu_ms", "broker CPU ms", false),
];

/// Rows of the latency load.
pub(crate) const LATENCY_ROWS: &[Row] = &[
    ("p50_us", "p50 µs", true),
    ("p90_us", "p90 µs", true),
    ("p99_us", "p99 µs", true),
    ("max_us", "max µs", true),
    ("lost", "lost", false),
    ("client_cpu_ms", "client CPU ms", false),
    ("nodes_cpu_ms", "nodes CPU ms", false),
    ("broker_cpu_ms", "broker CPU ms", false),
];

/// Rows of the request loads (acks, fetch_sockets, rooms), timed on the node.
pub(crate) const REQUEST_ROWS: &[Row] = &[
    ("p50_us", "p50 µs", false),
    ("p90_us", "p90 µs", false),
    ("p99_us", "p99 µs", false),
    ("max_us", "max µs", false),
    ("lost", "lost", false),
];

/// Percentiles (nearest rank) of durations in ns, as µs: p50, p90, p99, max.
pub(crate) fn percentiles(sample: &mut Sample, mut ns: Vec<u64>) {
    ns.sort_unstable();
    if ns.is_empty() {
        return;
    }
    let pct = |p: f64| {
        let rank = ((p / 100.0) * ns.len() as f64).ceil() as usize;
        ns[rank.clamp(1, ns.len()) - 1] as f64 / 1000.0
    };
    sample.insert("p50_us", pct(50.0));
    sample.insert("p90_us", pct(90.0));
    sample.insert("p99_us", pct(99.0));
    sample.insert("max_us", ns[ns.len() - 1] as f64 / 1000.0);
    sample.insert("n", ns.len() as f64);
}

/// A load's results.
#[derive(Debug)]
struct Load {
    title: String,
    rows: &'static [Row],
    samples: BTreeMap<&'static str, Vec<Sample>>,
}

/// Every sample, by load and configuration.
#[derive(Debug, Default)]
pub(crate) struct Results {
    loads: Vec<(String, Load)>,
}

/// Median, min and max.
pub(crate) fn stats(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    Some((median, v[0], v[v.len() - 1]))
}

/// A number in a few characters: 2.95M, 433k, 12.3k, 950, 12.3, 0.42.
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e5 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Results {
    /// Declare a load (in output order) with its title and rows.
    pub(crate) fn declare(&mut self, key: &str, title: String, rows: &'static [Row]) {
        if !self.loads.iter().any(|(k, _)| k == key) {
            self.loads.push((
                key.to_owned(),
                Load {
                    title,
                    rows,
                    samples: BTreeMap::new(),
                },
            ));
        }
    }

    /// Record a sample of `load` on `config`.
    pub(crate) fn push(&mut self, load: &str, config: &'static str, sample: Sample) {
        if let Some((_, l)) = self.loads.iter_mut().find(|(k, _)| k == load) {
            l.samples.entry(config).or_default().push(sample);
        }
    }

    /// Median, min and max of `metric` over the rounds.
    pub(crate) fn median(&self, load: &str, config: &str, metric: &str) -> Option<(f64, f64, f64)> {
        let (_, l) = self.loads.iter().find(|(k, _)| k == load)?;
        let v = l
            .samples
            .get(config)?
            .iter()
            .filter_map(|s| s.get(metric).copied())
            .collect();
        stats(v)
    }

    /// The readable tables: one per load, medians [min–max] over the rounds, and
    /// the ratios nats/redis, nats/local and nats/raw.
    pub(crate) fn tables(&self) -> String {
        let mut out = String::new();
        for (key, load) in &self.loads {
            let present: Vec<&str> = CONFIGS
                .iter()
                .copied()
                .filter(|c| load.samples.contains_key(c))
                .collect();
            let _ = writeln!(out, "\n== {key}: {} ==", load.title);
            let _ = write!(out, "{:<15}", "");
            for c in &present {
                let _ = write!(out, "{c:>22}");
            }
            let _ = writeln!(
                out,
                "{:>11}{:>11}{:>11}",
                "nats/redis", "nats/local", "nats/raw"
            );
            for (metric, label, raw_ok) in load.rows {
                let cells: Vec<Option<(f64, f64, f64)>> = present
                    .iter()
                    .map(|c| self.median(key, c, metric))
                    .collect();
                if cells.iter().all(Option::is_none) {
                    continue;
                }
                let _ = write!(out, "{label:<15}");
                for cell in &cells {
                    let text = match cell {
                        Some((m, lo, hi)) if lo < hi => {
                            format!("{} [{}–{}]", short(*m), short(*lo), short(*hi))
                        }
                        Some((m, _, _)) => short(*m),
                        None => "-".to_owned(),
                    };
                    let _ = write!(out, "{text:>22}");
                }
                let med = |c: &str| self.median(key, c, metric).map(|(m, _, _)| m);
                for (other, ok) in [("redis", true), ("local", true), ("raw", *raw_ok)] {
                    let text = match (ok, med("nats"), med(other)) {
                        (true, Some(n), Some(o)) if o > 0.0 && !metric.contains("cpu") => {
                            format!("{:.2}", n / o)
                        }
                        _ => String::new(),
                    };
                    let _ = write!(out, "{text:>11}");
                }
                let _ = writeln!(out);
            }
        }
        out
    }

    /// Every sample with its load's medians, as JSON.
    pub(crate) fn to_json(&self) -> Value {
        let mut loads = serde_json::Map::new();
        for (key, load) in &self.loads {
            let mut configs = serde_json::Map::new();
            for (config, samples) in &load.samples {
                let mut medians = serde_json::Map::new();
                if let Some(first) = samples.first() {
                    for metric in first.keys() {
                        if let Some((m, lo, hi)) = self.median(key, config, metric) {
                            medians.insert(
                                (*metric).to_owned(),
                                json!({ "median": m, "min": lo, "max": hi }),
                            );
                        }
                    }
                }
                configs.insert(
                    (*config).to_owned(),
                    json!({ "samples": samples, "summary": medians }),
                );
            }
            loads.insert(
                key.clone(),
                json!({ "title": load.title, "configs": configs }),
            );
        }
        Value::Object(loads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut s = Sample::new();
        percentiles(&mut s, (1..=100).map(|v| v * 1000).collect());
        assert_eq!(s["p50_us"], 50.0);
        assert_eq!(s["p99_us"], 99.0);
        assert_eq!(s["max_us"], 100.0);
    }

    #[test]
    fn medians_and_short_numbers() {
        assert_eq!(stats(vec![3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(stats(vec![4.0, 1.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(short(2_950_000.0), "2.95M");
        assert_eq!(short(433_000.0), "433k");
        assert_eq!(short(950.4), "950");
        assert_eq!(short(0.424), "0.42");
    }
}
