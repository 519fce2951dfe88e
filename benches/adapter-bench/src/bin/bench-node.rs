//! One socket.io node of the benchmark, with the adapter chosen on the command line:
//! `bench-node local|redis|nats [BROKER_URL]`. It listens on a free port and prints
//! `bench-node listening on 127.0.0.1:PORT`.
//!
//! Clients connect to `/` with `auth: {"room": "..."}` and join that room. The
//! driver sends work over a control connection to `/ctl`, each event acked once
//! done:
//! * `burst {count, size, binary, room}`: `count` broadcasts of
//!   `["m", seq, sent_ns, pad]` (or `["b", seq, sent_ns, <size bytes>]`), to
//!   everyone or to `room`, as fast as the adapter takes them;
//! * `paced {count, rate, size}`: the same at `rate` per second;
//! * `acks {count}`: sequential `emit_with_ack` to all, returning each one's
//!   microseconds until every ack arrived;
//! * `fetch {count, kind}`: sequential `fetch_sockets()` or `rooms()`, returning
//!   microseconds per request and the last result's size.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    adapter::{Adapter, LocalAdapter},
    extract::{AckSender, Data, SocketRef},
};
use socketioxide_nats::{ConnectionMonitor, NatsAdapter, NatsAdapterCtr};
use socketioxide_redis::{RedisAdapter, RedisAdapterCtr, drivers::redis::redis_client};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct Work {
    count: u64,
    size: usize,
    binary: bool,
    room: Option<String>,
    rate: u64,
    kind: String,
}

async fn emit_one<A: Adapter>(io: &SocketIo<A>, w: &Work, seq: u64, pad: &Arc<str>, bin: &Bytes) {
    let ops = match &w.room {
        Some(room) => io.to(room.clone()),
        None => io.broadcast(),
    };
    let res = if w.binary {
        ops.emit("b", &(seq, now_ns(), bin.clone())).await
    } else {
        ops.emit("m", &(seq, now_ns(), &**pad)).await
    };
    if let Err(e) = res {
        eprintln!("bench-node: emit failed: {e}");
    }
}

async fn perform<A: Adapter>(io: SocketIo<A>, event: &str, w: Work) -> Value {
    let pad: Arc<str> = "x".repeat(w.size).into();
    let bin = Bytes::from(vec![7u8; w.size]);
    match event {
        "burst" => {
            let start = Instant::now();
            for seq in 0..w.count {
                emit_one(&io, &w, seq, &pad, &bin).await;
            }
            json!({ "emitUs": start.elapsed().as_micros() as u64 })
        }
        "paced" => {
            let mut tick =
                tokio::time::interval(Duration::from_nanos(1_000_000_000 / w.rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for seq in 0..w.count {
                tick.tick().await;
                emit_one(&io, &w, seq, &pad, &bin).await;
            }
            json!(true)
        }
        "acks" => {
            let mut us = Vec::new();
            let mut acked = 0usize;
            for _ in 0..w.count {
                let start = Instant::now();
                match io
                    .timeout(Duration::from_secs(5))
                    .emit_with_ack::<_, Value>("q", &1)
                    .await
                {
                    Ok(stream) => {
                        acked += stream
                            .filter(|(_, r)| std::future::ready(r.is_ok()))
                            .count()
                            .await
                    }
                    Err(e) => eprintln!("bench-node: emit_with_ack failed: {e}"),
                }
                us.push(start.elapsed().as_micros() as u64);
            }
            json!({ "us": us, "acked": acked })
        }
        "fetch" => {
            let mut us = Vec::new();
            let mut size = 0;
            for _ in 0..w.count {
                let start = Instant::now();
                size = if w.kind == "rooms" {
                    io.rooms().await.map(|r| r.len()).unwrap_or(0)
                } else {
                    io.fetch_sockets().await.map(|s| s.len()).unwrap_or(0)
                };
                us.push(start.elapsed().as_micros() as u64);
            }
            json!({ "us": us, "size": size })
        }
        other => json!({ "error": format!("unknown work {other}") }),
    }
}

async fn on_connect<A: Adapter>(s: SocketRef<A>, Data(auth): Data<Value>) {
    if let Some(room) = auth.get("room").and_then(Value::as_str) {
        s.join(room.to_owned());
    }
}

/// The driver's control socket lives in its own namespace, so it receives none
/// of the broadcasts it triggers on `/`.
async fn on_control<A: Adapter>(s: SocketRef<A>) {
    for event in ["burst", "paced", "acks", "fetch"] {
        s.on(
            event,
            async move |io: SocketIo<A>, Data(w): Data<Work>, ack: AckSender<A>| {
                let res = perform(io, event, w).await;
                let _ = ack.send(&res);
            },
        );
    }
}

async fn serve<A: Adapter>(
    layer: socketioxide::layer::SocketIoLayer<A>,
) -> Result<(), Box<dyn std::error::Error>> {
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "bench-node listening on 127.0.0.1:{}",
        listener.local_addr()?.port()
    );
    // Small frames at a steady rate: Nagle's algorithm would batch them.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let adapter = args.next().unwrap_or_else(|| "local".into());
    let url = args.next().unwrap_or_default();
    // Bursts are emitted faster than a websocket drains: a deep per-socket buffer
    // (the same for every adapter) keeps socketioxide from dropping packets.
    let builder = SocketIo::builder()
        .ack_timeout(Duration::from_secs(5))
        .max_buffer_size(1 << 20);
    match adapter.as_str() {
        "local" => {
            let (layer, io) = builder.build_layer();
            io.ns("/", on_connect::<LocalAdapter>);
            io.ns("/ctl", on_control::<LocalAdapter>);
            serve(layer).await
        }
        "redis" => {
            let client = redis_client::Client::open(url)?;
            let ctr = RedisAdapterCtr::new_with_redis(&client).await?;
            let (layer, io) = builder.with_adapter::<RedisAdapter<_>>(ctr).build_layer();
            io.ns("/", on_connect).await?;
            io.ns("/ctl", on_control).await?;
            serve(layer).await
        }
        "nats" => {
            let client = ConnectionMonitor::new()
                .recommended_options()
                .connect(url)
                .await?;
            let ctr = NatsAdapterCtr::new_with_nats(client);
            let (layer, io) = builder.with_adapter::<NatsAdapter<_>>(ctr).build_layer();
            io.ns("/", on_connect).await?;
            io.ns("/ctl", on_control).await?;
            serve(layer).await
        }
        other => Err(format!("unknown adapter {other:?}: local, redis or nats").into()),
    }
}
