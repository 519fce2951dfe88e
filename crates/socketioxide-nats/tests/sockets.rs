//! Cluster-wide socket management: join, leave and disconnect of matching sockets
//! (remoteJoin / remoteLeave / remoteDisconnect of the Node.js adapters), rooms and fetch
//! sockets across nodes (allRooms, clients, clientRooms), and every operation of a
//! remote socket.

mod common;

use std::collections::HashSet;

use common::*;

fn set<T: ToString>(items: impl IntoIterator<Item = T>) -> HashSet<String> {
    items.into_iter().map(|i| i.to_string()).collect()
}

async fn three() -> (NatsServer, [Node; 3], [Client; 3]) {
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let clients = [
        client(&nodes[0].io, "/").await,
        client(&nodes[1].io, "/").await,
        client(&nodes[2].io, "/").await,
    ];
    (nats, nodes, clients)
}

#[tokio::test]
async fn fetch_sockets_and_rooms_span_every_node() {
    let (_nats, nodes, c) = three().await;
    let all = nodes[1].io.fetch_sockets().await.unwrap();
    assert_eq!(
        set(all.iter().map(|s| s.data().id)),
        set(c.iter().map(|c| &c.id))
    );
    for s in &all {
        let owner = c.iter().position(|c| c.id == s.data().id.as_str()).unwrap();
        assert_eq!(
            s.data().server_id,
            nodes[owner].handle.server_id("/").unwrap()
        );
    }
    // every socket is in its own id room
    assert_eq!(
        set(nodes[2].io.rooms().await.unwrap()),
        set(c.iter().map(|c| &c.id))
    );
    // local only
    let local = nodes[0].io.local().fetch_sockets().await.unwrap();
    assert_eq!(set(local.iter().map(|s| s.data().id)), set([&c[0].id]));
    assert_eq!(nodes[0].handle.pending_requests("/"), Some(0));
}

/// Operations issued by one node reach every other node in the order they were
/// issued, so each check below asks the node that made the change.
#[tokio::test]
async fn join_and_leave_matching_sockets_everywhere() {
    let (_nats, nodes, mut c) = three().await;
    nodes[0].io.clone().join("all").await.unwrap();
    let in_all = nodes[0].io.to("all").fetch_sockets().await.unwrap();
    assert_eq!(
        set(in_all.iter().map(|s| s.data().id)),
        set(c.iter().map(|c| &c.id))
    );

    nodes[1].io.to(c[2].id.clone()).join("third").await.unwrap();
    let third = nodes[1].io.to("third").fetch_sockets().await.unwrap();
    assert_eq!(set(third.iter().map(|s| s.data().id)), set([&c[2].id]));

    // a join reaches each node before a broadcast sent after it by the same node
    nodes[2].io.to("all").join("later").await.unwrap();
    nodes[2].io.to("later").emit("later", &()).await.unwrap();
    for c in c.iter_mut() {
        assert_eq!(c.next().await, r#"42["later",null]"#);
    }

    nodes[1].io.to("third").leave("all").await.unwrap();
    let in_all = nodes[1].io.to("all").fetch_sockets().await.unwrap();
    assert_eq!(
        set(in_all.iter().map(|s| s.data().id)),
        set([&c[0].id, &c[1].id])
    );
    nodes[2].io.clone().leave("all").await.unwrap();
    assert!(
        nodes[2]
            .io
            .to("all")
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!set(nodes[2].io.rooms().await.unwrap()).contains("all"));
}

#[tokio::test]
async fn disconnect_matching_sockets_everywhere() {
    let (_nats, nodes, mut c) = three().await;
    nodes[0].io.to(c[1].id.clone()).join("bye").await.unwrap();
    nodes[0].io.to(c[2].id.clone()).join("bye").await.unwrap();
    nodes[0].io.to("bye").disconnect().await.unwrap();
    assert_eq!(c[1].next().await, "41");
    assert_eq!(c[2].next().await, "41");
    let left = nodes[0].io.fetch_sockets().await.unwrap();
    assert_eq!(set(left.iter().map(|s| s.data().id)), set([&c[0].id]));
    nodes[2].io.disconnect().await.unwrap();
    assert_eq!(c[0].next().await, "41");
    assert!(nodes[2].io.fetch_sockets().await.unwrap().is_empty());
}

#[tokio::test]
async fn remote_socket_operations() {
    let (_nats, nodes, mut c) = three().await;
    let remote = nodes[0]
        .io
        .to(c[2].id.clone())
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .expect("the remote socket");
    assert_eq!(remote.data().id.as_str(), c[2].id);

    remote.emit("direct", &"hi").await.unwrap();
    assert_eq!(c[2].next().await, r#"42["direct","hi"]"#);

    remote.join("vip").await.unwrap();
    assert_eq!(
        set(remote.rooms().await.unwrap()),
        set([c[2].id.as_str(), "vip"])
    );
    // the join is applied before join() returns: a broadcast right after reaches it
    nodes[0].io.to("vip").emit("vip", &()).await.unwrap();
    assert_eq!(c[2].next().await, r#"42["vip",null]"#);

    remote.leave("vip").await.unwrap();
    assert_eq!(set(remote.rooms().await.unwrap()), set([c[2].id.as_str()]));

    remote.disconnect().await.unwrap();
    assert_eq!(c[2].next().await, "41");
    let ids = set(nodes[0]
        .io
        .fetch_sockets()
        .await
        .unwrap()
        .iter()
        .map(|s| s.data().id));
    assert_eq!(ids, set([&c[0].id, &c[1].id]));
}

#[tokio::test]
async fn remote_socket_on_a_gone_node_fails_fast() {
    let (_nats, mut nodes, c) = three().await;
    let remote = nodes[0]
        .io
        .to(c[2].id.clone())
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .unwrap();
    // Node 2 vanishes without a goodbye: its connection is closed under it.
    let gone = std::mem::replace(&mut nodes[2], node(&_nats.url()).await);
    gone.client.drain().await.unwrap();
    let started = std::time::Instant::now();
    let err = remote.join("x").await.unwrap_err();
    let err = err.to_string();
    assert!(err.contains("is gone"), "{err}");
    assert!(
        remote
            .rooms()
            .await
            .unwrap_err()
            .to_string()
            .contains("is gone")
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
