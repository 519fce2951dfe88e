//! Which servers an emitter's request waits for, over a real nats-server: a
//! crashed server (gone without a goodbye, still named by the survivors until
//! their heartbeat timeout) is found gone by a probe on its own subject, so the
//! request ends with the survivors' answers long before its timeout, with or
//! without a monitor listening to the whole prefix; a server that answers probes
//! but never the request makes the request fail as incomplete, naming it.

use std::time::{Duration, Instant};

use engineioxide::Packet as EioPacket;
use futures_util::StreamExt;
use nats_harness::NatsServer;
use socketioxide::{
    SocketIo,
    adapter::Emitter as SioEmitter,
    extract::{Data, SocketRef},
};
use socketioxide_nats::{NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle};
use socketioxide_nats_emitter::{EmitError, Emitter, EmitterConfig, Uid, async_nats};
use socketioxide_nats_protocol::{
    message::{
        RequestBody, RequestOut, RequestOutBody, ResponseOut, ResponseOutBody, decode_request,
    },
    subjects::NsSubjects,
};
use tokio::{sync::mpsc::Receiver, task::JoinHandle};

type Io = SocketIo<NatsAdapter<SioEmitter>>;

/// The emitter's request timeout in these tests: a request that waits it out
/// is obvious next to the < 1 s the tests allow.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

struct Node {
    io: Io,
    handle: NatsHandle,
    client: async_nats::Client,
}

/// A server with its own connection. Its heartbeat timeout is the default
/// 10 s: the survivors keep naming a crashed server for the whole test, which
/// is the case the emitter must cope with.
async fn node(url: &str) -> Node {
    let client = async_nats::ConnectOptions::new()
        .no_echo()
        .connect(url)
        .await
        .unwrap();
    let config = NatsAdapterConfig::new().with_heartbeat_interval(Duration::from_millis(200));
    let ctr = NatsAdapterCtr::new_with_nats_config(client.clone(), config);
    let handle = ctr.handle();
    let (_svc, io) = SocketIo::builder()
        .ack_timeout(Duration::from_millis(500))
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_svc();
    io.ns(
        "/chat",
        async |s: SocketRef<_>, Data(rooms): Data<Vec<String>>| {
            s.join(s.id);
            s.join(rooms);
        },
    )
    .await
    .unwrap();
    Node { io, handle, client }
}

async fn wait_count(handles: &[&NatsHandle], n: usize) {
    let t = Instant::now();
    while handles.iter().any(|h| h.server_count("/chat") != Some(n)) {
        assert!(t.elapsed() < Duration::from_secs(10), "servers never met");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn recv(rx: &mut Receiver<EioPacket>) -> String {
    match tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
        Ok(Some(p @ EioPacket::Message(_))) => String::from(p),
        other => panic!("expected a text packet, got {other:?}"),
    }
}

/// A client of `io` in room `room` that acknowledges every event with its
/// room name. Returns its socket id; the task ends with the test.
async fn acking_client(io: &Io, room: &'static str) -> (String, JoinHandle<()>) {
    let (tx, mut rx) = io.new_dummy_sock("/chat", vec![room]).await;
    let connect = recv(&mut rx).await;
    let id = connect
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let task = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            if !matches!(p, EioPacket::Message(_)) {
                continue;
            }
            // 42/chat,<ack id>["event",...]
            let text = String::from(p);
            let Some(rest) = text.strip_prefix("42/chat,") else {
                continue;
            };
            let ack_id: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if ack_id.is_empty() {
                continue;
            }
            let ack = format!(r#"43/chat,{ack_id}["{room}"]"#);
            let packet = EioPacket::parse(engineioxide::ProtocolVersion::V4, ack).unwrap();
            if tx.send(packet).await.is_err() {
                return;
            }
        }
    });
    (id, task)
}

fn emitter(client: async_nats::Client) -> Emitter {
    Emitter::with_config(
        client,
        EmitterConfig::new().with_request_timeout(REQUEST_TIMEOUT),
    )
    .unwrap()
}

/// Three servers with an acking client each; the third one crashes (its NATS
/// connection is drained: its subscriptions go, no goodbye is sent), then the
/// emitter's fetch_sockets, rooms, emit_with_ack and server_count must end well
/// before their timeout with the survivors' answers. Returns the four durations.
async fn crash_then_ask(nats: &NatsServer) -> [Duration; 4] {
    let url = nats.url();
    let nodes = [node(&url).await, node(&url).await, node(&url).await];
    wait_count(&nodes.iter().map(|n| &n.handle).collect::<Vec<_>>(), 3).await;
    let (a, _ta) = acking_client(&nodes[0].io, "ra").await;
    let (b, _tb) = acking_client(&nodes[1].io, "rb").await;
    let (_c, _tc) = acking_client(&nodes[2].io, "rc").await;
    let em = emitter(async_nats::connect(&url).await.unwrap());
    let chat = em.of("/chat");
    assert_eq!(
        chat.fetch_sockets().await.unwrap().len(),
        3,
        "before the crash"
    );

    nodes[2].client.drain().await.unwrap();
    // The survivors still count it: they name it in their answers to Discover.
    assert_eq!(nodes[0].handle.server_count("/chat"), Some(3));

    let mut survivors = vec![a.clone(), b.clone()];
    survivors.sort();

    let t = Instant::now();
    let mut sockets: Vec<String> = chat
        .fetch_sockets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    let fetch = t.elapsed();
    sockets.sort();
    assert_eq!(sockets, survivors);

    let t = Instant::now();
    let rooms = chat.rooms().await.unwrap();
    let rooms_took = t.elapsed();
    let mut expected = vec!["ra".to_owned(), "rb".to_owned(), a.clone(), b.clone()];
    expected.sort();
    assert_eq!(rooms, expected);

    let t = Instant::now();
    let acks = chat
        .clone()
        .timeout(REQUEST_TIMEOUT)
        .emit_with_ack::<_, String>("ping", &())
        .await
        .unwrap();
    let acks_took = t.elapsed();
    let mut got: Vec<(String, String)> = acks
        .into_iter()
        .map(|(sid, res)| (sid.to_string(), res.unwrap()))
        .collect();
    got.sort();
    let mut want = vec![(a, "ra".to_owned()), (b, "rb".to_owned())];
    want.sort();
    assert_eq!(got, want);
    let t = Instant::now();
    assert_eq!(chat.server_count().await.unwrap(), 2);
    let count_took = t.elapsed();
    assert_eq!(
        nodes[0].handle.server_count("/chat"),
        Some(3),
        "the survivors did not forget it themselves: the emitter found it gone"
    );
    [fetch, rooms_took, acks_took, count_took]
}

