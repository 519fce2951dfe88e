//! A socket.io node with the NATS adapter, for the JavaScript acceptance suite.
//!
//! Run with `PORT=3001 NATS_URL=nats://127.0.0.1:4222 PARSER=msgpack e2e-node`
//! (`PORT=0` picks a free port and prints it).
//!
//! The suite drives every cluster operation through a client: a socket emits
//! `op` with a JSON description, this node performs it on the cluster and acks the
//! result. Every socket joins a room named after its id, and the rooms listed in
//! its `auth.rooms`. Namespaces `/` and `/custom` are served.

use std::{str::FromStr, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};
use socketioxide::{
    ParserConfig, SocketIo, SocketIoConfig,
    adapter::Adapter,
    extract::{AckSender, Data, SocketRef, State},
    handler::ConnectHandler,
    operators::BroadcastOperators,
    socket::Sid,
};
use socketioxide_nats::{
    ConnectionMonitor, NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle,
};

type Op = serde_json::Map<String, Value>;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn strings(op: &Op, key: &str) -> Vec<String> {
    match op.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Build the operator an `op` describes: namespace, rooms, exceptions, flags.
fn operators<A: Adapter>(
    io: &SocketIo<A>,
    s: &SocketRef<A>,
    op: &Op,
) -> Result<BroadcastOperators<A>, String> {
    let ns = op.get("ns").and_then(Value::as_str).unwrap_or("/");
    let mut ops = if op.get("fromSocket").and_then(Value::as_bool) == Some(true) {
        s.broadcast()
    } else {
        io.of(ns)
            .ok_or_else(|| format!("namespace {ns} not served"))?
    };
    let to = strings(op, "to");
    if !to.is_empty() {
        ops = ops.to(to);
    }
    let except = strings(op, "except");
    if !except.is_empty() {
        ops = ops.except(except);
    }
    if op.get("local").and_then(Value::as_bool) == Some(true) {
        ops = ops.local();
    }
    if op.get("volatile").and_then(Value::as_bool) == Some(true) {
        ops = ops.volatile();
    }
    if let Some(ms) = op.get("timeoutMs").and_then(Value::as_u64) {
        ops = ops.timeout(Duration::from_millis(ms));
    }
    Ok(ops)
}

fn acks_to_json<E: std::fmt::Display>(mut acks: Vec<(Sid, Result<Value, E>)>) -> Value {
    acks.sort_by_key(|(sid, _)| sid.to_string());
    Value::Array(
        acks.into_iter()
            .map(|(sid, r)| match r {
                Ok(v) => json!({ "id": sid.to_string(), "value": v }),
                Err(e) => json!({ "id": sid.to_string(), "error": e.to_string() }),
            })
            .collect(),
    )
}

async fn perform<A: Adapter>(
    io: SocketIo<A>,
    s: SocketRef<A>,
    handle: NatsHandle,
    monitor: ConnectionMonitor,
    op: Op,
) -> Result<Value, String>
where
    A::Error: std::fmt::Display,
{
    let name = op
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let event = op
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("event")
        .to_owned();
    let data = op.get("data").cloned().unwrap_or(Value::Null);
    let err = |e: &dyn std::fmt::Display| e.to_string();
    match name.as_str() {
        "emit" => {
            let ops = operators(&io, &s, &op)?;
            if op.get("binary").and_then(Value::as_bool) == Some(true) {
                let bin = bytes::Bytes::from_static(&[3, 4]);
                ops.emit(&event, &(1, "2", bin))
                    .await
                    .map_err(|e| err(&e))?;
            } else {
                ops.emit(&event, &data).await.map_err(|e| err(&e))?;
            }
            Ok(json!(true))
        }
        "emitWithAck" => {
            let ops = operators(&io, &s, &op)?;
            let stream = ops
                .emit_with_ack::<_, Value>(&event, &data)
                .await
                .map_err(|e| err(&e))?;
            Ok(acks_to_json(stream.collect().await))
        }
        "join" | "leave" => {
            let ops = operators(&io, &s, &op)?;
            let rooms = strings(&op, "rooms");
            if name == "join" {
                ops.join(rooms).await.map_err(|e| err(&e))?;
            } else {
                ops.leave(rooms).await.map_err(|e| err(&e))?;
            }
            Ok(json!(true))
        }
        "disconnect" => {
            operators(&io, &s, &op)?
                .disconnect()
                .await
                .map_err(|e| err(&e))?;
            Ok(json!(true))
        }
        "fetchSockets" => {
            let sockets = operators(&io, &s, &op)?
                .fetch_sockets()
                .await
                .map_err(|e| err(&e))?;
            let mut out = Vec::new();
            for r in sockets {
                let d = r.data();
                out.push(json!({ "id": d.id.to_string(), "serverId": d.server_id.to_string(), "ns": d.ns.to_string() }));
            }
            out.sort_by_key(|v| v["id"].as_str().unwrap_or_default().to_owned());
            Ok(Value::Array(out))
        }
        "rooms" => {
            let mut rooms: Vec<String> = operators(&io, &s, &op)?
                .rooms()
                .await
                .map_err(|e| err(&e))?
                .into_iter()
                .map(|r| r.to_string())
                .collect();
            rooms.sort();
            Ok(json!(rooms))
        }
        "info" => {
            let ns = op.get("ns").and_then(Value::as_str).unwrap_or("/");
            Ok(json!({
                "serverId": handle.server_id(ns).map(|u| u.to_string()),
                "serverCount": handle.server_count(ns),
                "pendingRequests": handle.pending_requests(ns),
                "slowConsumers": monitor.stats().slow_consumers,
                "disconnects": monitor.stats().disconnects,
            }))
        }
        "remote" => remote(io, &op, event, data).await,
        other => Err(format!("unknown op {other:?}")),
    }
}

/// Operations on one socket of any node, through socketioxide's `RemoteSocket`.
async fn remote<A: Adapter>(
    io: SocketIo<A>,
    op: &Op,
    event: String,
    data: Value,
) -> Result<Value, String>
where
    A::Error: std::fmt::Display,
{
    let ns = op.get("ns").and_then(Value::as_str).unwrap_or("/");
    let sid = op.get("sid").and_then(Value::as_str).ok_or("missing sid")?;
    let sid = Sid::from_str(sid).map_err(|e| e.to_string())?;
    let sockets = io
        .of(ns)
        .ok_or("namespace not served")?
        .fetch_sockets()
        .await
        .map_err(|e| e.to_string())?;
    let socket = sockets
        .into_iter()
        .find(|r| r.data().id == sid)
        .ok_or("no such socket in the cluster")?;
    let action = op.get("action").and_then(Value::as_str).unwrap_or_default();
    let rooms = strings(op, "rooms");
    match action {
        "emit" => socket
            .emit(&event, &data)
            .await
            .map(|_| json!(true))
            .map_err(|e| e.to_string()),
        "emitWithAck" => {
            // A remote socket's ack uses the owning node's ack timeout.
            let ack = socket
                .emit_with_ack::<_, Value>(&event, &data)
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        }
        "join" => socket
            .join(rooms)
            .await
            .map(|_| json!(true))
            .map_err(|e| e.to_string()),
        "leave" => socket
            .leave(rooms)
            .await
            .map(|_| json!(true))
            .map_err(|e| e.to_string()),
        "rooms" => {
            let mut r: Vec<String> = socket
                .rooms()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|r| r.to_string())
                .collect();
            r.sort();
            Ok(json!(r))
        }
        "disconnect" => socket
            .disconnect()
            .await
            .map(|_| json!(true))
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown remote action {other:?}")),
    }
}

