//! `adapter-bench`: socket.io adapters side by side, with real websocket clients.
//!
//! Configurations, measured in one run and alternated round by round:
//! * `local`: one node, socketioxide's local adapter, every client on it (the ceiling);
//! * `redis`: three nodes with socketioxide-redis 0.4 over a local redis-server;
//! * `nats`: three nodes with socketioxide-nats over a local nats-server;
//! * `raw`: async-nats publish → three subscribers at the same message size (the
//!   transport's limit; throughput and latency only).
//!
//! Nodes are `bench-node` processes; the clients live in this process. Run it with
//! `bash scripts/bench.sh` (see benches/README.md).

mod client;
mod procs;
mod report;

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use clap::Parser;
use serde_json::{Value, json};
use socketioxide_nats::async_nats;

use client::{Control, Received, now_ns};
use procs::{Node, cpu_seconds};
use report::{Results, Sample};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    about = "Benchmark socket.io adapters: local, socketioxide-redis, socketioxide-nats, raw NATS"
)]
struct Args {
    /// Rounds; configurations alternate within each round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Clients per node of a 3-node cluster (the local node gets 3 times as many).
    #[arg(long, default_value_t = 30)]
    clients: usize,
    /// Broadcasts per throughput burst.
    #[arg(long, default_value_t = 2000)]
    burst: u64,
    /// Text payload size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Broadcasts per second of the latency load.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Comma-separated configurations.
    #[arg(long, default_value = "local,redis,nats,raw")]
    configs: String,
    /// Comma-separated loads: throughput, latency, room, acks, fetch, rooms, binary.
    #[arg(
        long,
        default_value = "throughput,latency,room,acks,fetch,rooms,binary"
    )]
    only: String,
    /// A smoke run: one round, small loads.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "artifacts/bench/bench.json")]
    json: String,
}

/// One configuration under test: its nodes and their clients.
struct Cluster {
    name: &'static str,
    nodes: Vec<Node>,
    clients: Vec<Arc<Received>>,
    /// Which room each client joined (room-0 .. room-9).
    rooms: Vec<usize>,
    ctl: Control,
}

