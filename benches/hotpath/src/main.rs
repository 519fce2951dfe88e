//! The adapter's hot path, for profiling: `hotpath codec N` encodes and decodes N
//! broadcast requests in memory; `hotpath e2e N` has node A broadcast N events
//! through a real nats-server to 4 sockets on node B, in one process on a
//! single-threaded runtime so callgrind's instruction counts are repeatable.
//!
//! ```text
//! cargo build --release -p hotpath
//! valgrind --tool=callgrind target/release/hotpath e2e 20000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -60
//! ```
//! Compare `Ir / N` before and after a change (see benches/README.md).

use std::{borrow::Cow, time::Instant};

use bytes::Bytes;
use socketioxide::SocketIo;
use socketioxide_core::{
    Sid, Uid, Value,
    adapter::BroadcastOptions,
    packet::{Packet, PacketData},
};
use socketioxide_nats::{NatsAdapter, NatsAdapterCtr, async_nats};
use socketioxide_nats_protocol::message::{
    RequestBody, RequestOut, RequestOutBody, decode_request,
};

const SOCKETS: usize = 4;
const BATCH: u64 = 64;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "e2e".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    match mode.as_str() {
        "codec" => codec(n),
        "e2e" => e2e(n),
        other => {
            eprintln!("unknown mode {other:?}: use `codec N` or `e2e N`");
            std::process::exit(2);
        }
    }
}

fn sample_packet() -> Packet {
    let data = Value::Str(
        r#"["chat",{"from":"alice","text":"hello from the hot path, 64 bytes of text"}]"#.into(),
        None,
    );
    Packet {
        ns: "/".into(),
        inner: PacketData::Event(data, None),
    }
}

fn codec(n: u64) {
    let packet = sample_packet();
    let mut opts = BroadcastOptions::new(Sid::new());
    opts.rooms = vec![Cow::Borrowed("room-1")].into();
    let origin = Uid::new();
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        let encoded = RequestOut {
            origin,
            id: None,
            body: RequestOutBody::Broadcast {
                opts: &opts,
                packet: &packet,
            },
        }
        .encode();
        bytes += encoded.len();
        match decode_request(encoded) {
            Ok(req) => assert!(matches!(req.body, RequestBody::Broadcast { .. })),
            Err(e) => panic!("round trip failed: {e}"),
        }
    }
    let elapsed = start.elapsed();
    println!(
        "codec: {n} round trips, {} bytes each, {:.0} ns per encode+decode",
        bytes as u64 / n.max(1),
        elapsed.as_nanos() as f64 / n.max(1) as f64
    );
}

fn e2e(n: u64) {
    let nats = nats_harness::NatsServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let node = async || {
            let client = async_nats::connect(nats.url())
                .await
                .expect("cannot connect to nats-server");
            let (_svc, io) = SocketIo::builder()
                .with_adapter::<NatsAdapter<_>>(NatsAdapterCtr::new_with_nats(client))
                .build_svc();
            io.ns("/", async || {}).await.expect("namespace");
            io
        };
        let (a, b) = (node().await, node().await);
        let mut receivers = Vec::new();
        for _ in 0..SOCKETS {
            receivers.push(b.new_dummy_sock("/", ()).await);
        }
        // Wait until A knows B, so broadcasts are not sent to an empty cluster.
        while a.fetch_sockets().await.map_or(0, |s| s.len()) < SOCKETS {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for (_, rx) in &mut receivers {
            while rx.try_recv().is_ok() {} // the CONNECT packets
        }
        let counter = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let local = tokio::task::LocalSet::new();
        for (tx, mut rx) in receivers {
            let counter = counter.clone();
            local.spawn_local(async move {
                // The socket lives as long as its sender half.
                let _tx = tx;
                while let Some(packet) = rx.recv().await {
                    // A binary event is a text packet plus its attachment: count events.
                    if matches!(packet, engineioxide::Packet::Message(_)) {
                        counter.set(counter.get() + 1);
                    }
                }
            });
        }
        local
            .run_until(async {
                let start = Instant::now();
                let payload = Bytes::from_static(&[7u8; 64]);
                for i in 0..n {
                    // alternate text and binary events
                    let res = if i % 2 == 0 {
                        a.emit("chat", &("alice", "hello from the hot path")).await
                    } else {
                        a.emit("bin", &payload).await
                    };
                    if let Err(e) = res {
                        panic!("emit failed: {e}");
                    }
                    // Flow control: the dummy sockets' channels are bounded and a
                    // full one drops packets, so let each batch land first.
                    if i % BATCH == BATCH - 1 {
                        let want = (i + 1) * SOCKETS as u64;
                        let deadline = Instant::now() + std::time::Duration::from_secs(10);
                        while counter.get() < want {
                            if Instant::now() > deadline {
                                panic!("only {} of {want} delivered", counter.get());
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                }
                let want = n * SOCKETS as u64;
                let deadline = Instant::now() + std::time::Duration::from_secs(60);
                while counter.get() < want && Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                let elapsed = start.elapsed();
                println!(
                    "e2e: {n} broadcasts to {SOCKETS} remote sockets, {} of {want} delivered in {:.3} s ({:.0} broadcasts/s)",
                    counter.get(),
                    elapsed.as_secs_f64(),
                    n as f64 / elapsed.as_secs_f64()
                );
            })
            .await;
    });
}
