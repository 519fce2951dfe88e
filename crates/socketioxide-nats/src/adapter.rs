//! The adapter: one instance per namespace, implementing socketioxide's
//! [`CoreAdapter`] over NATS.
//!
//! What happens where (see also ARCHITECTURE.md): messages leave through
//! [`send`](crate::send), arrive through [`recv`](crate::recv), requests wait in
//! [`completion`](crate::completion), and which nodes exist is
//! [`liveness`](crate::liveness)'s decision alone.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use async_nats::{Client, Subject};
use futures_core::future::BoxFuture;
use socketioxide_core::{
    Uid, Value,
    adapter::{
        BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter,
        RemoteSocketData, Room, RoomParam, SocketEmitter, Spawnable,
        errors::{AdapterError, BroadcastError},
    },
    packet::Packet,
    parser::Parse,
};
use socketioxide_nats_protocol::{
    ProtocolError,
    completion::Expect,
    message::{RequestOutBody, ResponseBody, ResponseIn, ResponseKind},
    subjects::NsSubjects,
};
use tokio::{task::JoinHandle, time::Instant};

use crate::{
    Error, NatsAdapterConfig,
    ack::AckStream,
    completion::{Step, Waiter, gather},
    handle::{NatsHandle, Registry},
    liveness::Liveness,
    pacing::Pacing,
    requests::Pending,
    rooms::{RoomSubs, routed_room},
    send::Link,
    sharing::ConnectionShare,
    stats::Outcome,
    tasks::AbortOnDrop,
    view::NamespaceView,
};

/// Creates a [`NatsAdapter`] for each namespace: this is the value given to
/// socketioxide's `with_adapter`.
///
/// It holds the NATS client, which every namespace and every socket.io server
/// built from it shares. The client is yours: configure servers, credentials, TLS
/// and reconnection on it (see the crate documentation).
///
/// ```no_run
/// # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
/// use socketioxide::SocketIo;
/// use socketioxide_nats::{NatsAdapter, NatsAdapterCtr, async_nats};
///
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let (_layer, io) = SocketIo::builder()
///     .with_adapter::<NatsAdapter<_>>(NatsAdapterCtr::new_with_nats(client))
///     .build_layer();
/// io.ns("/", async |_: socketioxide::extract::SocketRef<NatsAdapter<_>>| {}).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsAdapterCtr {
    client: Client,
    config: NatsAdapterConfig,
    registry: Arc<Registry>,
}

impl NatsAdapterCtr {
    /// A constructor with the default [`NatsAdapterConfig`].
    pub fn new_with_nats(client: Client) -> Self {
        Self::new_with_nats_config(client, NatsAdapterConfig::default())
    }

    /// A constructor with a custom [`NatsAdapterConfig`].
    ///
    /// The prefix is checked when each namespace starts: an invalid prefix makes
    /// `io.ns(..).await` fail with [`Error::Protocol`].
    pub fn new_with_nats_config(client: Client, config: NatsAdapterConfig) -> Self {
        Self {
            client,
            config,
            registry: Arc::default(),
        }
    }

    /// A handle on the cluster state of the server this constructor is given to.
    pub fn handle(&self) -> NatsHandle {
        NatsHandle {
            registry: self.registry.clone(),
        }
    }

    /// The NATS client shared by every namespace.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &NatsAdapterConfig {
        &self.config
    }
}

/// Which form of packet payload this node's socket.io parser writes: the common
/// parser's text ([`Value::Str`]) or the msgpack parser's bytes ([`Value::Bytes`]).
/// socketioxide's parsers panic on the other form, so remote packets in it are
/// refused before they reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueForm {
    Text,
    Binary,
}

impl ValueForm {
    fn of<E: SocketEmitter>(local: &CoreLocalAdapter<E>) -> Self {
        match local.parser().encode_default(&()) {
            Ok(Value::Bytes(_)) => ValueForm::Binary,
            _ => ValueForm::Text,
        }
    }

    pub(crate) fn fits(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (ValueForm::Text, Value::Str(..)) | (ValueForm::Binary, Value::Bytes(_))
        )
    }
}

