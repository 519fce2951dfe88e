//! One node of the chat demo: a socket.io server with the NATS adapter serving
//! the chat page. `chat-cluster` starts three of them; to run one by hand:
//!
//! ```text
//! PORT=3001 NATS_URL=nats://127.0.0.1:4222 NODE_NAME=node-1 cargo run -p chat-cluster --bin chat-node
//! ```
//!
//! Environment: `PORT` (0 picks a free port), `NATS_URL` (comma-separated for a
//! NATS cluster), `NODE_NAME` (shown in the page, and used as the socket.io server
//! id so the other nodes can name it too), `WEB_DIR` (the page and its npm packages).

use std::{collections::BTreeMap, path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use axum::{
    Router,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::{
    SocketIo, SocketIoConfig,
    adapter::Adapter,
    extract::{AckSender, Data, Extension, SocketRef, State},
    handler::ConnectHandler,
    socket::DisconnectReason,
};
use socketioxide_nats::{
    ConnectionMonitor, NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, NatsHandle,
};

/// What every handler needs to know about this node.
#[derive(Clone)]
struct Node {
    name: Arc<str>,
    handle: NatsHandle,
}

/// The chat identity of a socket, set when it joins a room.
#[derive(Clone, Debug)]
struct Member {
    name: String,
    room: String,
}

#[derive(Deserialize)]
struct Join {
    name: String,
    room: String,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    name: &'a str,
    text: &'a str,
    node: &'a str,
}

/// socket.io server ids are 16 url-safe base64 characters; a node named
/// `node-1` gets `node-1----------`, which every node can turn back into a name.
fn server_id_for(name: &str) -> Option<socketioxide_core::Uid> {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect();
    socketioxide_core::Uid::from_str(&format!("{clean:-<16}")).ok()
}

fn name_of(uid: &str) -> String {
    uid.trim_end_matches('-').to_owned()
}

/// Greets a connected socket.
async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(node): State<Node>) {
    socket.emit("welcome", &json!({ "node": &*node.name })).ok();
}

/// Registers the socket's event handlers. A connect middleware rather than part
/// of the connect handler: socketioxide awaits middlewares before it sends the
/// CONNECT packet but spawns the handler after, so an event the page emits as soon
/// as it is connected could otherwise arrive before its handler exists, and be lost.
async fn set_up<A: Adapter>(socket: SocketRef<A>) -> Result<(), std::convert::Infallible> {
    socket.on(
        "join",
        async |s: SocketRef<A>,
               Data(join): Data<Join>,
               State(node): State<Node>,
               ack: AckSender<A>| {
            let name: String = join.name.trim().chars().take(32).collect();
            let room: String = join.room.trim().chars().take(32).collect();
            if name.is_empty() || room.is_empty() {
                ack.send(&json!({ "error": "a name and a room are needed" }))
                    .ok();
                return;
            }
            if let Some(old) = s.extensions.get::<Member>() {
                s.leave(old.room.clone());
                let text = format!("{} left for another room", old.name);
                system(&s, &old.room, &text, &node).await;
            }
            s.join(room.clone());
            s.extensions.insert(Member {
                name: name.clone(),
                room: room.clone(),
            });
            ack.send(&json!({ "node": &*node.name, "room": &room }))
                .ok();
            system(
                &s,
                &room,
                &format!("{name} joined from {}", node.name),
                &node,
            )
            .await;
        },
    );

    socket.on(
        "chat",
        async |s: SocketRef<A>,
               Data(text): Data<String>,
               Extension(me): Extension<Member>,
               State(node): State<Node>| {
            let text: String = text.chars().take(500).collect();
            let msg = ChatMessage {
                name: &me.name,
                text: &text,
                node: &node.name,
            };
            if let Err(e) = s.within(me.room.clone()).emit("chat", &msg).await {
                tracing::warn!(error = %e, "chat message not delivered everywhere");
            }
        },
    );

    socket.on(
        "typing",
        async |s: SocketRef<A>, Extension(me): Extension<Member>, State(node): State<Node>| {
            // may be dropped under load, like any volatile event
            let who = json!({ "name": me.name, "node": &*node.name });
            s.to(me.room.clone())
                .volatile()
                .emit("typing", &who)
                .await
                .ok();
        },
    );

    socket.on(
        "cluster",
        async |io: SocketIo<A>, State(node): State<Node>, ack: AckSender<A>| {
            match cluster_state(&io, &node).await {
                Ok(state) => ack.send(&state).ok(),
                Err(e) => ack.send(&json!({ "error": e })).ok(),
            };
        },
    );

    socket.on_disconnect(
        async |s: SocketRef<A>, State(node): State<Node>, reason: DisconnectReason| {
            if let Some(me) = s.extensions.get::<Member>() {
                tracing::debug!(?reason, "member left");
                system(&s, &me.room, &format!("{} left", me.name), &node).await;
            }
        },
    );
    Ok(())
}

async fn system<A: Adapter>(s: &SocketRef<A>, room: &str, text: &str, node: &Node) {
    let msg = json!({ "text": text, "node": &*node.name });
    s.within(room.to_owned()).emit("system", &msg).await.ok();
}

/// The cluster panel: live nodes, and how many sockets each node holds, overall
/// and per room. Built from cluster-wide requests, so it shows every node's view.
async fn cluster_state<A: Adapter>(
    io: &SocketIo<A>,
    node: &Node,
) -> Result<serde_json::Value, String> {
    let me = node
        .handle
        .server_id("/")
        .map(|u| u.to_string())
        .unwrap_or_default();
    let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
    nodes.insert(me.clone(), 0);
    for uid in node.handle.nodes("/").unwrap_or_default() {
        nodes.insert(uid.to_string(), 0);
    }
    for s in io.fetch_sockets().await.map_err(|e| e.to_string())? {
        *nodes.entry(s.data().server_id.to_string()).or_default() += 1;
    }
    let mut rooms = Vec::new();
    let mut names: Vec<String> = io
        .rooms()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| r.to_string())
        .collect();
    names.sort();
    for room in names {
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for s in io
            .to(room.clone())
            .fetch_sockets()
            .await
            .map_err(|e| e.to_string())?
        {
            *per_node
                .entry(name_of(s.data().server_id.as_str()))
                .or_default() += 1;
        }
        rooms.push(json!({ "room": room, "perNode": per_node }));
    }
    let nodes: Vec<_> = nodes
        .into_iter()
        .map(|(uid, sockets)| json!({ "name": name_of(&uid), "id": uid, "sockets": sockets, "you": uid == me }))
        .collect();
    // A few of the counters this node also exports at /metrics.
    let stats = node.handle.stats("/").unwrap_or_default();
    let dropped = stats.malformed + stats.wrong_parser + stats.forged + stats.overloaded;
    let metrics = json!({
        "sent": stats.broadcasts_sent,
        "received": stats.broadcasts_received,
        "dropped": dropped,
        "incomplete": stats.incomplete,
    });
    Ok(json!({ "nodes": nodes, "rooms": rooms, "metrics": metrics }))
}

