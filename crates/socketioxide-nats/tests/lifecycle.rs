//! Lifecycle: closing a namespace or dropping a server unsubscribes and stops every
//! task; several servers can share one NATS connection; nodes with and without
//! echo work together; dynamic namespaces work.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;

/// A namespace without room routing subscribes to its broadcast, node, reply
/// and (wildcard) room subjects.
const SUBS_PER_NS: u64 = 4;

/// Client subscriptions on the server (it also counts its own internal ones,
/// so tests compare against a baseline taken before any node starts).
fn subscriptions(nats: &NatsServer) -> u64 {
    nats.monitor("/subsz")["num_subscriptions"]
        .as_u64()
        .expect("num_subscriptions")
}

async fn wait_subscriptions(nats: &NatsServer, expected: u64) {
    let t = Instant::now();
    while subscriptions(nats) != expected {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "server has {} subscriptions, expected {expected}",
            subscriptions(nats)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Count what a namespace's node publishes for `window`.
async fn traffic(nats: &NatsServer, subject: &str, window: Duration) -> usize {
    let c = connect(&nats.url()).await;
    let mut sub = c.subscribe(subject.to_owned()).await.unwrap();
    c.flush().await.unwrap();
    let mut n = 0;
    let end = tokio::time::Instant::now() + window;
    while let Ok(Some(_)) = tokio::time::timeout_at(end, sub.next()).await {
        n += 1;
    }
    n
}

#[tokio::test]
async fn deleting_a_namespace_unsubscribes_and_stops_its_tasks() {
    init_tracing();
    let nats = NatsServer::start();
    let base = subscriptions(&nats);
    let node = node(&nats.url()).await;
    node.io.ns("/", join_own_id).await.unwrap();
    node.io.ns("/x", join_own_id).await.unwrap();
    wait_subscriptions(&nats, base + 2 * SUBS_PER_NS).await;
    // heartbeats flow for /x (every 200 ms in the tests)
    assert!(traffic(&nats, "socket.io._2Fx.b.*", Duration::from_millis(500)).await >= 1);

    node.io.delete_ns("/x");
    wait_subscriptions(&nats, base + SUBS_PER_NS).await;
    assert_eq!(node.handle.server_count("/x"), None);
    assert_eq!(
        traffic(&nats, "socket.io._2Fx.b.*", Duration::from_millis(600)).await,
        0,
        "a task still runs"
    );
    assert_eq!(node.handle.server_count("/"), Some(1));
}

#[tokio::test]
async fn closing_or_dropping_the_server_releases_everything() {
    let nats = NatsServer::start();
    let base = subscriptions(&nats);
    let a = node(&nats.url()).await;
    a.io.ns("/", join_own_id).await.unwrap();
    wait_subscriptions(&nats, base + SUBS_PER_NS).await;
    a.io.close().await;
    wait_subscriptions(&nats, base).await;
    assert_eq!(a.handle.server_count("/"), None);

    let b = node(&nats.url()).await;
    b.io.ns("/", join_own_id).await.unwrap();
    b.io.ns("/y", join_own_id).await.unwrap();
    wait_subscriptions(&nats, base + 2 * SUBS_PER_NS).await;
    let handle = b.handle.clone();
    drop(b.io); // no close: the namespaces and their adapters are dropped
    wait_subscriptions(&nats, base).await;
    assert_eq!(handle.server_count("/"), None);
    assert_eq!(
        traffic(&nats, "socket.io.>", Duration::from_millis(600)).await,
        0,
        "a task outlived its server"
    );
}

#[tokio::test]
async fn several_servers_share_one_nats_connection() {
    let nats = NatsServer::start();
    let shared = connect_with_echo(&nats.url()).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node_with(shared.clone(), test_config()).await);
    }
    start_ns!(nodes, "/", join_own_id);
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(client(&n.io, "/").await);
    }
    assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 3);
    nodes[2].io.emit("shared", &()).await.unwrap();
    for c in clients.iter_mut() {
        assert_eq!(c.next().await, r#"42["shared",null]"#);
    }
    assert_eq!(nats.monitor("/connz")["num_connections"].as_u64(), Some(1));
}

/// Messages the server has delivered to subscribers so far.
fn out_msgs(nats: &NatsServer) -> u64 {
    nats.monitor("/varz")["out_msgs"]
        .as_u64()
        .expect("out_msgs")
}

/// Wait until the server has delivered `expected` messages since `base`, then
/// check that no more come.
async fn expect_deliveries(nats: &NatsServer, base: u64, expected: u64) {
    let t = Instant::now();
    while out_msgs(nats) - base < expected {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the server delivered {} messages, expected {expected}",
            out_msgs(nats) - base
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(out_msgs(nats) - base, expected);
}

#[tokio::test]
async fn nodes_with_and_without_echo_work_together() {
    init_tracing();
    let nats = NatsServer::start();
    // Heartbeats far apart, so that the server's counters see only the broadcasts.
    let quiet = test_config()
        .with_heartbeat_interval(Duration::from_secs(60))
        .with_heartbeat_timeout(Duration::from_secs(120));
    let nodes = [
        node_with(connect_with_echo(&nats.url()).await, quiet.clone()).await,
        node_with(connect(&nats.url()).await, quiet.clone()).await,
        node_with(connect(&nats.url()).await, quiet).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(client(&n.io, "/").await);
    }
    wait_cluster(&[&nodes[0], &nodes[1], &nodes[2]], "/").await;

    // The last of the repeated hellos of a starting node goes out after 1.5 s
    // (and its answers right after): leave a margin for a loaded machine.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    const N: u64 = 50;
    for (sender, per_broadcast) in [(0, 3), (1, 2)] {
        let base = out_msgs(&nats);
        for i in 0..N {
            nodes[sender].io.emit("m", &i).await.unwrap();
        }
        for c in clients.iter_mut() {
            for i in 0..N {
                assert_eq!(c.next().await, format!(r#"42["m",{i}]"#));
            }
        }
        // With echo the broker sends the sender its own broadcast too.
        expect_deliveries(&nats, base, N * per_broadcast).await;
    }
    for c in clients.iter_mut() {
        recv_none(&mut c.rx, 100).await;
    }
    for n in &nodes {
        assert_eq!(n.io.fetch_sockets().await.unwrap().len(), 3);
        assert_eq!(n.handle.server_count("/"), Some(3));
    }
}

#[tokio::test]
async fn dynamic_namespaces_span_nodes() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    for n in &nodes {
        n.io.dyn_ns("/game-{id}", join_own_id).unwrap();
    }
    let mut a = client(&nodes[0].io, "/game-1").await;
    let mut b = client(&nodes[1].io, "/game-1").await;
    wait_cluster(&[&nodes[0], &nodes[1]], "/game-1").await;
    nodes[0]
        .io
        .of("/game-1")
        .unwrap()
        .emit("turn", &1)
        .await
        .unwrap();
    assert_eq!(a.next().await, r#"42/game-1,["turn",1]"#);
    assert_eq!(b.next().await, r#"42/game-1,["turn",1]"#);
}
