//! Server-side events (to the other nodes, never to the sender; with and without
//! acks; a node without a handler, one that never acks, one that drops the event)
//! and custom requests (every node, the caller included, answers through its hook).

mod common;

use std::time::{Duration, Instant};

use common::*;
use socketioxide_nats::Error;
use tokio::sync::mpsc;

async fn cluster3(nats: &NatsServer) -> [Node; 3] {
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", async || {});
    nodes
}

#[tokio::test]
async fn server_emit_reaches_the_other_nodes_only() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = cluster3(&nats).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (i, n) in nodes.iter().enumerate() {
        let tx = tx.clone();
        n.handle.on_server_event("/", "hello", move |ev| {
            let tx = tx.clone();
            async move {
                let data: (u32, String) = ev.data().unwrap();
                tx.send((i, ev.origin(), data, ev.wants_ack())).unwrap();
            }
        });
    }
    let origin = nodes[0].handle.server_id("/").unwrap();
    nodes[0]
        .handle
        .emit_server("/", "hello", &(7, "seven"))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(RECV_TIMEOUT, rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    got.sort_by_key(|g| g.0);
    assert_eq!(got[0].0, 1);
    assert_eq!(got[1].0, 2);
    for g in &got {
        assert_eq!(*g.1, *origin);
        assert_eq!(g.2, (7, "seven".to_owned()));
        assert!(!g.3);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "the sender's own handler ran"
    );
}

#[tokio::test]
async fn server_emit_with_ack_collects_one_answer_per_node() {
    let nats = NatsServer::start();
    let nodes = nodes::<4>(&nats.url()).await;
    start_ns!(nodes, "/", async || {});
    // node 1 acks, node 2 has no handler, node 3 holds the event and never acks
    nodes[1].handle.on_server_event("/", "q", async |ev| {
        let n: u32 = ev.data().unwrap();
        ev.ack(&(n * 2)).await.unwrap();
    });
    nodes[3].handle.on_server_event("/", "q", async |ev| {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(ev);
    });
    let id = |i: usize| nodes[i].handle.server_id("/").unwrap();
    let t = Instant::now();
    let answers = nodes[0]
        .handle
        .emit_server_with_ack::<_, u32>("/", "q", &21, Some(Duration::from_millis(400)))
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(answers.len(), 3, "{answers:?}");
    let by = |i: usize| &answers.iter().find(|(n, _)| **n == *id(i)).unwrap().1;
    assert_eq!(*by(1).as_ref().unwrap(), 42);
    assert!(
        matches!(by(2), Err(Error::Remote { reason, .. }) if reason.contains("no handler")),
        "{:?}",
        by(2)
    );
    assert!(matches!(by(3), Err(Error::Timeout { .. })), "{:?}", by(3));
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_handler_that_drops_the_event_answers_at_once() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", async || {});
    nodes[1].handle.on_server_event("/", "q", async |_ev| {});
    let t = Instant::now();
    let answers = nodes[0]
        .handle
        .emit_server_with_ack::<_, ()>("/", "q", &(), Some(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(
        matches!(&answers[0].1, Err(Error::Remote { reason, .. }) if reason.contains("did not acknowledge")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn custom_request_asks_every_node_including_the_caller() {
    let nats = NatsServer::start();
    let nodes = cluster3(&nats).await;
    for (i, n) in nodes.iter().enumerate().take(2) {
        n.handle.set_custom_hook("/", move |req| async move {
            let name: String = req.data().map_err(|e| e.to_string())?;
            Ok(format!("hello {name} from node {i}"))
        });
    }
    let t = Instant::now();
    let answers = nodes[0]
        .handle
        .custom_request::<_, String>("/", &"john")
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "it must not wait for the request timeout"
    );
    assert_eq!(answers.len(), 3);
    let by = |i: usize| {
        let id = nodes[i].handle.server_id("/").unwrap();
        &answers.iter().find(|(n, _)| **n == *id).unwrap().1
    };
    assert_eq!(by(0).as_ref().unwrap(), "hello john from node 0");
    assert_eq!(by(1).as_ref().unwrap(), "hello john from node 1");
    assert!(
        matches!(by(2), Err(Error::Remote { reason, .. }) if reason.contains("no custom hook"))
    );
}

#[tokio::test]
async fn a_namespace_that_is_not_started_is_a_clear_error() {
    let nats = NatsServer::start();
    let n = node(&nats.url()).await;
    let err = n.handle.emit_server("/nope", "x", &()).await.unwrap_err();
    assert!(matches!(err, Error::NamespaceNotStarted { .. }), "{err}");
    assert!(err.to_string().contains("io.ns"), "{err}");
}
