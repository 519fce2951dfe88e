//! Broadcasts cross nodes exactly as they would on one node: to all, to a
//! namespace, rooms, several rooms once, except, local, volatile, a remote socket
//! id, and binary payloads. A recipient set is checked exactly: every socket that
//! must not receive a packet gets a later sentinel as its next packet instead.

mod common;

use common::*;
use socketioxide::extract::SocketRef;

/// Emit a sentinel to everyone from `io` and check it is each client's next packet.
async fn sentinel(io: &Io, clients: &mut [&mut Client]) {
    io.emit("end", &()).await.unwrap();
    for c in clients.iter_mut() {
        assert_eq!(c.next().await, r#"42["end",null]"#);
    }
}

#[tokio::test]
async fn emit_to_all_reaches_every_node_once() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut c: Vec<Client> = Vec::new();
    for n in &nodes {
        c.push(client(&n.io, "/").await);
    }
    nodes[1].io.emit("hello", &(1, "2")).await.unwrap();
    for c in c.iter_mut() {
        assert_eq!(c.next().await, r#"42["hello",1,"2"]"#);
    }
    let [a, b, d] = &mut c[..] else {
        unreachable!()
    };
    sentinel(&nodes[1].io, &mut [a, b, d]).await;
}

/// A broadcast after a pause yields once its publish is queued (so the NATS write
/// leaves before the local fan-out); the ones of a burst right after it do not.
/// Either way, local and remote clients get them in the order they were emitted.
#[tokio::test]
async fn paced_and_burst_broadcasts_keep_their_order() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut local = client(&nodes[0].io, "/").await;
    let mut remote = client(&nodes[1].io, "/").await;
    let mut sent = 0;
    for _ in 0..5 {
        // Far longer than the pacing's burst gap: the next broadcast yields.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        for _ in 0..20 {
            nodes[0].io.emit("n", &sent).await.unwrap();
            sent += 1;
        }
    }
    for c in [&mut local, &mut remote] {
        for i in 0..sent {
            assert_eq!(c.next().await, format!(r#"42["n",{i}]"#));
        }
    }
    sentinel(&nodes[0].io, &mut [&mut local, &mut remote]).await;
}

#[tokio::test]
async fn socket_broadcast_excludes_the_sender() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", async |s: SocketRef<_>| {
        s.on("shout", async |s: SocketRef<_>| {
            s.broadcast().emit("shouted", &s.id.as_str()).await.unwrap();
        });
    });
    let mut a = client(&nodes[0].io, "/").await;
    let mut a2 = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;
    a.send(r#"42["shout"]"#).await;
    let expected = format!(r#"42["shouted","{}"]"#, a.id);
    assert_eq!(a2.next().await, expected);
    assert_eq!(b.next().await, expected);
    sentinel(&nodes[0].io, &mut [&mut a, &mut a2, &mut b]).await;
}

#[tokio::test]
async fn namespaces_are_isolated() {
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    // node 2 does not serve /custom at all
    for n in &nodes[..2] {
        n.io.ns("/custom", join_own_id).await.unwrap();
    }
    wait_cluster(&[&nodes[0], &nodes[1]], "/custom").await;
    let mut root: Vec<Client> = Vec::new();
    for n in &nodes {
        root.push(client(&n.io, "/").await);
    }
    let mut custom = client(&nodes[1].io, "/custom").await;
    nodes[0]
        .io
        .of("/custom")
        .unwrap()
        .emit("only", &"custom")
        .await
        .unwrap();
    assert_eq!(custom.next().await, r#"42/custom,["only","custom"]"#);
    nodes[0].io.emit("root", &1).await.unwrap();
    for c in root.iter_mut() {
        assert_eq!(
            c.next().await,
            r#"42["root",1]"#,
            "a / socket got something else first"
        );
    }
}

#[tokio::test]
async fn rooms_several_rooms_once_and_except() {
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", async |s: SocketRef<_>, socketioxide::extract::Data(rooms): socketioxide::extract::Data<Vec<String>>| {
        s.join(rooms);
    });
    async fn client_in(io: &Io, rooms: &[&str]) -> Client {
        let (tx, mut rx) = io.new_dummy_sock("/", rooms.to_vec()).await;
        let connect = recv(&mut rx).await;
        let id = connect
            .split("\"sid\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        Client { tx, rx, id }
    }
    let mut r1 = client_in(&nodes[0].io, &["r1"]).await;
    let mut r1r2 = client_in(&nodes[1].io, &["r1", "r2"]).await;
    let mut r2r3 = client_in(&nodes[2].io, &["r2", "r3"]).await;
    let mut none = client_in(&nodes[2].io, &[]).await;

    nodes[0].io.to("r2").emit("to-r2", &()).await.unwrap();
    assert_eq!(r1r2.next().await, r#"42["to-r2",null]"#);
    assert_eq!(r2r3.next().await, r#"42["to-r2",null]"#);

    // r1r2 is in both rooms and must get it once
    nodes[2]
        .io
        .to(["r1", "r2"])
        .emit("r1-or-r2", &())
        .await
        .unwrap();
    assert_eq!(r1.next().await, r#"42["r1-or-r2",null]"#);
    assert_eq!(r1r2.next().await, r#"42["r1-or-r2",null]"#);
    assert_eq!(r2r3.next().await, r#"42["r1-or-r2",null]"#);

    nodes[1]
        .io
        .to(["r1", "r2"])
        .except("r3")
        .emit("not-r3", &())
        .await
        .unwrap();
    assert_eq!(r1.next().await, r#"42["not-r3",null]"#);
    assert_eq!(r1r2.next().await, r#"42["not-r3",null]"#);

    nodes[1]
        .io
        .except("r1")
        .emit("except-r1", &())
        .await
        .unwrap();
    assert_eq!(r2r3.next().await, r#"42["except-r1",null]"#);
    assert_eq!(none.next().await, r#"42["except-r1",null]"#);

    sentinel(
        &nodes[1].io,
        &mut [&mut r1, &mut r1r2, &mut r2r3, &mut none],
    )
    .await;
}

/// Volatile delivery is checked with real clients (the in-process test socket
/// does not carry volatile packets); here only `local` is.
#[tokio::test]
async fn local_stays_on_its_node() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;
    nodes[0].io.local().emit("local", &()).await.unwrap();
    assert_eq!(a.next().await, r#"42["local",null]"#);
    sentinel(&nodes[0].io, &mut [&mut a, &mut b]).await;
}

#[tokio::test]
async fn to_a_socket_id_on_another_node() {
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;
    let mut c = client(&nodes[2].io, "/").await;
    nodes[0]
        .io
        .to(b.id.clone())
        .emit("direct", &"b")
        .await
        .unwrap();
    assert_eq!(b.next().await, r#"42["direct","b"]"#);
    sentinel(&nodes[0].io, &mut [&mut a, &mut b, &mut c]).await;
}

#[tokio::test]
async fn binary_attachments_arrive_as_binary() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut b = client(&nodes[1].io, "/").await;
    let payload = bytes::Bytes::from_static(&[0, 1, 2, 0xff, 0xfe]);
    nodes[0]
        .io
        .emit("bin", &(1, payload.clone()))
        .await
        .unwrap();
    assert_eq!(
        b.next().await,
        r#"451-["bin",1,{"_placeholder":true,"num":0}]"#
    );
    match recv_any(&mut b.rx).await {
        engineioxide::Packet::Binary(data) => assert_eq!(data, payload),
        other => panic!("expected the binary attachment, got {other:?}"),
    }
}
