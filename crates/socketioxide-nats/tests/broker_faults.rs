//! Broker faults over a real 3-server NATS cluster: a server killed while traffic
//! flows (failover, with the loss and the gap measured), a frozen server (SIGSTOP)
//! left within 15 s with the recommended client settings, and a slow consumer
//! reported instead of dropping silently.
//!
//! The figures are printed (`cargo test --test broker_faults -- --nocapture`).

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;
use futures_util::StreamExt;
use socketioxide_nats::{
    ConnectionMonitor, RECOMMENDED_CONNECTION_TIMEOUT, RECOMMENDED_PING_INTERVAL,
    async_nats::{self, ConnectOptions},
};

/// A client of the cluster that starts on server `first` and knows all of them.
async fn cluster_client(
    urls: &[String],
    first: usize,
    options: ConnectOptions,
) -> async_nats::Client {
    let mut order: Vec<String> = urls.to_vec();
    order.rotate_left(first);
    options
        .retain_servers_order()
        .connect(order)
        .await
        .expect("cannot connect to the test cluster")
}

/// The port of the server a client is connected to.
fn server_port(client: &async_nats::Client) -> u16 {
    client.server_info().port
}

/// Records when each sequence number reached a client.
struct Arrivals(Arc<Mutex<Vec<(u64, Instant)>>>);

impl Arrivals {
    fn record(client: Client) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let mut rx = client.rx;
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let text = String::from(p);
                // 42["seq",N]
                if let Some(n) = text
                    .strip_prefix(r#"42["seq","#)
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                {
                    sink.lock().unwrap().push((n, Instant::now()));
                }
            }
        });
        Self(log)
    }
}

#[tokio::test]
async fn killing_a_nodes_server_loses_only_in_flight_messages() {
    init_tracing();
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let opts = || {
        ConnectOptions::new()
            .ping_interval(Duration::from_secs(1))
            .connection_timeout(Duration::from_secs(1))
    };
    // Node i starts on server i.
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(node_with(cluster_client(&urls, i, opts()).await, test_config()).await);
    }
    start_ns!(nodes, "/", join_own_id);
    let on_dying = client(&nodes[0].io, "/").await;
    let other = client(&nodes[2].io, "/").await;
    let (dying_id, other_id) = (on_dying.id.clone(), other.id.clone());
    let arrivals = Arrivals::record(on_dying);
    let mut other = other;

    // Node 1 emits a numbered message every 2 ms; server 0 (node 0's) dies after 1 s.
    const TOTAL: u64 = 1500;
    let emitter = nodes[1].io.clone();
    let traffic = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        let mut failed = 0;
        for n in 0..TOTAL {
            tick.tick().await;
            if emitter.emit("seq", &n).await.is_err() {
                failed += 1;
            }
        }
        failed
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_port = cluster.server(0).port();
    let killed_at = Instant::now();
    cluster.server(0).kill();
    let failed = traffic.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // drain `other`, which got every message too
    while tokio::time::timeout(Duration::from_millis(50), other.rx.recv())
        .await
        .is_ok_and(|p| p.is_some())
    {}

    let got = arrivals.0.lock().unwrap().clone();
    let seqs: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "duplicated or reordered messages"
    );
    let lost = TOTAL - seqs.len() as u64;
    let gap = got
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .max()
        .unwrap_or_default();
    let last_before = got.iter().filter(|(_, t)| *t < killed_at).count();
    eprintln!(
        "failover: {lost} of {TOTAL} messages lost (emit errors {failed}), longest gap {gap:?}, \
         {last_before} delivered before the kill, node 0 moved from port {killed_port} to {}",
        server_port(&nodes[0].client)
    );
    assert_ne!(server_port(&nodes[0].client), killed_port);
    // Only what was in flight during the switch may be lost: at 500 msg/s a gap
    // of a fraction of a second.
    assert!(lost <= 250, "{lost} messages lost");
    assert!(gap < Duration::from_millis(1500), "gap {gap:?}");
    assert_eq!(*seqs.last().unwrap(), TOTAL - 1, "the tail was lost");

    // Every operation works again across the cluster.
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_cluster(&refs, "/").await;
    let mut ids: Vec<String> = nodes[1]
        .io
        .fetch_sockets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.data().id.to_string())
        .collect();
    ids.sort();
    let mut want = vec![dying_id.clone(), other_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let remote = nodes[2]
        .io
        .to(dying_id.clone())
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .unwrap();
    remote.join("after-failover").await.unwrap();
    assert!(
        nodes[1]
            .io
            .rooms()
            .await
            .unwrap()
            .iter()
            .any(|r| r == "after-failover")
    );
    let before = arrivals.0.lock().unwrap().len();
    nodes[2]
        .io
        .to("after-failover")
        .emit("seq", &TOTAL)
        .await
        .unwrap();
    let deadline = Instant::now() + RECV_TIMEOUT;
    while arrivals.0.lock().unwrap().len() == before {
        assert!(Instant::now() < deadline, "no delivery after failover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    recv_none(&mut other.rx, 200).await;
}

#[tokio::test]
async fn a_frozen_server_is_left_within_15s_with_the_recommended_settings() {
    init_tracing();
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let monitor = ConnectionMonitor::new();
    let frozen_side = node_with(
        cluster_client(&urls, 0, monitor.recommended_options()).await,
        test_config(),
    )
    .await;
    let far_side = node_with(
        cluster_client(&urls, 1, ConnectionMonitor::new().recommended_options()).await,
        test_config(),
    )
    .await;
    let nodes = [frozen_side, far_side];
    start_ns!(nodes, "/", join_own_id);
    let mut far = client(&nodes[1].io, "/").await;
    let frozen_port = cluster.servers()[0].port();

    cluster.servers()[0].pause();
    let frozen_at = Instant::now();
    let bound = test_config().publish_timeout + Duration::from_millis(300);
    let mut slowest_emit = Duration::ZERO;
    let (mut ok, mut unreachable) = (0, 0);
    let recovered = loop {
        let elapsed = frozen_at.elapsed();
        assert!(
            elapsed < Duration::from_secs(15),
            "still not failed over after {elapsed:?}: {:?}",
            monitor.stats()
        );
        let t = Instant::now();
        match nodes[0].io.emit("probe", &()).await {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(e.to_string().contains("unreachable"), "{e}");
                unreachable += 1;
            }
        }
        slowest_emit = slowest_emit.max(t.elapsed());
        assert!(t.elapsed() < bound, "an emit took {:?}", t.elapsed());
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), far.rx.recv()).await {
            assert_eq!(String::from(p), r#"42["probe",null]"#);
            break frozen_at.elapsed();
        }
    };
    let stats = monitor.stats();
    eprintln!(
        "frozen server (ping {RECOMMENDED_PING_INTERVAL:?}, connection timeout \
         {RECOMMENDED_CONNECTION_TIMEOUT:?}): traffic resumed after {recovered:?}; emits meanwhile: \
         {ok} returned Ok (lost into the frozen connection), {unreachable} failed fast, slowest \
         {slowest_emit:?}; monitor {stats:?}"
    );
    assert_ne!(server_port(&nodes[0].client), frozen_port);
    assert!(stats.disconnects >= 1, "{stats:?}");

    // A request started now completes with both nodes.
    let refs = [&nodes[0], &nodes[1]];
    wait_cluster(&refs, "/").await;
    assert_eq!(nodes[0].io.fetch_sockets().await.unwrap().len(), 1);
    cluster.servers()[0].resume();
}

