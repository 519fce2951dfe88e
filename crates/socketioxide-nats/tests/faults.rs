//! Faults and bad input: NATS down (errors within the bound, local delivery
//! intact), NATS restarted (everything flows again), oversized payloads, malformed
//! or foreign messages on our subjects, hostile room and namespace names, and an
//! invalid prefix.

mod common;

use std::time::{Duration, Instant};

use common::*;
use socketioxide::{BroadcastError, extract::SocketRef};
use socketioxide_nats::{Error, NatsAdapter, NatsAdapterConfig, NatsAdapterCtr};

fn adapter_error(e: &BroadcastError) -> &Error {
    match e {
        BroadcastError::Adapter(a) => {
            a.0.downcast_ref::<Error>()
                .expect("a socketioxide-nats error")
        }
        other => panic!("not an adapter error: {other:?}"),
    }
}

/// Emit `probe` from `from` until `to` receives it: messages published while a
/// connection is being re-established are lost (NATS core is at-most-once).
async fn until_delivered(from: &Io, to: &mut Client, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "traffic never resumed");
        let _ = from.emit("probe", &()).await;
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(100), to.rx.recv()).await {
            let p = String::from(p);
            assert_eq!(p, r#"42["probe",null]"#);
            // drain duplicates of earlier probes
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(150), to.rx.recv()).await
            {}
            return;
        }
    }
}

