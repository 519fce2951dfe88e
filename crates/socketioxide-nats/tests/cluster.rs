//! The adapter over a 3-server NATS cluster, each socket.io node connected to a
//! different NATS server: broadcasts, acks, fetch sockets, rooms and remote socket
//! operations cross the NATS routes.

mod common;

use common::*;
use futures_util::StreamExt;

#[tokio::test]
async fn every_operation_crosses_a_nats_cluster() {
    init_tracing();
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let mut nodes = Vec::new();
    for url in &urls {
        nodes.push(node(url).await);
    }
    start_ns!(nodes, "/", join_own_id);
    let mut c = Vec::new();
    for n in &nodes {
        c.push(client(&n.io, "/").await);
    }

    nodes[0].io.emit("over-routes", &()).await.unwrap();
    for c in c.iter_mut() {
        assert_eq!(c.next().await, r#"42["over-routes",null]"#);
    }

    let sockets = nodes[1].io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 3);
    assert_eq!(nodes[2].io.rooms().await.unwrap().len(), 3);

    let remote = sockets
        .into_iter()
        .find(|s| s.data().id.as_str() == c[2].id)
        .unwrap();
    remote.join("r").await.unwrap();
    nodes[1].io.to("r").emit("in-r", &()).await.unwrap();
    assert_eq!(c[2].next().await, r#"42["in-r",null]"#);

    let stream = nodes[0]
        .io
        .emit_with_ack::<_, u32>("n?", &())
        .await
        .unwrap();
    let collect = tokio::spawn(stream.collect::<Vec<_>>());
    for (i, c) in c.iter_mut().enumerate() {
        let p = c.next().await;
        let id = p[2..].split('[').next().unwrap().to_owned();
        c.send(&format!("43{id}[{i}]")).await;
    }
    let mut got: Vec<u32> = collect
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, vec![0, 1, 2]);
}