/// The socketioxide adapter that spreads every operation of a namespace over NATS.
///
/// Use it as `SocketIo::builder().with_adapter::<NatsAdapter<_>>(ctr)`; the type
/// parameter is socketioxide's emitter and is always inferred.
pub struct NatsAdapter<E> {
    local: CoreLocalAdapter<E>,
    pub(crate) link: Arc<Link>,
    pub(crate) liveness: Arc<Liveness>,
    /// Why the namespace cannot start, found when its subjects were built.
    init_error: Option<ProtocolError>,
    pub(crate) form: ValueForm,
    /// The small tasks of the adapter, from init to close.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Owns the receive loop and the liveness task: aborting it aborts them.
    watchdog: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    registry: Arc<Registry>,
    /// Whether the broker echoed one of this node's own messages back.
    echo_seen: AtomicBool,
    /// Whether a broadcast lets the connection write before the local fan-out.
    pacing: Pacing,
    /// With room routing, the rooms this node is subscribed to.
    pub(crate) rooms: RoomSubs,
    /// This adapter, for the tasks it starts from `&self` (set by `init`).
    me: OnceLock<Weak<Self>>,
    /// From init to close: this adapter's use of its connection, which tells
    /// whether other adapters of the namespace share it.
    share: Mutex<Option<ConnectionShare>>,
}

impl<E> std::fmt::Debug for NatsAdapter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAdapter")
            .field("uid", &self.link.uid())
            .field("subjects", self.link.subjects())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<E> DefinedAdapter for NatsAdapter<E> {}

impl<E> Drop for NatsAdapter<E> {
    fn drop(&mut self) {
        self.stop_watchdog();
        for task in self.take_tasks() {
            task.abort();
        }
    }
}

