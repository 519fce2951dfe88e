//! The emitter against real socket.io servers (socketioxide with the NATS adapter,
//! in this process) over a real nats-server: every operation reaches the sockets
//! of several servers, acks and fetches come back, reserved names are refused,
//! and the emitter is never counted as a server.

use std::time::{Duration, Instant};

use engineioxide::Packet as EioPacket;
use nats_harness::NatsServer;
use socketioxide::{
    SocketIo,
    adapter::Emitter as SioEmitter,
    extract::{Data, SocketRef},
};
use socketioxide_nats::{NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle};
use socketioxide_nats_emitter::{AckError, EmitError, Emitter, EmitterConfig, async_nats};
use tokio::sync::mpsc::{Receiver, Sender};

type Io = SocketIo<NatsAdapter<SioEmitter>>;

struct Server {
    io: Io,
    handle: NatsHandle,
}

fn adapter_config() -> NatsAdapterConfig {
    NatsAdapterConfig::new()
        .with_heartbeat_interval(Duration::from_millis(200))
        .with_heartbeat_timeout(Duration::from_secs(1))
}

async fn server(url: &str) -> Server {
    server_with(async_nats::connect(url).await.unwrap(), adapter_config()).await
}

async fn server_with(client: async_nats::Client, config: NatsAdapterConfig) -> Server {
    let ctr = NatsAdapterCtr::new_with_nats_config(client, config);
    let handle = ctr.handle();
    let (_svc, io) = SocketIo::builder()
        .ack_timeout(Duration::from_millis(500))
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_svc();
    for ns in ["/", "/chat"] {
        io.ns(
            ns,
            async |s: SocketRef<_>, Data(rooms): Data<Vec<String>>| {
                s.join(s.id);
                s.join(rooms);
            },
        )
        .await
        .unwrap();
    }
    Server { io, handle }
}

async fn cluster(url: &str) -> [Server; 2] {
    met([server(url).await, server(url).await]).await
}