impl Cluster {
    async fn start(
        name: &'static str,
        url: &str,
        count: usize,
        clients: usize,
    ) -> Result<Self, String> {
        let mut nodes = Vec::new();
        for _ in 0..count {
            nodes.push(Node::spawn(name, url).await?);
        }
        tokio::time::sleep(Duration::from_millis(500)).await; // discovery
        let mut all = Vec::new();
        let mut rooms = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            for k in 0..clients {
                let room = (i * clients + k) % 10;
                all.push(
                    client::receiver(node.port, json!({ "room": format!("room-{room}") })).await?,
                );
                rooms.push(room);
            }
        }
        let ctl = Control::connect(nodes[0].port).await?;
        Ok(Self {
            name,
            nodes,
            clients: all,
            rooms,
            ctl,
        })
    }

    fn delivered(&self) -> u64 {
        self.clients
            .iter()
            .map(|c| c.events.load(Ordering::Relaxed))
            .sum()
    }

    fn last_ns(&self) -> u64 {
        self.clients
            .iter()
            .map(|c| c.last_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    fn record(&self, on: bool) {
        for c in &self.clients {
            c.record.store(on, Ordering::Relaxed);
        }
    }

    fn take_latencies(&self) -> Vec<u32> {
        let mut all = Vec::new();
        for c in &self.clients {
            if let Ok(mut l) = c.latencies_us.lock() {
                all.append(&mut l);
            }
        }
        all
    }

    fn node_cpu(&self) -> f64 {
        self.nodes.iter().map(|n| cpu_seconds(n.pid())).sum()
    }

    /// A burst of `count` broadcasts (to all, or to one room); waits for the
    /// deliveries and returns the throughput sample.
    async fn burst(
        &mut self,
        count: u64,
        size: usize,
        binary: bool,
        room: Option<usize>,
    ) -> Result<Sample, String> {
        let expected = count
            * match room {
                Some(r) => self.rooms.iter().filter(|x| **x == r).count() as u64,
                None => self.clients.len() as u64,
            };
        let before = self.delivered();
        let (cpu_client, cpu_nodes) = (cpu_seconds(None), self.node_cpu());
        let start = now_ns();
        let t = Instant::now();
        let mut work = json!({ "count": count, "size": size, "binary": binary });
        if let Some(r) = room {
            work["room"] = json!(format!("room-{r}"));
        }
        self.ctl.call("burst", work).await?;
        // Wait for all deliveries, or for 1 s without progress.
        let mut last = self.delivered();
        let mut idle_since = Instant::now();
        while self.delivered() - before < expected && t.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = self.delivered();
            if now != last {
                last = now;
                idle_since = Instant::now();
            } else if idle_since.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        let got = self.delivered() - before;
        let secs = (self.last_ns().saturating_sub(start)) as f64 / 1e9;
        Ok(Sample::throughput(
            got,
            expected,
            count,
            secs,
            cpu_seconds(None) - cpu_client,
            self.node_cpu() - cpu_nodes,
        ))
    }

    async fn latency(&mut self, rate: u64, secs: u64, size: usize) -> Result<Sample, String> {
        self.take_latencies();
        self.record(true);
        self.ctl
            .call(
                "paced",
                json!({ "count": rate * secs, "rate": rate, "size": size }),
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.record(false);
        Ok(Sample::latency(self.take_latencies()))
    }

    async fn requests(&mut self, event: &str, count: u64, kind: &str) -> Result<Sample, String> {
        let res = self
            .ctl
            .call(event, json!({ "count": count, "kind": kind }))
            .await?;
        let us: Vec<u32> = res["us"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|v| v as u32)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(acked) = res.get("acked").and_then(Value::as_u64) {
            let want = count * self.clients.len() as u64;
            if acked != want {
                eprintln!("{}: {acked} of {want} acks", self.name);
            }
        }
        if let Some(size) = res.get("size").and_then(Value::as_u64)
            && kind == "sockets"
            && size != self.clients.len() as u64
        {
            eprintln!("{}: fetch_sockets returned {size} sockets", self.name);
        }
        Ok(Sample::latency(us))
    }
}

/// Raw NATS: one publisher, three subscribers, payload of the same size.
struct Raw {
    publisher: async_nats::Client,
    received: Vec<Arc<Received>>,
}

impl Raw {
    async fn start(url: &str) -> Result<Self, String> {
        let connect = || async { async_nats::connect(url).await.map_err(|e| e.to_string()) };
        let publisher = connect().await?;
        let mut received = Vec::new();
        for _ in 0..3 {
            let sub_client = connect().await?;
            let mut sub = sub_client
                .subscribe("bench.raw")
                .await
                .map_err(|e| e.to_string())?;
            let stats = Arc::new(Received::default());
            let out = stats.clone();
            tokio::spawn(async move {
                let _keep = sub_client;
                use futures_util::StreamExt;
                while let Some(msg) = sub.next().await {
                    let ts = msg
                        .payload
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    let now = now_ns();
                    out.events.fetch_add(1, Ordering::Relaxed);
                    out.last_ns.store(now, Ordering::Relaxed);
                    if out.record.load(Ordering::Relaxed)
                        && let Ok(mut l) = out.latencies_us.lock()
                    {
                        l.push(u32::try_from(now.saturating_sub(ts) / 1000).unwrap_or(u32::MAX));
                    }
                }
            });
            received.push(stats);
        }
        publisher.flush().await.map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(Self {
            publisher,
            received,
        })
    }

    fn payload(size: usize) -> bytes::Bytes {
        // what a text broadcast carries: the socket.io packet plus ~40 bytes of header
        let mut p = now_ns().to_be_bytes().to_vec();
        p.resize(size + 40, b'x');
        p.into()
    }

    fn delivered(&self) -> u64 {
        self.received
            .iter()
            .map(|c| c.events.load(Ordering::Relaxed))
            .sum()
    }

    async fn burst(&self, count: u64, size: usize) -> Result<Sample, String> {
        let before = self.delivered();
        let expected = count * 3;
        let cpu = cpu_seconds(None);
        let start = now_ns();
        for _ in 0..count {
            self.publisher
                .publish("bench.raw", Self::payload(size))
                .await
                .map_err(|e| e.to_string())?;
        }
        self.publisher.flush().await.map_err(|e| e.to_string())?;
        let t = Instant::now();
        while self.delivered() - before < expected && t.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let last = self
            .received
            .iter()
            .map(|c| c.last_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let secs = last.saturating_sub(start) as f64 / 1e9;
        Ok(Sample::throughput(
            self.delivered() - before,
            expected,
            count,
            secs,
            cpu_seconds(None) - cpu,
            0.0,
        ))
    }

    async fn latency(&self, rate: u64, secs: u64, size: usize) -> Result<Sample, String> {
        for c in &self.received {
            c.record.store(true, Ordering::Relaxed);
        }
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
        for _ in 0..rate * secs {
            tick.tick().await;
            self.publisher
                .publish("bench.raw", Self::payload(size))
                .await
                .map_err(|e| e.to_string())?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut all = Vec::new();
        for c in &self.received {
            c.record.store(false, Ordering::Relaxed);
            if let Ok(mut l) = c.latencies_us.lock() {
                all.append(&mut l);
            }
        }
        Ok(Sample::latency(all))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.rounds = 1;
        args.clients = args.clients.min(10);
        args.burst = args.burst.min(500);
    }
    if let Err(e) = run(args).await {
        eprintln!("adapter-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let configs: Vec<&str> = args.configs.split(',').map(str::trim).collect();
    let loads: Vec<&str> = args.only.split(',').map(str::trim).collect();
    let nats = nats_harness::NatsServer::start();
    let redis = if configs.contains(&"redis") {
        Some(procs::Redis::start().await?)
    } else {
        None
    };
    let mut clusters = Vec::new();
    for c in &configs {
        match *c {
            "local" => clusters.push(Cluster::start("local", "", 1, args.clients * 3).await?),
            "redis" => {
                let url = redis.as_ref().map(procs::Redis::url).unwrap_or_default();
                clusters.push(Cluster::start("redis", &url, 3, args.clients).await?);
            }
            "nats" => clusters.push(Cluster::start("nats", &nats.url(), 3, args.clients).await?),
            "raw" => {}
            other => return Err(format!("unknown configuration {other}")),
        }
    }
    let raw = if configs.contains(&"raw") {
        Some(Raw::start(&nats.url()).await?)
    } else {
        None
    };
    eprintln!(
        "adapter-bench: {} rounds, {} clients per 3-node cluster, burst {}, {} B payloads, configs {configs:?}",
        args.rounds,
        args.clients * 3,
        args.burst,
        args.size
    );

    let mut results = Results::default();
    let lat_secs = if args.quick { 1 } else { 3 };
    let reqs = if args.quick { 50 } else { 200 };
    for round in 0..args.rounds {
        for load in &loads {
            // alternate the configurations within a round, in a rotating order
            let n = clusters.len();
            for k in 0..n {
                let c = &mut clusters[(k + round) % n];
                let sample = match *load {
                    "throughput" => c.burst(args.burst, args.size, false, None).await?,
                    "room" => c.burst(args.burst, args.size, false, Some(0)).await?,
                    "binary" => c.burst(args.burst / 2, 1024, true, None).await?,
                    "latency" => c.latency(args.rate, lat_secs, args.size).await?,
                    "acks" => c.requests("acks", reqs / 2, "").await?,
                    "fetch" => c.requests("fetch", reqs, "sockets").await?,
                    "rooms" => c.requests("fetch", reqs, "rooms").await?,
                    other => return Err(format!("unknown load {other}")),
                };
                results.push(load, c.name, sample);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Some(raw) = &raw {
                let sample = match *load {
                    "throughput" => Some(raw.burst(args.burst, args.size).await?),
                    "latency" => Some(raw.latency(args.rate, lat_secs, args.size).await?),
                    _ => None,
                };
                if let Some(s) = sample {
                    results.push(load, "raw", s);
                }
            }
        }
        eprintln!("round {} of {} done", round + 1, args.rounds);
    }
    let mut meta = BTreeMap::new();
    meta.insert("clients_per_cluster", json!(args.clients * 3));
    meta.insert("burst", json!(args.burst));
    meta.insert("size", json!(args.size));
    meta.insert("rate", json!(args.rate));
    meta.insert("rounds", json!(args.rounds));
    print!("{}", results.table());
    results.write_json(&args.json, &meta)?;
    eprintln!("JSON written to {}", args.json);
    Ok(())
}
