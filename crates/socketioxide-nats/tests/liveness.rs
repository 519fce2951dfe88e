//! Node liveness and request completion: requests end as soon as every live node
//! answered, a node that stops answering is dropped after the heartbeat timeout
//! (not the request timeout), a node that closes is forgotten at once, and
//! emitters never count as nodes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use socketioxide_core::Uid;
use socketioxide_nats::{NatsAdapterConfig, async_nats};
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

/// Pretends to be a node of `/`: it beats, so it is counted, but never answers.
struct Zombie {
    client: async_nats::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Zombie {
    async fn start(url: &str) -> Self {
        let client = connect(url).await;
        let uid = Uid::new();
        let subject = NsSubjects::new("socket.io", "/")
            .unwrap()
            .broadcast(uid.as_str());
        let c = client.clone();
        let task = tokio::spawn(async move {
            let hello = RequestOut {
                origin: uid,
                id: None,
                body: RequestOutBody::Hello,
            }
            .encode();
            c.publish(subject.clone(), hello).await.unwrap();
            loop {
                let beat = RequestOut {
                    origin: uid,
                    id: None,
                    body: RequestOutBody::Heartbeat,
                }
                .encode();
                c.publish(subject.clone(), beat).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Zombie { client, task }
    }
    fn stop_beating(&self) {
        self.task.abort();
    }
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
async fn a_silent_node_stops_being_waited_for_at_the_heartbeat_timeout() {
    let nats = NatsServer::start();
    let nodes = slow_nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let zombie = Zombie::start(&nats.url()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while nodes[0].handle.server_count("/") != Some(3) {
        assert!(Instant::now() < deadline, "the zombie was never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _a = client(&nodes[1].io, "/").await;
    let t = Instant::now();
    let fetch = tokio::spawn({
        let io = nodes[0].io.clone();
        async move { io.fetch_sockets().await.map(|s| s.len()) }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !fetch.is_finished(),
        "the request must wait for the zombie while it beats"
    );
    zombie.stop_beating();
    let found = fetch.await.unwrap().unwrap();
    let took = t.elapsed();
    assert_eq!(found, 1, "the live node's socket is still returned");
    // heartbeat timeout is 1 s, swept every 100 ms; the request timeout is 30 s
    assert!(
        took > Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(nodes[0].handle.server_count("/"), Some(2));
    drop(zombie.client);
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
