//! The `scale` load: what room routing saves a node of a larger cluster.
//!
//! Three configurations, each with `--scale-nodes` (8) `bench-node` processes on
//! loopback, alive side by side (each its own prefix, so that they form three
//! separate clusters on the shared brokers) and alternated round by round:
//!
//! * `nats-off`: socketioxide-nats without room routing (`no_echo`): every node
//!   receives every broadcast of the others, room broadcasts included;
//! * `nats-on`: the same with `with_room_routing(true)`: a broadcast to one room
//!   travels on the room's subject, which only nodes with members subscribe to;
//! * `redis`: socketioxide-redis 0.4, whose nodes all receive every broadcast on
//!   one channel, their own included.
//!
//! `--scale-rooms` (64) rooms; room `r` has `--scale-clients` (2) websocket clients
//! on node `r % N` and, in every other block of N rooms (`(r / N)` odd), as many
//! on node `(r + 1) % N`: 12 of 64 rooms per node at 8 nodes. The clients join by a
//! `join` event that the node answers with `NatsHandle::join` (on `nats-on`: once
//! subscribed), `socket.join` elsewhere; the measurement starts once every
//! `nats-on` node reports as many room subscriptions as it hosts rooms and a
//! reconcile period has passed.
//!
//! Load: every node broadcasts at `--scale-rate / N` per second for
//! `--scale-secs`, cycling over all the rooms from its own offset, so `--scale-rate`
//! is the cluster-wide rate and each room gets the same share from every node.
//! Measured per node: the messages and bytes nats-server delivered to its
//! connection (`/connz` `out_msgs` / `out_bytes`, found by the connection's name),
//! the bytes its sockets to the broker received (`ss`, `tcp_info`
//! `bytes_received`; for redis the only per-node figure), its CPU time; and the
//! emit → client receipt latency over every delivery.
//!
//! Then the cost of one broadcast a node receives and matches no socket with:
//! one node broadcasts at `--scale-rate` to rooms only it hosts; each other node
//! of `nats-off` receives every one of them and delivers none. Its CPU over the
//! load, minus its idle CPU over as long, divided by the messages it received, is
//! the cost per unmatched message. `nats-on` runs the same step as a check: its
//! other nodes receive none of them.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    client::{self, Control, Joined, Received},
    procs::{Node, Redis, cpu_seconds, tcp_bytes_from},
    report::{Sample, percentiles, short, stats},
};

/// The scale load's parameters.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub(crate) nodes: usize,
    pub(crate) rooms: usize,
    pub(crate) clients: usize,
    pub(crate) rate: u64,
    pub(crate) secs: u64,
    pub(crate) rounds: usize,
    pub(crate) size: usize,
    pub(crate) redis_buffer: usize,
    /// Which of [`CONFIGS`] to run.
    pub(crate) configs: Vec<String>,
    /// Rates of the unmatched step on nats-off (nats-on runs it at `rate`).
    pub(crate) unmatched_rates: Vec<u64>,
    /// Start every node's broadcasts at once instead of staggered.
    pub(crate) sync: bool,
}

fn unmatched_column(config: &str, rate: u64) -> String {
    format!("{config} @{rate}/s")
}

/// The configurations, in column order.
pub(crate) const CONFIGS: [&str; 3] = ["nats-off", "nats-on", "redis"];

/// The nodes room `r` has members on.
pub(crate) fn room_nodes(r: usize, nodes: usize) -> Vec<usize> {
    let first = r % nodes;
    if nodes > 1 && (r / nodes) % 2 == 1 {
        vec![first, (first + 1) % nodes]
    } else {
        vec![first]
    }
}

/// The rooms node `k` broadcasts to, in order: every room, from its own offset.
fn publish_order(k: usize, p: &Params) -> Vec<usize> {
    let start = k * p.rooms / p.nodes;
    (0..p.rooms).map(|j| (start + j) % p.rooms).collect()
}

/// Broadcasts per node per second, and in all.
fn per_node_rate(p: &Params) -> u64 {
    (p.rate / p.nodes as u64).max(1)
}

/// The model: how many broadcasts node `k` receives from the broker during the
/// load, and how many deliveries the clients get in all.
fn model(config: &str, p: &Params) -> (Vec<u64>, u64) {
    let count = per_node_rate(p) * p.secs;
    let mut received = vec![0u64; p.nodes];
    let mut deliveries = 0u64;
    for sender in 0..p.nodes {
        let order = publish_order(sender, p);
        for seq in 0..count {
            let room = order[usize::try_from(seq).unwrap_or(0) % order.len()];
            let members = room_nodes(room, p.nodes);
            deliveries += (members.len() * p.clients) as u64;
            for (k, got) in received.iter_mut().enumerate() {
                let gets = match config {
                    "nats-on" => k != sender && members.contains(&k),
                    "nats-off" => k != sender,
                    _ => true, // redis: every node, the sender included
                };
                if gets {
                    *got += 1;
                }
            }
        }
    }
    (received, deliveries)
}

