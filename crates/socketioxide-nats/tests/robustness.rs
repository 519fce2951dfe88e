//! Hostile-but-valid traffic and the transitions of a node's life: well-formed
//! messages that are wrong in meaning, forged nodes, start-up and reconnect
//! windows, huge durations, floods of work, a stalled connection. Each test is
//! named after the behaviour it guarantees; each failed before the change that
//! introduced it (see the commit log).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    impostor::{Impostor, Mode},
    *,
};
use futures_util::StreamExt;
use socketioxide_core::{
    Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions},
    packet::Packet,
};
use socketioxide_nats::{Error, NatsAdapterConfig, async_nats};
use socketioxide_nats_protocol::{
    message::{RequestOut, RequestOutBody, ResponseBody, decode_response},
    subjects::NsSubjects,
};

fn subjects(ns: &str) -> NsSubjects {
    NsSubjects::new("socket.io", ns).unwrap()
}

fn everyone() -> BroadcastOptions {
    let mut o = BroadcastOptions::default();
    o.add_flag(BroadcastFlags::Broadcast);
    o
}

/// Publish `body` as if sent by `origin`, on its broadcast subject.
async fn publish_as(
    c: &async_nats::Client,
    origin: Uid,
    body: RequestOutBody<'_>,
    reply: Option<String>,
) {
    let id = reply.as_ref().map(|_| socketioxide_core::Sid::new());
    let payload = RequestOut { origin, id, body }.encode();
    let subject = subjects("/").broadcast(origin.as_str());
    match reply {
        Some(r) => c.publish_with_reply(subject, r, payload).await.unwrap(),
        None => c.publish(subject, payload).await.unwrap(),
    }
    c.flush().await.unwrap();
}

async fn three_with_clients() -> (NatsServer, [Node; 3], Vec<Client>) {
    let nats = NatsServer::start();
    let nodes = nodes::<3>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(client(&n.io, "/").await);
    }
    (nats, nodes, clients)
}