fn check(what: &str, took: [Duration; 4]) {
    println!(
        "{what}: fetch_sockets {:?}, rooms {:?}, emit_with_ack {:?}, server_count {:?} (timeout {REQUEST_TIMEOUT:?})",
        took[0], took[1], took[2], took[3]
    );
    for t in took {
        assert!(t < Duration::from_secs(1), "{what}: took {took:?}");
    }
}

#[tokio::test]
async fn a_crashed_node_does_not_make_an_emitter_wait_its_timeout() {
    let nats = NatsServer::start();
    let took = crash_then_ask(&nats).await;
    check("crashed node, NATS answers no responders", took);
}

/// A monitor listening to the whole prefix takes away NATS's "no responders":
/// the probe timeout (500 ms by default) decides instead.
#[tokio::test]
async fn a_crashed_node_does_not_make_an_emitter_wait_its_timeout_with_a_monitor() {
    let nats = NatsServer::start();
    let monitor = async_nats::connect(nats.url()).await.unwrap();
    let mut everything = monitor.subscribe("socket.io.>").await.unwrap();
    monitor.flush().await.unwrap();
    let drain = tokio::spawn(async move { while everything.next().await.is_some() {} });
    let took = crash_then_ask(&nats).await;
    check("crashed node, a monitor on socket.io.>", took);
    drain.abort();
}

/// A peer that says what a node says (hello, heartbeats) and answers liveness
/// probes on its own subject, but never answers a request: a stuck server.
async fn stuck_node(url: &str) -> (Uid, Vec<JoinHandle<()>>) {
    let client = async_nats::connect(url).await.unwrap();
    let uid = Uid::new();
    let subjects = NsSubjects::new("socket.io", "/chat").unwrap();
    let mut probes = client
        .subscribe(subjects.node_filter(uid.as_str()))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let c = client.clone();
    let answer = tokio::spawn(async move {
        while let Some(msg) = probes.next().await {
            let Ok(req) = decode_request(msg.payload) else {
                continue;
            };
            if let (RequestBody::Discover, Some(reply)) = (req.body, msg.reply) {
                let res = ResponseOut {
                    origin: uid,
                    body: ResponseOutBody::Nodes(&[]),
                }
                .encode();
                let _ = c.publish(reply, res).await;
            }
        }
    });
    let subject = subjects.broadcast(uid.as_str());
    let beat = tokio::spawn(async move {
        let mut body = RequestOutBody::Hello;
        loop {
            let msg = RequestOut {
                origin: uid,
                id: None,
                body,
            }
            .encode();
            let _ = client.publish(subject.clone(), msg).await;
            body = RequestOutBody::Heartbeat;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (uid, vec![answer, beat])
}

#[tokio::test]
async fn a_live_server_that_never_answers_makes_the_request_incomplete() {
    let nats = NatsServer::start();
    let url = nats.url();
    let real = node(&url).await;
    let (stuck, tasks) = stuck_node(&url).await;
    // The real server counts the stuck one once it answered its probe, and
    // names it to the emitter.
    wait_count(&[&real.handle], 2).await;
    let (_id, _t) = acking_client(&real.io, "r").await;
    let em = emitter(async_nats::connect(&url).await.unwrap());

    let t = Instant::now();
    let err = em.of("/chat").fetch_sockets().await.unwrap_err();
    let took = t.elapsed();
    match &err {
        EmitError::Incomplete { missing, timeout } => {
            assert_eq!(missing, &vec![stuck], "{err}");
            assert_eq!(*timeout, REQUEST_TIMEOUT);
        }
        other => panic!("expected Incomplete, got {other}"),
    }
    assert!(err.to_string().contains(stuck.as_str()), "{err}");
    assert!(
        took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT + Duration::from_secs(1),
        "it waited the timeout for the live server: {took:?}"
    );
    println!("{err} (after {took:?})");
    // A server count keeps returning who answered: the stuck server answers Discover
    // probes, so it counts.
    assert_eq!(em.of("/chat").server_count().await.unwrap(), 2);
    for t in tasks {
        t.abort();
    }
}
