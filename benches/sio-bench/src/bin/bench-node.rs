//! `bench-node`: one socket.io server of the `sio-bench` benchmark.
//!
//! ```text
//! bench-node --adapter local|redis|nats [--url BROKER_URL] [--port 0]
//!            [--redis-stream-buffer 1024] [--no-echo] [--prefix P]
//!            [--room-routing] [--nats-name NAME]
//! ```
//!
//! It listens on 127.0.0.1 (port 0: a free one) and prints the port it got, alone on
//! the first line of stdout. Load clients connect to `/` with `auth: {"room": "r3"}`
//! and join that room, or connect without a room and emit `join "r3"` with an ack:
//! on a nats node that is [`NatsHandle::join`], which with `--room-routing` returns
//! once the node is subscribed to the room (elsewhere `socket.join`); the ack
//! carries the nanoseconds the join took on the node (`{ns}`). The driver sends
//! work to `/ctl` as events with an ack; each is acknowledged once done:
//!
//! * `burst {count, size, binary, room, inflight}`: `count` broadcasts of
//!   `["m", seq, sent_ns, "<size chars>"]`, or `["b", seq, sent_ns, <size bytes>]`
//!   when `binary`, to everyone or to `room`, as fast as the adapter takes them with
//!   up to `inflight` emits in flight; answers `{emit_ns}`;
//! * `lat {rate, secs, size, room, rooms, delay_us}`: `rate × secs` such broadcasts
//!   at `rate` per second, the first after `delay_us`; with `rooms`, broadcast `seq`
//!   goes to `rooms[seq % rooms.len()]`;
//! * `acks {n}`: `n` sequential `timeout(5 s).emit_with_ack` to everyone; answers the
//!   nanoseconds until each one's last ack (`ns`) and the number of acks received;
//! * `fetch {n}` / `rooms {n}`: `n` sequential `fetch_sockets()` / `rooms()`;
//!   answers the nanoseconds of each request and the size of the last answer;
//! * `stats {}`: the NATS connection's counters (slow consumers, disconnects), the
//!   NATS client's message and byte counts, and the adapter's counters of `/`
//!   (`NatsHandle::stats`: broadcasts sent and received, room subscriptions).
//!
//! `sent_ns` is nanoseconds since the Unix epoch, the clock the driver reads when
//! a client receives the event: driver and nodes run on the same machine.

use std::{
    convert::Infallible,
    sync::{Arc, atomic::Ordering},
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
use socketioxide_nats::{
    ConnectionMonitor, NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle, async_nats,
};
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
    /// The adapter's prefix (NATS subjects, Redis channels): nodes with the same
    /// prefix on the same broker form one cluster. Default: the adapter's own.
    #[arg(long)]
    prefix: Option<String>,
    /// socketioxide-nats's room routing (`with_room_routing(true)`).
    #[arg(long)]
    room_routing: bool,
    /// The NATS connection's name, as nats-server's `/connz` shows it.
    #[arg(long)]
    nats_name: Option<String>,
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
    rooms: Vec<String>,
    delay_us: u64,
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
            rooms: Vec::new(),
            delay_us: 0,
        }
    }
}

/// What a load broadcast carries, built once per control event.
struct Payload {
    text: Arc<str>,
    bin: Bytes,
}