/// Every node delivers a broadcast from node 0 to its client, and answers a
/// fetch within `within`.
async fn cluster_works(nodes: &[Node; 3], clients: &mut [Client], within: Duration) {
    nodes[0].io.emit("alive", &()).await.unwrap();
    for c in clients.iter_mut() {
        assert_eq!(c.next().await, r#"42["alive",null]"#);
    }
    for n in nodes {
        let t = Instant::now();
        let found = n.io.fetch_sockets().await.unwrap().len();
        assert_eq!(found, 3);
        assert!(t.elapsed() < within, "fetch took {:?}", t.elapsed());
        assert_eq!(n.handle.server_count("/"), Some(3));
    }
}

// 1. One message in the other parser's form used to kill every node's receive loop.
#[tokio::test]
async fn a_packet_in_the_other_parsers_form_is_dropped_and_every_node_keeps_receiving() {
    init_tracing();
    let (nats, nodes, mut clients) = three_with_clients().await;
    let c = connect(&nats.url()).await;
    let opts = everyone();
    // The msgpack parser's form, `[1, bin]`, sent to common-parser nodes.
    let msgpack = Packet::event("/", Value::Bytes(Bytes::from_static(b"\x92\xa1x\x01")));
    publish_as(
        &c,
        Uid::new(),
        RequestOutBody::Broadcast {
            opts: &opts,
            packet: &msgpack,
        },
        None,
    )
    .await;
    publish_as(
        &c,
        Uid::new(),
        RequestOutBody::BroadcastWithAck {
            opts: &opts,
            packet: &msgpack,
            ack_timeout: None,
        },
        None,
    )
    .await;
    // An event of another namespace, and a connect packet.
    let other_ns = Packet::event("/admin", Value::Str(r#"["x"]"#.into(), None));
    let connect_packet = Packet::connect("/", None);
    for packet in [&other_ns, &connect_packet] {
        publish_as(
            &c,
            Uid::new(),
            RequestOutBody::Broadcast {
                opts: &opts,
                packet,
            },
            None,
        )
        .await;
    }
    cluster_works(&nodes, &mut clients, Duration::from_millis(500)).await;
    for (i, n) in nodes.iter().enumerate() {
        let stats = n.handle.stats("/").unwrap();
        assert_eq!(stats.wrong_parser, 4, "node {i}: {stats:?}");
        assert_eq!(stats.panics, 0, "node {i}: {stats:?}");
    }
    for c in clients.iter_mut() {
        recv_none(&mut c.rx, 100).await;
    }
}

#[tokio::test]
async fn msgpack_nodes_drop_a_packet_in_the_common_form() {
    let nats = NatsServer::start();
    let (a, _) = served_node(&nats.url(), Parser::MsgPack).await;
    let (b, _) = served_node(&nats.url(), Parser::MsgPack).await;
    let nodes = [a, b];
    start_ns!(nodes, "/", join_own_id);
    let c = connect(&nats.url()).await;
    let common = Packet::event("/", Value::Str(r#"["x"]"#.into(), None));
    publish_as(
        &c,
        Uid::new(),
        RequestOutBody::Broadcast {
            opts: &everyone(),
            packet: &common,
        },
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    for n in &nodes {
        while n.handle.stats("/").unwrap().wrong_parser != 1 {
            assert!(Instant::now() < deadline, "{:?}", n.handle.stats("/"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 0);
    assert_eq!(nodes[1].handle.server_count("/"), Some(2));
}

// 2. Requests used to skip the other nodes while a node knew none.
#[tokio::test]
async fn requests_made_right_after_start_reach_every_node() {
    init_tracing();
    let nats = NatsServer::start();
    let old = nodes::<2>(&nats.url()).await;
    start_ns!(old, "/", join_own_id);
    let mut old_clients = Vec::new();
    for n in &old {
        old_clients.push(client(&n.io, "/").await);
    }
    // No wait: the new node's first requests go out while it discovers the others.
    let new = node(&nats.url()).await;
    new.io.ns("/", join_own_id).await.unwrap();
    let t = Instant::now();
    let (sockets, rooms) = tokio::join!(new.io.fetch_sockets(), new.io.rooms());
    assert_eq!(
        sockets.unwrap().len(),
        2,
        "only local sockets: the others were skipped"
    );
    assert_eq!(rooms.unwrap().len(), 2);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    let new2 = node(&nats.url()).await;
    new2.io.ns("/", join_own_id).await.unwrap();
    let acks = new2
        .io
        .timeout(Duration::from_secs(2))
        .emit_with_ack::<_, String>("q", &())
        .await
        .unwrap();
    for c in old_clients.iter_mut() {
        let q = c.next().await;
        let id: String = q
            .trim_start_matches("42")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert_eq!(q, format!(r#"42{id}["q",null]"#));
        c.send(&format!(r#"43{id}["a"]"#)).await;
    }
    let acks: Vec<_> = acks.collect().await;
    assert_eq!(acks.len(), 2, "the acks of the remote clients: {acks:?}");
    assert!(acks.iter().all(|(_, a)| a.is_ok()), "{acks:?}");
}

// 3. Anyone who could publish on the prefix could add fake nodes, and each hello
//    made every node publish (amplification).
#[tokio::test]
async fn forged_hellos_add_no_node_and_are_answered_at_a_bounded_rate() {
    init_tracing();
    let (nats, nodes, mut clients) = three_with_clients().await;
    let spy = connect(&nats.url()).await;
    let mut answers = spy.subscribe("socket.io._2F.r.>").await.unwrap();
    let mut probes = spy.subscribe("socket.io._2F.n.>").await.unwrap();
    spy.flush().await.unwrap();
    let c = connect(&nats.url()).await;
    const FORGED: usize = 1000;
    let t = Instant::now();
    for i in 0..FORGED {
        let origin = Uid::new();
        let reply = subjects("/").reply(origin.as_str(), "Req0000000000001");
        let body = if i % 2 == 0 {
            RequestOutBody::Hello
        } else {
            RequestOutBody::Heartbeat
        };
        let payload = RequestOut {
            origin,
            id: Some(socketioxide_core::Sid::new()),
            body,
        }
        .encode();
        c.publish_with_reply(subjects("/").broadcast(origin.as_str()), reply, payload)
            .await
            .unwrap();
    }
    // Origins that do not match their subject.
    for _ in 0..10 {
        let payload = RequestOut {
            origin: Uid::new(),
            id: None,
            body: RequestOutBody::Heartbeat,
        }
        .encode();
        c.publish(subjects("/").broadcast(Uid::new().as_str()), payload)
            .await
            .unwrap();
    }
    c.flush().await.unwrap();
    let sent_in = t.elapsed();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let window = t.elapsed();
    async fn count(sub: &mut async_nats::Subscriber) -> usize {
        let mut n = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(20), sub.next()).await {
            n += 1;
        }
        n
    }
    let (answered, probed) = (count(&mut answers).await, count(&mut probes).await);
    // Each node answers at most 100 at once and 50 a second after that, hellos
    // and unknown heartbeats together.
    let bound = 3 * (100 + (50.0 * window.as_secs_f64()).ceil() as usize);
    eprintln!(
        "{FORGED} forged in {sent_in:?}: {answered} answers and {probed} probes in {window:?} (bound {bound})"
    );
    assert!(answered + probed <= 2 * bound, "{answered} + {probed}");
    cluster_works(&nodes, &mut clients, Duration::from_millis(500)).await;
    for n in &nodes {
        let stats = n.handle.stats("/").unwrap();
        eprintln!("{stats:?}");
        assert!(stats.rate_limited > 0, "{stats:?}");
        assert_eq!(stats.forged, 10, "{stats:?}");
    }
}

// 4. A subscriber overlapping the adapter's subjects used to disable the fast
//    "node is gone" signal (NATS's "no responders").
#[tokio::test]
async fn a_monitor_on_the_whole_prefix_does_not_hide_a_gone_node() {
    init_tracing();
    let nats = NatsServer::start();
    // The defaults: a 5 s request timeout and a 10 s heartbeat timeout.
    let config = NatsAdapterConfig::new().with_heartbeat_interval(Duration::from_millis(500));
    let nodes = [
        node_with(connect(&nats.url()).await, config.clone()).await,
        node_with(connect(&nats.url()).await, config).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let _b = client(&nodes[1].io, "/").await;
    let remote = nodes[0].io.fetch_sockets().await.unwrap().pop().unwrap();
    let monitor = connect(&nats.url()).await;
    let _all = monitor.subscribe("socket.io.>").await.unwrap();
    monitor.flush().await.unwrap();
    // A crash: no goodbye.
    nodes[1].client.drain().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let err = remote.join("r").await.unwrap_err();
    let took = t.elapsed();
    eprintln!("gone node found in {took:?} with a monitor on socket.io.>");
    assert!(matches!(err, Error::NodeGone { .. }), "{err}");
    // A probe 50 ms into the wait, then its 500 ms timeout.
    assert!(took < Duration::from_millis(900), "{took:?}");
}

// 7. Huge durations used to panic, and a node wrote ack timeouts the others refused.
#[tokio::test]
async fn huge_timeouts_saturate_and_cross_nodes() {
    init_tracing();
    let nats = NatsServer::start();
    let huge = test_config().with_heartbeat_interval(Duration::MAX);
    let nodes = [
        node_with(connect(&nats.url()).await, huge.clone()).await,
        node_with(connect(&nats.url()).await, test_config()).await,
    ];
    for n in &nodes {
        n.io.ns("/", join_own_id).await.unwrap();
    }
    let mut b = client(&nodes[1].io, "/").await;
    let acks = nodes[0]
        .io
        .timeout(Duration::MAX)
        .emit_with_ack::<_, String>("q", &())
        .await
        .unwrap();
    let q = b.next().await;
    assert!(q.starts_with("42"), "{q}");
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    b.send(&format!(r#"43{id}["a"]"#)).await;
    let acks: Vec<_> = tokio::time::timeout(Duration::from_secs(2), acks.collect())
        .await
        .expect("the ack stream ends once the remote client answered");
    assert_eq!(acks.len(), 1);

    nodes[1].handle.on_server_event("/", "ping", async |ev| {
        let _ = ev.ack(&"pong").await;
    });
    let answers = nodes[0]
        .handle
        .emit_server_with_ack::<_, String>("/", "ping", &(), Some(Duration::MAX))
        .await
        .unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].1.as_ref().unwrap(), "pong");
}

#[tokio::test]
async fn a_remote_ack_timeout_is_capped_by_the_receiving_node() {
    init_tracing();
    let nats = NatsServer::start();
    let node = node_with(
        connect(&nats.url()).await,
        test_config().with_max_ack_timeout(Duration::from_millis(300)),
    )
    .await;
    node.io.ns("/", join_own_id).await.unwrap();
    let _silent = client(&node.io, "/").await;
    // A requester asking for an ack timeout of u64::MAX ms, which every node
    // used to refuse as out of range.
    let c = connect(&nats.url()).await;
    let me = Uid::new();
    let mut replies = c
        .subscribe(subjects("/").reply_filter(me.as_str()))
        .await
        .unwrap();
    c.flush().await.unwrap();
    let packet = Packet::event("/", Value::Str(r#"["q"]"#.into(), None));
    let opts = everyone();
    publish_as(
        &c,
        me,
        RequestOutBody::BroadcastWithAck {
            opts: &opts,
            packet: &packet,
            ack_timeout: Some(Duration::from_millis(u64::MAX)),
        },
        Some(subjects("/").reply(me.as_str(), "Req0000000000001")),
    )
    .await;
    let t = Instant::now();
    let mut got = Vec::new();
    while got.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(3), replies.next())
            .await
            .expect("the node answers within the cap")
            .unwrap();
        got.push(decode_response(msg.payload).unwrap().body);
    }
    assert_eq!(got[0], ResponseBody::AckCount(1));
    assert!(
        matches!(got[1], ResponseBody::Ack { result: Err(_), .. }),
        "{got:?}"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

// 8. Work started by other nodes' messages used to be unbounded.
#[tokio::test]
async fn work_started_by_other_nodes_messages_is_bounded() {
    init_tracing();
    let nats = NatsServer::start();
    let bounded = test_config().with_max_concurrent_work(4);
    let nodes = [
        node_with(connect(&nats.url()).await, bounded).await,
        node(&nats.url()).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (running, most) = (running.clone(), most.clone());
        nodes[0].handle.on_server_event("/", "slow", move |_ev| {
            let (running, most) = (running.clone(), most.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                running.fetch_sub(1, SeqCst);
            }
        });
    }
    for _ in 0..100 {
        nodes[1].handle.emit_server("/", "slow", &()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while nodes[0].handle.stats("/").unwrap().overloaded < 96 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            nodes[0].handle.stats("/")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 4);
    // The node still answers at once.
    let t = Instant::now();
    nodes[1].io.fetch_sockets().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

// 9. A connection drop that healed fast used to go unnoticed, and a request in
//    flight returned a partial answer as complete.
#[tokio::test]
async fn a_request_spanning_a_fast_failover_fails_with_connection_lost() {
    init_tracing();
    let mut cluster = NatsCluster::start(2);
    let urls = cluster.urls();
    let config = test_config().with_request_timeout(Duration::from_secs(3));
    // Node 0 on server 0, failing over to server 1; the rest on server 1.
    let client0 = async_nats::ConnectOptions::new()
        .no_echo()
        .retain_servers_order()
        .connect(vec![urls[0].clone(), urls[1].clone()])
        .await
        .unwrap();
    let nodes = [
        node_with(client0, config.clone()).await,
        node_with(connect(&urls[1]).await, config).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    // A node that answers probes but not requests keeps the request waiting.
    let stuck = Impostor::start(&urls[1], "/", Mode::Stuck).await;
    wait_count(
        &nodes[0],
        "/",
        3,
        Duration::from_secs(3),
        "the stuck node was never counted",
    )
    .await;
    let connects = || {
        nodes[0]
            .client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = connects();
    let io = nodes[0].io.clone();
    let fetch = tokio::spawn(async move { io.fetch_sockets().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    cluster.server(0).kill();
    let res = fetch.await.unwrap();
    let took = t.elapsed();
    while connects() == before {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "node 0 never failed over"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "request ended {took:?} after the server died, failover after {:?}: {res:?}",
        t.elapsed()
    );
    assert!(matches!(res, Err(Error::ConnectionLost)), "{res:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    drop(stuck);
}

// 10. Closing used to hang on a stalled connection.
#[tokio::test]
async fn closing_on_a_stalled_connection_returns_within_the_publish_timeout() {
    init_tracing();
    let nats = NatsServer::start();
    // async-nats's default ping interval (2 min): the client still believes it is
    // connected while the server is frozen, as it would for minutes in production.
    // A small command queue fills in a moment once the socket's buffer is full.
    let client = async_nats::ConnectOptions::new()
        .no_echo()
        .client_capacity(16)
        .connect(nats.url())
        .await
        .unwrap();
    let node = node_with(client, test_config()).await;
    node.io.ns("/", join_own_id).await.unwrap();
    nats.pause();
    // Fill the client's queue: emits start failing once it is full.
    let big = "x".repeat(64 * 1024);
    let t = Instant::now();
    while node.io.emit("fill", &big).await.is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the queue never filled"
        );
    }
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), node.io.close())
        .await
        .expect("close hung");
    let took = t.elapsed();
    nats.resume();
    // The goodbye and the flush, each within the 500 ms publish timeout.
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

// 11. Duplicate responses used to be counted as they came: a node that had
//     finished was waited for again, to the stream's deadline.
#[tokio::test]
async fn a_duplicate_ack_count_from_a_finished_node_is_ignored() {
    init_tracing();
    let nats = NatsServer::start();
    let config = test_config().with_request_timeout(Duration::from_secs(10));
    let nodes = [
        node_with(connect(&nats.url()).await, config.clone()).await,
        node_with(connect(&nats.url()).await, config).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let mut b = client(&nodes[1].io, "/").await;
    let liar = Impostor::start(&nats.url(), "/", Mode::DuplicateAcks).await;
    wait_count(
        &nodes[0],
        "/",
        3,
        Duration::from_secs(3),
        "the impostor was never counted",
    )
    .await;
    let t = Instant::now();
    let acks = nodes[0]
        .io
        .timeout(Duration::from_secs(10))
        .emit_with_ack::<_, String>("q", &())
        .await
        .unwrap();
    // The real node's client answers late: the liar has long finished, and sent
    // its count again, by then.
    let q = b.next().await;
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.send(&format!(r#"43{id}["a"]"#)).await;
    let acks: Vec<_> = acks.collect().await;
    let took = t.elapsed();
    assert_eq!(
        acks.len(),
        2,
        "the liar's one ack and the client's: {acks:?}"
    );
    assert!(took < Duration::from_millis(800), "waited {took:?}");
    assert!(nodes[0].handle.stats("/").unwrap().ignored_responses >= 1);
    drop(liar);
}

// 1 (the watchdog). A node whose receive loop ends leaves the cluster instead of
// beating while deaf.
#[tokio::test]
async fn a_node_whose_subscriptions_end_leaves_instead_of_beating_deaf() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    // The subscriptions end (the client is drained under the adapter).
    nodes[1].client.drain().await.unwrap();
    let t = Instant::now();
    while nodes[1].handle.server_count("/").is_some() {
        assert!(t.elapsed() < Duration::from_secs(2), "the deaf node stays");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while nodes[0].handle.server_count("/") != Some(1) {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the others still count it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// Found by the storm test: a remote join naming a socket id that is not connected
// (or rooms no socket matches) used to create room entries nothing removes.
#[tokio::test]
async fn remote_joins_of_sockets_that_do_not_exist_leave_nothing_behind() {
    let nats = NatsServer::start();
    let node = node(&nats.url()).await;
    node.io.ns("/", join_own_id).await.unwrap();
    let _a = client(&node.io, "/").await;
    let c = connect(&nats.url()).await;
    let mut ghost = BroadcastOptions::default();
    ghost.sid = Some(socketioxide_core::Sid::new());
    let mut nobody = everyone();
    nobody.rooms = vec!["no-such-room".into()].into();
    for opts in [&ghost, &nobody] {
        let rooms = vec!["leak".into(); 1];
        publish_as(
            &c,
            Uid::new(),
            RequestOutBody::AddSockets {
                opts,
                rooms: &rooms,
            },
            None,
        )
        .await;
    }
    // Applied in order: this one is handled after both joins.
    let mut all = everyone();
    all.rooms = Default::default();
    let rooms = vec!["real".into()];
    publish_as(
        &c,
        Uid::new(),
        RequestOutBody::AddSockets {
            opts: &all,
            rooms: &rooms,
        },
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut rooms = node.io.rooms().await.unwrap();
        rooms.sort();
        if rooms.len() >= 2 {
            assert!(!rooms.iter().any(|r| r == "leak"), "{rooms:?}");
            assert!(rooms.iter().any(|r| r == "real"), "{rooms:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{rooms:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
