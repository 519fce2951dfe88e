//! `bench-node`: one socket.io server of the `sio-bench` benchmark.
//!
//! ```text
//! bench-node --adapter local|redis|nats [--url BROKER_URL] [--port 0]
//!            [--redis-stream-buffer 1024]
//! ```
//!
//! It listens on 127.0.0.1 (port 0: a free one) and prints the port it got, alone on
//! the first line of stdout. Load clients connect to `/` with `auth: {"room": "r3"}`
//! and join that room. The driver sends work to `/ctl` as events with an ack; each
//! is acknowledged once done:
//!
//! * `burst {count, size, binary, room, inflight}`: `count` broadcasts of
//!   `["m", seq, sent_ns, "<size chars>"]`, or `["b", seq, sent_ns, <size bytes>]`
//!   when `binary`, to everyone or to `room`, as fast as the adapter takes them with
//!   up to `inflight` emits in flight; answers `{emit_ns}`;
//! * `lat {rate, secs, size}`: `rate × secs` such broadcasts at `rate` per second;
//! * `acks {n}`: `n` sequential `timeout(5 s).emit_with_ack` to everyone; answers the
//!   nanoseconds until each one's last ack (`ns`) and the number of acks received;
//! * `fetch {n}` / `rooms {n}`: `n` sequential `fetch_sockets()` / `rooms()`;
//!   answers the nanoseconds of each request and the size of the last answer;
//! * `stats {}`: the NATS connection's counters (slow consumers, disconnects).
//!
//! `sent_ns` is nanoseconds since the Unix epoch, the clock the driver reads when
//! a client receives the event: driver and nodes run on the same machine.

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    adapter::{Adapter, LocalAdapter},
    extract::{AckSender, Data, SocketRef},
    handler::ConnectHandler,
    layer::SocketIoLayer,
};
use socketioxide_nats::{ConnectionMonitor, NatsAdapter, NatsAdapterCtr};
use socketioxide_redis::{
    RedisAdapter, RedisAdapterConfig, RedisAdapterCtr, drivers::redis::redis_client,
};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "One socket.io node of sio-bench")]
struct Args {
    /// The adapter: local, redis or nats.
    #[arg(long, default_value = "local")]
    adapter: String,
    /// The broker's URL (redis://… or nats://…); unused by `local`.
    #[arg(long, default_value = "")]
    url: String,
    /// The port to listen on, 0 for a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// socketioxide-redis's receive channel size (`stream_buffer`; its default is
    /// 1024, beyond which it drops incoming messages).
    #[arg(long, default_value_t = 1024)]
    redis_stream_buffer: usize,
    /// Build the NATS connection with `no_echo` (this node is its only user).
    #[arg(long)]
    no_echo: bool,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The arguments of every control event (each uses a few of them).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Work {
    count: u64,
    size: usize,
    binary: bool,
    room: Option<String>,
    inflight: usize,
    rate: u64,
    secs: u64,
    n: u64,
}

impl Default for Work {
    fn default() -> Self {
        Self {
            count: 0,
            size: 64,
            binary: false,
            room: None,
            inflight: 1,
            rate: 1000,
            secs: 1,
            n: 0,
        }
    }
}

/// What a load broadcast carries, built once per control event.
struct Payload {
    text: Arc<str>,
    bin: Bytes,
}

async fn emit_one<A: Adapter>(io: &SocketIo<A>, w: &Work, p: &Payload, seq: u64) {
    let ops = match &w.room {
        Some(room) => io.to(room.clone()),
        None => io.broadcast(),
    };
    let res = if w.binary {
        ops.emit("b", &(seq, now_ns(), p.bin.clone())).await
    } else {
        ops.emit("m", &(seq, now_ns(), &*p.text)).await
    };
    if let Err(e) = res {
        eprintln!("bench-node: emit failed: {e}");
    }
}

async fn perform<A: Adapter>(io: SocketIo<A>, event: &str, w: Work, monitor: Monitor) -> Value {
    let payload = Payload {
        text: "x".repeat(w.size).into(),
        bin: Bytes::from(vec![0xA5u8; w.size]),
    };
    match event {
        "burst" => {
            let start = Instant::now();
            let (io, w, p) = (&io, &w, &payload);
            futures_util::stream::iter(0..w.count)
                .for_each_concurrent(w.inflight.max(1), |seq| emit_one(io, w, p, seq))
                .await;
            json!({ "emit_ns": elapsed_ns(start) })
        }
        "lat" => {
            let total = w.rate * w.secs;
            let mut tick =
                tokio::time::interval(Duration::from_nanos(1_000_000_000 / w.rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for seq in 0..total {
                tick.tick().await;
                emit_one(&io, &w, &payload, seq).await;
            }
            json!({ "sent": total })
        }
        "acks" => {
            let mut ns = Vec::with_capacity(usize::try_from(w.n).unwrap_or(0));
            let mut acked = 0u64;
            let mut errors = 0u64;
            for seq in 0..w.n {
                let start = Instant::now();
                match io
                    .timeout(Duration::from_secs(5))
                    .emit_with_ack::<_, Value>("q", &seq)
                    .await
                {
                    Ok(stream) => {
                        stream
                            .for_each(|(_, r)| {
                                if r.is_ok() {
                                    acked += 1;
                                } else {
                                    errors += 1;
                                }
                                std::future::ready(())
                            })
                            .await;
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("bench-node: emit_with_ack failed: {e}");
                    }
                }
                ns.push(elapsed_ns(start));
            }
            json!({ "ns": ns, "acked": acked, "errors": errors })
        }
        "fetch" | "rooms" => {
            let mut ns = Vec::with_capacity(usize::try_from(w.n).unwrap_or(0));
            let mut size = 0usize;
            let mut errors = 0u64;
            for _ in 0..w.n {
                let start = Instant::now();
                let res = if event == "rooms" {
                    io.rooms().await.map(|r| r.len())
                } else {
                    io.fetch_sockets().await.map(|s| s.len())
                };
                ns.push(elapsed_ns(start));
                match res {
                    Ok(len) => size = len,
                    Err(e) => {
                        errors += 1;
                        eprintln!("bench-node: {event} failed: {e}");
                    }
                }
            }
            json!({ "ns": ns, "size": size, "errors": errors })
        }
        "stats" => match monitor {
            Some(m) => {
                let s = m.stats();
                json!({
                    "slow_consumers": s.slow_consumers,
                    "disconnects": s.disconnects,
                    "server_errors": s.server_errors,
                    "client_errors": s.client_errors,
                })
            }
            None => json!({}),
        },
        other => json!({ "error": format!("unknown control event {other:?}") }),
    }
}

type Monitor = Option<Arc<ConnectionMonitor>>;

/// The connect handler: the sockets are set up by connect middlewares, which
/// socketioxide awaits before it sends the CONNECT packet (it spawns the handler
/// after it), so that the driver's first event or broadcast never arrives before
/// the socket's handlers or rooms exist.
async fn connected<A: Adapter>(_: SocketRef<A>) {}

/// Middleware of `/`: join the room the load client asked for.
async fn join_room<A: Adapter>(s: SocketRef<A>, Data(auth): Data<Value>) -> Result<(), Infallible> {
    if let Some(room) = auth.get("room").and_then(Value::as_str) {
        s.join(room.to_owned());
    }
    Ok(())
}

/// Middleware of `/ctl`: the driver's control socket lives in its own namespace,
/// so it receives none of the broadcasts it triggers on `/`.
async fn on_control<A: Adapter>(s: SocketRef<A>, monitor: Monitor) -> Result<(), Infallible> {
    for event in ["burst", "lat", "acks", "fetch", "rooms", "stats"] {
        let monitor = monitor.clone();
        s.on(
            event,
            async move |io: SocketIo<A>, Data(w): Data<Work>, ack: AckSender<A>| {
                let res = perform(io, event, w, monitor).await;
                if let Err(e) = ack.send(&res) {
                    eprintln!("bench-node: cannot answer {event}: {e}");
                }
            },
        );
    }
    Ok(())
}

async fn serve<A: Adapter>(
    layer: SocketIoLayer<A>,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>> {
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?.port());
    // Small frames at a steady rate: Nagle's algorithm would hold them back.
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
    let args = Args::parse();
    // Bursts are emitted faster than a websocket drains: a deep per-socket buffer,
    // the same for every adapter, keeps socketioxide from dropping packets (the
    // default of 128 would turn the throughput load into a buffer-size test).
    let builder = SocketIo::builder()
        .ack_timeout(Duration::from_secs(5))
        .max_buffer_size(1 << 20);
    match args.adapter.as_str() {
        "local" => {
            let (layer, io) = builder.build_layer();
            io.ns("/", connected::<LocalAdapter>.with(join_room));
            io.ns(
                "/ctl",
                connected::<LocalAdapter>
                    .with(async |s: SocketRef<LocalAdapter>| on_control(s, None).await),
            );
            serve(layer, args.port).await
        }
        "redis" => {
            // TCP_NODELAY, as async-nats and the websockets have it (redis-rs
            // defaults to Nagle's algorithm, which would delay pipelined PUBLISHes).
            let info = redis_client::IntoConnectionInfo::into_connection_info(args.url)?
                .set_tcp_settings(redis_client::io::tcp::TcpSettings::default().set_nodelay(true));
            let client = redis_client::Client::open(info)?;
            let config = RedisAdapterConfig::new().with_stream_buffer(args.redis_stream_buffer);
            let ctr = RedisAdapterCtr::new_with_redis_config(&client, config).await?;
            let (layer, io) = builder.with_adapter::<RedisAdapter<_>>(ctr).build_layer();
            io.ns("/", connected.with(join_room)).await?;
            io.ns(
                "/ctl",
                connected.with(async |s: SocketRef<RedisAdapter<_>>| on_control(s, None).await),
            )
            .await?;
            serve(layer, args.port).await
        }
        "nats" => {
            let monitor = Arc::new(ConnectionMonitor::new());
            let mut options = monitor.recommended_options();
            if args.no_echo {
                options = options.no_echo();
            }
            let client = options.connect(args.url).await?;
            let ctr = NatsAdapterCtr::new_with_nats(client);
            let (layer, io) = builder.with_adapter::<NatsAdapter<_>>(ctr).build_layer();
            io.ns("/", connected.with(join_room)).await?;
            let m = Some(monitor);
            io.ns(
                "/ctl",
                connected
                    .with(async move |s: SocketRef<NatsAdapter<_>>| on_control(s, m.clone()).await),
            )
            .await?;
            serve(layer, args.port).await
        }
        other => Err(format!("unknown adapter {other:?}: local, redis or nats").into()),
    }
}