const INDEX: &str = include_str!("../../web/index.html");
const APP: &str = include_str!("../../web/app.js");
const STYLE: &str = include_str!("../../web/style.css");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "chat_node=info,socketioxide_nats=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let port: u16 = env("PORT", "3001").parse()?;
    let name = env("NODE_NAME", &format!("node-{port}"));
    let nats_urls: Vec<String> = env("NATS_URL", "nats://127.0.0.1:4222")
        .split(',')
        .map(str::to_owned)
        .collect();
    let web_dir = std::env::var_os("WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web"));
    let client_js = web_dir.join("node_modules/socket.io-client/dist/socket.io.min.js");
    if !client_js.is_file() {
        return Err(format!(
            "{} is missing: run `bash scripts/demo.sh`, or `npm ci` in {}",
            client_js.display(),
            web_dir.display()
        )
        .into());
    }

    // Installed before the namespace starts: its adapter registers its metrics then.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;

    // Logs disconnects, slow consumers and permission errors as they happen. The
    // connection is this node's alone, so the broker need not echo its messages.
    let client = ConnectionMonitor::new()
        .recommended_options()
        .no_echo()
        .name(format!("chat {name}"))
        .connect(nats_urls.clone())
        .await
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", nats_urls.join(",")))?;
    let config = NatsAdapterConfig::new()
        .with_heartbeat_interval(Duration::from_secs(1))
        .with_heartbeat_timeout(Duration::from_secs(3));
    let ctr = NatsAdapterCtr::new_with_nats_config(client, config);
    let node = Node {
        name: name.clone().into(),
        handle: ctr.handle(),
    };
    let mut config = SocketIoConfig::default();
    if let Some(uid) = server_id_for(&name) {
        config.server_id = uid;
    }
    let (layer, io) = SocketIo::builder()
        .with_config(config)
        .with_state(node)
        .with_adapter::<NatsAdapter<_>>(ctr)
        .build_layer();
    io.ns("/", on_connect.with(set_up)).await?;

    let js = std::fs::read(&client_js)?;
    let app = Router::new()
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], APP) }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = prometheus.render();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }),
        )
        .route(
            "/socket.io.min.js",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/javascript")], js.clone()).into_response()
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let port = listener.local_addr()?.port();
    // chat-cluster and the browser test read this line.
    println!("{name} listening on http://127.0.0.1:{port}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Before the HTTP server stops: the sockets are disconnected and the
            // other nodes told at once that this one leaves.
            io.close().await;
        })
        .await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what `kill`, systemd or Kubernetes send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
