//! `sionats` against real servers: emit, rooms, sockets, nodes, join, leave,
//! disconnect, server-emit and watch reach sockets on two in-process socket.io
//! servers over a real nats-server, and failures print a clear message.

use std::{
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use engineioxide::Packet as EioPacket;
use futures_util::StreamExt;
use nats_harness::NatsServer;
use socketioxide::{
    SocketIo,
    adapter::Emitter,
    extract::{Data, SocketRef},
};
use socketioxide_core::{Sid, Uid};
use socketioxide_nats::{NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle, async_nats};
use socketioxide_nats_protocol::{
    message::{RequestOut, RequestOutBody},
    subjects::NsSubjects,
};
use tokio::{
    io::AsyncBufReadExt,
    process::{Child, Command},
    sync::mpsc::Receiver,
};

type Io = SocketIo<NatsAdapter<Emitter>>;

async fn server(url: &str) -> (Io, NatsHandle) {
    let (io, handle, _client) = server_with_client(url).await;
    (io, handle)
}

/// A server, and its own NATS connection (to crash it by draining it).
async fn server_with_client(url: &str) -> (Io, NatsHandle, async_nats::Client) {
    let client = async_nats::connect(url).await.unwrap();
    let config = NatsAdapterConfig::new().with_heartbeat_interval(Duration::from_millis(200));
    let ctr = NatsAdapterCtr::new_with_nats_config(client.clone(), config);
    let handle = ctr.handle();
    let (_svc, io) = SocketIo::builder()
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_svc();
    io.ns(
        "/",
        async |s: SocketRef<_>, Data(rooms): Data<Vec<String>>| {
            s.join(s.id);
            s.join(rooms);
        },
    )
    .await
    .unwrap();
    (io, handle, client)
}

async fn recv(rx: &mut Receiver<EioPacket>) -> String {
    match tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
        Ok(Some(p @ EioPacket::Message(_))) => String::from(p),
        other => panic!("expected a text packet, got {other:?}"),
    }
}

