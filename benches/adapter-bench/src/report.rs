//! Samples, their medians over rounds, the table and the JSON file.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;
use serde_json::{Value, json};

/// One measurement of one load on one configuration.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sample {
    /// Deliveries per second at the clients (throughput loads).
    pub(crate) delivered_per_s: Option<f64>,
    /// Broadcasts per second through the adapter (throughput loads).
    pub(crate) broadcasts_per_s: Option<f64>,
    /// Expected minus received deliveries (throughput loads).
    pub(crate) lost: Option<u64>,
    /// CPU seconds of the load client and of the nodes (throughput loads).
    pub(crate) cpu_client_s: Option<f64>,
    /// CPU seconds of the nodes.
    pub(crate) cpu_nodes_s: Option<f64>,
    /// Latency percentiles in µs: p50, p90, p99, max (latency and request loads).
    pub(crate) p50_us: Option<u32>,
    /// 90th percentile, µs.
    pub(crate) p90_us: Option<u32>,
    /// 99th percentile, µs.
    pub(crate) p99_us: Option<u32>,
    /// Maximum, µs.
    pub(crate) max_us: Option<u32>,
    /// Number of latency samples.
    pub(crate) n: usize,
}

impl Sample {
    pub(crate) fn throughput(
        got: u64,
        expected: u64,
        broadcasts: u64,
        secs: f64,
        cpu_client: f64,
        cpu_nodes: f64,
    ) -> Self {
        let secs = secs.max(1e-9);
        Self {
            delivered_per_s: Some(got as f64 / secs),
            broadcasts_per_s: Some(broadcasts as f64 / secs),
            lost: Some(expected.saturating_sub(got)),
            cpu_client_s: Some(cpu_client),
            cpu_nodes_s: Some(cpu_nodes),
            p50_us: None,
            p90_us: None,
            p99_us: None,
            max_us: None,
            n: got as usize,
        }
    }

    pub(crate) fn latency(mut us: Vec<u32>) -> Self {
        us.sort_unstable();
        let pct = |p: f64| -> Option<u32> {
            (!us.is_empty()).then(|| us[((p / 100.0) * (us.len() - 1) as f64).round() as usize])
        };
        Self {
            delivered_per_s: None,
            broadcasts_per_s: None,
            lost: None,
            cpu_client_s: None,
            cpu_nodes_s: None,
            p50_us: pct(50.0),
            p90_us: pct(90.0),
            p99_us: pct(99.0),
            max_us: us.last().copied(),
            n: us.len(),
        }
    }
}

/// Every sample, by load and configuration, in the order measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    samples: BTreeMap<String, BTreeMap<String, Vec<Sample>>>,
    order: Vec<String>,
}

/// Median and range of some values.
fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some((s[s.len() / 2], s[0], s[s.len() - 1]))
}

const CONFIGS: [&str; 4] = ["local", "redis", "nats", "raw"];

impl Results {
    pub(crate) fn push(&mut self, load: &str, config: &str, sample: Sample) {
        if !self.order.iter().any(|l| l == load) {
            self.order.push(load.to_owned());
        }
        self.samples
            .entry(load.to_owned())
            .or_default()
            .entry(config.to_owned())
            .or_default()
            .push(sample);
    }

    fn median(
        &self,
        load: &str,
        config: &str,
        f: impl Fn(&Sample) -> Option<f64>,
    ) -> Option<(f64, f64, f64)> {
        let v: Vec<f64> = self
            .samples
            .get(load)?
            .get(config)?
            .iter()
            .filter_map(f)
            .collect();
        stats(&v)
    }

    /// The readable table: one block per load, medians [min–max] over rounds, and
    /// the ratios nats/redis, nats/local, nats/raw.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        type Metric = (&'static str, fn(&Sample) -> Option<f64>, bool);
        let throughput: &[Metric] = &[
            ("deliveries/s", |s| s.delivered_per_s, true),
            ("broadcasts/s", |s| s.broadcasts_per_s, true),
            ("lost", |s| s.lost.map(|v| v as f64), false),
            ("client CPU s", |s| s.cpu_client_s, false),
            ("nodes CPU s", |s| s.cpu_nodes_s, false),
        ];
        let latency: &[Metric] = &[
            ("p50 µs", |s| s.p50_us.map(f64::from), false),
            ("p90 µs", |s| s.p90_us.map(f64::from), false),
            ("p99 µs", |s| s.p99_us.map(f64::from), false),
            ("max µs", |s| s.max_us.map(f64::from), false),
        ];
        for load in &self.order {
            let metrics = if matches!(load.as_str(), "throughput" | "room" | "binary") {
                throughput
            } else {
                latency
            };
            let _ = writeln!(out, "\n== {load} ==");
            let _ = write!(out, "{:<14}", "");
            for c in CONFIGS {
                let _ = write!(out, "{c:>26}");
            }
            let _ = writeln!(
                out,
                "{:>11}{:>11}{:>11}",
                "nats/redis", "nats/local", "nats/raw"
            );
            for (name, f, _) in metrics {
                let _ = write!(out, "{name:<14}");
                let mut med = BTreeMap::new();
                for c in CONFIGS {
                    match self.median(load, c, f) {
                        Some((m, lo, hi)) => {
                            med.insert(c, m);
                            let _ = write!(
                                out,
                                "{:>26}",
                                format!("{} [{}–{}]", short(m), short(lo), short(hi))
                            );
                        }
                        None => {
                            let _ = write!(out, "{:>26}", "-");
                        }
                    }
                }
                for other in ["redis", "local", "raw"] {
                    match (med.get("nats"), med.get(other)) {
                        (Some(n), Some(o)) if *o > 0.0 => {
                            let _ = write!(out, "{:>11}", format!("{:.2}", n / o));
                        }
                        _ => {
                            let _ = write!(out, "{:>11}", "-");
                        }
                    }
                }
                let _ = writeln!(out);
            }
        }
        out
    }

    /// Write every sample and the medians as JSON.
    pub(crate) fn write_json(
        &self,
        path: &str,
        meta: &BTreeMap<&str, Value>,
    ) -> Result<(), String> {
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let doc = json!({ "meta": meta, "samples": self.samples });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("cannot write {path}: {e}"))
    }
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