/// Joins the socket's rooms and registers its handlers. A connect middleware, not
/// the connect handler: socketioxide awaits middlewares before it sends the
/// CONNECT packet, but spawns the handler after, so an event the client emits as
/// soon as it is connected could reach the socket before handlers set up there
/// exist (it is then dropped; seen under CPU load).
async fn set_up<A: Adapter>(
    s: SocketRef<A>,
    Data(auth): Data<Value>,
) -> Result<(), std::convert::Infallible>
where
    A::Error: std::fmt::Display,
{
    s.join(s.id);
    let rooms: Vec<String> = auth
        .get("rooms")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    s.join(rooms);
    s.on(
        "op",
        async |s: SocketRef<A>,
               io: SocketIo<A>,
               State(handle): State<NatsHandle>,
               State(monitor): State<ConnectionMonitor>,
               Data(op): Data<Op>,
               ack: AckSender<A>| {
            let res = match perform(io, s, handle, monitor, op).await {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "error": e }),
            };
            let _ = ack.send(&res);
        },
    );
    Ok(())
}

/// Everything happens in [`set_up`].
async fn on_connect<A: Adapter>(_: SocketRef<A>) {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "socketioxide_nats=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let port: u16 = env("PORT", "3000").parse()?;
    let urls: Vec<String> = env("NATS_URL", "nats://127.0.0.1:4222")
        .split(',')
        .map(str::to_owned)
        .collect();
    // Bound first, so the NATS connection can be named after the real port
    // (the soak test finds each node's subscriptions by that name).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let monitor = ConnectionMonitor::new();
    // The connection is this node's alone: no echo, as the adapter's docs recommend.
    let client = monitor
        .recommended_options()
        .no_echo()
        .name(format!("e2e-node:{port}"))
        .connect(urls)
        .await?;
    let config = NatsAdapterConfig::new()
        .with_heartbeat_interval(Duration::from_millis(500))
        .with_heartbeat_timeout(Duration::from_millis(2000));
    let ctr = NatsAdapterCtr::new_with_nats_config(client, config);
    let handle = ctr.handle();
    let handle_for_events = handle.clone();
    let builder = SocketIo::builder().with_config(SocketIoConfig::default());
    let builder = match env("PARSER", "default").as_str() {
        "msgpack" => builder.with_parser(ParserConfig::msgpack()),
        _ => builder.with_parser(ParserConfig::common()),
    };
    let (layer, io) = builder
        .ack_timeout(Duration::from_millis(1000))
        .with_state(handle)
        .with_state(monitor)
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_layer();
    io.ns("/", on_connect.with(set_up)).await?;
    io.ns("/custom", on_connect.with(set_up)).await?;
    relay_server_events(&io, &handle_for_events);
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    // PORT=0 picks a free port; the suite reads it from this line.
    println!("e2e-node listening on 127.0.0.1:{port}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Disconnects every socket and closes the namespaces, so the other
            // nodes are told this one leaves instead of timing it out.
            io.close().await;
        })
        .await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a process manager or `kill` sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// For the emitters' tests: the server-side event `relay` is delivered to this
/// node's sockets of its namespace as `relayed` with `{ "data": .., "from": .. }`
/// (and acknowledged with this node's id when the sender waits), and the custom
/// hook answers with this node's id and the request's data.
fn relay_server_events<A: Adapter>(io: &SocketIo<A>, handle: &NatsHandle) {
    for ns in ["/", "/custom"] {
        let io = io.clone();
        let me = handle.clone();
        handle.on_server_event(ns, "relay", move |ev| {
            let (io, me) = (io.clone(), me.clone());
            async move {
                let data: Value = ev.data().unwrap_or(Value::Null);
                let from = ev.origin().to_string();
                if let Some(nsp) = io.of(ns) {
                    let _ = nsp
                        .local()
                        .emit("relayed", &json!({ "data": data, "from": from }))
                        .await;
                }
                let node = me.server_id(ns).map(|u| u.to_string());
                let _ = ev.ack(&json!({ "node": node })).await;
            }
        });
        let me = handle.clone();
        handle.set_custom_hook(ns, move |req| {
            let me = me.clone();
            async move {
                let data: Value = req.data().unwrap_or(Value::Null);
                let node = me.server_id(ns).map(|u| u.to_string());
                Ok(json!({ "node": node, "data": data }))
            }
        });
    }
}