/// One configuration of the scale load.
struct Cluster {
    name: &'static str,
    nodes: Vec<Node>,
    ctls: Vec<Control>,
    receivers: Vec<Arc<Received>>,
    /// Each node's NATS connection name (nats configurations).
    conn_names: Vec<String>,
    /// The broker's client port and process.
    broker_port: u16,
    broker_pid: Option<u32>,
    /// How the clients' joins went, and whether each was its room's first on
    /// its node.
    joins: Vec<(Joined, bool)>,
    /// Each node's NATS subscriptions once settled (nats configurations).
    subscriptions: Vec<u64>,
}

/// Per-node counters at one instant.
#[derive(Debug, Clone)]
struct Snap {
    at: Instant,
    cpu: Vec<f64>,
    /// nats-server → node: messages and payload bytes (`/connz`).
    conn: Vec<(u64, u64)>,
    /// Bytes the node's sockets to the broker received (`ss`).
    tcp: Vec<u64>,
    /// `broadcasts_received` of the adapter (nats).
    adapter_received: Vec<u64>,
    broker_cpu: f64,
}

/// A node's figures between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
struct Delta {
    cpu_s: f64,
    msgs: f64,
    bytes: f64,
    tcp: f64,
    adapter: f64,
}

impl Snap {
    fn delta(&self, later: &Snap, k: usize) -> Delta {
        let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
        let pick = |v: &[(u64, u64)], i: usize| v.get(i).copied().unwrap_or((0, 0));
        let (m0, b0) = pick(&self.conn, k);
        let (m1, b1) = pick(&later.conn, k);
        Delta {
            cpu_s: later.cpu[k] - self.cpu[k],
            msgs: d(m0, m1),
            bytes: d(b0, b1),
            tcp: d(
                self.tcp.get(k).copied().unwrap_or(0),
                later.tcp.get(k).copied().unwrap_or(0),
            ),
            adapter: d(
                self.adapter_received.get(k).copied().unwrap_or(0),
                later.adapter_received.get(k).copied().unwrap_or(0),
            ),
        }
    }
}

/// nats-server's `/connz`: each connection's (out_msgs, out_bytes, subscriptions)
/// by name. `out_*` is what the server sent to the client.
fn connz(nats: &nats_harness::NatsServer) -> HashMap<String, (u64, u64, u64)> {
    let v = tokio::task::block_in_place(|| nats.monitor("/connz?limit=10000"));
    let mut out = HashMap::new();
    for c in v["connections"].as_array().into_iter().flatten() {
        if let Some(name) = c["name"].as_str() {
            out.insert(
                name.to_owned(),
                (
                    c["out_msgs"].as_u64().unwrap_or(0),
                    c["out_bytes"].as_u64().unwrap_or(0),
                    c["subscriptions"].as_u64().unwrap_or(0),
                ),
            );
        }
    }
    out
}