async fn emit_one<A: Adapter>(io: &SocketIo<A>, w: &Work, p: &Payload, seq: u64) {
    let room = match w.rooms.len() {
        0 => w.room.as_ref(),
        n => w.rooms.get(usize::try_from(seq).unwrap_or(0) % n),
    };
    let ops = match room {
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

async fn perform<A: Adapter>(io: SocketIo<A>, event: &str, w: Work, ctx: Ctx) -> Value {
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
            if w.delay_us > 0 {
                tokio::time::sleep(Duration::from_micros(w.delay_us)).await;
            }
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
        "stats" => {
            let mut out = json!({});
            if let Some(m) = &ctx.monitor {
                let s = m.stats();
                out = json!({
                    "slow_consumers": s.slow_consumers,
                    "disconnects": s.disconnects,
                    "server_errors": s.server_errors,
                    "client_errors": s.client_errors,
                });
            }
            if let Some(client) = &ctx.client {
                let c = client.statistics();
                out["client_in_msgs"] = json!(c.in_messages.load(Ordering::Relaxed));
                out["client_in_bytes"] = json!(c.in_bytes.load(Ordering::Relaxed));
                out["client_out_msgs"] = json!(c.out_messages.load(Ordering::Relaxed));
            }
            if let Some(a) = ctx.handle.as_ref().and_then(|h| h.stats("/")) {
                out["broadcasts_sent"] = json!(a.broadcasts_sent);
                out["broadcasts_received"] = json!(a.broadcasts_received);
                out["room_subscriptions"] = json!(a.room_subscriptions);
            }
            out
        }
        other => json!({ "error": format!("unknown control event {other:?}") }),
    }
}

/// What a nats node's handlers can reach besides socketioxide: the connection's
/// monitor and client, and the adapter's handle. Empty on the other adapters.
#[derive(Debug, Clone, Default)]
struct Ctx {
    monitor: Option<Arc<ConnectionMonitor>>,
    client: Option<async_nats::Client>,
    handle: Option<NatsHandle>,
}

/// The connect handler: the sockets are set up by connect middlewares, which
/// socketioxide awaits before it sends the CONNECT packet (it spawns the handler
/// after it), so that the driver's first event or broadcast never arrives before
/// the socket's handlers or rooms exist.
async fn connected<A: Adapter>(_: SocketRef<A>) {}

/// Middleware of `/`: join the room the load client asked for, and answer its
/// `join` events (see the module docs).
async fn join_room<A: Adapter>(
    s: SocketRef<A>,
    Data(auth): Data<Value>,
    handle: Option<NatsHandle>,
) -> Result<(), Infallible> {
    if let Some(room) = auth.get("room").and_then(Value::as_str) {
        s.join(room.to_owned());
    }
    s.on(
        "join",
        async move |s: SocketRef<A>, Data(room): Data<String>, ack: AckSender<A>| {
            let start = Instant::now();
            let res = match &handle {
                Some(h) => h.join(s.ns(), s.id, room).await.map_err(|e| e.to_string()),
                None => {
                    s.join(room);
                    Ok(())
                }
            };
            let answer = match res {
                Ok(()) => json!({ "ns": elapsed_ns(start) }),
                Err(e) => {
                    eprintln!("bench-node: join failed: {e}");
                    json!({ "ns": elapsed_ns(start), "error": e })
                }
            };
            let _ = ack.send(&answer);
        },
    );
    Ok(())
}

/// Middleware of `/ctl`: the driver's control socket lives in its own namespace,
/// so it receives none of the broadcasts it triggers on `/`.
async fn on_control<A: Adapter>(s: SocketRef<A>, ctx: Ctx) -> Result<(), Infallible> {
    for event in ["burst", "lat", "acks", "fetch", "rooms", "stats"] {
        let ctx = ctx.clone();
        s.on(
            event,
            async move |io: SocketIo<A>, Data(w): Data<Work>, ack: AckSender<A>| {
                let res = perform(io, event, w, ctx).await;
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
            io.ns(
                "/",
                connected::<LocalAdapter>.with(
                    async |s: SocketRef<LocalAdapter>, auth: Data<Value>| {
                        join_room(s, auth, None).await
                    },
                ),
            );
            io.ns(
                "/ctl",
                connected::<LocalAdapter>
                    .with(async |s: SocketRef<LocalAdapter>| on_control(s, Ctx::default()).await),
            );
            serve(layer, args.port).await
        }
        "redis" => {
            // TCP_NODELAY, as async-nats and the websockets have it (redis-rs
            // defaults to Nagle's algorithm, which would delay pipelined PUBLISHes).
            let info = redis_client::IntoConnectionInfo::into_connection_info(args.url)?
                .set_tcp_settings(redis_client::io::tcp::TcpSettings::default().set_nodelay(true));
            let client = redis_client::Client::open(info)?;
            let mut config = RedisAdapterConfig::new().with_stream_buffer(args.redis_stream_buffer);
            if let Some(prefix) = args.prefix {
                config = config.with_prefix(prefix);
            }
            let ctr = RedisAdapterCtr::new_with_redis_config(&client, config).await?;
            let (layer, io) = builder.with_adapter::<RedisAdapter<_>>(ctr).build_layer();
            io.ns(
                "/",
                connected.with(async |s: SocketRef<RedisAdapter<_>>, auth: Data<Value>| {
                    join_room(s, auth, None).await
                }),
            )
            .await?;
            io.ns(
                "/ctl",
                connected.with(async |s: SocketRef<RedisAdapter<_>>| {
                    on_control(s, Ctx::default()).await
                }),
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
            if let Some(name) = &args.nats_name {
                options = options.name(name);
            }
            let client = options.connect(args.url).await?;
            let mut config = NatsAdapterConfig::new().with_room_routing(args.room_routing);
            if let Some(prefix) = args.prefix {
                config = config.with_prefix(prefix);
            }
            let ctr = NatsAdapterCtr::new_with_nats_config(client.clone(), config);
            let handle = ctr.handle();
            let (layer, io) = builder.with_adapter::<NatsAdapter<_>>(ctr).build_layer();
            let h = handle.clone();
            io.ns(
                "/",
                connected.with(
                    async move |s: SocketRef<NatsAdapter<_>>, auth: Data<Value>| {
                        join_room(s, auth, Some(h.clone())).await
                    },
                ),
            )
            .await?;
            let ctx = Ctx {
                monitor: Some(monitor),
                client: Some(client),
                handle: Some(handle),
            };
            io.ns(
                "/ctl",
                connected.with(async move |s: SocketRef<NatsAdapter<_>>| {
                    on_control(s, ctx.clone()).await
                }),
            )
            .await?;
            serve(layer, args.port).await
        }
        other => Err(format!("unknown adapter {other:?}: local, redis or nats").into()),
    }
}
