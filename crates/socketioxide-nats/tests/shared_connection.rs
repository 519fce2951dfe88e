//! Servers sharing one NATS connection: fine with echo, and a warning, instead of
//! silence, when the shared connection was built with `no_echo`.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use common::*;

/// Everything the adapter logs in this test binary.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("socketioxide_nats=warn")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .try_init();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The warnings about namespace `ns` (its subject token) logged so far.
fn warnings_for(token: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains("no_echo") && l.contains(token))
        .map(str::to_owned)
        .collect()
}

/// Two servers on `clients`, namespace `ns`, observed past the adapter's check.
async fn two_servers(clients: [async_nats::Client; 2], ns: &'static str) -> [Node; 2] {
    let [a, b] = clients;
    let nodes = [
        node_with(a, test_config()).await,
        node_with(b, test_config()).await,
    ];
    for n in &nodes {
        n.io.ns(ns, async |_: socketioxide::extract::SocketRef<_>| {})
            .await
            .unwrap();
    }
    // The adapter checks 2 s after start; a margin for a loaded machine.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    nodes
}

#[tokio::test]
async fn a_shared_no_echo_connection_is_reported() {
    logs();
    let nats = NatsServer::start();
    let shared = connect(&nats.url()).await; // no_echo
    let nodes = two_servers([shared.clone(), shared], "/deaf").await;
    let warnings = warnings_for("_2Fdeaf");
    assert_eq!(warnings.len(), 2, "one warning per server: {warnings:?}");
    assert!(
        warnings[0].contains("share one NATS connection"),
        "{warnings:?}"
    );
    // What the warning is about: they do not see each other.
    assert_eq!(nodes[0].handle.server_count("/deaf"), Some(1));
}

#[tokio::test]
async fn a_shared_connection_with_echo_is_not_reported() {
    logs();
    let nats = NatsServer::start();
    let shared = connect_with_echo(&nats.url()).await;
    let nodes = two_servers([shared.clone(), shared], "/echo").await;
    assert_eq!(warnings_for("_2Fecho"), Vec::<String>::new());
    assert_eq!(nodes[0].handle.server_count("/echo"), Some(2));
}

#[tokio::test]
async fn own_no_echo_connections_are_not_reported() {
    logs();
    let nats = NatsServer::start();
    let clients = [connect(&nats.url()).await, connect(&nats.url()).await];
    let nodes = two_servers(clients, "/own").await;
    assert_eq!(warnings_for("_2Fown"), Vec::<String>::new());
    assert_eq!(nodes[0].handle.server_count("/own"), Some(2));
}
