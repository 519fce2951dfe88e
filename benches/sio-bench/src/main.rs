//! `sio-bench`: socket.io adapters side by side, driving real socket.io clients
//! over websockets.
//!
//! Configurations, measured in one run and alternated within every round:
//! * `local`: one node with socketioxide's `LocalAdapter`, every client on it (the
//!   ceiling);
//! * `redis`: three nodes with socketioxide-redis 0.4 over a local redis-server;
//! * `nats`: three nodes with socketioxide-nats over a local nats-server, each with
//!   its own connection built with `no_echo` as the adapter's docs recommend
//!   (`--nats-echo` keeps async-nats's default echo);
//! * `raw`: async-nats, one publisher and as many subscribers as the broker sends
//!   each broadcast of `nats` to (two, or three with `--nats-echo`), at the same
//!   message size: the transport's own limit;
//! * `raw-redis`: the same over Redis pub/sub with redis-rs, three subscribers (a
//!   Redis broadcast reaches every node, its sender included): Redis's own limit.
//!
//! The nodes are `bench-node` processes; the load clients, the raw NATS clients and
//! the driver live in this process. Every load is triggered on node 0 over a
//! separate control connection. Run it with `bash scripts/bench.sh`; see
//! benches/README.md for what the tables mean.
//!
//! The `scale` load (`--only scale`, not part of the default run) has its own
//! configurations: 8-node clusters of socketioxide-nats with and without room
//! routing and of socketioxide-redis, with room broadcasts from every node; see
//! `src/scale.rs`.

mod client;
mod procs;
mod raw;
mod report;
mod scale;

use std::{
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use clap::Parser;
use serde_json::{Value, json};

use client::{Control, Received, now_ns};
use procs::{Node, Redis, cpu_seconds, total_cpu_seconds};
use report::{BURST_ROWS, LATENCY_ROWS, REQUEST_ROWS, Results, Sample, percentiles, short};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    about = "Benchmark socket.io adapters with real websocket clients: local, \
             socketioxide-redis, socketioxide-nats and raw NATS, side by side"
)]
struct Args {
    /// Rounds; the configurations alternate within each round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Clients per node of the 3-node clusters (the local node gets all 3 × N).
    #[arg(long, default_value_t = 30)]
    clients: usize,
    /// Broadcasts per throughput burst (room bursts: 5 ×; binary: fewer, by size).
    #[arg(long, default_value_t = 5000)]
    burst: u64,
    /// Text payload size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Broadcasts per second of the latency load.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of the latency load.
    #[arg(long, default_value_t = 3)]
    secs: u64,
    /// Sequential requests per fetch / rooms sample (acks: a third as many).
    #[arg(long, default_value_t = 300)]
    requests: u64,
    /// Emits in flight on the emitting node during bursts (1: one after another).
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// socketioxide-redis's receive channel (`RedisAdapterConfig::stream_buffer`,
    /// default 1024, beyond which it drops messages). The default here matches
    /// async-nats's subscription capacity, so that both adapters queue as deep.
    #[arg(long, default_value_t = 65_536)]
    redis_buffer: usize,
    /// Binary payload sizes in bytes, comma-separated.
    #[arg(long, default_value = "1024,16384", value_delimiter = ',')]
    bin_sizes: Vec<usize>,
    /// Loads to run: throughput, throughput-seq, latency, latency-room, room, acks,
    /// fetch, rooms, binary; and scale (room routing at 8 nodes, its own
    /// configurations; not in the default list: `--only scale`).
    #[arg(
        long,
        default_value = "throughput,throughput-seq,latency,latency-room,room,acks,fetch,rooms,binary",
        value_delimiter = ','
    )]
    only: Vec<String>,
    /// Configurations to run: local, redis, nats, raw, raw-redis.
    #[arg(
        long,
        default_value = "local,redis,nats,raw,raw-redis",
        value_delimiter = ','
    )]
    configs: Vec<String>,
    /// Keep async-nats's default echo on the NATS nodes' connections: the broker
    /// then sends each broadcast back to its sender too (and raw gets a third
    /// subscriber to match). Off by default: every node has its own connection, so
    /// it uses `no_echo`, as the adapter's docs recommend.
    #[arg(long)]
    nats_echo: bool,
    /// Scale load: bench-node processes per configuration.
    #[arg(long, default_value_t = 8)]
    scale_nodes: usize,
    /// Scale load: rooms (room r has members on node r % N, and in every other
    /// block of N rooms also on node (r + 1) % N).
    #[arg(long, default_value_t = 64)]
    scale_rooms: usize,
    /// Scale load: websocket clients per room and node.
    #[arg(long, default_value_t = 2)]
    scale_clients: usize,
    /// Scale load: room broadcasts per second in all, from every node in turn
    /// (each node sends rate / N); also the rate of the unmatched step, from one node.
    #[arg(long, default_value_t = 2000)]
    scale_rate: u64,
    /// Scale load: seconds of each sample (and of the unmatched step, and its idle
    /// measure).
    #[arg(long, default_value_t = 4)]
    scale_secs: u64,
    /// Scale load: rounds; the configurations alternate within each.
    #[arg(long, default_value_t = 2)]
    scale_rounds: usize,
    /// Scale load: configurations, among nats-off (no room routing), nats-on
    /// (room routing) and redis.
    #[arg(long, default_value = "nats-off,nats-on,redis", value_delimiter = ',')]
    scale_configs: Vec<String>,
    /// Scale load: rates of the unmatched step (broadcasts per second from one
    /// node to rooms no other node has members in), routing off; routing on runs
    /// it at --scale-rate. Default: 1000 (one message per millisecond timer tick),
    /// --scale-rate and 4 × --scale-rate.
    #[arg(long, value_delimiter = ',')]
    scale_unmatched_rates: Vec<u64>,
    /// Scale load: every node starts its broadcasts at the same instant, instead
    /// of node k a k / N period later.
    #[arg(long)]
    scale_sync: bool,
    /// A smoke run (under a minute): one round, 10 clients per node, small loads.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "artifacts/bench/bench.json")]
    json: PathBuf,
}