#[tokio::test]
async fn requests_during_a_single_server_outage_end_with_a_clear_error() {
    init_tracing();
    let mut nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let _a = client(&nodes[0].io, "/").await;
    let _b = client(&nodes[1].io, "/").await;

    nats.kill();
    // Started while the server is going down and while it is down: none hangs,
    // none passes a partial answer off as complete.
    let started = Instant::now();
    let acks = async {
        match nodes[0]
            .io
            .timeout(Duration::from_millis(200))
            .emit_with_ack::<_, ()>("ack?", &())
            .await
        {
            // Published before the client noticed: the stream ends without the
            // remote acks, with the local socket's own outcome only.
            Ok(stream) => Ok(stream.collect::<Vec<_>>().await.len()),
            Err(e) => Err(e.to_string()),
        }
    };
    let (rooms, sockets, acks) =
        tokio::join!(nodes[0].io.rooms(), nodes[1].io.fetch_sockets(), acks);
    let elapsed = started.elapsed();
    let bound = test_config().publish_timeout + Duration::from_millis(300);
    assert!(elapsed < bound, "requests took {elapsed:?}");
    for (what, err) in [
        ("rooms", rooms.err().map(|e| e.to_string())),
        ("fetch_sockets", sockets.err().map(|e| e.to_string())),
    ] {
        let err = err.unwrap_or_else(|| panic!("{what} succeeded with NATS down"));
        assert!(err.contains("NATS"), "{what}: unclear error {err}");
    }
    match acks {
        Ok(items) => assert_eq!(items, 1, "only the local socket's (timed out) ack"),
        Err(err) => assert!(err.contains("NATS"), "emit_with_ack: unclear error {err}"),
    }

    nats.restart();
    let refs = [&nodes[0], &nodes[1]];
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(s) = nodes[0].io.fetch_sockets().await
            && s.len() == 2
        {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_cluster(&refs, "/").await;
}

#[tokio::test]
async fn a_slow_consumer_is_counted_and_logged_and_the_node_recovers() {
    init_tracing();
    let nats = NatsServer::start();
    let monitor = ConnectionMonitor::new();
    // A tiny subscription buffer stands in for a node too busy to read.
    let slow_client = monitor
        .recommended_options()
        .subscription_capacity(2)
        .connect(nats.url())
        .await
        .unwrap();
    let nodes = [
        node_with(slow_client, test_config()).await,
        node(&nats.url()).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let mut slow: Vec<Client> = Vec::new();
    for _ in 0..20 {
        slow.push(client(&nodes[0].io, "/").await);
    }

    for n in 0..20_000u32 {
        nodes[1].io.emit("flood", &n).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitor.stats().slow_consumers == 0 {
        assert!(
            Instant::now() < deadline,
            "no slow consumer reported: {:?}",
            monitor.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = monitor.stats();
    eprintln!("slow consumer: {stats:?}");

    // Once the flood is over the node serves normally again.
    let mut probe = client(&nodes[0].io, "/").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    'recovered: loop {
        nodes[1]
            .io
            .to(probe.id.clone())
            .emit("probe", &())
            .await
            .unwrap();
        // Flood messages still queued when the probe socket joined come first.
        while let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(200), probe.rx.recv()).await
        {
            let p = String::from(p);
            if p == r#"42["probe",null]"# {
                break 'recovered;
            }
            assert!(p.starts_with(r#"42["flood","#), "{p}");
        }
        assert!(Instant::now() < deadline, "the node never recovered");
    }
    assert_eq!(nodes[1].io.fetch_sockets().await.unwrap().len(), 21);
    drop(slow);
}