/// Wait until both servers see each other.
async fn met(servers: [Server; 2]) -> [Server; 2] {
    let t = Instant::now();
    while servers
        .iter()
        .any(|s| s.handle.server_count("/chat") != Some(2))
    {
        assert!(t.elapsed() < Duration::from_secs(10), "servers never met");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    servers
}

struct Client {
    tx: Sender<EioPacket>,
    rx: Receiver<EioPacket>,
    id: String,
}

async fn client(io: &Io, ns: &'static str, rooms: &[&str]) -> Client {
    let (tx, mut rx) = io.new_dummy_sock(ns, rooms.to_vec()).await;
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

async fn recv(rx: &mut Receiver<EioPacket>) -> String {
    match tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
        Ok(Some(p @ EioPacket::Message(_))) => String::from(p),
        other => panic!("expected a text packet, got {other:?}"),
    }
}

async fn emitter(url: &str) -> Emitter {
    Emitter::new(async_nats::connect(url).await.unwrap())
}

#[tokio::test]
async fn emits_reach_the_selected_sockets_of_every_server() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let mut a = client(&s[0].io, "/chat", &["r1"]).await;
    let mut b = client(&s[1].io, "/chat", &["r1", "r2"]).await;
    let mut c = client(&s[1].io, "/chat", &["r3"]).await;
    let mut root = client(&s[0].io, "/", &[]).await;
    let em = emitter(&nats.url()).await;

    em.of("chat").emit("all", &(1, "two")).await.unwrap(); // leading '/' added
    em.of("/chat").to("r2").emit("r2", &()).await.unwrap();
    em.of("/chat")
        .to(["r1", "r2"])
        .emit("r1r2", &())
        .await
        .unwrap();
    em.of("/chat")
        .within("r1")
        .except("r2")
        .emit("r1-not-r2", &())
        .await
        .unwrap();
    em.of("/chat")
        .to(c.id.clone())
        .emit("to-id", &"c")
        .await
        .unwrap();
    em.of("/chat")
        .except(c.id.clone())
        .emit("except-id", &())
        .await
        .unwrap();
    em.of("/chat").emit("end", &()).await.unwrap();

    let all = r#"42/chat,["all",1,"two"]"#;
    assert_eq!(recv(&mut a.rx).await, all);
    assert_eq!(recv(&mut a.rx).await, r#"42/chat,["r1r2",null]"#);
    assert_eq!(recv(&mut a.rx).await, r#"42/chat,["r1-not-r2",null]"#);
    assert_eq!(recv(&mut a.rx).await, r#"42/chat,["except-id",null]"#);
    assert_eq!(recv(&mut a.rx).await, r#"42/chat,["end",null]"#);
    assert_eq!(recv(&mut b.rx).await, all);
    assert_eq!(recv(&mut b.rx).await, r#"42/chat,["r2",null]"#);
    assert_eq!(recv(&mut b.rx).await, r#"42/chat,["r1r2",null]"#);
    assert_eq!(recv(&mut b.rx).await, r#"42/chat,["except-id",null]"#);
    assert_eq!(recv(&mut b.rx).await, r#"42/chat,["end",null]"#);
    assert_eq!(recv(&mut c.rx).await, all);
    assert_eq!(recv(&mut c.rx).await, r#"42/chat,["to-id","c"]"#);
    assert_eq!(recv(&mut c.rx).await, r#"42/chat,["end",null]"#);
    em.emit("root-end", &()).await.unwrap();
    assert_eq!(
        recv(&mut root.rx).await,
        r#"42["root-end",null]"#,
        "a / socket got a /chat event"
    );
    let _ = (&a.tx, &b.tx, &c.tx, &root.tx);
}

#[tokio::test]
async fn binary_data_and_volatile() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let mut b = client(&s[1].io, "/chat", &[]).await;
    let em = emitter(&nats.url()).await;
    em.of("/chat")
        .emit("bin", &bytes::Bytes::from_static(&[1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut b.rx).await,
        r#"451-/chat,["bin",{"_placeholder":true,"num":0}]"#
    );
    match tokio::time::timeout(Duration::from_secs(3), b.rx.recv()).await {
        Ok(Some(EioPacket::Binary(data))) => assert_eq!(data.as_ref(), &[1, 2, 255]),
        other => panic!("expected the attachment, got {other:?}"),
    }
    // volatile is accepted and flagged; its delivery is checked with real clients
    em.of("/chat").volatile().emit("vol", &1).await.unwrap();
}

#[tokio::test]
async fn reserved_event_names_are_refused() {
    let nats = NatsServer::start();
    let em = emitter(&nats.url()).await;
    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        let err = em.of("/").emit(name, &()).await.unwrap_err();
        assert!(
            matches!(err, EmitError::ReservedEvent(ref n) if n == name),
            "{err}"
        );
        assert!(err.to_string().contains("reserved"), "{err}");
    }
}

#[tokio::test]
async fn acks_from_every_server_with_a_silent_client() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let mut a = client(&s[0].io, "/chat", &[]).await;
    let mut b = client(&s[1].io, "/chat", &[]).await;
    let mut silent = client(&s[1].io, "/chat", &[]).await;
    let em = emitter(&nats.url()).await;
    let ask = tokio::spawn({
        let em = em.clone();
        async move {
            em.of("/chat")
                .timeout(Duration::from_millis(400))
                .emit_with_ack::<_, String>("q", &"?")
                .await
        }
    });
    for (c, answer) in [(&mut a, "A"), (&mut b, "B")] {
        let p = recv(&mut c.rx).await;
        let id = p["42/chat,".len()..].split('[').next().unwrap().to_owned();
        let packet = EioPacket::parse(
            engineioxide::ProtocolVersion::V4,
            format!(r#"43/chat,{id}["{answer}"]"#),
        )
        .unwrap();
        c.tx.send(packet).await.unwrap();
    }
    let _ = recv(&mut silent.rx).await;
    let t = Instant::now();
    let acks = ask.await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(acks.len(), 3, "{acks:?}");
    let by = |id: &str| &acks.iter().find(|(s, _)| s.as_str() == id).unwrap().1;
    assert_eq!(by(&a.id).as_ref().unwrap(), "A");
    assert_eq!(by(&b.id).as_ref().unwrap(), "B");
    assert_eq!(by(&silent.id), &Err(AckError::Timeout));
}

#[tokio::test]
async fn an_ack_timeout_of_duration_max_saturates_instead_of_panicking() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let mut a = client(&s[0].io, "/chat", &[]).await;
    let em = emitter(&nats.url()).await;
    let ask = tokio::spawn({
        let em = em.clone();
        async move {
            em.of("/chat")
                .timeout(Duration::MAX)
                .emit_with_ack::<_, String>("q", &"?")
                .await
        }
    });
    let p = recv(&mut a.rx).await;
    let id = p["42/chat,".len()..].split('[').next().unwrap().to_owned();
    let packet = EioPacket::parse(
        engineioxide::ProtocolVersion::V4,
        format!(r#"43/chat,{id}["A"]"#),
    )
    .unwrap();
    a.tx.send(packet).await.unwrap();
    let acks = tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .expect("the request ends once the only client answered")
        .unwrap()
        .unwrap();
    assert_eq!(acks.len(), 1, "{acks:?}");
}

#[tokio::test]
async fn fetch_rooms_join_leave_disconnect_and_count() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let a = client(&s[0].io, "/chat", &["lobby"]).await;
    let mut b = client(&s[1].io, "/chat", &["lobby"]).await;
    let em = emitter(&nats.url()).await;
    let chat = em.of("/chat");

    let t = Instant::now();
    let mut sockets: Vec<String> = chat
        .fetch_sockets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    sockets.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(sockets, expected);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "it must not wait for a timeout: {:?}",
        t.elapsed()
    );
    let mut rooms = vec!["lobby".to_owned(), a.id.clone(), b.id.clone()];
    rooms.sort();
    assert_eq!(chat.rooms().await.unwrap(), rooms);

    chat.clone().to(b.id.clone()).join("vip").await.unwrap();
    let vip = chat.clone().to("vip").fetch_sockets().await.unwrap();
    assert_eq!(vip.len(), 1);
    assert_eq!(vip[0].id.as_str(), b.id);
    assert_eq!(vip[0].server_id, s[1].handle.server_id("/chat").unwrap());
    chat.clone().to("vip").leave("vip").await.unwrap();
    assert!(
        chat.clone()
            .to("vip")
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(chat.server_count().await.unwrap(), 2);
    // the emitter never counts as a server
    assert_eq!(s[0].handle.server_count("/chat"), Some(2));
    assert_eq!(s[1].handle.server_count("/chat"), Some(2));

    chat.clone().to(b.id.clone()).disconnect().await.unwrap();
    assert_eq!(recv(&mut b.rx).await, "41/chat,");
    let left = chat.fetch_sockets().await.unwrap();
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn server_events_from_the_emitter_reach_every_server() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, srv) in s.iter().enumerate() {
        let tx = tx.clone();
        srv.handle.on_server_event("/chat", "reload", move |ev| {
            let tx = tx.clone();
            async move {
                tx.send((i, ev.data::<String>().unwrap())).unwrap();
            }
        });
    }
    let em = emitter(&nats.url()).await;
    em.of("/chat")
        .server_emit("reload", &"config")
        .await
        .unwrap();
    em.flush().await.unwrap();
    drop(em); // flushed: the event left before the connection closed
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .unwrap()
            .unwrap()
    };
    let mut got = vec![next().await, next().await];
    got.sort();
    assert_eq!(
        got,
        vec![(0, "config".to_owned()), (1, "config".to_owned())]
    );
}

#[tokio::test]
async fn clear_errors_without_servers_or_nats() {
    let mut nats = NatsServer::start();
    let em = emitter(&nats.url()).await;
    let err = em.of("/nobody").fetch_sockets().await.unwrap_err();
    assert!(matches!(err, EmitError::NoServers { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no socket.io server serves namespace \"/nobody\""),
        "{err}"
    );
    let bad = Emitter::with_config(
        async_nats::connect(nats.url()).await.unwrap(),
        EmitterConfig::new().with_prefix("a.*"),
    )
    .unwrap_err();
    assert!(matches!(bad, EmitError::Protocol(_)), "{bad}");

    let em = Emitter::with_config(
        async_nats::connect(nats.url()).await.unwrap(),
        EmitterConfig::new().with_request_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    nats.kill();
    let t = Instant::now();
    while em.emit("x", &()).await.is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the client never noticed"
        );
    }
    let t = Instant::now();
    let err = em.emit("x", &()).await.unwrap_err();
    assert!(matches!(err, EmitError::Unreachable { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// A failed ack travels as the bytes the server's socketioxide wrote for its
/// `AckError`; the emitter must turn them back into its own [`AckError`]: a
/// client that never answers is a timeout, one that disconnects first a closed
/// socket.
#[tokio::test]
async fn ack_errors_are_decoded_from_the_servers_encoding() {
    let nats = NatsServer::start();
    let s = cluster(&nats.url()).await;
    let mut quiet = client(&s[0].io, "/chat", &[]).await;
    let mut leaving = client(&s[1].io, "/chat", &[]).await;
    let em = emitter(&nats.url()).await;
    let ask = tokio::spawn({
        let em = em.clone();
        async move {
            em.of("/chat")
                .timeout(Duration::from_millis(300))
                .emit_with_ack::<_, String>("q", &"?")
                .await
        }
    });
    let _ = recv(&mut quiet.rx).await;
    let _ = recv(&mut leaving.rx).await;
    // The client closes its transport before answering.
    leaving.tx.send(EioPacket::Close).await.unwrap();
    let acks = ask.await.unwrap().unwrap();
    let by = |id: &str| &acks.iter().find(|(s, _)| s.as_str() == id).unwrap().1;
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!(by(&quiet.id), &Err(AckError::Timeout));
    assert_eq!(
        by(&leaving.id),
        &Err(AckError::Other(r#"{"Socket":"Closed"}"#.into()))
    );
}

/// The permissions the docs give an app, publish and subscribe on its prefix only,
/// are all the emitter needs too: its requests reply under the prefix, no `_INBOX`.
#[tokio::test]
async fn works_when_confined_to_its_prefix() {
    let nats = NatsServer::builder()
        .config(
            "authorization { users: [ { user: app, password: pw, permissions: \
             { publish: [\"app.>\"], subscribe: [\"app.>\"] } } ] }\n",
        )
        .start();
    let connect = async || {
        async_nats::ConnectOptions::new()
            .user_and_password("app".into(), "pw".into())
            .connect(nats.url())
            .await
            .unwrap()
    };
    let config = || adapter_config().with_prefix("app");
    let s = met([
        server_with(connect().await, config()).await,
        server_with(connect().await, config()).await,
    ])
    .await;
    let mut a = client(&s[0].io, "/chat", &["r1"]).await;
    let mut b = client(&s[1].io, "/chat", &[]).await;
    let em =
        Emitter::with_config(connect().await, EmitterConfig::new().with_prefix("app")).unwrap();

    em.of("/chat").emit("hi", &1).await.unwrap();
    assert_eq!(recv(&mut a.rx).await, r#"42/chat,["hi",1]"#);
    assert_eq!(recv(&mut b.rx).await, r#"42/chat,["hi",1]"#);
    assert_eq!(em.of("/chat").fetch_sockets().await.unwrap().len(), 2);
    em.of("/chat").to(b.id.clone()).join("vip").await.unwrap();
    let rooms = em.of("/chat").rooms().await.unwrap();
    assert!(rooms.iter().any(|r| r == "vip"), "{rooms:?}");
    assert_eq!(em.of("/chat").server_count().await.unwrap(), 2);
    let _ = (&a.tx, &b.tx);
}
