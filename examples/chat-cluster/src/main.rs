//! The demo launcher: NATS plus three chat nodes, stopped together with Ctrl-C.
//!
//! ```text
//! chat-cluster                    # NATS at nats://127.0.0.1:4222, started here if none answers
//! chat-cluster --nats-url URL     # use your NATS (comma-separate the servers of a cluster)
//! chat-cluster --nats-cluster     # start a 3-server NATS cluster, one socket.io node on each
//! chat-cluster --port 3001        # first HTTP port (default 3001; 0 picks free ports)
//! chat-cluster --nodes 3          # how many socket.io nodes
//! ```
//!
//! `bash scripts/demo.sh` builds it with everything it needs and runs it.

use std::{net::TcpStream, path::PathBuf, process::Stdio, time::Duration};

use nats_harness::{NatsCluster, NatsServer};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

struct Args {
    nats_url: Option<String>,
    nats_cluster: bool,
    nodes: usize,
    port: u16,
}

fn usage() -> &'static str {
    "usage: chat-cluster [--nats-url URL[,URL..]] [--nats-cluster] [--nodes N] [--port FIRST_PORT]"
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nats_url: None,
        nats_cluster: false,
        nodes: 3,
        port: 3001,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{}", usage()))
        };
        match a.as_str() {
            "--nats-url" => args.nats_url = Some(value("--nats-url")?),
            "--nats-cluster" => args.nats_cluster = true,
            "--nodes" => {
                args.nodes = value("--nodes")?
                    .parse()
                    .map_err(|e| format!("--nodes: {e}"))?
            }
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "-h" | "--help" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if args.nats_cluster && args.nats_url.is_some() {
        return Err("--nats-cluster starts its own NATS: do not combine it with --nats-url".into());
    }
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    Ok(args)
}

/// The NATS the nodes use, kept alive (and stopped on drop) when started here.
enum Nats {
    External(String),
    Local(#[allow(dead_code)] NatsServer, String),
    Cluster(NatsCluster),
}

impl Nats {
    fn start(args: &Args) -> Nats {
        if args.nats_cluster {
            let cluster = NatsCluster::start(3);
            println!(
                "started a 3-server NATS cluster: {}",
                cluster.urls().join(", ")
            );
            return Nats::Cluster(cluster);
        }
        if let Some(url) = &args.nats_url {
            println!("using NATS at {url}");
            return Nats::External(url.clone());
        }
        if TcpStream::connect_timeout(
            &"127.0.0.1:4222".parse().expect("a socket address"),
            Duration::from_millis(300),
        )
        .is_ok()
        {
            println!("using the NATS server already running at {DEFAULT_NATS}");
            return Nats::External(DEFAULT_NATS.to_owned());
        }
        let server = NatsServer::builder().name("chat-demo").port(4222).start();
        let url = server.url();
        println!("started nats-server at {url}");
        Nats::Local(server, url)
    }

    /// Node `i` of a NATS cluster talks to server `i`: messages cross the routes.
    fn url_for(&self, i: usize) -> String {
        match self {
            Nats::External(url) | Nats::Local(_, url) => url.clone(),
            Nats::Cluster(c) => {
                let urls = c.urls();
                urls[i % urls.len()].clone()
            }
        }
    }
}

fn chat_node_bin() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe.with_file_name("chat-node");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build -p chat-cluster`",
            bin.display()
        ))
    }
}

/// Start node `i`, forward its output with a name prefix, and return its URL.
async fn start_node(
    bin: &PathBuf,
    i: usize,
    port: u16,
    nats_url: &str,
) -> Result<(Child, String), String> {
    let name = format!("node-{}", i + 1);
    let mut child = Command::new(bin)
        .env("PORT", port.to_string())
        .env("NATS_URL", nats_url)
        .env("NODE_NAME", &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let prefix = name.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{prefix}] {line}");
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.split(" listening on ").nth(1) {
                return Some(url.to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| format!("{name} did not start (see its log above)"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("chat-cluster: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let bin = chat_node_bin()?;
    let nats = Nats::start(&args);
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for i in 0..args.nodes {
        let port = if args.port == 0 {
            0
        } else {
            args.port + i as u16
        };
        let (child, url) = start_node(&bin, i, port, &nats.url_for(i)).await?;
        children.push(child);
        urls.push(url);
    }
    println!();
    println!(
        "The chat runs on {} socket.io nodes clustered through NATS. Open:",
        urls.len()
    );
    for (i, url) in urls.iter().enumerate() {
        println!("  node-{}: {url}", i + 1);
    }
    println!("Press Ctrl-C to stop everything.");

    let exited = async {
        loop {
            for (i, c) in children.iter_mut().enumerate() {
                if let Ok(Some(status)) = c.try_wait() {
                    return (i, status);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate => Ok(()),
        (i, status) = exited => Err(format!("node-{} exited ({status}); stopping the demo", i + 1)),
    };
    println!("stopping…");
    for c in children.iter_mut() {
        let _ = c.start_kill();
    }
    for c in children.iter_mut() {
        let _ = c.wait().await;
    }
    drop(nats);
    outcome
}