async fn sionats(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sionats"))
        .arg("-s")
        .arg(url)
        .args(args)
        .output()
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "sionats failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[tokio::test]
async fn every_command_against_a_cluster() {
    let nats = NatsServer::start();
    let url = nats.url();
    let (io1, h1) = server(&url).await;
    let (io2, h2) = server(&url).await;
    let t = Instant::now();
    while h1.server_count("/") != Some(2) || h2.server_count("/") != Some(2) {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_tx1, mut rx1) = io1.new_dummy_sock("/", vec!["lobby"]).await;
    let (_tx2, mut rx2) = io2.new_dummy_sock("/", vec!["lobby", "vip"]).await;
    let id = |c: String| {
        c.split("\"sid\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let a = id(recv(&mut rx1).await);
    let b = id(recv(&mut rx2).await);

    stdout(&sionats(&url, &["emit", "news", "hello", r#"{"n":1}"#]).await);
    assert_eq!(recv(&mut rx1).await, r#"42["news","hello",{"n":1}]"#);
    assert_eq!(recv(&mut rx2).await, r#"42["news","hello",{"n":1}]"#);
    stdout(&sionats(&url, &["emit", "vip-only", "--to", "vip"]).await);
    assert_eq!(recv(&mut rx2).await, r#"42["vip-only"]"#);

    let rooms = stdout(&sionats(&url, &["rooms"]).await);
    let mut expected = vec!["lobby".to_owned(), "vip".to_owned(), a.clone(), b.clone()];
    expected.sort();
    assert_eq!(rooms.lines().collect::<Vec<_>>(), expected);

    let sockets = stdout(&sionats(&url, &["sockets", "--to", "vip"]).await);
    assert_eq!(
        sockets.trim(),
        format!("{b}\t{}", h2.server_id("/").unwrap())
    );
    let nodes = stdout(&sionats(&url, &["nodes"]).await);
    let mut ids = vec![
        h1.server_id("/").unwrap().to_string(),
        h2.server_id("/").unwrap().to_string(),
    ];
    ids.sort();
    assert_eq!(nodes.lines().collect::<Vec<_>>(), ids);

    stdout(&sionats(&url, &["join", "new-room", "--to", &a]).await);
    let in_new = stdout(&sionats(&url, &["sockets", "--to", "new-room"]).await);
    assert!(in_new.starts_with(&a), "{in_new}");
    stdout(&sionats(&url, &["leave", "new-room", "--to", &a]).await);
    assert_eq!(
        stdout(&sionats(&url, &["sockets", "--to", "new-room"]).await),
        ""
    );

    // a client that answers the ack from another task
    let args: Vec<String> = ["emit", "q", "--to", &b, "--ack"]
        .map(String::from)
        .to_vec();
    let ack = tokio::spawn(sionats_owned(url.clone(), args));
    let p = recv(&mut rx2).await;
    let ack_id = p[2..].split('[').next().unwrap().to_owned();
    _tx2.send(
        EioPacket::parse(
            engineioxide::ProtocolVersion::V4,
            format!("43{ack_id}[\"yes\"]"),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let out = stdout(&ack.await.unwrap());
    assert_eq!(out.trim(), format!("{b}\t\"yes\""));

    stdout(&sionats(&url, &["disconnect", "--to", &a]).await);
    assert_eq!(recv(&mut rx1).await, "41");
}

async fn sionats_owned(url: String, args: Vec<String>) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sionats(&url, &args).await
}

/// `sionats watch --all`, once it reports that it is watching.
async fn watch_all(url: &str) -> Child {
    let mut watch = Command::new(env!("CARGO_BIN_EXE_sionats"))
        .args(["-s", url, "watch", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = tokio::io::BufReader::new(watch.stderr.take().unwrap()).lines();
    let line = err.next_line().await.unwrap().unwrap();
    assert!(
        line.starts_with("watching socket.io.*.b.* and socket.io.*.r.*.* (not the servers' own subjects socket.io.*.n.*.*"),
        "{line}"
    );
    watch
}

#[tokio::test]
async fn watch_prints_the_traffic() {
    let nats = NatsServer::start();
    let url = nats.url();
    let (_io, _h) = server(&url).await;
    let mut watch = watch_all(&url).await;
    stdout(&sionats(&url, &["emit", "shown", "--to", "room.x"]).await);
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if line.contains("emit") {
            assert!(line.starts_with("/ "), "{line}");
            assert!(
                line.contains(r#"["shown"]"#) && line.contains(r#"to ["room.x"]"#),
                "{line}"
            );
            break;
        }
        // heartbeats and discovery lines before it are fine
        assert!(
            line.contains("heartbeat") || line.contains("hello") || line.contains("discover"),
            "{line}"
        );
    }
}

/// NATS answers "no responders" at once to a request on the subject of a
/// server that is gone, which is how servers and emitters notice a crash. A
/// watcher subscribed to those subjects would take that answer away (every
/// request would then wait for a probe timeout): `watch` leaves them alone.
#[tokio::test]
async fn a_request_to_a_gone_server_fails_fast_while_watch_runs() {
    let nats = NatsServer::start();
    let url = nats.url();
    let mut watch = watch_all(&url).await;

    // Straight: a Discover to the subject of a server that is not there.
    let raw = async_nats::connect(url.as_str()).await.unwrap();
    let subjects = NsSubjects::new("socket.io", "/").unwrap();
    let (me, gone, req) = (Uid::new(), Uid::new(), Sid::new());
    let mut replies = raw
        .subscribe(subjects.reply_filter(me.as_str()))
        .await
        .unwrap();
    raw.flush().await.unwrap();
    let probe = RequestOut {
        origin: me,
        id: Some(req),
        body: RequestOutBody::Discover,
    }
    .encode();
    let t = Instant::now();
    raw.publish_with_reply(
        subjects.node(gone.as_str(), me.as_str()),
        subjects.reply(me.as_str(), req.as_str()),
        probe,
    )
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(1), replies.next())
        .await
        .expect("no answer: something else received the request")
        .unwrap();
    let took = t.elapsed();
    assert_eq!(answer.status, Some(async_nats::StatusCode::NO_RESPONDERS));
    println!("no responders for a gone server's subject while watch runs: {took:?}");
    assert!(took < Duration::from_millis(100), "{took:?}");

    // End to end: a crashed server costs an emitter's request a probe (~50 ms),
    // not the probe timeout (500 ms) nor the request timeout.
    let (_io1, h1, _c1) = server_with_client(&url).await;
    let (_io2, h2, c2) = server_with_client(&url).await;
    let t = Instant::now();
    while h1.server_count("/") != Some(2) || h2.server_count("/") != Some(2) {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c2.drain().await.unwrap(); // gone without a goodbye
    let emitter = socketioxide_nats_emitter::Emitter::with_config(
        async_nats::connect(url.as_str()).await.unwrap(),
        socketioxide_nats_emitter::EmitterConfig::new()
            .with_request_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let t = Instant::now();
    assert!(emitter.of("/").fetch_sockets().await.unwrap().is_empty());
    let took = t.elapsed();
    println!("emitter fetch_sockets after a crash while watch runs: {took:?}");
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert_eq!(h1.server_count("/"), Some(2), "the survivor still names it");

    // and watch saw the request
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if line.contains("sockets?") {
            break;
        }
    }
}

#[tokio::test]
async fn failures_print_a_clear_message() {
    // nothing listens on this port
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = sionats(
        &format!("nats://127.0.0.1:{port}"),
        &["--timeout", "1", "rooms"],
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("sionats: cannot connect to NATS at nats://127.0.0.1:"),
        "{err}"
    );

    let nats = NatsServer::start();
    let out = sionats(&nats.url(), &["--ns", "/empty", "sockets"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no socket.io server serves namespace \"/empty\""),
        "{err}"
    );

    let out = sionats(&nats.url(), &["emit", "disconnect"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("reserved socket.io event name"));

    let out = sionats(&nats.url(), &["--prefix", "a b", "nodes"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid subject prefix"));
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let nats = NatsServer::start();
    // something subscribed to the namespace's broadcasts that never answers
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let _sub = raw.subscribe("socket.io._2F.b.*").await.unwrap();
    raw.flush().await.unwrap();
    let t = Instant::now();
    let out = sionats(&nats.url(), &["--timeout", "0.5", "rooms"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("answered within 500ms"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3));
}
