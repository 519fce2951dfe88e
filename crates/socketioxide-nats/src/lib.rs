#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)
)]
//! # A NATS adapter for [socketioxide](https://docs.rs/socketioxide)
//!
//! Run many socket.io servers, on many machines, as one: an event emitted on one
//! node reaches the right clients on every node, and every cluster-wide operation
//! (broadcasts with acks, rooms, fetch sockets, join / leave / disconnect, remote
//! socket operations) works across nodes through [NATS](https://nats.io).
//!
//! <div class="warning">
//!     Every node of a cluster must use the same subject prefix, the same socket.io
//!     parser and the same major version of this crate. The protocol is not the one of
//!     the Node.js <code>socket.io-nats</code> or Redis adapters: do not mix them.
//! </div>
//!
//! ## Example
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use socketioxide::{
//!     SocketIo, adapter::Adapter, extract::{Data, SocketRef}, handler::ConnectHandler,
//! };
//! use socketioxide_nats::{NatsAdapter, NatsAdapterCtr, async_nats};
//!
//! // Handlers are generic over the adapter, as with every socketioxide adapter. This
//! // one is a connect middleware: socketioxide awaits it before it tells the client
//! // it is connected (the connect handler runs in a task spawned after), so no event
//! // the client emits at once can arrive before its handler exists.
//! async fn set_up<A: Adapter>(socket: SocketRef<A>) -> Result<(), Infallible> {
//!     // socketioxide does not put a socket in a room named after its id;
//!     // join it to make `io.to(socket_id)` work from any node.
//!     socket.join(socket.id);
//!     socket.on("chat", async |s: SocketRef<A>, Data(msg): Data<String>| {
//!         // reaches the sockets of every node, except the sender
//!         s.broadcast().emit("chat", &msg).await.ok();
//!     });
//!     Ok(())
//! }
//!
//! async fn on_connect<A: Adapter>(_socket: SocketRef<A>) {}
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//!     let (layer, io) = SocketIo::builder()
//!         .with_adapter::<NatsAdapter<_>>(NatsAdapterCtr::new_with_nats(client))
//!         .build_layer();
//!     // Await it: the namespace exists once its subscriptions are in place.
//!     io.ns("/", on_connect.with(set_up)).await?;
//!
//!     let app = axum::Router::new().layer(layer);
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(async move {
//!             tokio::signal::ctrl_c().await.ok(); // and SIGTERM: see "Clean shutdown"
//!             io.close().await; // the other nodes forget this one at once
//!         })
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Clean shutdown
//!
//! Close the socket.io server when the process is asked to stop: `io.close()`
//! disconnects the sockets and closes every namespace, whose adapter drops its
//! subscriptions and says goodbye, so the other nodes forget this one at once
//! (a rolling restart never makes them wait for its heartbeat timeout). Process
//! managers (systemd, Kubernetes, `docker stop`) send SIGTERM, not Ctrl-C:
//!
//! ```no_run
//! # use socketioxide::SocketIo;
//! # use socketioxide_nats::NatsAdapter;
//! # async fn doc(io: SocketIo<NatsAdapter<socketioxide::adapter::Emitter>>, app: axum::Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! async fn shutdown_signal() {
//!     let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
//!         .expect("SIGTERM handler");
//!     tokio::select! {
//!         _ = tokio::signal::ctrl_c() => {}
//!         _ = term.recv() => {}
//!     }
//! }
//!
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         shutdown_signal().await;
//!         io.close().await;
//!     })
//!     .await
//! # }
//! ```
//!
//! Closing is bounded in time (each publish by
//! [`publish_timeout`](NatsAdapterConfig::publish_timeout)), even with NATS
//! unreachable. A process that is killed (SIGKILL, a crash) cannot say goodbye:
//! the others find it gone with their next request (a probe), or after the
//! heartbeat timeout.
//!
//! ## The NATS client is yours
//!
//! The adapter takes an [`async_nats::Client`] (re-exported here so the versions
//! match), so everything the client supports works: a cluster of servers,
//! authentication, TLS. Configure it with [`async_nats::ConnectOptions`].
//!
//! <div class="warning">
//!     async-nats ignores credentials written in the URL
//!     (<code>nats://user:pass@host</code> connects without them and fails with an
//!     authorization violation): pass them with <code>ConnectOptions</code>.
//! </div>
//!
//! ```no_run
//! use socketioxide_nats::ConnectionMonitor;
//!
//! # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
//! // The recommended settings (ping every 2 s, 2 s connection timeout): a dead or
//! // frozen server is left within about 10 s instead of async-nats's 3-minute
//! // default. The monitor logs and counts what the client reports (disconnects,
//! // slow consumers, permission errors); keep a clone to read its stats.
//! let monitor = ConnectionMonitor::new();
//! let recommended = || monitor.recommended_options().name("socket.io node 1");
//!
//! // A NATS cluster: list several servers; the client fails over between them.
//! let client = recommended()
//!     .connect(vec!["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"])
//!     .await?;
//!
//! // User and password, or a token.
//! let client = recommended()
//!     .user_and_password("app".into(), "secret".into())
//!     .connect("nats://127.0.0.1:4222")
//!     .await?;
//! let client = recommended().token("s3cr3t".into()).connect("nats://127.0.0.1:4222").await?;
//!
//! // An NKey seed, or a credentials file (JWT + seed).
//! let client = recommended().nkey("SUAB...".into()).connect("nats://127.0.0.1:4222").await?;
//! let client = recommended()
//!     .credentials_file("app.creds")
//!     .await?
//!     .connect("nats://127.0.0.1:4222")
//!     .await?;
//!
//! // TLS, server-verified with a private CA, optionally with a client certificate.
//! let client = recommended()
//!     .require_tls(true)
//!     .add_root_certificates("ca.pem".into())
//!     .add_client_certificate("client.pem".into(), "client-key.pem".into())
//!     .connect("tls://127.0.0.1:4222")
//!     .await?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! ### One connection per node: turn echo off
//!
//! By default NATS delivers a connection's own messages back to it, so every node
//! receives each of its broadcasts once more and skips it by subject. When each
//! node has its own connection, build it with
//! [`no_echo`](async_nats::ConnectOptions::no_echo): the broker then sends a
//! broadcast to the other nodes only, which saves it one delivery in N and the
//! sending node a wake-up per message while it fans out to its own sockets (p99
//! 5–10 % lower in the benchmark, see the README's Performance section). Nothing
//! else changes: the adapter answers its own requests locally.
//!
//! ```no_run
//! # use socketioxide_nats::ConnectionMonitor;
//! # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
//! let monitor = ConnectionMonitor::new();
//! let client = monitor.recommended_options().no_echo().connect("nats://127.0.0.1:4222").await?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! <div class="warning">
//!     Keep echo on when several socket.io servers share one connection (several
//!     <code>SocketIo</code> instances in one process, built from clones of the same
//!     client): with <code>no_echo</code> they never hear each other. The adapter
//!     notices it two seconds after start (its own messages do not come back while
//!     another server of the namespace uses the same connection) and logs a warning.
//! </div>
//!
//! Errors of the client itself (connection lost, slow consumer, permissions) are
//! reported only through [`ConnectOptions::event_callback`](async_nats::ConnectOptions::event_callback):
//! [`ConnectionMonitor`] is such a callback, which logs them and counts them in
//! [`ConnectionStats`]. The adapter also logs connection changes it notices.
//!
//! ## Configuration
//!
//! [`NatsAdapterConfig`] holds the prefix (the `key` of the Node.js `socket.io-nats`
//! and `socket.io-redis` adapters, default `socket.io`), the request timeout (their
//! `requestsTimeout`, default 5 s), the heartbeat interval and timeout (5 s and
//! 10 s), the bound on a publish while NATS is unreachable (2 s), the response
//! buffer of a request, the liveness probe timeout (500 ms), and the bounds on
//! what other nodes' messages may start (remote ack timeouts ≤ 5 min, 1 024
//! handlers and ack forwarders at once).
//!
//! ```no_run
//! # use std::time::Duration;
//! # use socketioxide::SocketIo;
//! # use socketioxide_nats::{NatsAdapter, NatsAdapterConfig, NatsAdapterCtr, async_nats};
//! # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let config = NatsAdapterConfig::new()
//!     .with_prefix("chat-app")
//!     .with_request_timeout(Duration::from_secs(2));
//! let ctr = NatsAdapterCtr::new_with_nats_config(client, config);
//! let handle = ctr.handle(); // cluster state, see NatsHandle
//! let (_layer, io) = SocketIo::builder().with_adapter::<NatsAdapter<_>>(ctr).build_layer();
//! # Ok(()) }
//! ```
//!
//! ## The operations, across the cluster
//!
//! | socket.io (Node.js adapters) | socketioxide                                       |
//! |------------------------------|----------------------------------------------------|
//! | broadcast to all / rooms / except / local / volatile | `io.emit`, `io.to(..)`, `.except(..)`, `.local()`, `.volatile()` |
//! | broadcast with acks          | `io.emit_with_ack(..)`: acks of every node's clients |
//! | `clients`, `clientRooms`     | `io.fetch_sockets()`, `io.to(room).fetch_sockets()`, `remote.rooms()` |
//! | `allRooms`                   | `io.rooms()`                                       |
//! | `remoteJoin` / `remoteLeave` | `io.to(..).join(..)` / `.leave(..)`, `remote.join(..)` / `remote.leave(..)` |
//! | `remoteDisconnect`           | `io.to(..).disconnect()`, `remote.disconnect()`    |
//! | server count                 | [`NatsHandle::server_count`]                       |
//!
//! Delivery and completion:
//!
//! * NATS core delivers at most once: a message published while a connection is
//!   down is lost. Operations issued by one node are applied on every other node in
//!   the order they were issued.
//! * Requests (rooms, fetch sockets, broadcast with acks) are always published and
//!   complete as soon as every live node has answered; they never wait for the
//!   request timeout while the cluster is healthy. An `emit_with_ack` to a room with
//!   no member ends at once.
//! * In the first moments after `io.ns(..)` (and after a reconnect) a request waits
//!   for the node to know the others (discovery: about one round trip, at most
//!   1 s), so it reaches and waits for every node already in the cluster.
//! * A node counts only once it has proven itself by answering a message only a
//!   receiver could answer; forged hellos or heartbeats never count. A node that
//!   closes is forgotten at once; a node that crashed is probed by the first request
//!   waiting for it and found gone in milliseconds (or within
//!   [`probe_timeout`](NatsAdapterConfig::probe_timeout) when something else, such
//!   as a monitor on `{prefix}.>`, listens on its subject), otherwise after the
//!   heartbeat timeout.
//! * A request still missing live nodes at its timeout fails with
//!   [`Error::Incomplete`], naming them: a partial answer never looks complete.
//!   [`NatsHandle::stats`] counts such requests, and everything the adapter
//!   dropped or refused.
//! * An operation on one remote socket (`remote.join`, `remote.rooms`,
//!   `remote.disconnect`, `remote.emit_with_ack`) returns once that node applied it,
//!   and fails at once with [`Error::NodeGone`] if the node is gone.
//! * When NATS is unreachable, emits and requests fail with [`Error::Unreachable`]
//!   within [`NatsAdapterConfig::publish_timeout`]; local sockets are still served,
//!   and everything resumes when the client reconnects.
//! * A message larger than the server's `max_payload` (1 MiB by default) fails with
//!   [`Error::PayloadTooLarge`]; local sockets still receive it. Binary payloads are
//!   sent as they are, not inflated.
//!
//! ## Room routing
//!
//! By default every node receives every broadcast and keeps what matches its own
//! sockets, as with the Redis adapters. With
//! [`with_room_routing(true)`](NatsAdapterConfig::with_room_routing), a broadcast
//! to exactly one room travels on that room's own subject, and a node subscribes to
//! a room's subject only while it has members in the room: NATS delivers room
//! traffic to the nodes with members only, within a NATS cluster and across the
//! gateways of a supercluster (a region without members sees none of it).
//!
//! * **When to turn it on**: many nodes, rooms concentrated on a few of them (chat
//!   rooms, games, documents, per-user rooms), or several regions. Not worth it
//!   when most broadcasts go to everybody or most rooms span every node.
//! * **What travels on a room subject**: a broadcast to one room (with or without
//!   `except`, from a socket or not). Broadcasts to several rooms or to everybody,
//!   with acks, to a room named like a socket id (one subscription per socket would
//!   cost more than it saves), and every request keep the namespace's broadcast
//!   subject. Room names are encoded like namespaces (any string, hashed when
//!   long), and receivers filter exactly: a hash collision can only cost an extra
//!   delivery, never a wrong one.
//! * **The delivery guarantee**: a room broadcast published after
//!   [`NatsHandle::join`], `io.to(..).join(..)` or `RemoteSocket::join` returned
//!   reaches the new member, from any node of the cluster, in any region. These
//!   joins subscribe, flush, then wait for one request round to every node, which
//!   travels the route and gateway connections behind the new interest (measured:
//!   0.6 ms on one server, 0.8 ms on a 3-server cluster, where the interest alone
//!   reaches another server in 1.4 ms). A plain `socket.join`, which socketioxide
//!   does not report to adapters, is found by a reconcile every
//!   [`room_reconcile_interval`](NatsAdapterConfig::room_reconcile_interval)
//!   (1 s by default): broadcasts to that room miss the socket until then, and the
//!   first such room is logged as a warning naming `NatsHandle::join`. The
//!   reconcile also drops the subscription of a room whose last local member left
//!   or disconnected.
//! * **The cost**: one subscription per room with local members on each node (and
//!   at its NATS server), a request round per join that adds one, a scan of the
//!   local rooms per reconcile.
//! * **Mixed clusters** work: nodes without routing subscribe to every room subject
//!   at once (`{prefix}.{ns}.room.*.*`), so they receive what routing nodes send,
//!   and routing nodes receive the broadcast subject as before. Only nodes with
//!   routing save anything. A node of an earlier release of this crate does not
//!   take room subjects: upgrade every node before turning routing on.
//! * **Leaf nodes** take a subject from the hub only while a subscriber on the
//!   leaf's side is interested, as gateways do: nodes attached to a leaf node
//!   receive only their rooms' traffic (every node must be in the same account:
//!   a leaf remote bridges one account).
//!
//! ```no_run
//! # use socketioxide::{adapter::Adapter, extract::{Data, SocketRef, State}};
//! # use socketioxide_nats::{NatsAdapterConfig, NatsHandle};
//! let config = NatsAdapterConfig::new().with_room_routing(true);
//! // In a handler: join through the handle, so the room's broadcasts reach the
//! // socket as soon as this returns.
//! async fn join<A: Adapter>(s: SocketRef<A>, State(handle): State<NatsHandle>, Data(room): Data<String>) {
//!     let _ = handle.join(s.ns(), s.id, room).await;
//! }
//! ```
//!
//! ## How does it work?
//!
//! One adapter runs per namespace. It subscribes to four subjects, where `{ns}` is
//! the namespace path encoded as one subject token (letters, digits and `-` kept,
//! any other byte as `_XX`, so `/chat.v2` becomes `_2Fchat_2Ev2`, and long names are
//! hashed), and `{uid}` is the server id:
//!
//! | subject                               | published by                      | subscribed by |
//! |---------------------------------------|-----------------------------------|---------------|
//! | `{prefix}.{ns}.b.{origin}`            | a node or emitter, for every node: broadcasts, joins, requests, heartbeats | every node (`{prefix}.{ns}.b.*`) |
//! | `{prefix}.{ns}.n.{target}.{origin}`   | a node or emitter, for one node: remote socket operations, liveness probes | node `target` (`{prefix}.{ns}.n.{uid}.*`) |
//! | `{prefix}.{ns}.r.{requester}.{req_id}`| a node answering a request (the request's reply subject) | the requester (`{prefix}.{ns}.r.{uid}.*`) |
//! | `{prefix}.{ns}.room.{room}.{origin}`  | a node with room routing: a broadcast to one room | nodes with members, with routing (`{prefix}.{ns}.room.{room}.*`); every node without (`{prefix}.{ns}.room.*.*`) |
//!
//! A node skips its own messages (the broker's echo, unless the connection has
//! `no_echo`) by the last token of the subject, without decoding them. Responses
//! are routed to their request by the last token too. Without room routing, rooms
//! never appear in subjects; with it, room names are encoded like namespaces, so
//! any room name is safe either way.
//!
//! Messages are MessagePack arrays starting with a protocol version; binary data is
//! MessagePack `bin`. The wire format lives in the
//! [`socketioxide-nats-protocol`](socketioxide_nats_protocol) crate.
//!
//! ## Permissions: isolating apps on a shared NATS
//!
//! The adapter publishes and subscribes under `{prefix}.>` and nowhere else: its
//! requests carry their own reply subjects under the prefix, so it needs no
//! `_INBOX` permission. An operator confines an app to its prefix with:
//!
//! ```text
//! authorization {
//!   users: [
//!     { user: chat, password: "...",
//!       permissions: { publish: ["chat.>"], subscribe: ["chat.>"] } }
//!   ]
//! }
//! ```
//!
//! (the same `pub`/`sub` allow lists in a user JWT for decentralized auth). A node
//! of another app, or one configured with a prefix its user may not use, sees
//! nothing: the server refuses its subscriptions and publishes, which
//! [`ConnectionMonitor`] reports as authorization errors.
//!
//! ## Faults
//!
//! Measured by the crate's tests over real nats-server processes:
//!
//! * the server a node is connected to dies while traffic flows: the node fails
//!   over to another server of the cluster in about 10 ms and loses only the few
//!   messages in flight (4–5 of 1 500 at 500 msg/s);
//! * a frozen server (SIGSTOP: the TCP connection stays open) is left after about
//!   8 s with [`ConnectionMonitor::recommended_options`] (about 3 minutes with
//!   async-nats's defaults); emits meanwhile return within the publish timeout;
//! * a request waiting for answers when this node's connection drops fails with
//!   [`Error::ConnectionLost`] instead of returning what it had, even when the
//!   client reconnects within milliseconds (a cluster failover): the adapter reads
//!   the client's connect counter, not only its state; an ack stream ends with the
//!   acks received so far;
//! * any well-formed message a publisher on the prefix can send is applied or
//!   refused cleanly (see the trust model in the README): a node cannot be made to
//!   crash, stop receiving, count a node that does not exist, or forget one that
//!   does. If its receive loop or liveness task ever stopped, the node would say
//!   goodbye and leave rather than stay in the cluster deaf.
//!
//! ## Metrics
//!
//! With the `metrics` feature the adapter reports through the
//! [`metrics`](https://docs.rs/metrics) facade, so any exporter works
//! (Prometheus, OpenTelemetry, statsd). Install the recorder before the
//! namespaces start (`io.ns(..)`): each adapter registers its metrics then.
//! [`NatsHandle::stats`] gives most of the same counters without the feature.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `socketioxide_nats_broadcasts_sent_total` | counter | `ns` |
//! | `socketioxide_nats_broadcasts_received_total` | counter | `ns` |
//! | `socketioxide_nats_requests_total` | counter | `ns`, `kind` (`fetch_sockets`, `rooms`, `broadcast_with_ack`, `remote_socket`, `server_event`, `custom_request`), `outcome` (`complete`, `incomplete`, `node_gone`, `timeout`, `connection_lost`, `unreachable`, `closed`) |
//! | `socketioxide_nats_request_duration_seconds` | histogram | `ns`, `kind` |
//! | `socketioxide_nats_servers` | gauge | `ns`: servers serving it, this one included |
//! | `socketioxide_nats_messages_dropped_total` | counter | `ns`, `reason` (`malformed`, `wrong_parser`, `forged`, `overloaded`, `ignored_response`, `rate_limited`, `panic`) |
//! | `socketioxide_nats_probes_total`, `socketioxide_nats_probes_failed_total` | counter | `ns` |
//! | `socketioxide_nats_reconnects_total` | counter | `ns` |
//! | `socketioxide_nats_connection_events_total` | counter | `event` (`connected`, `disconnected`, `slow_consumer`, `lame_duck`, `server_error`, `client_error`, `draining`, `closed`), from a [`ConnectionMonitor`] |
//!
//! The demo's `chat-node` (examples/chat-cluster) serves them at `/metrics` with
//! `metrics-exporter-prometheus`: `PrometheusBuilder::new().install_recorder()`
//! before `io.ns(..)`, and a route returning `handle.render()`.
//!
//! Slow consumers are reported by async-nats only to the connection's event
//! callback: attach a [`ConnectionMonitor`] to count them.
//!
//! ## Tracing
//!
//! The crate logs with [`tracing`](https://docs.rs/tracing) (nodes joining and
//! leaving, connection changes, dropped or malformed messages, timeouts) and never
//! installs a subscriber.

mod ack;
mod adapter;
mod completion;
mod config;
mod error;
mod events;
mod handle;
mod liveness;
mod monitor;
mod pacing;
mod recv;
mod requests;
mod rooms;
mod send;
mod sharing;
mod stats;
mod tasks;
mod view;

pub use ack::AckStream;
pub use adapter::{InitRes, NatsAdapter, NatsAdapterCtr};
pub use async_nats;
pub use config::NatsAdapterConfig;
pub use error::Error;
pub use events::{CustomRequest, ServerEvent};
pub use handle::NatsHandle;
pub use monitor::{
    ConnectionMonitor, ConnectionStats, RECOMMENDED_CONNECTION_TIMEOUT, RECOMMENDED_PING_INTERVAL,
};
pub use stats::AdapterStats;
