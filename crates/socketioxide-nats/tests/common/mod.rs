//! Shared set-up for the integration tests: socket.io servers with the NATS
//! adapter, in this process, over a real nats-server started by `nats-harness`.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use engineioxide::Packet as EioPacket;
use socketioxide::{SocketIo, adapter::Emitter};
use socketioxide_nats::{NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle, async_nats};
use tokio::sync::mpsc::{Receiver, Sender};

#[allow(unused_imports)]
pub use nats_harness::{NatsCluster, NatsServer};

pub mod impostor;
pub mod js;

pub type Io = SocketIo<NatsAdapter<Emitter>>;

/// The connect handler of most tests: socketioxide does not put a socket in a
/// room named after its id, and `io.to(id)` from another node needs one.
pub async fn join_own_id<A: socketioxide::adapter::Adapter>(
    s: socketioxide::extract::SocketRef<A>,
) {
    s.join(s.id);
}

/// A socket.io server of the cluster under test.
pub struct Node {
    pub io: Io,
    pub handle: NatsHandle,
    pub client: async_nats::Client,
}

/// Short timeouts so fault tests run fast; requests still have a generous
/// timeout so a test that waits for it fails loudly instead of passing by luck.
pub fn test_config() -> NatsAdapterConfig {
    NatsAdapterConfig::new()
        .with_request_timeout(Duration::from_secs(5))
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_heartbeat_timeout(Duration::from_millis(1000))
        .with_publish_timeout(Duration::from_millis(500))
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A node's own connection, as the docs recommend it: without echo. Tests of
/// nodes sharing a connection use [`connect_with_echo`].
pub async fn connect(url: &str) -> async_nats::Client {
    connect_options()
        .no_echo()
        .connect(url)
        .await
        .expect("cannot connect to the test nats-server")
}

/// A connection with async-nats's default echo, which several nodes can share.
pub async fn connect_with_echo(url: &str) -> async_nats::Client {
    connect_options()
        .connect(url)
        .await
        .expect("cannot connect to the test nats-server")
}

fn connect_options() -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .ping_interval(Duration::from_secs(1))
        .connection_timeout(Duration::from_secs(1))
}

pub async fn node_with(client: async_nats::Client, config: NatsAdapterConfig) -> Node {
    let ctr = NatsAdapterCtr::new_with_nats_config(client.clone(), config);
    let handle = ctr.handle();
    let (_svc, io) = SocketIo::builder()
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_svc();
    Node { io, handle, client }
}

pub async fn node(url: &str) -> Node {
    node_with(connect(url).await, test_config()).await
}

/// `N` servers, each with its own NATS connection.
pub async fn nodes<const N: usize>(url: &str) -> [Node; N] {
    let mut out = Vec::with_capacity(N);
    for _ in 0..N {
        out.push(node(url).await);
    }
    out.try_into().unwrap_or_else(|_| unreachable!())
}

/// Wait until every node sees all the others in namespace `ns`.
pub async fn wait_cluster(nodes: &[&Node], ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts: Vec<Option<usize>> = nodes.iter().map(|n| n.handle.server_count(ns)).collect();
        if counts.iter().all(|c| *c == Some(nodes.len())) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes never discovered each other: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until `node` counts `count` servers in namespace `ns` (itself included),
/// at most `within`; `what` says what the count means if it never comes.
pub async fn wait_count(node: &Node, ns: &str, count: usize, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while node.handle.server_count(ns) != Some(count) {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?} servers instead of {count}",
            node.handle.server_count(ns)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Start `ns` with the same handler on every node and wait for discovery.
#[macro_export]
macro_rules! start_ns {
    ($nodes:expr, $ns:expr, $handler:expr) => {{
        for n in $nodes.iter() {
            n.io.ns($ns, $handler).await.expect("namespace init");
        }
        let refs: Vec<&$crate::common::Node> = $nodes.iter().collect();
        $crate::common::wait_cluster(&refs, $ns).await;
    }};
}

/// A client socket inside the test process (socketioxide's piped test socket).
pub struct Client {
    pub tx: Sender<EioPacket>,
    pub rx: Receiver<EioPacket>,
    pub id: String,
}

/// Connect a test socket to `ns` of `io` and read its CONNECT packet.
pub async fn client(io: &Io, ns: &'static str) -> Client {
    let (tx, mut rx) = io.new_dummy_sock(ns, ()).await;
    let connect = recv(&mut rx).await;
    // 40{"sid":"..."} or 40/ns,{"sid":"..."}
    let id = connect
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("not a connect packet: {connect}"))
        .to_owned();
    Client { tx, rx, id }
}

pub const RECV_TIMEOUT: Duration = Duration::from_secs(3);

/// The next text packet, within [`RECV_TIMEOUT`].
pub async fn recv(rx: &mut Receiver<EioPacket>) -> String {
    match tokio::time::timeout(RECV_TIMEOUT, rx.recv()).await {
        Ok(Some(p @ EioPacket::Message(_))) => String::from(p),
        Ok(Some(other)) => panic!("expected a text packet, got {other:?}"),
        Ok(None) => panic!("socket closed"),
        Err(_) => panic!("no packet within {RECV_TIMEOUT:?}"),
    }
}

/// The next packet, text or binary, within [`RECV_TIMEOUT`].
pub async fn recv_any(rx: &mut Receiver<EioPacket>) -> EioPacket {
    tokio::time::timeout(RECV_TIMEOUT, rx.recv())
        .await
        .expect("no packet in time")
        .expect("socket closed")
}

/// Assert that nothing arrives within `ms` milliseconds.
pub async fn recv_none(rx: &mut Receiver<EioPacket>, ms: u64) {
    if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(ms), rx.recv()).await {
        panic!("unexpected packet {p:?}");
    }
}

impl Client {
    pub async fn next(&mut self) -> String {
        recv(&mut self.rx).await
    }
    /// Send a socket.io text packet from the client, e.g. an ack `431["ok"]`.
    pub async fn send(&self, packet: &str) {
        let packet = EioPacket::parse(engineioxide::ProtocolVersion::V4, packet.to_owned())
            .expect("not an engine.io packet");
        self.tx.send(packet).await.expect("socket closed");
    }
}

/// Which socket.io parser a served node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    Common,
    MsgPack,
}

impl Parser {
    pub fn js_name(self) -> &'static str {
        match self {
            Parser::Common => "default",
            Parser::MsgPack => "msgpack",
        }
    }
}

/// A node served over real HTTP/WebSocket on a free loopback port.
pub async fn served_node(url: &str, parser: Parser) -> (Node, u16) {
    let client = connect(url).await;
    let ctr = NatsAdapterCtr::new_with_nats_config(client.clone(), test_config());
    let handle = ctr.handle();
    let builder = SocketIo::builder().ack_timeout(Duration::from_millis(700));
    let builder = match parser {
        Parser::Common => builder.with_parser(socketioxide::ParserConfig::common()),
        Parser::MsgPack => builder.with_parser(socketioxide::ParserConfig::msgpack()),
    };
    let (layer, io) = builder.with_adapter::<NatsAdapter<_>>(ctr).build_layer();
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Node { io, handle, client }, port)
}
