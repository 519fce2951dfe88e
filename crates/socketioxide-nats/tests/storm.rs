//! A live 3-node cluster under a storm of hostile but well-formed messages of
//! every type (nats_harness::hostile): forged origins and real nodes' ids, packets
//! of the other parser, huge counts and timeouts, reply subjects aimed at real
//! nodes, unexpected and duplicate responses, hostile room names. After the storm
//! every node still delivers, answers requests in under a second, counts exactly
//! the real nodes, and the heap is back near where it started.
#![allow(unsafe_code)] // the counting GlobalAlloc below, test-only

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::BTreeMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use common::*;
use nats_harness::hostile::{StormTarget, storm};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

const MESSAGES: usize = 5_000;

/// Test clients kept alive to the end of the test.
#[allow(dead_code)]
struct Kept(Vec<tokio::task::JoinHandle<usize>>, Vec<Client>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_hostile_storm_every_node_delivers_answers_and_counts_only_real_nodes() {
    init_tracing();
    let nats = NatsServer::start();
    // Remote ack timeouts are capped at 1 s here, so that the ack forwarders the
    // storm starts (its acks never come) are gone by the time memory is measured.
    let config = test_config().with_max_ack_timeout(Duration::from_secs(1));
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node_with(connect(&nats.url()).await, config.clone()).await);
    }
    let nodes: [Node; 3] = nodes.try_into().unwrap_or_else(|_| unreachable!());
    start_ns!(nodes, "/", join_own_id);
    // Let discovery windows end and warm every path up once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for n in &nodes {
        n.io.fetch_sockets().await.unwrap();
    }
    let target = StormTarget {
        prefix: "socket.io".into(),
        ns: "/".into(),
        nodes: nodes
            .iter()
            .map(|n| n.handle.server_id("/").unwrap())
            .collect(),
    };
    // One publisher for both storms: its own buffers grow with the first.
    let stormer = connect(&nats.url()).await;
    let before = live_mib();
    // Buffers that grow to the largest message seen (the clients' read buffers,
    // the channels' blocks) are kept after a first storm; a second storm of the
    // same size must not add to them: that is what a leak would do.
    let (first, _kept1) = storm_once(&stormer, &nodes, &target, 0x5eed).await;
    let (second, _kept2) = storm_once(&stormer, &nodes, &target, 0xbeef).await;
    eprintln!(
        "heap: {before:.1} MiB before, {first:.1} MiB after a storm, {second:.1} MiB after another"
    );
    assert!(
        first - before < 8.0,
        "heap grew from {before:.1} to {first:.1} MiB"
    );
    assert!(
        second - first < 1.0,
        "heap grew from {first:.1} to {second:.1} MiB with a second storm"
    );
}

/// One storm of [`MESSAGES`], with sockets on every node taking what reaches them;
/// checks the cluster afterwards and returns the heap once the storm's sockets
/// are gone.
async fn storm_once(
    stormer: &socketioxide_nats::async_nats::Client,
    nodes: &[Node; 3],
    target: &StormTarget,
    seed: u64,
) -> (f64, Kept) {
    let mut drains = Vec::new();
    for n in nodes {
        for _ in 0..2 {
            let mut c = client(&n.io, "/").await;
            drains.push(tokio::spawn(async move {
                let mut n = 0usize;
                while c.rx.recv().await.is_some() {
                    n += 1;
                }
                n
            }));
        }
    }
    let messages = storm(seed, MESSAGES, target);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &messages {
        *kinds.entry(m.what).or_default() += 1;
    }
    let t = Instant::now();
    for (i, m) in messages.into_iter().enumerate() {
        match m.reply {
            Some(reply) => stormer
                .publish_with_reply(m.subject, reply, m.payload)
                .await
                .unwrap(),
            None => stormer.publish(m.subject, m.payload).await.unwrap(),
        }
        if i % 500 == 0 {
            stormer.flush().await.unwrap();
        }
    }
    stormer.flush().await.unwrap();
    let sent_in = t.elapsed();
    let peak = live_mib();
    eprintln!("{MESSAGES} hostile messages in {sent_in:?}, heap {peak:.1} MiB: {kinds:?}");

    // The storm's consequences settle: probes of forged ids time out (500 ms),
    // ack forwarders end at the 1 s cap.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Every node delivers to fresh sockets of every node.
    let mut sentinels = Vec::new();
    for n in nodes {
        sentinels.push(client(&n.io, "/").await);
    }
    for (i, n) in nodes.iter().enumerate() {
        let event = format!("after-{i}");
        n.io.emit(event.clone(), &()).await.unwrap();
        for c in sentinels.iter_mut() {
            let expected = format!(r#"42["{event}",null]"#);
            let deadline = Instant::now() + RECV_TIMEOUT;
            // Storm broadcasts still queued for the socket come first.
            loop {
                assert!(Instant::now() < deadline, "node {i} does not deliver");
                if c.next().await == expected {
                    break;
                }
            }
        }
    }
    // Every node answers in under a second and counts exactly the real nodes.
    for (i, n) in nodes.iter().enumerate() {
        let t = Instant::now();
        let sockets = n.io.fetch_sockets().await.unwrap();
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "node {i}: fetch took {took:?}"
        );
        assert!(sockets.len() >= 3, "node {i}: {} sockets", sockets.len());
        let t = Instant::now();
        n.io.rooms().await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "node {i}: rooms");
        assert_eq!(n.handle.server_count("/"), Some(3), "node {i}");
        let me = n.handle.server_id("/").unwrap();
        let mut others = n.handle.nodes("/").unwrap();
        others.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut real: Vec<_> = target.nodes.iter().filter(|u| **u != me).copied().collect();
        real.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(others, real, "node {i} counts a node that is not real");
        let stats = n.handle.stats("/").unwrap();
        eprintln!("node {i}: {stats:?}");
        assert_eq!(stats.panics, 0, "node {i}");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    for n in nodes {
        while n.handle.pending_requests("/") != Some(0) {
            assert!(Instant::now() < deadline, "requests left waiting");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // What the storm legitimately left (rooms it made the sockets join, packets
    // queued for them) goes with the sockets.
    // The test clients themselves stay until the end of the test: engineioxide's
    // test sockets panic when their client end goes away first.
    for n in nodes {
        n.io.local().disconnect().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    (live_mib(), Kept(drains, sentinels))
}
