//! The processes the benchmark starts (`bench-node`s, a redis-server) and the CPU
//! time processes use, read from /proc.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use socketioxide_redis::drivers::redis::redis_client;
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

/// The `bench-node` binary next to this one.
fn node_bin() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = me.with_file_name("bench-node");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} missing: build it with `cargo build --release -p sio-bench`",
            bin.display()
        ))
    }
}

impl Node {
    /// Start a node with `adapter` (`local`, `redis` or `nats`) over `url`, with
    /// more `bench-node` arguments.
    pub(crate) async fn spawn(adapter: &str, url: &str, extra: &[String]) -> Result<Self, String> {
        let mut child = Command::new(node_bin()?)
            .args(["--adapter", adapter, "--url", url, "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start bench-node: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .map_err(|_| "bench-node did not start within 15 s".to_owned())?
            .map_err(|e| e.to_string())?
            .ok_or("bench-node exited before listening (see its error above)")?;
        let port = line
            .trim()
            .parse()
            .map_err(|_| format!("unexpected bench-node output {line:?}"))?;
        // Keep draining stdout so that the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
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
    child: Child,
    port: u16,
}

impl Redis {
    /// Start it and wait until it accepts connections.
    pub(crate) async fn start() -> Result<Self, String> {
        // redis-server cannot pick its own port and report it: take a free one.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start redis-server ({e}): install it with \
                     `apt-get install redis-server` (scripts/bench.sh does)"
                )
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("redis-server did not start within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { child, port })
    }

    /// `redis://127.0.0.1:{port}/?protocol=resp3` (socketioxide-redis needs RESP3).
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its client port on loopback.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `(total_net_input_bytes, total_commands_processed)` from `INFO stats`.
    pub(crate) async fn input_counters(&self) -> Result<(u64, u64), String> {
        let client = redis_client::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let info: String = redis_client::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        Ok((
            field("total_net_input_bytes"),
            field("total_commands_processed"),
        ))
    }
}

/// Bytes each process has received so far on its TCP connections to the broker
/// listening on `port` of loopback (its pid → bytes), from the kernel's
/// `tcp_info` as `ss -tinp` prints it (`bytes_received`): whatever the broker
/// sent, protocol framing included. Connections of processes that are gone, or
/// that `ss` cannot attribute, are left out.
pub(crate) fn tcp_bytes_from(port: u16) -> Result<HashMap<u32, u64>, String> {
    let out = std::process::Command::new("ss")
        .args(["-tinpH", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .map_err(|e| format!("cannot run ss (iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ss failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_ss(&String::from_utf8_lossy(&out.stdout)))
}

/// `bytes_received` per pid of `ss -tinp` output: a socket's line names its
/// process (`users:(("bench-node",pid=12,fd=9))`), the next one its `tcp_info`.
fn parse_ss(text: &str) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let mut pid = None;
    for token in text.split_whitespace() {
        if let Some(rest) = token.split("pid=").nth(1) {
            pid = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse::<u32>().ok());
        } else if let Some(v) = token.strip_prefix("bytes_received:")
            && let (Some(p), Ok(v)) = (pid, v.parse::<u64>())
        {
            *out.entry(p).or_default() += v;
        }
    }
    out
}

/// CPU time (user + system) a process used so far, in seconds; `None`: this one.
///
/// Summed from each thread's `/proc/PID/task/TID/schedstat` (nanoseconds), precise
/// enough for loads that last a fraction of a second; falls back to utime + stime
/// from `/proc/PID/stat` (in 10 ms clock ticks) where schedstat is missing.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> f64 {
    let base = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let mut total_ns = 0u64;
    let mut found = false;
    if let Ok(tasks) = std::fs::read_dir(format!("{base}/task")) {
        for task in tasks.flatten() {
            let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            if let Some(ns) = s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            {
                total_ns += ns;
                found = true;
            }
        }
    }
    if found {
        return total_ns as f64 / 1e9;
    }
    stat_seconds(&base)
}

/// utime + stime of `/proc/PID/stat`, in seconds (100 clock ticks per second).
fn stat_seconds(base: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("{base}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) start after ')';
    // utime and stime are fields 14 and 15 of the line, 11 and 12 from there.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / 100.0
}

/// utime + stime of a whole process from `/proc/PID/stat` (`None`: this one),
/// which, unlike the per-thread figures, includes threads that have exited.
pub(crate) fn total_cpu_seconds(pid: Option<u32>) -> f64 {
    stat_seconds(&pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_ss_output() {
        let text = "0 0 127.0.0.1:40000 127.0.0.1:4222 users:((\"bench-node\",pid=12,fd=9))\n\t \
                    cubic wscale:7,7 bytes_sent:10 bytes_acked:11 bytes_received:300 segs_out:4\n\
                    0 0 127.0.0.1:40001 127.0.0.1:4222 users:((\"bench-node\",pid=13,fd=9))\n\t \
                    cubic bytes_received:7\n\
                    0 0 127.0.0.1:40002 127.0.0.1:4222 users:((\"bench-node\",pid=12,fd=10))\n\t \
                    cubic bytes_received:5\n";
        let got = super::parse_ss(text);
        assert_eq!(got.get(&12), Some(&305));
        assert_eq!(got.get(&13), Some(&7));
    }

    #[test]
    fn reads_own_cpu_time() {
        let start = super::cpu_seconds(None);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(super::cpu_seconds(None) > start);
    }
}