const LOADS: [&str; 10] = [
    "scale",
    "throughput",
    "throughput-seq",
    "latency",
    "latency-room",
    "room",
    "acks",
    "fetch",
    "rooms",
    "binary",
];
const ROOMS: usize = 10;

/// The room of the client with index `i` (over all nodes of a configuration):
/// every `cycle` clients (a cluster node's worth) cover the rooms anew, so each
/// node of a cluster holds the same rooms, and the local node, with three
/// nodes' worth of clients, holds them as often as the three together.
fn room_of(i: usize, cycle: usize) -> usize {
    (i % cycle.max(1)) % ROOMS
}

/// How many clients a broadcast to one room reaches, in every configuration.
fn room_members(per_node: usize) -> usize {
    3 * per_node.div_ceil(ROOMS)
}

/// How long deliveries may pause before the rest counts as lost.
const QUIET: Duration = Duration::from_secs(1);

/// One configuration under test.
struct Target {
    name: &'static str,
    nodes: Vec<Node>,
    /// One control connection per node; the first one's node emits.
    ctls: Vec<Control>,
    receivers: Vec<Arc<Received>>,
    /// The room index of each receiver.
    rooms: Vec<usize>,
    broker_pid: Option<u32>,
    /// Raw broker: the publisher (the subscribers are `receivers`).
    raw: Option<raw::Publisher>,
}

/// CPU seconds used so far by the load client, the nodes and the broker.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    client: f64,
    nodes: f64,
    broker: f64,
}

fn limit_s(limit_secs: u64) -> Duration {
    Duration::from_secs(limit_secs)
}

impl Target {
    async fn cluster(
        name: &'static str,
        url: &str,
        nodes: usize,
        per_node: usize,
        room_cycle: usize,
        broker_pid: Option<u32>,
        extra: &[String],
    ) -> Result<Self, String> {
        let mut procs = Vec::new();
        for _ in 0..nodes {
            procs.push(Node::spawn(name, url, extra).await?);
        }
        let mut receivers = Vec::new();
        let mut rooms = Vec::new();
        for (i, node) in procs.iter().enumerate() {
            for k in 0..per_node {
                let room = room_of(i * per_node + k, room_cycle);
                receivers.push(client::receiver(node.port, &format!("r{room}")).await?);
                rooms.push(room);
            }
        }
        let mut ctls = Vec::new();
        for node in &procs {
            ctls.push(Control::connect(node.port).await?);
        }
        let target = Self {
            name,
            nodes: procs,
            ctls,
            receivers,
            rooms,
            broker_pid,
            raw: None,
        };
        target.wait_ready().await?;
        Ok(target)
    }

    /// Wait until node 0's `fetch_sockets()` sees every client.
    async fn wait_ready(&self) -> Result<(), String> {
        self.ctls[0]
            .wait_sockets(self.receivers.len() as u64, self.name)
            .await
    }