impl Cluster {
    async fn start(
        name: &'static str,
        p: &Params,
        nats: &nats_harness::NatsServer,
        redis: &Redis,
    ) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let mut conn_names = Vec::new();
        let (adapter, url, broker_port, broker_pid) = match name {
            "redis" => ("redis", redis.url(), redis.port(), redis.pid()),
            _ => ("nats", nats.url(), nats.port(), nats.pid()),
        };
        for k in 0..p.nodes {
            let mut extra = vec!["--prefix".to_owned()];
            if adapter == "redis" {
                extra.push("sio-bench-scale".to_owned());
                extra.push("--redis-stream-buffer".to_owned());
                extra.push(p.redis_buffer.to_string());
            } else {
                let conn = format!("sio-bench-{name}-{k}");
                extra.push(format!("sio-bench.{name}"));
                extra.extend([
                    "--no-echo".to_owned(),
                    "--nats-name".to_owned(),
                    conn.clone(),
                ]);
                if name == "nats-on" {
                    extra.push("--room-routing".to_owned());
                }
                conn_names.push(conn);
            }
            nodes.push(Node::spawn(adapter, &url, &extra).await?);
        }
        let mut ctls = Vec::new();
        for node in &nodes {
            ctls.push(Control::connect(node.port).await?);
        }
        let mut cluster = Self {
            name,
            nodes,
            ctls,
            receivers: Vec::new(),
            conn_names,
            broker_port,
            broker_pid,
            joins: Vec::new(),
            subscriptions: Vec::new(),
        };
        // Clients, room by room; the first join of a room on a node is the one
        // that subscribes with routing on.
        for r in 0..p.rooms {
            for k in room_nodes(r, p.nodes) {
                for i in 0..p.clients {
                    let (rx, joined) =
                        client::receiver_joined(cluster.nodes[k].port, &format!("s{r}")).await?;
                    cluster.receivers.push(rx);
                    cluster.joins.push((joined, i == 0));
                }
            }
        }
        cluster.wait_sockets().await?;
        cluster.settle(p, nats).await?;
        Ok(cluster)
    }

    /// Wait until node 0's `fetch_sockets()` sees every client.
    async fn wait_sockets(&self) -> Result<(), String> {
        self.ctls[0]
            .wait_sockets(self.receivers.len() as u64, self.name)
            .await
    }

    /// Wait until every node of `nats-on` is subscribed to exactly the rooms it
    /// hosts, let a reconcile period (1 s) pass, check again, and record each
    /// node's subscriptions at nats-server.
    async fn settle(&mut self, p: &Params, nats: &nats_harness::NatsServer) -> Result<(), String> {
        if self.name == "redis" {
            return Ok(());
        }
        let hosted: Vec<u64> = (0..p.nodes)
            .map(|k| {
                (0..p.rooms)
                    .filter(|r| room_nodes(*r, p.nodes).contains(&k))
                    .count() as u64
            })
            .collect();
        let want = |k: usize| if self.name == "nats-on" { hosted[k] } else { 0 };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let subs = self.room_subscriptions().await?;
            if subs.iter().enumerate().all(|(k, s)| *s == want(k)) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: room subscriptions per node {subs:?}, expected {:?}",
                    self.name,
                    (0..p.nodes).map(want).collect::<Vec<_>>()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A reconcile tick finds nothing to add or drop.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let subs = self.room_subscriptions().await?;
        if subs.iter().enumerate().any(|(k, s)| *s != want(k)) {
            eprintln!(
                "sio-bench: scale {}: room subscriptions moved after a reconcile: {subs:?}",
                self.name
            );
        }
        let conns = connz(nats);
        self.subscriptions = self
            .conn_names
            .iter()
            .map(|n| conns.get(n).map_or(0, |c| c.2))
            .collect();
        Ok(())
    }

    async fn node_stats(&self) -> Result<Vec<Value>, String> {
        let calls = self
            .ctls
            .iter()
            .map(|c| c.call("stats", json!({}), crate::limit_s(10)));
        futures_util::future::try_join_all(calls).await
    }

    async fn room_subscriptions(&self) -> Result<Vec<u64>, String> {
        Ok(self
            .node_stats()
            .await?
            .iter()
            .map(|s| s["room_subscriptions"].as_u64().unwrap_or(0))
            .collect())
    }

    async fn snap(&self, nats: &nats_harness::NatsServer) -> Result<Snap, String> {
        let conns = if self.conn_names.is_empty() {
            HashMap::new()
        } else {
            connz(nats)
        };
        let tcp = tcp_bytes_from(self.broker_port)?;
        let adapter_received = if self.conn_names.is_empty() {
            Vec::new()
        } else {
            self.node_stats()
                .await?
                .iter()
                .map(|s| s["broadcasts_received"].as_u64().unwrap_or(0))
                .collect()
        };
        Ok(Snap {
            at: Instant::now(),
            cpu: self.nodes.iter().map(|n| cpu_seconds(n.pid())).collect(),
            conn: self
                .conn_names
                .iter()
                .map(|n| conns.get(n).map_or((0, 0), |c| (c.0, c.1)))
                .collect(),
            tcp: self
                .nodes
                .iter()
                .map(|n| n.pid().and_then(|p| tcp.get(&p).copied()).unwrap_or(0))
                .collect(),
            adapter_received,
            broker_cpu: self.broker_pid.map_or(0.0, |p| cpu_seconds(Some(p))),
        })
    }

    fn delivered(&self) -> u64 {
        self.receivers
            .iter()
            .map(|c| c.events.load(Ordering::Relaxed))
            .sum()
    }

    /// Wait until `expected` more deliveries than `before` arrived, or none for 1 s.
    async fn wait_deliveries(&self, before: u64, expected: u64) -> u64 {
        let mut last = self.delivered();
        let mut idle_since = Instant::now();
        let start = Instant::now();
        while last - before < expected && start.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let now = self.delivered();
            if now != last {
                last = now;
                idle_since = Instant::now();
            } else if idle_since.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        self.delivered() - before
    }

    /// Broadcasts from `senders` (node, rate, rooms, delay before the first in
    /// µs) for `secs`; returns the deliveries and the latencies (ns) of every one.
    async fn broadcast(
        &self,
        senders: &[(usize, u64, Vec<usize>, u64)],
        secs: u64,
        size: usize,
        expected: u64,
    ) -> Result<(u64, Vec<u64>), String> {
        for c in &self.receivers {
            if let Ok(mut l) = c.latencies_ns.lock() {
                l.clear();
            }
            c.record.store(true, Ordering::Relaxed);
        }
        let before = self.delivered();
        let calls = senders.iter().map(|(k, rate, rooms, delay_us)| {
            let rooms: Vec<String> = rooms.iter().map(|r| format!("s{r}")).collect();
            let work = json!({
                "rate": rate, "secs": secs, "size": size, "rooms": rooms, "delay_us": delay_us,
            });
            self.ctls[*k].call("lat", work, crate::limit_s(secs + 60))
        });
        futures_util::future::try_join_all(calls).await?;
        let got = self.wait_deliveries(before, expected).await;
        let mut all = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        for c in &self.receivers {
            c.record.store(false, Ordering::Relaxed);
            if let Ok(mut l) = c.latencies_ns.lock() {
                all.append(&mut l);
            }
        }
        Ok((got, all))
    }

    /// One sample of the scale load.
    async fn run_load(
        &self,
        p: &Params,
        nats: &nats_harness::NatsServer,
        secs: u64,
    ) -> Result<Sample, String> {
        let (model_rx, expected) = model(self.name, &Params { secs, ..p.clone() });
        // Staggered: node k starts k / N of a period after node 0, so that the
        // nodes' sends interleave as independent senders' would, instead of all
        // reaching a node together (tokio's timers tick by the millisecond).
        let period_us = 1_000_000 / per_node_rate(p);
        let senders: Vec<(usize, u64, Vec<usize>, u64)> = (0..p.nodes)
            .map(|k| {
                let delay = if p.sync {
                    0
                } else {
                    k as u64 * period_us / p.nodes as u64
                };
                (k, per_node_rate(p), publish_order(k, p), delay)
            })
            .collect();
        let before = self.snap(nats).await?;
        let (got, latencies) = self.broadcast(&senders, secs, p.size, expected).await?;
        let after = self.snap(nats).await?;
        if got < expected {
            eprintln!(
                "sio-bench: scale {}: {} of {expected} deliveries lost",
                self.name,
                expected - got
            );
        }
        let deltas: Vec<Delta> = (0..p.nodes).map(|k| before.delta(&after, k)).collect();
        let mut s = Sample::new();
        percentiles(&mut s, latencies);
        s.insert("lost", expected as f64 - got as f64);
        s.insert("deliveries", got as f64);
        s.insert(
            "broadcasts",
            (per_node_rate(p) * secs * p.nodes as u64) as f64,
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let mut put = |key_mean: &'static str, key_max: &'static str, v: Vec<f64>| {
            s.insert(key_mean, mean(&v));
            s.insert(key_max, max(&v));
        };
        put(
            "model_msgs_mean",
            "model_msgs_max",
            model_rx.iter().map(|m| *m as f64).collect(),
        );
        if !self.conn_names.is_empty() {
            put(
                "msgs_mean",
                "msgs_max",
                deltas.iter().map(|d| d.msgs).collect(),
            );
            put(
                "bytes_mean",
                "bytes_max",
                deltas.iter().map(|d| d.bytes).collect(),
            );
            put(
                "adapter_mean",
                "adapter_max",
                deltas.iter().map(|d| d.adapter).collect(),
            );
        }
        put(
            "tcp_mean",
            "tcp_max",
            deltas.iter().map(|d| d.tcp).collect(),
        );
        put(
            "cpu_ms_mean",
            "cpu_ms_max",
            deltas.iter().map(|d| d.cpu_s * 1e3).collect(),
        );
        s.insert("wall_s", after.at.duration_since(before.at).as_secs_f64());
        s.insert(
            "broker_cpu_ms",
            (after.broker_cpu - before.broker_cpu) * 1e3,
        );
        Ok(s)
    }

    /// The nodes' counters over `secs` of nothing sent: the idle baseline of
    /// the unmatched step.
    async fn idle(
        &self,
        nats: &nats_harness::NatsServer,
        secs: u64,
    ) -> Result<(Snap, Snap), String> {
        let idle0 = self.snap(nats).await?;
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok((idle0, self.snap(nats).await?))
    }

    /// The unmatched step: node `host` broadcasts at `rate` for `secs` to the rooms
    /// only it hosts; every other node's CPU over it, minus its idle CPU over as
    /// long (from `idle`), per message it received.
    async fn unmatched(
        &self,
        p: &Params,
        nats: &nats_harness::NatsServer,
        (idle0, idle1): &(Snap, Snap),
        (host, targets): (usize, &[usize]),
        rate: u64,
    ) -> Result<Sample, String> {
        let idle_s = idle1.at.duration_since(idle0.at).as_secs_f64();
        let count = rate * p.secs;
        let expected = count * (p.clients as u64);
        let before = self.snap(nats).await?;
        let (got, _) = self
            .broadcast(
                &[(host, rate, targets.to_vec(), 0)],
                p.secs,
                p.size,
                expected,
            )
            .await?;
        let after = self.snap(nats).await?;
        let load_s = after.at.duration_since(before.at).as_secs_f64();
        let mut costs = Vec::new();
        let mut msgs = Vec::new();
        let mut extra_cpu = Vec::new();
        let mut idle_cpu = Vec::new();
        for k in (0..p.nodes).filter(|k| *k != host) {
            let idle = idle0.delta(idle1, k);
            let load = before.delta(&after, k);
            let idle_cpu_s = idle.cpu_s / idle_s * load_s;
            let m = load.msgs - idle.msgs / idle_s * load_s;
            let cpu = load.cpu_s - idle_cpu_s;
            msgs.push(m);
            extra_cpu.push(cpu * 1e3);
            idle_cpu.push(idle_cpu_s * 1e3);
            // A cost per message only where messages came (with routing on, the
            // other nodes get none: a few heartbeats more or less are noise).
            if m > count as f64 / 10.0 {
                costs.push(cpu / m * 1e6);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut s = Sample::new();
        s.insert("sent", count as f64);
        s.insert("lost", expected as f64 - got as f64);
        s.insert("msgs_mean", mean(&msgs));
        s.insert("idle_cpu_ms_mean", mean(&idle_cpu));
        s.insert("extra_cpu_ms_mean", mean(&extra_cpu));
        if !costs.is_empty() {
            s.insert("cost_us_mean", mean(&costs));
            s.insert(
                "cost_us_min",
                costs.iter().copied().fold(f64::MAX, f64::min),
            );
            s.insert("cost_us_max", costs.iter().copied().fold(0.0, f64::max));
        }
        s.insert("load_s", load_s);
        Ok(s)
    }
}

/// Rows of the scale table: metric, label, whether a ratio means something.
const ROWS: &[(&str, &str, bool)] = &[
    ("broadcasts", "broadcasts sent", false),
    ("deliveries", "deliveries", false),
    ("lost", "lost", false),
    ("model_msgs_mean", "model msgs/node", true),
    ("msgs_mean", "msgs/node mean", true),
    ("msgs_max", "msgs/node max", true),
    ("adapter_mean", "decoded/node", true),
    ("bytes_mean", "msg bytes/node", true),
    ("tcp_mean", "TCP bytes/node", true),
    ("tcp_max", "TCP bytes max", true),
    ("cpu_ms_mean", "CPU ms/node", true),
    ("cpu_ms_max", "CPU ms max", true),
    ("p50_us", "p50 µs", true),
    ("p90_us", "p90 µs", true),
    ("p99_us", "p99 µs", true),
    ("max_us", "max µs", true),
    ("broker_cpu_ms", "broker CPU ms", true),
];

const UNMATCHED_ROWS: &[(&str, &str)] = &[
    ("sent", "broadcasts sent"),
    ("lost", "lost"),
    ("msgs_mean", "msgs/node"),
    ("idle_cpu_ms_mean", "idle CPU ms/node"),
    ("extra_cpu_ms_mean", "extra CPU ms/node"),
    ("cost_us_mean", "µs/msg mean"),
    ("cost_us_min", "µs/msg min"),
    ("cost_us_max", "µs/msg max"),
];

/// Samples by column (a configuration, or a configuration at a rate).
type Samples = HashMap<String, Vec<Sample>>;

fn median(samples: &Samples, config: &str, metric: &str) -> Option<(f64, f64, f64)> {
    let v = samples
        .get(config)?
        .iter()
        .filter_map(|s| s.get(metric).copied())
        .collect();
    stats(v)
}

fn cell(m: Option<(f64, f64, f64)>) -> String {
    match m {
        Some((m, lo, hi)) if lo < hi => format!("{} [{}–{}]", short(m), short(lo), short(hi)),
        Some((m, _, _)) => short(m),
        None => "-".to_owned(),
    }
}

/// Run the scale load: start the three clusters, alternate them over the rounds,
/// run the unmatched step; the text (tables, targets) and the JSON.
pub(crate) async fn run(
    p: &Params,
    nats: &nats_harness::NatsServer,
    redis: &Redis,
) -> Result<(String, Value), String> {
    let started = Instant::now();
    eprintln!(
        "sio-bench: scale: {} nodes per configuration, {} rooms, {} clients per room and node \
         ({} websocket clients per configuration), {} broadcasts/s in all ({} per node), {} s, {} round(s)",
        p.nodes,
        p.rooms,
        p.clients,
        (0..p.rooms)
            .map(|r| room_nodes(r, p.nodes).len() * p.clients)
            .sum::<usize>(),
        per_node_rate(p) * p.nodes as u64,
        per_node_rate(p),
        p.secs,
        p.rounds
    );
    let mut clusters = Vec::new();
    for name in CONFIGS {
        if !p.configs.iter().any(|c| c == name) {
            continue;
        }
        let t = Instant::now();
        eprintln!("sio-bench: scale: starting {name}");
        let c = Cluster::start(name, p, nats, redis).await?;
        eprintln!(
            "sio-bench: scale: {name} ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        clusters.push(c);
    }
    // Warm-up, not recorded.
    for c in &clusters {
        c.run_load(p, nats, 1).await?;
    }
    // The unmatched step's rooms: those only node `host` hosts.
    let host = p.nodes / 2;
    let targets: Vec<usize> = (0..p.rooms)
        .filter(|r| room_nodes(*r, p.nodes) == [host])
        .collect();
    let mut samples = Samples::new();
    let mut unmatched = Samples::new();
    for round in 0..p.rounds {
        let n = clusters.len();
        for k in 0..n {
            let c = &clusters[(k + round) % n];
            let s = c.run_load(p, nats, p.secs).await?;
            samples.entry(c.name.to_owned()).or_default().push(s);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The unmatched step: nats-off at every rate, nats-on at the first one
        // (its other nodes should receive nothing).
        if !targets.is_empty() {
            for c in clusters.iter().filter(|c| c.name != "redis") {
                let idle = c.idle(nats, p.secs).await?;
                let rates = match c.name {
                    "nats-off" => p.unmatched_rates.clone(),
                    _ => vec![p.rate],
                };
                for rate in rates {
                    let s = c.unmatched(p, nats, &idle, (host, &targets), rate).await?;
                    unmatched
                        .entry(unmatched_column(c.name, rate))
                        .or_default()
                        .push(s);
                }
            }
        }
        eprintln!(
            "sio-bench: scale: round {} of {} done ({:.0} s)",
            round + 1,
            p.rounds,
            started.elapsed().as_secs_f64()
        );
    }
    let stats_after: Vec<(&str, Vec<Value>)> = {
        let mut v = Vec::new();
        for c in &clusters {
            v.push((c.name, c.node_stats().await.unwrap_or_default()));
        }
        v
    };
    for (name, nodes) in &stats_after {
        for (i, n) in nodes.iter().enumerate() {
            if n["slow_consumers"].as_u64().unwrap_or(0) > 0 {
                eprintln!("sio-bench: scale {name} node {i} saw slow-consumer events: {n}");
            }
        }
    }

    let mut out = String::new();
    out.push_str(&table(p, &samples));
    out.push_str(&setup_table(&clusters));
    out.push_str(&unmatched_table(p, host, &targets, &unmatched));
    let (targets_text, targets_json) = check(p, &samples, &unmatched);
    out.push_str(&targets_text);

    let to_json = |s: &Samples| -> Value {
        s.iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let doc = json!({
        "params": {
            "nodes": p.nodes, "rooms": p.rooms, "clients_per_room_node": p.clients,
            "rate": per_node_rate(p) * p.nodes as u64, "secs": p.secs, "rounds": p.rounds,
            "size": p.size, "unmatched_host": host, "unmatched_rates": p.unmatched_rates,
            "unmatched_rooms": targets.iter().map(|r| format!("s{r}")).collect::<Vec<_>>(),
        },
        "samples": to_json(&samples),
        "unmatched": to_json(&unmatched),
        "joins": clusters.iter().map(|c| (c.name.to_owned(), json!({
            "client_ns": c.joins.iter().map(|(j, _)| j.client_ns).collect::<Vec<_>>(),
            "node_ns": c.joins.iter().map(|(j, _)| j.node_ns).collect::<Vec<_>>(),
            "first": c.joins.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
        }))).collect::<serde_json::Map<_, _>>(),
        "nats_subscriptions": clusters.iter().map(|c| (c.name.to_owned(), json!(c.subscriptions)))
            .collect::<serde_json::Map<_, _>>(),
        "node_stats": stats_after.iter().map(|(n, v)| ((*n).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "targets": targets_json,
        "duration_s": started.elapsed().as_secs_f64(),
    });
    Ok((out, doc))
}

fn table(p: &Params, samples: &Samples) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== scale: {} nodes per configuration, {} rooms ({} clients per room and node, on 1 or 2 nodes), \
         {} room broadcasts/s in all for {} s, {}/s from each node over every room, {} \
         (per node, median [min–max] over the rounds) ==",
        p.nodes,
        p.rooms,
        p.clients,
        per_node_rate(p) * p.nodes as u64,
        p.secs,
        per_node_rate(p),
        if p.sync {
            "all nodes starting together"
        } else {
            "node k starting k/N of a period after node 0"
        }
    );
    let _ = write!(out, "{:<18}", "");
    for c in CONFIGS {
        let _ = write!(out, "{c:>24}");
    }
    let _ = writeln!(out, "{:>9}{:>9}{:>9}", "on/off", "on/redis", "off/redis");
    for (metric, label, ratio) in ROWS {
        let cells: Vec<_> = CONFIGS.iter().map(|c| median(samples, c, metric)).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let _ = write!(out, "{label:<18}");
        for m in &cells {
            let _ = write!(out, "{:>24}", cell(*m));
        }
        let med = |c: &str| median(samples, c, metric).map(|(m, _, _)| m);
        for (a, b) in [
            ("nats-on", "nats-off"),
            ("nats-on", "redis"),
            ("nats-off", "redis"),
        ] {
            let text = match (ratio, med(a), med(b)) {
                (true, Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                _ => String::new(),
            };
            let _ = write!(out, "{text:>9}");
        }
        let _ = writeln!(out);
    }
    out.push_str(
        "(msgs, msg bytes: what nats-server sent each node's connection, /connz out_msgs / out_bytes, \
         heartbeats included; decoded: the adapter's broadcasts_received; TCP bytes: what the node's \
         sockets to the broker received, framing included (ss); model: the broadcasts a node should \
         receive)\n",
    );
    out
}

fn pct_us(mut ns: Vec<u64>, p: f64) -> f64 {
    if ns.is_empty() {
        return 0.0;
    }
    ns.sort_unstable();
    let rank = ((p / 100.0) * ns.len() as f64).ceil() as usize;
    ns[rank.clamp(1, ns.len()) - 1] as f64 / 1e3
}

fn setup_table(clusters: &[Cluster]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "\n== scale set-up: joins (join event → ack; on the node: NatsHandle::join or socket.join), NATS subscriptions per node ==\n",
    );
    let _ = write!(out, "{:<34}", "");
    for c in clusters {
        let _ = write!(out, "{:>22}", c.name);
    }
    out.push('\n');
    type Pick = fn(&(Joined, bool)) -> Option<u64>;
    let rows: [(&str, Pick, f64); 6] = [
        (
            "join on node, first of room, p50",
            |(j, f)| f.then_some(j.node_ns),
            50.0,
        ),
        (
            "join on node, first of room, max",
            |(j, f)| f.then_some(j.node_ns),
            100.0,
        ),
        (
            "join on node, others, p50",
            |(j, f)| (!f).then_some(j.node_ns),
            50.0,
        ),
        ("join at client, all, p50", |(j, _)| Some(j.client_ns), 50.0),
        ("join at client, all, p99", |(j, _)| Some(j.client_ns), 99.0),
        (
            "join at client, all, max",
            |(j, _)| Some(j.client_ns),
            100.0,
        ),
    ];
    for (label, pick, pct) in rows {
        let _ = write!(out, "{:<34}", format!("{label} µs"));
        for c in clusters {
            let v: Vec<u64> = c.joins.iter().filter_map(pick).collect();
            let _ = write!(out, "{:>22}", short(pct_us(v, pct)));
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<34}", "NATS subscriptions per node");
    for c in clusters {
        let text = if c.subscriptions.is_empty() {
            "-".to_owned()
        } else {
            let min = c.subscriptions.iter().min().copied().unwrap_or(0);
            let max = c.subscriptions.iter().max().copied().unwrap_or(0);
            if min == max {
                min.to_string()
            } else {
                format!("{min}–{max}")
            }
        };
        let _ = write!(out, "{text:>22}");
    }
    out.push('\n');
    out
}

fn unmatched_table(p: &Params, host: usize, targets: &[usize], unmatched: &Samples) -> String {
    use std::fmt::Write as _;
    if unmatched.is_empty() {
        return String::new();
    }
    let mut columns: Vec<(String, u64)> = p
        .unmatched_rates
        .iter()
        .map(|r| (unmatched_column("nats-off", *r), *r))
        .collect();
    columns.push((unmatched_column("nats-on", p.rate), p.rate));
    columns.retain(|(c, _)| unmatched.contains_key(c));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== scale unmatched: node {host} broadcasts for {} s to the {} rooms only it hosts; \
         the other {} nodes have no member in any of them (per node, median [min–max] over the rounds) ==",
        p.secs,
        targets.len(),
        p.nodes - 1
    );
    let _ = write!(out, "{:<20}", "");
    for (c, _) in &columns {
        let _ = write!(out, "{c:>24}");
    }
    out.push('\n');
    for (metric, label) in UNMATCHED_ROWS {
        let _ = write!(out, "{label:<20}");
        for (c, _) in &columns {
            let _ = write!(out, "{:>24}", cell(median(unmatched, c, metric)));
        }
        out.push('\n');
    }
    out.push_str(
        "(µs/msg: (node CPU during the load − its idle CPU over as long) / messages it received)\n",
    );
    for (c, rate) in &columns {
        if let Some((cost, _, _)) = median(unmatched, c, "cost_us_mean") {
            let _ = writeln!(
                out,
                "routing off, received at {rate}/s: {cost:.1} µs of CPU per unmatched broadcast; \
                 half a core at R = 0.5 s / {cost:.1} µs ≈ {} broadcasts/s cluster-wide",
                short(0.5 / (cost * 1e-6))
            );
        }
    }
    out
}

/// The scale targets, checked against the medians: text and JSON.
fn check(p: &Params, samples: &Samples, unmatched: &Samples) -> (String, Value) {
    let med = |c: &str, m: &str| median(samples, c, m).map(|(v, _, _)| v);
    let mut lines: Vec<(String, Option<bool>, String)> = Vec::new();
    let on_off = |m: &str| med("nats-on", m).zip(med("nats-off", m));
    lines.push((
        format!(
            "scale: routing on, msgs/node mean ≤ 1/4 × routing off ({} nodes)",
            p.nodes
        ),
        on_off("msgs_mean").map(|(a, b)| a <= b / 4.0),
        on_off("msgs_mean").map_or(String::new(), |(a, b)| {
            format!("{} vs {} ({:.2} ×)", short(a), short(b), a / b)
        }),
    ));
    let saving = on_off("msgs_mean")
        .zip(
            median(
                unmatched,
                &unmatched_column("nats-off", p.rate),
                "cost_us_mean",
            )
            .map(|m| m.0),
        )
        .map(|((a, b), cost)| (b - a) * cost / 1e3);
    lines.push((
        "scale: routing on, CPU/node mean < routing off".to_owned(),
        on_off("cpu_ms_mean").map(|(a, b)| a < b),
        on_off("cpu_ms_mean").map_or(String::new(), |(a, b)| {
            let model = saving.map_or(String::new(), |s| {
                format!("; msgs saved × isolated unmatched cost: −{} ms", short(s))
            });
            format!(
                "{} vs {} ms ({:.2} ×, −{} ms{model})",
                short(a),
                short(b),
                a / b,
                short(b - a)
            )
        }),
    ));
    lines.push((
        "scale: routing on, p99 ≤ 1.1 × routing off".to_owned(),
        on_off("p99_us").map(|(a, b)| a <= 1.1 * b),
        on_off("p99_us").map_or(String::new(), |(a, b)| {
            format!("{} vs {} µs ({:.2} ×)", short(a), short(b), a / b)
        }),
    ));
    let lost: Option<f64> = CONFIGS
        .iter()
        .filter_map(|c| median(samples, c, "lost").map(|(_, _, hi)| hi))
        .reduce(f64::max);
    lines.push((
        "scale: no delivery lost (every configuration, every round)".to_owned(),
        lost.map(|l| l <= 0.0),
        lost.map_or(String::new(), |l| format!("worst round: {l:.0} lost")),
    ));
    let mut text = String::from("\n== scale targets (medians) ==\n");
    let mut json = Vec::new();
    for (name, ok, detail) in lines {
        let verdict = match ok {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "not measured",
        };
        text.push_str(&format!("{name:<66}{verdict:<14}{detail}\n"));
        json.push(json!({ "target": name, "verdict": verdict, "detail": detail }));
    }
    (text, Value::Array(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            nodes: 8,
            rooms: 64,
            clients: 2,
            rate: 2000,
            secs: 4,
            rounds: 1,
            size: 64,
            redis_buffer: 1024,
            configs: Vec::new(),
            unmatched_rates: vec![2000],
            sync: false,
        }
    }

    #[test]
    fn every_node_hosts_twelve_of_64_rooms() {
        for k in 0..8 {
            let hosted = (0..64).filter(|r| room_nodes(*r, 8).contains(&k)).count();
            assert_eq!(hosted, 12, "node {k}");
        }
    }

    #[test]
    fn the_model_counts_what_each_node_receives() {
        let p = params();
        let (off, deliveries) = model("nats-off", &p);
        let (on, _) = model("nats-on", &p);
        let (redis, _) = model("redis", &p);
        // 250/s × 4 s from each of 8 nodes: 8 000 broadcasts.
        assert!(off.iter().all(|m| *m == 7000));
        assert!(redis.iter().all(|m| *m == 8000));
        let on_mean = on.iter().sum::<u64>() as f64 / 8.0;
        // a node hosts 12/64 of the rooms and gets them from the 7 others
        assert!((on_mean - 7000.0 * 12.0 / 64.0).abs() < 50.0, "{on_mean}");
        // 8 000 broadcasts to rooms of 2 or 4 clients, half and half
        assert_eq!(deliveries, 8000 * 3);
    }
}
