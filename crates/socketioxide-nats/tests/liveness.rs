//! Node liveness and request completion: requests end as soon as every live node
//! answered; only nodes that prove themselves are counted; a node that stops
//! answering is found gone by a probe (not the request timeout), a node that
//! closes is forgotten at once, and emitters never count as nodes.

mod common;

use common::impostor::{Impostor, Mode};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use socketioxide_core::Uid;
use socketioxide_nats::{Error, NatsAdapterConfig};
use socketioxide_nats_protocol::{
    message::{RequestOut, RequestOutBody},
    subjects::NsSubjects,
};

/// A request timeout no test may reach: reaching it is a failure.
fn slow_requests() -> NatsAdapterConfig {
    test_config().with_request_timeout(Duration::from_secs(30))
}

async fn slow_nodes<const N: usize>(url: &str) -> [Node; N] {
    let mut v = Vec::new();
    for _ in 0..N {
        v.push(node_with(connect(url).await, slow_requests()).await);
    }
    v.try_into().unwrap_or_else(|_| unreachable!())
}

#[tokio::test]
async fn requests_complete_without_waiting_for_the_timeout() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = slow_nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let _c: Vec<Client> =
        futures_util::future::join_all(nodes.iter().map(|n| client(&n.io, "/"))).await;
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 3);
        assert_eq!(nodes[1].io.rooms().await.unwrap().len(), 3);
        let acks: Vec<_> = nodes[2]
            .io
            .to("nobody")
            .emit_with_ack::<_, ()>("x", &())
            .await
            .unwrap()
            .collect()
            .await;
        assert!(acks.is_empty());
    }
    // 60 cluster requests; any one waiting for its 30 s timeout would blow this.
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    for n in &nodes {
        assert_eq!(n.handle.pending_requests("/"), Some(0), "a request leaked");
    }
}

#[tokio::test]
async fn a_node_that_beats_but_never_answers_is_never_counted() {
    let nats = NatsServer::start();
    let nodes = slow_nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let forger = Impostor::start(&nats.url(), "/", Mode::Forger).await;
    // Its hello and ten heartbeats reach both nodes, which probe it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for n in &nodes {
        assert_eq!(n.handle.server_count("/"), Some(2));
        let stats = n.handle.stats("/").unwrap();
        assert!(stats.probes_failed >= 1, "{stats:?}");
    }
    let t = Instant::now();
    assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 0);
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    drop(forger);
}

#[tokio::test]
async fn a_stuck_node_makes_a_request_fail_as_incomplete_naming_it() {
    let nats = NatsServer::start();
    let config = test_config().with_request_timeout(Duration::from_millis(800));
    let nodes = [
        node_with(connect(&nats.url()).await, config.clone()).await,
        node_with(connect(&nats.url()).await, config).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let stuck = Impostor::start(&nats.url(), "/", Mode::Stuck).await;
    wait_count(
        &nodes[0],
        "/",
        3,
        Duration::from_secs(3),
        "the stuck node was never counted",
    )
    .await;
    let _a = client(&nodes[1].io, "/").await;
    let t = Instant::now();
    let err = nodes[0].io.fetch_sockets().await.unwrap_err();
    let took = t.elapsed();
    match err {
        Error::Incomplete { missing, .. } => assert_eq!(missing, vec![stuck.uid]),
        other => panic!("expected Incomplete, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(nodes[0].handle.stats("/").unwrap().incomplete >= 1);
}

#[tokio::test]
async fn a_dead_node_whose_heartbeats_are_forged_is_found_by_a_probe() {
    let nats = NatsServer::start();
    let nodes = slow_nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let zombie = Impostor::start(&nats.url(), "/", Mode::Stuck).await;
    wait_count(
        &nodes[0],
        "/",
        3,
        Duration::from_secs(3),
        "the zombie was never counted",
    )
    .await;
    let _a = client(&nodes[1].io, "/").await;
    // Dead, but its heartbeats keep coming: only a probe can tell.
    zombie.stop_answering_probes();
    let t = Instant::now();
    let found = nodes[0].io.fetch_sockets().await.unwrap().len();
    let took = t.elapsed();
    assert_eq!(found, 1, "the live node's socket is returned");
    // A probe (not sooner than 200 ms after the node's last proof), then the
    // 500 ms probe timeout; the heartbeat timeout (1 s) never passes and the
    // request timeout is 30 s.
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(950),
        "took {took:?}"
    );
    assert_eq!(nodes[0].handle.server_count("/"), Some(2));
}

#[tokio::test]
async fn a_closing_node_is_forgotten_at_once() {
    let nats = NatsServer::start();
    let nodes = slow_nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/chat", join_own_id);
    let t = Instant::now();
    nodes[2].io.delete_ns("/chat");
    while nodes[0].handle.server_count("/chat") != Some(2)
        || nodes[1].handle.server_count("/chat") != Some(2)
    {
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "goodbye not applied"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // well before the 1 s heartbeat timeout
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(nodes[2].handle.server_count("/chat"), None);
}

#[tokio::test]
async fn a_crashed_node_is_detected_within_the_heartbeat_timeout() {
    let nats = NatsServer::start();
    let nodes = slow_nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let t = Instant::now();
    // The connection drops without a goodbye, like a killed process.
    nodes[2].client.drain().await.unwrap();
    while nodes[0].handle.server_count("/") != Some(2) {
        assert!(t.elapsed() < Duration::from_secs(3), "crash never detected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        t.elapsed()
    );
    // requests no longer wait for it
    let t = Instant::now();
    assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 0);
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn emitters_are_not_counted_as_nodes() {
    let nats = NatsServer::start();
    let nodes = slow_nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    // an emitter: publishes requests, never heartbeats
    let emitter = connect(&nats.url()).await;
    let uid = Uid::new();
    let opts = {
        let mut o = socketioxide_core::adapter::BroadcastOptions::default();
        o.add_flag(socketioxide_core::adapter::BroadcastFlags::Broadcast);
        o
    };
    let packet = socketioxide_core::packet::Packet::event(
        "/",
        socketioxide_core::Value::Str(r#"["from-emitter"]"#.to_owned().into(), None),
    );
    let msg = RequestOut {
        origin: uid,
        id: None,
        body: RequestOutBody::Broadcast {
            opts: &opts,
            packet: &packet,
        },
    }
    .encode();
    let subject = NsSubjects::new("socket.io", "/")
        .unwrap()
        .broadcast(uid.as_str());
    emitter.publish(subject, msg).await.unwrap();
    assert_eq!(a.next().await, r#"42["from-emitter"]"#);
    assert_eq!(nodes[0].handle.server_count("/"), Some(2));
    assert_eq!(nodes[1].handle.server_count("/"), Some(2));
}