#[tokio::test]
async fn nats_down_fails_fast_and_restart_resumes_by_itself() {
    init_tracing();
    let mut nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;

    nats.kill();
    // wait until the clients noticed
    let t = Instant::now();
    while nodes[0].client.connection_state()
        == socketioxide_nats::async_nats::connection::State::Connected
    {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let t = Instant::now();
    let err = nodes[0].io.emit("while-down", &()).await.unwrap_err();
    assert!(
        matches!(adapter_error(&err), Error::Unreachable { .. }),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "emit took {:?}",
        t.elapsed()
    );
    // the local socket still got it
    assert_eq!(a.next().await, r#"42["while-down",null]"#);

    let t = Instant::now();
    let err = nodes[0].io.fetch_sockets().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "fetch took {:?}",
        t.elapsed()
    );

    nats.restart();
    until_delivered(&nodes[0].io, &mut b, Duration::from_secs(15)).await;
    until_delivered(&nodes[1].io, &mut a, Duration::from_secs(15)).await;
    let refs = [&nodes[0], &nodes[1]];
    wait_cluster(&refs, "/").await;
    assert_eq!(nodes[1].io.fetch_sockets().await.unwrap().len(), 2);
}

#[tokio::test]
async fn oversized_payload_is_a_clear_error_and_local_sockets_still_get_it() {
    let nats = NatsServer::builder().config("max_payload: 4096\n").start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;
    let big = "x".repeat(10_000);
    let err = nodes[0].io.emit("big", &big).await.unwrap_err();
    match adapter_error(&err) {
        Error::PayloadTooLarge { size, max } => {
            assert_eq!(*max, 4096);
            assert!(*size > 10_000);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("max_payload"), "{err}");
    assert_eq!(a.next().await, format!(r#"42["big","{big}"]"#));
    // the remote socket did not get it, and the cluster still works
    nodes[0].io.emit("small", &1).await.unwrap();
    assert_eq!(b.next().await, r#"42["small",1]"#);
    assert_eq!(a.next().await, r#"42["small",1]"#);
}

#[tokio::test]
async fn malformed_and_foreign_messages_are_dropped() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut b = client(&nodes[1].io, "/").await;
    let uid1 = nodes[1].handle.server_id("/").unwrap();
    let raw = connect(&nats.url()).await;
    let garbage: Vec<&[u8]> = vec![
        b"",
        b"hello",
        &[0x90],
        &[0x94, 0x02, 0x14, 0xa1, b'x', 0xc0], // protocol version 2
        &[0x94, 0x01, 0x63, 0xb0],             // unknown type, truncated
        &[0x94, 0x01, 0x00, 0xb0, b'A', b'A'], // truncated id
        &[0xdd, 0xff, 0xff, 0xff, 0xff],       // 4 billion elements
        &[0xc6, 0x7f, 0xff, 0xff, 0xff],       // 2 GiB bin
        &[0x91; 200],                          // deep nesting
    ];
    let subjects = [
        "socket.io._2F.b.AAAAAAAAAAAAAAAA".to_owned(),
        format!("socket.io._2F.n.{uid1}.AAAAAAAAAAAAAAAA"),
        format!("socket.io._2F.r.{uid1}.AAAAAAAAAAAAAAAA"),
        format!("socket.io._2F.r.{uid1}.not-an-id"),
    ];
    for s in &subjects {
        for g in &garbage {
            raw.publish(s.clone(), bytes::Bytes::copy_from_slice(g))
                .await
                .unwrap();
        }
        raw.publish_with_reply(
            s.clone(),
            "elsewhere.inbox",
            bytes::Bytes::from_static(b"\x94\x01\x03"),
        )
        .await
        .unwrap();
    }
    raw.flush().await.unwrap();
    // the node survived and still works both ways
    nodes[0].io.emit("after", &()).await.unwrap();
    assert_eq!(b.next().await, r#"42["after",null]"#);
    assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 1);
    assert_eq!(
        nodes[0].handle.server_count("/"),
        Some(2),
        "garbage must not add nodes"
    );
}

#[tokio::test]
async fn hostile_room_names_route_exactly() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    let long = "r".repeat(5000);
    let rooms: Vec<String> = [
        "*",
        ">",
        "a.b",
        "",
        "$SYS.>",
        "a b",
        "😀",
        "_INBOX.>",
        "%2A",
        "\r\nPUB x 1",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([long])
    .collect();
    start_ns!(
        nodes,
        "/",
        async |s: SocketRef<_>,
               socketioxide::extract::Data(room): socketioxide::extract::Data<String>| {
            s.join(room);
        }
    );
    let mut members = Vec::new();
    for (i, r) in rooms.iter().enumerate() {
        let (tx, mut rx) = nodes[i % 2].io.new_dummy_sock("/", r.clone()).await;
        let _connect = recv(&mut rx).await;
        members.push(Client {
            tx,
            rx,
            id: String::new(),
        });
    }
    // one sender, so its messages arrive in order: "end" comes after every "room"
    for (i, r) in rooms.iter().enumerate() {
        nodes[1].io.to(r.clone()).emit("room", &i).await.unwrap();
    }
    nodes[1].io.emit("end", &()).await.unwrap();
    for (i, m) in members.iter_mut().enumerate() {
        assert_eq!(
            m.next().await,
            format!(r#"42["room",{i}]"#),
            "room {:?}",
            &rooms[i][..rooms[i].len().min(20)]
        );
        assert_eq!(
            m.next().await,
            r#"42["end",null]"#,
            "room {i} got another room's message"
        );
    }
}

#[tokio::test]
async fn hostile_namespace_names_stay_isolated() {
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    let names: [&'static str; 6] = ["/*", "/>", "/a.b", "/a", "/a b", "/😀"];
    for ns in names {
        start_ns!(nodes, ns, join_own_id);
    }
    let mut clients = Vec::new();
    for ns in names {
        clients.push(client(&nodes[1].io, ns).await);
    }
    for ns in names {
        nodes[0].io.of(ns).unwrap().emit("ns", &ns).await.unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let ns = names[i];
        assert_eq!(c.next().await, format!(r#"42{ns},["ns","{ns}"]"#));
    }
    for ns in names {
        nodes[0].io.of(ns).unwrap().emit("end", &()).await.unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.next().await,
            format!(r#"42{},["end",null]"#, names[i]),
            "cross-namespace leak"
        );
    }
}

#[tokio::test]
async fn an_invalid_prefix_fails_at_start_with_a_clear_error() {
    let nats = NatsServer::start();
    let client = connect(&nats.url()).await;
    let ctr =
        NatsAdapterCtr::new_with_nats_config(client, NatsAdapterConfig::new().with_prefix("app.>"));
    let (_svc, io) = socketioxide::SocketIo::builder()
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_svc();
    let err = io.ns("/", async || {}).await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(err.to_string().contains("invalid subject prefix"), "{err}");
}

#[tokio::test]
async fn different_prefixes_do_not_see_each_other() {
    let nats = NatsServer::start();
    let a = node_with(
        connect(&nats.url()).await,
        test_config().with_prefix("app-a"),
    )
    .await;
    let b = node_with(
        connect(&nats.url()).await,
        test_config().with_prefix("app-b"),
    )
    .await;
    a.io.ns("/", join_own_id).await.unwrap();
    b.io.ns("/", join_own_id).await.unwrap();
    let mut cb = client(&b.io, "/").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.handle.server_count("/"), Some(1));
    assert_eq!(b.handle.server_count("/"), Some(1));
    a.io.emit("leak", &()).await.unwrap();
    b.io.emit("own", &()).await.unwrap();
    assert_eq!(cb.next().await, r#"42["own",null]"#);
    assert!(a.io.fetch_sockets().await.unwrap().is_empty());
}
