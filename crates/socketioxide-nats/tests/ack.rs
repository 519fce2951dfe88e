//! Broadcasts with acks collect the acks of clients on every node; a client that
//! never acks yields a timeout error for that socket alone; an empty room ends the
//! stream at once; a remote socket's ack arrives; a gone node is an error.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use socketioxide::AckError;

/// Answer the next packet, an event with ack id `n`, with `payload`.
async fn ack(c: &mut Client, expected_event: &str, payload: &str) {
    let p = c.next().await;
    let (head, rest) = p.split_once('[').expect("event packet");
    assert!(head.starts_with("42"), "not an event: {p}");
    assert!(rest.starts_with(expected_event), "unexpected event {p}");
    let id = &head[2..];
    c.send(&format!("43{id}[{payload}]")).await;
}

#[tokio::test]
async fn acks_from_every_node_and_a_silent_client_times_out() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;
    let mut silent = client(&nodes[2].io, "/").await;

    let started = Instant::now();
    let stream = nodes[0]
        .io
        .timeout(Duration::from_millis(500))
        .emit_with_ack::<_, String>("ask", &"q")
        .await
        .unwrap();
    let collector = tokio::spawn(stream.collect::<Vec<_>>());
    ack(&mut a, "\"ask\"", "\"from-a\"").await;
    ack(&mut b, "\"ask\"", "\"from-b\"").await;
    let p = silent.next().await;
    assert!(p.starts_with("42") && p.contains("\"ask\""), "{p}");

    let acks = collector.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(acks.len(), 3, "{acks:?}");
    let get = |id: &str| {
        acks.iter()
            .find(|(sid, _)| sid.as_str() == id)
            .unwrap_or_else(|| panic!("no ack for {id}: {acks:?}"))
    };
    assert_eq!(get(&a.id).1.as_ref().unwrap(), "from-a");
    assert_eq!(get(&b.id).1.as_ref().unwrap(), "from-b");
    assert!(
        matches!(get(&silent.id).1, Err(AckError::Timeout)),
        "{acks:?}"
    );
    // The stream ends right after the silent client's timeout, not after the request timeout.
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn binary_acks_cross_nodes() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut b = client(&nodes[1].io, "/").await;
    let stream = nodes[0]
        .io
        .emit_with_ack::<_, bytes::Bytes>("bin?", &())
        .await
        .unwrap();
    let collector = tokio::spawn(stream.collect::<Vec<_>>());
    let p = b.next().await;
    let id = p[2..].split('[').next().unwrap().to_owned();
    // a binary ack: header with a placeholder, then the attachment
    b.send(&format!(r#"461-{id}[{{"_placeholder":true,"num":0}}]"#))
        .await;
    b.tx.send(engineioxide::Packet::Binary(bytes::Bytes::from_static(&[
        9, 0, 255,
    ])))
    .await
    .unwrap();
    let acks = collector.await.unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].1.as_ref().unwrap().as_ref(), &[9, 0, 255]);
}

#[tokio::test]
async fn empty_room_ends_at_once() {
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let _a = client(&nodes[1].io, "/").await;
    let started = Instant::now();
    let acks: Vec<_> = nodes[0]
        .io
        .to("nobody-here")
        .emit_with_ack::<_, String>("ask", &())
        .await
        .unwrap()
        .collect()
        .await;
    assert!(acks.is_empty());
    // socketioxide-core's own AckStream waits request + ack timeout (5 s + 5 s) here.
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn remote_socket_emit_with_ack() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut b = client(&nodes[1].io, "/").await;
    let sockets = nodes[0].io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
    let remote = sockets.into_iter().next().unwrap();
    let ask = tokio::spawn(async move {
        remote
            .emit_with_ack::<_, String>("ping", &1)
            .await
            .unwrap()
            .await
    });
    ack(&mut b, "\"ping\"", "\"pong\"").await;
    assert_eq!(ask.await.unwrap().unwrap(), "pong");
}

#[tokio::test]
async fn ack_from_a_remote_node_that_leaves_does_not_stall() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/room", join_own_id);
    let mut b = client(&nodes[1].io, "/room").await;
    let started = Instant::now();
    let stream = nodes[0]
        .io
        .of("/room")
        .unwrap()
        .timeout(Duration::from_secs(20))
        .emit_with_ack::<_, String>("ask", &())
        .await
        .unwrap();
    let collector = tokio::spawn(stream.collect::<Vec<_>>());
    let _ = b.next().await; // the request reached node 1, whose namespace now goes away
    nodes[1].io.delete_ns("/room");
    let acks = collector.await.unwrap();
    // The socket closed with its namespace: its ack is an error, sent before the
    // node's goodbye (which is confirmed by a probe before the node is forgotten).
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!(acks[0].1.is_err(), "{acks:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