/// The `kind` label of a request's metrics.
fn kind_of(body: &RequestOutBody<'_>) -> &'static str {
    match body {
        RequestOutBody::FetchSockets { .. } => "fetch_sockets",
        RequestOutBody::AllRooms { .. } => "rooms",
        RequestOutBody::BroadcastWithAck { .. } => "broadcast_with_ack",
        RequestOutBody::ServerEvent { .. } => "server_event",
        RequestOutBody::CustomRequest { .. } => "custom_request",
        RequestOutBody::Discover => "room_interest",
        _ => "remote_socket",
    }
}

/// A request on its way: what its answers are waited with.
struct Sent {
    pending: Pending,
    /// What it asks, for the request metrics, and since when.
    kind: &'static str,
    started: Instant,
    target: Option<Uid>,
    published: Instant,
    epoch: Option<u64>,
}

impl<E> NatsAdapter<E> {
    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A weak reference to this adapter, for tasks that must not keep it alive.
    pub(crate) fn weak(&self) -> Weak<Self> {
        self.me.get().cloned().unwrap_or_default()
    }

    fn stop_watchdog(&self) {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
    }

    pub(crate) fn track(&self, task: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// This node's id in the cluster (socketioxide's server id).
    pub(crate) fn uid(&self) -> Uid {
        self.link.uid()
    }

    pub(crate) fn config(&self) -> &NatsAdapterConfig {
        &self.link.config
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Called for each of this node's own messages the broker sends back.
    pub(crate) fn saw_own_echo(&self) {
        // Read first: this runs per echoed message, and a store every time would
        // keep writing to a cache line the receive path shares.
        if !self.echo_seen.load(Ordering::Relaxed) {
            self.echo_seen.store(true, Ordering::Relaxed);
        }
    }

    /// Whether this node shares its connection with other nodes of its namespace
    /// in this process although the connection does not echo (`no_echo`): then
    /// they never hear each other. Meaningful once an own message had time to
    /// come back.
    fn deaf_to_siblings(&self) -> Option<usize> {
        let users = self.share.lock().ok()?.as_ref()?.users();
        (users > 1 && !self.echo_seen.load(Ordering::Relaxed)).then_some(users)
    }

    /// Send a request and wait for every node it concerns (or `target`) to answer.
    pub(crate) async fn request_with(
        &self,
        body: RequestOutBody<'_>,
        target: Option<Uid>,
        expect: Expect,
        timeout: Duration,
    ) -> Result<Waiter, Error> {
        let sent = self.send_request(body, target).await?;
        Ok(self.wait_for(sent, expect, timeout).await)
    }

    /// Publish a request; what [`wait_for`](Self::wait_for) needs to wait for its answers.
    async fn send_request(
        &self,
        body: RequestOutBody<'_>,
        target: Option<Uid>,
    ) -> Result<Sent, Error> {
        let kind = kind_of(&body);
        let started = Instant::now();
        let pending = match self.link.send_request(body, target, false).await {
            Ok(pending) => pending,
            Err(err) => {
                let outcome = match err {
                    Error::Closed => Outcome::Closed,
                    _ => Outcome::Unreachable,
                };
                self.link
                    .stats
                    .request_ended(kind, outcome, started.elapsed());
                return Err(err);
            }
        };
        Ok(Sent {
            pending,
            kind,
            started,
            target,
            // Read right after the publish: see `Liveness::expected_since`.
            published: Instant::now(),
            epoch: self.link.connection_epoch(),
        })
    }

    /// Wait for the answers of a published request: from `target`, or from every
    /// node that was subscribed when it was published (once discovery settled).
    async fn wait_for(&self, sent: Sent, expect: Expect, timeout: Duration) -> Waiter {
        let nodes = match sent.target {
            Some(node) => vec![node],
            None => self.liveness.expected_since(sent.published).await,
        };
        Waiter::new(
            sent.pending,
            expect,
            nodes,
            sent.target,
            self.liveness.clone(),
            sent.epoch,
            timeout,
        )
        .kind(sent.kind, sent.started)
    }

    /// A request expecting one answer of `kind` per node, within the request timeout.
    pub(crate) async fn request(
        &self,
        body: RequestOutBody<'_>,
        target: Option<Uid>,
        kind: ResponseKind,
    ) -> Result<Vec<ResponseIn>, Error> {
        let timeout = self.config().request_timeout;
        let waiter = self
            .request_with(body, target, Expect::One(kind), timeout)
            .await?;
        gather(waiter).await.map_err(|(err, _)| err)
    }

    /// Publish a fire-and-forget request to every node, or a confirmed one to a
    /// single node, which returns once that node applied it.
    async fn command(&self, body: RequestOutBody<'_>, target: Option<Uid>) -> Result<(), Error> {
        if target.is_some() {
            self.request(body, target, ResponseKind::Done).await?;
            return Ok(());
        }
        self.link.publish_to_all(body).await
    }
}

impl<E: SocketEmitter> NatsAdapter<E> {
    /// Stop receiving, forget the cluster and say goodbye, each step bounded in
    /// time: a stalled connection cannot make closing hang. The receive loop and
    /// the liveness task must be stopped already (the watchdog's end stops them).
    ///
    /// Everything but the flush happens on the first poll: socketioxide polls the
    /// `close` of a deleted namespace only once.
    async fn shut_down(&self) {
        for task in self.take_tasks() {
            task.abort();
        }
        self.registry.remove(self.local.path(), self.link.uid());
        self.share.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.link.requests.close_all();
        self.liveness.forget_all();
        self.rooms.clear();
        if self.link.is_connected() {
            let _ = self.link.publish_to_all(RequestOutBody::Goodbye).await;
            // Closing often precedes the process's exit: make sure it left.
            let bound = self.config().publish_timeout;
            let _ = tokio::time::timeout(bound, self.link.client().flush()).await;
        }
    }

    /// Join (or leave) rooms everywhere: fire-and-forget to every node, or
    /// confirmed by the one node holding a targeted socket.
    async fn change_rooms(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
        join: bool,
    ) -> Result<(), Error> {
        if !opts.is_local(self.uid()) {
            let (opts, rooms) = (&opts, rooms.as_slice());
            let body = if join {
                RequestOutBody::AddSockets { opts, rooms }
            } else {
                RequestOutBody::DelSockets { opts, rooms }
            };
            if join && self.config().room_routing && opts.server_id.is_none() {
                // Confirmed by every node, once it subscribed to the rooms it now
                // has members in: a room broadcast after this returns reaches them.
                self.request(body, None, ResponseKind::Done).await?;
            } else {
                self.command(body, opts.server_id).await?;
            }
            if opts.server_id.is_some() {
                return Ok(());
            }
        }
        if join {
            self.local.add_sockets(opts, rooms.clone());
            self.route_rooms(&rooms).await?;
        } else {
            self.local.del_sockets(opts, rooms);
        }
        Ok(())
    }

    /// The watchdog: if the receive loop or the liveness task ends while the
    /// adapter is open (a bug, or the client closed under it), the node would be
    /// deaf or silent while the others keep counting it. Close it instead, so that
    /// it says goodbye and its subscriptions go.
    fn spawn_watchdog(self: &Arc<Self>, recv: JoinHandle<()>, liveness: JoinHandle<()>) {
        let weak = Arc::downgrade(self);
        // Owned by the watchdog: aborting it aborts both, even before its first poll.
        let (mut recv, mut liveness) = (AbortOnDrop(recv), AbortOnDrop(liveness));
        let watchdog = tokio::spawn(async move {
            let (task, ended) = tokio::select! {
                r = &mut recv.0 => ("receive loop", r),
                r = &mut liveness.0 => ("liveness task", r),
            };
            drop((recv, liveness));
            let Some(adapter) = weak.upgrade() else {
                return;
            };
            if adapter.closed.swap(true, Ordering::AcqRel) {
                return;
            }
            let why = match ended {
                Ok(()) => "it ended".to_owned(),
                Err(e) if e.is_panic() => "it panicked".to_owned(),
                Err(e) => e.to_string(),
            };
            tracing::error!(
                ns = %adapter.local.path(),
                node = %adapter.uid(),
                task,
                why,
                "a task of the NATS adapter stopped: this node leaves the cluster (goodbye sent) instead of staying deaf"
            );
            adapter.shut_down().await;
        });
        *self.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = Some(watchdog);
    }

    /// Warn, once the node's own messages had time to come back, if servers of
    /// this process share a `no_echo` connection and so never hear each other.
    fn spawn_echo_check(self: &Arc<Self>) {
        const AFTER: Duration = Duration::from_secs(2);
        let weak = Arc::downgrade(self);
        let check = tokio::spawn(async move {
            tokio::time::sleep(AFTER).await;
            let Some(a) = weak.upgrade() else { return };
            if let Some(users) = a.deaf_to_siblings() {
                tracing::warn!(
                    ns = %a.link.subjects().base(),
                    servers = users,
                    "{users} socket.io servers of this process share one NATS connection built with no_echo: \
                     they never receive each other's messages. Give each server its own connection, or keep echo on"
                );
            }
        });
        self.track(check);
    }
}

impl<E: SocketEmitter> CoreAdapter<E> for NatsAdapter<E> {
    type Error = Error;
    type State = NatsAdapterCtr;
    type AckStream = AckStream<E>;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let uid = local.server_id();
        let (subjects, init_error) = match NsSubjects::new(&state.config.prefix, local.path()) {
            Ok(subjects) => (subjects, None),
            // `new` cannot fail; `init` reports the error and the namespace never starts,
            // so these placeholder subjects are never used.
            Err(err) => (NsSubjects::with_default_prefix(local.path()), Some(err)),
        };
        let link = Arc::new(Link::new(
            state.client.clone(),
            state.config.clone(),
            uid,
            local.path(),
            subjects,
        ));
        Self {
            liveness: Liveness::new(link.clone()),
            link,
            init_error,
            form: ValueForm::of(&local),
            local,
            tasks: Mutex::new(Vec::new()),
            watchdog: Mutex::new(None),
            closed: AtomicBool::new(false),
            registry: state.registry.clone(),
            echo_seen: AtomicBool::new(false),
            pacing: Pacing::new(),
            rooms: RoomSubs::default(),
            me: OnceLock::new(),
            share: Mutex::new(None),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitRes(Box::pin(async move {
            if let Some(err) = self.init_error.clone() {
                return Err(err.into());
            }
            let _ = self.me.set(Arc::downgrade(&self));
            let recv = crate::recv::start(&self).await?;
            *self.share.lock().unwrap_or_else(|e| e.into_inner()) =
                ConnectionShare::register(self.link.client(), self.link.subjects().base());
            // Discovery starts here: the node is announced before `ns()` returns,
            // and requests made before discovery settles wait for it (see
            // `Liveness::expected_since`).
            let hello = self.liveness.hello().await;
            let liveness = self.liveness.spawn(hello);
            self.spawn_watchdog(recv, liveness);
            self.spawn_echo_check();
            if let Some(reconcile) = self.spawn_room_reconcile() {
                self.track(reconcile);
            }
            let view: Arc<dyn NamespaceView> = self.clone();
            self.registry
                .insert(self.local.path(), Arc::downgrade(&view));
            tracing::debug!(ns = %self.local.path(), node = %self.uid(), "nats adapter ready");
            on_success();
            Ok(())
        }))
    }

    /// Stops the adapter's tasks and subscriptions, then tells the other nodes
    /// this one is leaving; every step is bounded in time (socketioxide polls this
    /// only once when a namespace is deleted, and a stalled connection must not
    /// make it hang).
    async fn close(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        tracing::debug!(ns = %self.local.path(), node = %self.uid(), "nats adapter closing");
        self.stop_watchdog();
        self.shut_down().await;
        Ok(())
    }

    async fn server_count(&self) -> Result<u16, Error> {
        let others = self.liveness.alive().len();
        Ok(u16::try_from(others + 1).unwrap_or(u16::MAX))
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        if opts.is_local(self.uid()) {
            return self
                .local
                .broadcast(packet, opts)
                .map_err(BroadcastError::from);
        }
        let target = opts.server_id;
        let payload = self.link.encode_request(
            None,
            RequestOutBody::Broadcast {
                opts: &opts,
                packet: &packet,
            },
        );
        let volatile = opts.has_flag(BroadcastFlags::Volatile);
        let connected = self.link.is_connected();
        // Without routing, not even looked at: this is the broadcast's hot path.
        let routed = self
            .config()
            .room_routing
            .then(|| routed_room(&opts))
            .flatten();
        let subject = match routed {
            Some(room) => Subject::from(self.link.subjects().room(room, self.uid().as_str())),
            None => self.link.target_subject(target),
        };
        let remote = async {
            if volatile && !connected {
                // A volatile message may be dropped: do not wait for NATS.
                tracing::trace!("volatile broadcast not published: NATS disconnected");
                return Ok(());
            }
            self.link.publish(subject, None, payload).await
        };
        // Deliver locally first when NATS is down, so local sockets do not wait for it.
        let (published, local) = if connected {
            let published = remote.await;
            // Outside bursts, the remote nodes should not wait for the local
            // fan-out to get the message (see the pacing module). A broadcast
            // to another node has no local fan-out to wait for.
            if published.is_ok() && target.is_none() && self.pacing.should_yield() {
                tokio::task::yield_now().await;
            }
            let local = target.is_none().then(|| self.local.broadcast(packet, opts));
            (published, local)
        } else {
            let local = target.is_none().then(|| self.local.broadcast(packet, opts));
            (remote.await, local)
        };
        published.map_err(|e| BroadcastError::Adapter(AdapterError::from(e)))?;
        self.link.stats.broadcasts_sent.inc();
        match local {
            Some(Err(errs)) => Err(BroadcastError::from(errs)),
            _ => Ok(()),
        }
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Error> {
        if opts.is_local(self.uid()) {
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            return Ok(AckStream::local(local));
        }
        let target = opts.server_id;
        let body = RequestOutBody::BroadcastWithAck {
            opts: &opts,
            packet: &packet,
            ack_timeout: timeout,
        };
        // Saturating: the caller may ask for `Duration::MAX`.
        let wait = self
            .config()
            .request_timeout
            .saturating_add(timeout.unwrap_or_else(|| self.local.ack_timeout()));
        let sent = self.send_request(body, target).await;
        let Some(node) = target else {
            // Local sockets get the packet at once, even when publishing failed.
            let (local, _) = self.local.broadcast_with_ack(packet, opts.clone(), timeout);
            let remote = self.wait_for(sent?, Expect::Acks, wait).await;
            return Ok(AckStream::new(local, remote));
        };
        let mut remote = self.wait_for(sent?, Expect::Acks, wait).await;
        // Wait for the target's ack count, so that a gone node is an error
        // instead of an empty stream.
        let count_by = tokio::time::sleep(self.config().request_timeout);
        tokio::pin!(count_by);
        while remote.is_silent(node) {
            tokio::select! {
                step = remote.step() => match step {
                    // Its ack count: acks follow in the stream.
                    Step::Answer(_) => {}
                    Step::End(Ok(())) => break,
                    Step::End(Err(err)) => return Err(err),
                },
                _ = &mut count_by => {
                    return Err(Error::Timeout {
                        node,
                        timeout: self.config().request_timeout,
                    });
                }
            }
        }
        let (local, _) =
            self.local
                .broadcast_with_ack(packet, BroadcastOptions::default(), timeout);
        Ok(AckStream::new(local, remote))
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Error> {
        self.change_rooms(opts, rooms.into_room_iter().collect(), true)
            .await
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Error> {
        self.change_rooms(opts, rooms.into_room_iter().collect(), false)
            .await
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        if !opts.is_local(self.uid()) {
            let body = RequestOutBody::DisconnectSockets { opts: &opts };
            let sent = self.command(body, opts.server_id).await;
            if opts.server_id.is_some() {
                return sent.map_err(|e| BroadcastError::Adapter(e.into()));
            }
            // Local sockets are disconnected even if the other nodes could not be told.
            let local = self.local.disconnect_socket(opts);
            sent.map_err(|e| BroadcastError::Adapter(e.into()))?;
            return local.map_err(BroadcastError::Socket);
        }
        self.local
            .disconnect_socket(opts)
            .map_err(BroadcastError::Socket)
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Error> {
        if opts.is_local(self.uid()) {
            return Ok(self.local.rooms(opts).into_iter().collect());
        }
        let target = opts.server_id;
        let responses = self
            .request(
                RequestOutBody::AllRooms { opts: &opts },
                target,
                ResponseKind::Rooms,
            )
            .await?;
        let mut rooms = if target.is_some() {
            Default::default()
        } else {
            self.local.rooms(opts)
        };
        for res in responses {
            if let ResponseBody::Rooms(r) = res.body {
                rooms.extend(r);
            }
        }
        Ok(rooms.into_iter().collect())
    }

    async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Vec<RemoteSocketData>, Error> {
        if opts.is_local(self.uid()) {
            return Ok(self.local.fetch_sockets(opts));
        }
        let target = opts.server_id;
        let responses = self
            .request(
                RequestOutBody::FetchSockets { opts: &opts },
                target,
                ResponseKind::Sockets,
            )
            .await?;
        let mut sockets = if target.is_some() {
            Vec::new()
        } else {
            self.local.fetch_sockets(opts)
        };
        for res in responses {
            if let ResponseBody::Sockets(s) = res.body {
                sockets.extend(s);
            }
        }
        Ok(sockets)
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }
}

/// The future returned by `io.ns(..)` for this adapter: it subscribes to the
/// namespace's subjects and announces the node. Await it; until it resolves the
/// namespace does not exist.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct InitRes(BoxFuture<'static, Result<(), Error>>);

impl std::fmt::Debug for InitRes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitRes")
    }
}

impl Future for InitRes {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for InitRes {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(error) = self.0.await {
                tracing::error!(%error, "cannot start the nats adapter of a dynamic namespace");
            }
        });
    }
}