    /// A raw configuration: the brokers alone, `publisher` to `receivers`.
    async fn raw(
        name: &'static str,
        (publisher, receivers): (raw::Publisher, Vec<Arc<Received>>),
        broker_pid: Option<u32>,
    ) -> Result<Self, String> {
        // Let the subscriptions reach the broker.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(Self {
            name,
            nodes: Vec::new(),
            ctls: Vec::new(),
            rooms: vec![0; receivers.len()],
            receivers,
            broker_pid,
            raw: Some(publisher),
        })
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            client: cpu_seconds(None),
            nodes: self.nodes.iter().map(|n| cpu_seconds(n.pid())).sum(),
            broker: self.broker_pid.map_or(0.0, |p| cpu_seconds(Some(p))),
        }
    }

    fn add_cpu(&self, sample: &mut Sample, before: Cpu) {
        let after = self.cpu();
        sample.insert("client_cpu_ms", (after.client - before.client) * 1e3);
        if !self.nodes.is_empty() {
            sample.insert("nodes_cpu_ms", (after.nodes - before.nodes) * 1e3);
        }
        if self.broker_pid.is_some() {
            sample.insert("broker_cpu_ms", (after.broker - before.broker) * 1e3);
        }
    }

    fn delivered(&self) -> u64 {
        self.receivers
            .iter()
            .map(|c| c.events.load(Ordering::Relaxed))
            .sum()
    }

    fn last_ns(&self) -> u64 {
        self.receivers
            .iter()
            .map(|c| c.last_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Wait until `expected` more deliveries than `before` arrived, or until
    /// none arrived for [`QUIET`]; returns how many arrived.
    async fn wait_deliveries(&self, before: u64, expected: u64) -> u64 {
        let start = Instant::now();
        let mut last = self.delivered();
        let mut idle_since = Instant::now();
        while last - before < expected && start.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let now = self.delivered();
            if now != last {
                last = now;
                idle_since = Instant::now();
            } else if idle_since.elapsed() > QUIET {
                break;
            }
        }
        self.delivered() - before
    }

    fn per_receiver(&self) -> Vec<u64> {
        self.receivers
            .iter()
            .map(|c| c.events.load(Ordering::Relaxed))
            .collect()
    }

    /// Say which node's clients missed deliveries of a burst of `count`.
    /// How many receivers a broadcast to `room` (or to all) reaches. The raw
    /// brokers have no rooms: their subscribers stand for the nodes.
    fn receivers_of(&self, room: Option<usize>) -> u64 {
        let n = match room {
            Some(r) if self.raw.is_none() => self.rooms.iter().filter(|x| **x == r).count(),
            _ => self.receivers.len(),
        };
        n as u64
    }

    fn report_loss(&self, before: &[u64], count: u64, room: Option<usize>) {
        let groups = self.nodes.len().max(1);
        let per_group = self.receivers.len().div_ceil(groups);
        let mut missing = vec![0u64; groups];
        let mut short = vec![0usize; groups];
        for (i, (c, b)) in self.receivers.iter().zip(before).enumerate() {
            if room.is_some_and(|r| self.rooms[i] != r) {
                continue;
            }
            let got = c.events.load(Ordering::Relaxed) - b;
            if got < count {
                missing[i / per_group] += count - got;
                short[i / per_group] += 1;
            }
        }
        let detail: Vec<String> = missing
            .iter()
            .zip(&short)
            .enumerate()
            .map(|(g, (m, s))| format!("node {g}: {m} missing at {s} clients"))
            .collect();
        eprintln!(
            "sio-bench: {}: deliveries lost ({})",
            self.name,
            detail.join(", ")
        );
    }

    /// A burst of `count` broadcasts; returns the throughput sample.
    async fn burst(
        &self,
        count: u64,
        size: usize,
        binary: bool,
        room: Option<usize>,
        inflight: usize,
    ) -> Result<Sample, String> {
        let receivers = self.receivers_of(room);
        let expected = count * receivers;
        let before_each = self.per_receiver();
        let before = self.delivered();
        let cpu = self.cpu();
        let start = now_ns();
        let emit_ns = if let Some(publisher) = &self.raw {
            // the socket.io packet's size: payload plus about 40 bytes of header
            let template = vec![b'x'; (size + 40).max(8)];
            let t = Instant::now();
            publisher.burst(count, &template, inflight).await?;
            t.elapsed().as_nanos() as f64
        } else {
            let mut work =
                json!({ "count": count, "size": size, "binary": binary, "inflight": inflight });
            if let Some(r) = room {
                work["room"] = json!(format!("r{r}"));
            }
            let res = self.ctls[0].call("burst", work, limit_s(300)).await?;
            res["emit_ns"].as_f64().unwrap_or(0.0)
        };
        let got = self.wait_deliveries(before, expected).await;
        let secs = (self.last_ns().saturating_sub(start) as f64 / 1e9).max(1e-9);
        if got < expected {
            self.report_loss(&before_each, count, room);
        }
        let mut s = Sample::new();
        s.insert("deliveries_per_s", got as f64 / secs);
        s.insert(
            "broadcasts_per_s",
            got as f64 / receivers.max(1) as f64 / secs,
        );
        s.insert("lost", expected as f64 - got as f64);
        s.insert("wall_ms", secs * 1e3);
        s.insert("emit_ms", emit_ns / 1e6);
        s.insert("expected", expected as f64);
        self.add_cpu(&mut s, cpu);
        Ok(s)
    }

    /// Broadcasts at `rate` per second for `secs`, to everyone or to `room`; the
    /// latency sample. The raw brokers have no rooms: their subscribers stand for
    /// the nodes, whose number a room does not change.
    async fn latency(
        &self,
        rate: u64,
        secs: u64,
        size: usize,
        room: Option<usize>,
    ) -> Result<Sample, String> {
        for c in &self.receivers {
            if let Ok(mut l) = c.latencies_ns.lock() {
                l.clear();
            }
            c.record.store(true, Ordering::Relaxed);
        }
        let before = self.delivered();
        let cpu = self.cpu();
        let total = rate * secs;
        if let Some(publisher) = &self.raw {
            let template = vec![b'x'; (size + 40).max(8)];
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..total {
                tick.tick().await;
                publisher.publish(&template).await?;
            }
        } else {
            let mut work = json!({ "rate": rate, "secs": secs, "size": size });
            if let Some(r) = room {
                work["room"] = json!(format!("r{r}"));
            }
            self.ctls[0].call("lat", work, limit_s(secs + 60)).await?;
        }
        let expected = total * self.receivers_of(room);
        let got = self.wait_deliveries(before, expected).await;
        let mut all = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        for c in &self.receivers {
            c.record.store(false, Ordering::Relaxed);
            if let Ok(mut l) = c.latencies_ns.lock() {
                all.append(&mut l);
            }
        }
        let mut s = Sample::new();
        percentiles(&mut s, all);
        s.insert("lost", expected as f64 - got as f64);
        self.add_cpu(&mut s, cpu);
        Ok(s)
    }

    /// `n` sequential requests of `event` (`acks`, `fetch`, `rooms`) on node 0,
    /// timed there.
    async fn requests(&self, event: &str, n: u64) -> Result<Sample, String> {
        let res = self.ctls[0]
            .call(event, json!({ "n": n }), limit_s(600))
            .await?;
        let ns: Vec<u64> = res["ns"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let mut s = Sample::new();
        percentiles(&mut s, ns);
        let clients = self.receivers.len() as u64;
        let (expected, got) = match event {
            "acks" => (n * clients, res["acked"].as_u64().unwrap_or(0)),
            "fetch" => (clients, res["size"].as_u64().unwrap_or(0)),
            _ => (ROOMS as u64, res["size"].as_u64().unwrap_or(0)),
        };
        s.insert("lost", expected as f64 - got as f64);
        s.insert("errors", res["errors"].as_f64().unwrap_or(0.0));
        if got != expected {
            eprintln!(
                "sio-bench: {} {event}: expected {expected}, got {got}",
                self.name
            );
        }
        Ok(s)
    }
}

/// A load of one round, as run on one configuration.
#[derive(Debug, Clone)]
struct LoadSpec {
    key: String,
    kind: &'static str,
    count: u64,
    size: usize,
    binary: bool,
    inflight: usize,
}

fn load_specs(args: &Args, loads: &[String]) -> Vec<LoadSpec> {
    let mut specs = Vec::new();
    let spec = |key: String, kind, count, size, binary| LoadSpec {
        key,
        kind,
        count,
        size,
        binary,
        inflight: args.inflight,
    };
    for load in loads {
        match load.as_str() {
            "throughput" => specs.push(spec(load.clone(), "burst", args.burst, args.size, false)),
            "throughput-seq" => specs.push(LoadSpec {
                inflight: 1,
                ..spec(load.clone(), "burst", args.burst, args.size, false)
            }),
            "room" => specs.push(spec(load.clone(), "room", args.burst * 5, args.size, false)),
            "latency" | "latency-room" => {
                specs.push(spec(load.clone(), "latency", 0, args.size, false));
            }
            "acks" => specs.push(spec(
                load.clone(),
                "acks",
                (args.requests / 3).max(1),
                0,
                false,
            )),
            "fetch" | "rooms" => specs.push(spec(load.clone(), "request", args.requests, 0, false)),
            "binary" => {
                for &size in &args.bin_sizes {
                    // fewer broadcasts for large payloads: about the same bytes
                    // from 4 KiB up
                    let count = (args.burst / 4 * 4096 / size.max(4096) as u64).max(10);
                    specs.push(spec(binary_key(size), "burst", count, size, true));
                }
            }
            _ => {}
        }
    }
    specs
}

fn binary_key(size: usize) -> String {
    if size > 0 && size.is_multiple_of(1024) {
        format!("binary-{}k", size / 1024)
    } else {
        format!("binary-{size}b")
    }
}

fn size_label(size: usize) -> String {
    if size > 0 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn title(spec: &LoadSpec, args: &Args, clients: usize) -> String {
    let inflight = match spec.inflight {
        1 => "each emit awaited before the next".to_owned(),
        n => format!("{n} emits in flight"),
    };
    match spec.kind {
        "burst" if spec.binary => format!(
            "burst of {} broadcasts of {} bytes::Bytes to all {clients} clients ({inflight})",
            spec.count,
            size_label(spec.size)
        ),
        "burst" => format!(
            "burst of {} broadcasts of {} B text to all {clients} clients ({inflight})",
            spec.count, spec.size
        ),
        "room" => format!(
            "burst of {} broadcasts of {} B to one of {} rooms ({} clients; {inflight})",
            spec.count,
            spec.size,
            args.clients.min(ROOMS),
            room_members(args.clients)
        ),
        "latency" if spec.key == "latency-room" => format!(
            "{} broadcasts/s for {} s to one of {} rooms ({} clients, the same on every \
             node), emit → client receipt",
            args.rate,
            args.secs,
            args.clients.min(ROOMS),
            room_members(args.clients)
        ),
        "latency" => format!(
            "{} broadcasts/s for {} s to all {clients} clients, emit → client receipt",
            args.rate, args.secs
        ),
        "acks" => format!(
            "{} sequential timeout(5 s).emit_with_ack to all {clients} clients, until the last ack",
            spec.count
        ),
        _ if spec.key == "rooms" => format!("{} sequential rooms() on node 0", spec.count),
        _ => format!(
            "{} sequential fetch_sockets() on node 0 ({clients} sockets)",
            spec.count
        ),
    }
}

fn rows(spec: &LoadSpec) -> &'static [report::Row] {
    match spec.kind {
        "burst" | "room" => BURST_ROWS,
        "latency" => LATENCY_ROWS,
        _ => REQUEST_ROWS,
    }
}

async fn run_one(t: &Target, spec: &LoadSpec, args: &Args) -> Result<Option<Sample>, String> {
    if t.raw.is_some() && !matches!(spec.kind, "burst" | "latency") {
        return Ok(None); // raw NATS has no rooms, acks or sockets
    }
    let sample = match spec.kind {
        "burst" => {
            t.burst(spec.count, spec.size, spec.binary, None, spec.inflight)
                .await?
        }
        "room" => {
            t.burst(spec.count, spec.size, false, Some(0), spec.inflight)
                .await?
        }
        "latency" => {
            let room = (spec.key == "latency-room").then_some(0);
            t.latency(args.rate, args.secs, spec.size, room).await?
        }
        "acks" => t.requests("acks", spec.count).await?,
        _ if spec.key == "rooms" => t.requests("rooms", spec.count).await?,
        _ => t.requests("fetch", spec.count).await?,
    };
    Ok(Some(sample))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.rounds = 1;
        args.clients = args.clients.min(10);
        args.burst = args.burst.min(1000);
        args.secs = 1;
        args.requests = args.requests.min(60);
        args.scale_rounds = 1;
        args.scale_secs = args.scale_secs.min(2);
    }
    if let Err(e) = run(args).await {
        eprintln!("sio-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    for c in &args.configs {
        if !report::CONFIGS.contains(&c.as_str()) {
            return Err(format!(
                "unknown configuration {c:?}: {}",
                report::CONFIGS.join(", ")
            ));
        }
    }
    for l in &args.only {
        if !LOADS.contains(&l.as_str()) {
            return Err(format!("unknown load {l:?}: {}", LOADS.join(", ")));
        }
    }
    for c in &args.scale_configs {
        if !scale::CONFIGS.contains(&c.as_str()) {
            return Err(format!(
                "unknown scale configuration {c:?}: {}",
                scale::CONFIGS.join(", ")
            ));
        }
    }
    let has = |c: &str| args.configs.iter().any(|x| x == c);
    // The loads of the configurations of `--configs`, and the scale load with its own.
    let standard = args.only.iter().any(|l| l != "scale");
    let scaled = args.only.iter().any(|l| l == "scale");
    let started = Instant::now();
    let nats =
        ((standard && (has("nats") || has("raw"))) || scaled).then(nats_harness::NatsServer::start);
    let redis = if (standard && (has("redis") || has("raw-redis"))) || scaled {
        Some(Redis::start().await?)
    } else {
        None
    };
    let clients = args.clients * 3;
    let mut targets = Vec::new();
    for name in report::CONFIGS {
        if !standard || !has(name) {
            continue;
        }
        eprintln!("sio-bench: starting {name}");
        let nats_pid = nats.as_ref().and_then(nats_harness::NatsServer::pid);
        let nats_url = nats.as_ref().map(nats_harness::NatsServer::url);
        let t = match name {
            "local" => Target::cluster("local", "", 1, clients, args.clients, None, &[]).await?,
            "redis" => {
                let r = redis.as_ref().ok_or("no redis")?;
                let extra = [
                    "--redis-stream-buffer".to_owned(),
                    args.redis_buffer.to_string(),
                ];
                Target::cluster(
                    "redis",
                    &r.url(),
                    3,
                    args.clients,
                    args.clients,
                    r.pid(),
                    &extra,
                )
                .await?
            }
            "nats" => {
                let extra: &[String] = if args.nats_echo {
                    &[]
                } else {
                    &["--no-echo".to_owned()]
                };
                Target::cluster(
                    "nats",
                    &nats_url.unwrap_or_default(),
                    3,
                    args.clients,
                    args.clients,
                    nats_pid,
                    extra,
                )
                .await?
            }
            "raw" => {
                // The broker's fan-out of one broadcast of the nats configuration.
                let subscribers = if args.nats_echo { 3 } else { 2 };
                let ends = raw::nats(&nats_url.unwrap_or_default(), subscribers).await?;
                Target::raw("raw", ends, nats_pid).await?
            }
            _ => {
                // Redis sends a broadcast of the redis configuration to all three
                // nodes, its sender included.
                let r = redis.as_ref().ok_or("no redis")?;
                let ends = raw::redis(&r.url(), 3).await?;
                Target::raw("raw-redis", ends, r.pid()).await?
            }
        };
        targets.push(t);
    }
    if standard && targets.is_empty() {
        return Err("no configuration to run".into());
    }
    if standard {
        eprintln!(
            "sio-bench: {} round(s), {clients} clients per configuration ({} per node of the clusters), configs {}, loads {}, nats nodes {}",
            args.rounds,
            args.clients,
            args.configs.join(","),
            args.only.join(","),
            if args.nats_echo {
                "with echo"
            } else {
                "no_echo"
            }
        );
    }
    // Warm-up, not recorded: connections, buffers, the adapters' first messages.
    for t in &targets {
        t.burst(200, args.size, false, None, args.inflight).await?;
    }

    let specs = load_specs(&args, &args.only);
    let mut results = Results::default();
    for spec in &specs {
        results.declare(&spec.key, title(spec, &args, clients), rows(spec));
    }
    for round in 0..args.rounds {
        if !standard {
            break;
        }
        for spec in &specs {
            // alternate the configurations, starting one further each round
            let n = targets.len();
            for k in 0..n {
                let t = &targets[(k + round) % n];
                if let Some(sample) = run_one(t, spec, &args).await? {
                    results.push(&spec.key, t.name, sample);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        eprintln!(
            "sio-bench: round {} of {} done ({:.0} s)",
            round + 1,
            args.rounds,
            started.elapsed().as_secs_f64()
        );
    }

    let encoding = if args.only.iter().any(|l| l == "binary") {
        encoding_probe(&targets, &args, nats.as_ref(), redis.as_ref()).await?
    } else {
        Vec::new()
    };
    let node_stats = node_stats(&targets).await;
    let totals = cpu_totals(&targets, nats.as_ref(), redis.as_ref());
    // The scale load's nodes run alone.
    drop(targets);

    let mut out = String::new();
    let mut targets_report = (String::new(), Value::Array(Vec::new()));
    if standard {
        out.push_str(&results.tables());
        out.push_str(&encoding_table(&encoding));
        out.push_str(&totals_table(&totals));
        out.push_str(&over_broker_table(&results));
        targets_report = check_targets(&results, &encoding);
        out.push_str(&targets_report.0);
    }
    let mut scale_doc = Value::Null;
    if scaled {
        let params = scale::Params {
            nodes: args.scale_nodes.max(2),
            rooms: args.scale_rooms.max(1),
            clients: args.scale_clients.max(1),
            rate: args.scale_rate.max(1),
            secs: args.scale_secs.max(1),
            rounds: args.scale_rounds.max(1),
            size: args.size,
            redis_buffer: args.redis_buffer,
            configs: args.scale_configs.clone(),
            unmatched_rates: {
                let r = args.scale_rate.max(1);
                let mut rates = if args.scale_unmatched_rates.is_empty() {
                    vec![1000, r, 4 * r]
                } else {
                    args.scale_unmatched_rates
                        .iter()
                        .map(|r| (*r).max(1))
                        .collect()
                };
                rates.sort_unstable();
                rates.dedup();
                rates
            },
            sync: args.scale_sync,
        };
        let (text, doc) = scale::run(
            &params,
            nats.as_ref().ok_or("no nats-server")?,
            redis.as_ref().ok_or("no redis-server")?,
        )
        .await?;
        out.push_str(&text);
        scale_doc = doc;
    }
    print!("{out}");

    let doc = json!({
        "meta": {
            "rounds": args.rounds,
            "clients": clients,
            "clients_per_node": args.clients,
            "burst": args.burst,
            "size": args.size,
            "rate": args.rate,
            "secs": args.secs,
            "requests": args.requests,
            "inflight": args.inflight,
            "redis_buffer": args.redis_buffer,
            "nats_echo": args.nats_echo,
            "bin_sizes": args.bin_sizes,
            "configs": args.configs,
            "loads": args.only,
            "quick": args.quick,
            "cores": std::thread::available_parallelism().map_or(0, usize::from),
            "duration_s": started.elapsed().as_secs_f64(),
            "unix_time": now_ns() / 1_000_000_000,
        },
        "loads": results.to_json(),
        "encoding": encoding.iter().map(|e| json!({
            "config": e.config, "payload": e.payload, "binary": e.binary,
            "bytes_per_broadcast": e.bytes, "messages_per_broadcast": e.messages,
        })).collect::<Vec<_>>(),
        "cpu_total_s": totals.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "node_stats": node_stats,
        "targets": targets_report.1,
        "scale": scale_doc,
        "table": out,
    });
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&args.json, text)
        .map_err(|e| format!("cannot write {}: {e}", args.json.display()))?;
    eprintln!(
        "sio-bench: JSON written to {} ({:.0} s in all)",
        args.json.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Bytes the broker received per broadcast, for one payload.
#[derive(Debug)]
struct Encoded {
    config: &'static str,
    payload: usize,
    binary: bool,
    bytes: f64,
    messages: f64,
}

/// The broker's input counters: (bytes, messages or commands).
async fn broker_counters(
    t: &Target,
    nats: Option<&nats_harness::NatsServer>,
    redis: Option<&Redis>,
) -> Result<(u64, u64), String> {
    match t.name {
        "nats" => {
            let nats = nats.ok_or("no nats-server")?;
            let varz = tokio::task::block_in_place(|| nats.monitor("/varz"));
            Ok((
                varz["in_bytes"].as_u64().unwrap_or(0),
                varz["in_msgs"].as_u64().unwrap_or(0),
            ))
        }
        _ => redis.ok_or("no redis-server")?.input_counters().await,
    }
}

/// What a broadcast costs on the broker's input: nats-server's `/varz` `in_bytes`
/// (message payloads) and redis-server's `total_net_input_bytes` (whole `PUBLISH`
/// commands, RESP framing included), over a burst of 200 broadcasts per payload.
async fn encoding_probe(
    targets: &[Target],
    args: &Args,
    nats: Option<&nats_harness::NatsServer>,
    redis: Option<&Redis>,
) -> Result<Vec<Encoded>, String> {
    const COUNT: u64 = 200;
    let mut out = Vec::new();
    for t in targets
        .iter()
        .filter(|t| matches!(t.name, "nats" | "redis"))
    {
        let payloads =
            std::iter::once((args.size, false)).chain(args.bin_sizes.iter().map(|s| (*s, true)));
        for (payload, binary) in payloads {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (b0, m0) = broker_counters(t, nats, redis).await?;
            t.burst(COUNT, payload, binary, None, 1).await?;
            let (b1, m1) = broker_counters(t, nats, redis).await?;
            out.push(Encoded {
                config: t.name,
                payload,
                binary,
                bytes: b1.saturating_sub(b0) as f64 / COUNT as f64,
                messages: m1.saturating_sub(m0) as f64 / COUNT as f64,
            });
        }
    }
    Ok(out)
}

/// Bytes per payload byte between the smallest and the largest binary payload,
/// and the fixed part: `bytes ≈ fixed + slope × payload`.
fn slope(encoding: &[Encoded], config: &str) -> Option<(f64, f64)> {
    let mut bin: Vec<&Encoded> = encoding
        .iter()
        .filter(|e| e.config == config && e.binary)
        .collect();
    bin.sort_by_key(|e| e.payload);
    let (lo, hi) = (bin.first()?, bin.last()?);
    if hi.payload == lo.payload {
        return None;
    }
    let slope = (hi.bytes - lo.bytes) / (hi.payload - lo.payload) as f64;
    Some((slope, lo.bytes - slope * lo.payload as f64))
}

fn encoding_table(encoding: &[Encoded]) -> String {
    use std::fmt::Write as _;
    if encoding.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n== encoding: bytes the broker receives per broadcast (nats: message payload; redis: PUBLISH command) ==\n",
    );
    let configs: Vec<&str> = ["redis", "nats"]
        .into_iter()
        .filter(|c| encoding.iter().any(|e| e.config == *c))
        .collect();
    let _ = write!(out, "{:<24}", "payload");
    for c in &configs {
        let _ = write!(out, "{c:>22}");
    }
    out.push('\n');
    let mut payloads: Vec<(usize, bool)> = Vec::new();
    for e in encoding {
        if !payloads.contains(&(e.payload, e.binary)) {
            payloads.push((e.payload, e.binary));
        }
    }
    for (payload, binary) in payloads {
        let kind = if binary { "binary" } else { "text" };
        let _ = write!(out, "{:<24}", format!("{} {kind}", size_label(payload)));
        for c in &configs {
            let cell = encoding
                .iter()
                .find(|e| e.config == *c && e.payload == payload && e.binary == binary)
                .map_or("-".to_owned(), |e| {
                    format!(
                        "{:.0} (+{:.0}, {:.2} msg)",
                        e.bytes,
                        e.bytes - payload as f64,
                        e.messages
                    )
                });
            let _ = write!(out, "{cell:>22}");
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<24}", "bytes per payload byte");
    for c in &configs {
        let cell = slope(encoding, c).map_or("-".to_owned(), |(s, _)| format!("{s:.3}"));
        let _ = write!(out, "{cell:>22}");
    }
    out.push('\n');
    let _ = write!(out, "{:<24}", "fixed part, bytes");
    for c in &configs {
        let cell = slope(encoding, c).map_or("-".to_owned(), |(_, f)| format!("{f:.0}"));
        let _ = write!(out, "{cell:>22}");
    }
    out.push('\n');
    out
}

/// Each NATS node's connection counters (slow consumers would explain losses).
async fn node_stats(targets: &[Target]) -> Value {
    let mut all = serde_json::Map::new();
    for t in targets.iter().filter(|t| t.name == "nats") {
        let mut nodes = Vec::new();
        for ctl in &t.ctls {
            nodes.push(
                ctl.call("stats", json!({}), limit_s(10))
                    .await
                    .unwrap_or(Value::Null),
            );
        }
        for (i, n) in nodes.iter().enumerate() {
            if n["slow_consumers"].as_u64().unwrap_or(0) > 0 {
                eprintln!("sio-bench: nats node {i} saw slow-consumer events: {n}");
            }
        }
        all.insert(t.name.to_owned(), Value::Array(nodes));
    }
    Value::Object(all)
}

/// CPU seconds over the whole run: the load client, each configuration's nodes,
/// the brokers.
fn cpu_totals(
    targets: &[Target],
    nats: Option<&nats_harness::NatsServer>,
    redis: Option<&Redis>,
) -> Vec<(String, f64)> {
    let mut out = vec![(
        "load client (sio-bench)".to_owned(),
        total_cpu_seconds(None),
    )];
    for t in targets.iter().filter(|t| !t.nodes.is_empty()) {
        let per_node: Vec<f64> = t.nodes.iter().map(|n| total_cpu_seconds(n.pid())).collect();
        out.push((format!("{} nodes", t.name), per_node.iter().sum()));
    }
    if let Some(pid) = nats.and_then(nats_harness::NatsServer::pid) {
        out.push(("nats-server".to_owned(), total_cpu_seconds(Some(pid))));
    }
    if let Some(pid) = redis.and_then(Redis::pid) {
        out.push(("redis-server".to_owned(), total_cpu_seconds(Some(pid))));
    }
    out
}

fn totals_table(totals: &[(String, f64)]) -> String {
    let mut out = String::from("\n== CPU seconds over the whole run (utime + stime) ==\n");
    for (name, secs) in totals {
        out.push_str(&format!("{name:<26}{secs:>10.2}\n"));
    }
    out
}

/// What each adapter adds to its broker's own hop: the latency of the adapter's
/// configuration minus that of its raw broker, per load and percentile. Equal
/// figures mean the adapters cost the same and the brokers make the difference.
fn over_broker_table(results: &Results) -> String {
    let pairs = [("redis", "raw-redis"), ("nats", "raw")];
    let mut out = String::new();
    for load in ["latency", "latency-room"] {
        for metric in ["p50_us", "p99_us"] {
            let cells: Vec<Option<(f64, f64)>> = pairs
                .iter()
                .map(|(adapter, raw)| {
                    let med = |c| results.median(load, c, metric).map(|(m, _, _)| m);
                    Some((med(adapter)?, med(raw)?))
                })
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            if out.is_empty() {
                out.push_str(
                    "\n== the adapters over their brokers: configuration − raw broker, µs (medians) ==\n",
                );
                out.push_str(&format!(
                    "{:<22}{:>26}{:>26}\n",
                    "", "redis − raw-redis", "nats − raw"
                ));
            }
            let label = format!("{load} {}", metric.trim_end_matches("_us"));
            out.push_str(&format!("{label:<22}"));
            for cell in cells {
                let text = cell.map_or_else(
                    || "-".to_owned(),
                    |(a, r)| format!("{} − {} = {}", short(a), short(r), short(a - r)),
                );
                out.push_str(&format!("{text:>26}"));
            }
            out.push('\n');
        }
    }
    out
}

/// The project's targets, checked against the medians: the text and the JSON.
fn check_targets(results: &Results, encoding: &[Encoded]) -> (String, Value) {
    let med = |load: &str, config: &str, metric: &str| {
        results.median(load, config, metric).map(|(m, _, _)| m)
    };
    let mut lines = Vec::new();
    let mut check = |name: String, value: Option<(bool, String)>| {
        let (verdict, detail) = match value {
            Some((true, d)) => ("met", d),
            Some((false, d)) => ("NOT met", d),
            None => ("not measured", String::new()),
        };
        lines.push((name, verdict, detail));
    };
    // Throughput: nats against redis (≥ 1.5 ×) and the local ceiling (≥ 0.8 ×),
    // with concurrent and with awaited-one-by-one emits.
    for (load, note) in [
        ("throughput", ""),
        ("throughput-seq", " (emits awaited one by one)"),
    ] {
        let tp = |c| med(load, c, "deliveries_per_s");
        for (other, factor) in [("redis", 1.5), ("local", 0.8)] {
            check(
                format!("{load} nats ≥ {factor} × {other}{note}"),
                tp("nats")
                    .zip(tp(other))
                    .map(|(n, o)| (n >= factor * o, format!("{:.2} ×", n / o))),
            );
        }
    }
    // Latency with the fan-out to all clients, and to a room of a tenth of them,
    // where socketioxide's own fan-out weighs less against the hop through NATS.
    for load in ["latency", "latency-room"] {
        let p99 = |c| med(load, c, "p99_us");
        check(
            format!("{load} p99 nats < redis"),
            p99("nats")
                .zip(p99("redis"))
                .map(|(n, r)| (n < r, format!("{} vs {} µs", short(n), short(r)))),
        );
        check(
            format!("{load} p99 nats ≤ raw + 300 µs"),
            p99("nats").zip(p99("raw")).map(|(n, r)| {
                (
                    n <= r + 300.0,
                    format!("{} vs {} + 300 µs", short(n), short(r)),
                )
            }),
        );
    }
    for load in ["fetch", "rooms"] {
        check(
            format!("{load} p50 ≤ 1 ms (nats)"),
            med(load, "nats", "p50_us").map(|p| (p <= 1000.0, format!("{} µs", short(p)))),
        );
    }
    check(
        "binary: ≤ 1.05 bytes per payload byte + fixed header (nats)".into(),
        slope(encoding, "nats").map(|(s, f)| {
            (
                s <= 1.05,
                format!("{s:.3} bytes per payload byte, {f:.0} B fixed"),
            )
        }),
    );
    let mut text = String::from("\n== targets (medians) ==\n");
    let mut json = Vec::new();
    for (name, verdict, detail) in lines {
        text.push_str(&format!("{name:<66}{verdict:<14}{detail}\n"));
        json.push(json!({ "target": name, "verdict": verdict, "detail": detail }));
    }
    (text, Value::Array(json))
}
