//! The processes the benchmark starts: `bench-node`s and a redis-server, and the
//! CPU time they use (read from /proc).

use std::{
    net::TcpListener,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A running `bench-node`, killed on drop.
#[derive(Debug)]
pub(crate) struct Node {
    child: Child,
    /// Its socket.io port.
    pub(crate) port: u16,
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = me.with_file_name(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} missing: build it with `cargo build --release -p adapter-bench`",
            bin.display()
        ))
    }
}

impl Node {
    /// Start a node with `adapter` (`local`, `redis` or `nats`) over `url`.
    pub(crate) async fn spawn(adapter: &str, url: &str) -> Result<Self, String> {
        let mut child = Command::new(sibling("bench-node")?)
            .arg(adapter)
            .arg(url)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start bench-node: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .map_err(|_| "bench-node did not start in 15 s".to_owned())?
            .map_err(|e| e.to_string())?
            .ok_or("bench-node exited")?;
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("unexpected bench-node output {line:?}"))?;
        Ok(Self { child, port })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// A redis-server on a free loopback port, without persistence, killed on drop.
#[derive(Debug)]
pub(crate) struct Redis {
    _child: Child,
    port: u16,
}

impl Redis {
    /// Start it and wait until it accepts connections.
    pub(crate) async fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("cannot start redis-server ({e}): install it with `apt-get install redis-server` (scripts/bench.sh does)")
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("redis-server did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            _child: child,
            port,
        })
    }

    /// `redis://127.0.0.1:{port}/?protocol=resp3` (socketioxide-redis needs RESP3).
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
    }
}

/// User + system CPU seconds of a process (`None`: this one), from /proc.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 (from 0) after
    // the name; in clock ticks, 100 per second on Linux.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / 100.0
}
