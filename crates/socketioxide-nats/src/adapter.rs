//! The adapter: one instance per namespace, implementing socketioxide's
//! [`CoreAdapter`] over NATS.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use async_nats::{Client, Subject, connection::State};
use bytes::Bytes;
use futures_core::future::BoxFuture;
use socketioxide_core::{
    Sid, Uid,
    adapter::{
        BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, RemoteSocketData, Room,
        RoomParam, SocketEmitter, Spawnable,
        errors::{AdapterError, BroadcastError},
    },
    packet::Packet,
};
use socketioxide_nats_protocol::{
    ProtocolError,
    message::{RequestOut, RequestOutBody, ResponseBody, ResponseIn},
    subjects::NsSubjects,
};
use tokio::{task::AbortHandle, time::Instant};

use crate::{
    Error, NatsAdapterConfig,
    ack::{AckStream, RemoteAcks},
    handle::{NamespaceView, NatsHandle, Registry},
    nodes::Nodes,
    pacing::Pacing,
    requests::{Event, Requests, is_no_responders},
    sharing::ConnectionShare,
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

/// The socketioxide adapter that spreads every operation of a namespace over NATS.
///
/// Use it as `SocketIo::builder().with_adapter::<NatsAdapter<_>>(ctr)`; the type
/// parameter is socketioxide's emitter and is always inferred.
pub struct NatsAdapter<E> {
    local: CoreLocalAdapter<E>,
    client: Client,
    config: NatsAdapterConfig,
    uid: Uid,
    subjects: NsSubjects,
    /// Why the namespace cannot start, found when its subjects were built.
    init_error: Option<ProtocolError>,
    /// Where this node publishes requests for every node, built once.
    broadcast_subject: Subject,
    /// The response-subject prefix of this node, to route replies by request id.
    reply_prefix: String,
    pub(crate) nodes: Nodes,
    pub(crate) requests: Arc<Requests>,
    tasks: Mutex<Vec<AbortHandle>>,
    closed: AtomicBool,
    registry: Arc<Registry>,
    /// Whether the broker echoed one of this node's own messages back.
    echo_seen: AtomicBool,
    /// Whether a broadcast lets the connection write before the local fan-out.
    pacing: Pacing,
    /// From init to close: this adapter's use of its connection, which tells
    /// whether other adapters of the namespace share it.
    share: Mutex<Option<ConnectionShare>>,
}

impl<E> std::fmt::Debug for NatsAdapter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAdapter")
            .field("uid", &self.uid)
            .field("subjects", &self.subjects)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<E> DefinedAdapter for NatsAdapter<E> {}

impl<E> Drop for NatsAdapter<E> {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

impl<E> NatsAdapter<E> {
    fn abort_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    pub(crate) fn track(&self, task: AbortHandle) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// This node's id in the cluster (socketioxide's server id).
    pub(crate) fn uid(&self) -> Uid {
        self.uid
    }

    pub(crate) fn subjects(&self) -> &NsSubjects {
        &self.subjects
    }

    pub(crate) fn reply_prefix(&self) -> &str {
        &self.reply_prefix
    }

    pub(crate) fn config(&self) -> &NatsAdapterConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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
    pub(crate) fn deaf_to_siblings(&self) -> Option<usize> {
        let users = self.share.lock().ok()?.as_ref()?.users();
        (users > 1 && !self.echo_seen.load(Ordering::Relaxed)).then_some(users)
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Wait until NATS is connected, at most until `deadline`.
    async fn connected_by(&self, deadline: Instant) -> bool {
        while !self.is_connected() {
            if Instant::now() >= deadline {
                return false;
            }
            // The client exposes its state but no way to await it: poll.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    fn unreachable(&self, action: impl Into<String>) -> Error {
        Error::Unreachable {
            action: action.into(),
            timeout: self.config.publish_timeout,
            state: self.client.connection_state().to_string(),
        }
    }

    /// Publish one message, failing within `publish_timeout` if NATS is unreachable.
    pub(crate) async fn publish(
        &self,
        subject: Subject,
        reply: Option<Subject>,
        payload: Bytes,
    ) -> Result<(), Error> {
        let max = self.client.max_payload();
        if payload.len() > max {
            return Err(Error::PayloadTooLarge {
                size: payload.len(),
                max,
            });
        }
        // The deadline is only needed off the fast path (disconnected, or the
        // client's queue full): no clock read per publish otherwise.
        let mut deadline = None;
        if !self.is_connected() {
            let by = Instant::now() + self.config.publish_timeout;
            if !self.connected_by(by).await {
                return Err(self.unreachable(format!("publish to {subject}")));
            }
            deadline = Some(by);
        }
        let publish = async {
            match reply {
                Some(reply) => {
                    self.client
                        .publish_with_reply(subject.clone(), reply, payload)
                        .await
                }
                None => self.client.publish(subject.clone(), payload).await,
            }
        };
        let mut publish = std::pin::pin!(publish);
        // The client's queue almost always has room: then the publish completes
        // on its first poll and needs no timer (profiling showed the timer at
        // about 5% of a broadcast's instructions).
        let first = futures_util::FutureExt::now_or_never(publish.as_mut());
        let outcome = match first {
            Some(res) => Ok(res),
            None => {
                let by = deadline.unwrap_or_else(|| Instant::now() + self.config.publish_timeout);
                tokio::time::timeout_at(by, publish).await
            }
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::Publish {
                subject: subject.to_string(),
                source,
            }),
            Err(_) => Err(self.unreachable(format!("publish to {subject}"))),
        }
    }

    fn target_subject(&self, target: Option<Uid>) -> Subject {
        match target {
            Some(node) => Subject::from(self.subjects.node(node.as_str(), self.uid.as_str())),
            None => self.broadcast_subject.clone(),
        }
    }

    fn reply_subject(&self, id: Sid) -> Subject {
        Subject::from(self.subjects.reply(self.uid.as_str(), id.as_str()))
    }

    /// Which nodes an ack stream must hear from.
    fn expected(&self, target: Option<Uid>) -> HashSet<Sid> {
        match target {
            Some(node) => HashSet::from([*node]),
            None => self.nodes.alive().into_iter().map(|uid| *uid).collect(),
        }
    }

    /// Send a request that expects one response per node and collect them.
    async fn request(
        &self,
        body: RequestOutBody<'_>,
        target: Option<Uid>,
    ) -> Result<Vec<ResponseIn>, Error> {
        let timeout = self.config.request_timeout;
        let (responses, _silent) = self.request_with(body, target, timeout).await?;
        Ok(responses)
    }

    /// [`request`](Self::request) with a chosen timeout, also returning the live
    /// nodes that did not answer in time.
    pub(crate) async fn request_with(
        &self,
        body: RequestOutBody<'_>,
        target: Option<Uid>,
        timeout: Duration,
    ) -> Result<(Vec<ResponseIn>, Vec<Uid>), Error> {
        let id = Sid::new();
        // Registered before publishing so that no answer arrives unrouted.
        let pending = self.requests.register(id);
        let nodes: Vec<Uid> = match target {
            Some(node) => vec![node],
            None => self.nodes.alive(),
        };
        if nodes.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let payload = RequestOut {
            origin: self.uid,
            id: Some(id),
            body,
        }
        .encode();
        self.publish(
            self.target_subject(target),
            Some(self.reply_subject(id)),
            payload,
        )
        .await?;
        let expected = nodes.iter().map(|uid| **uid).collect();
        let (responses, silent) = pending.gather(expected, timeout, target).await?;
        let silent = nodes
            .into_iter()
            .filter(|uid| silent.contains(&**uid))
            .collect();
        Ok((responses, silent))
    }

    /// Publish a request to every node without waiting for answers.
    pub(crate) async fn publish_to_all(&self, body: RequestOutBody<'_>) -> Result<(), Error> {
        let payload = RequestOut {
            origin: self.uid,
            id: None,
            body,
        }
        .encode();
        self.publish(self.broadcast_subject.clone(), None, payload)
            .await
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Publish a fire-and-forget request to every node, or a confirmed one to a
    /// single node, which returns once that node applied it.
    async fn command(&self, body: RequestOutBody<'_>, target: Option<Uid>) -> Result<(), Error> {
        if target.is_some() {
            self.request(body, target).await?;
            return Ok(());
        }
        self.publish_to_all(body).await
    }
}

impl<E: SocketEmitter> NatsAdapter<E> {
    /// Join (or leave) rooms everywhere: fire-and-forget to every node, or
    /// confirmed by the one node holding a targeted socket.
    async fn change_rooms(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
        join: bool,
    ) -> Result<(), Error> {
        if !opts.is_local(self.uid) {
            let (opts, rooms) = (&opts, rooms.as_slice());
            let body = if join {
                RequestOutBody::AddSockets { opts, rooms }
            } else {
                RequestOutBody::DelSockets { opts, rooms }
            };
            self.command(body, opts.server_id).await?;
            if opts.server_id.is_some() {
                return Ok(());
            }
        }
        if join {
            self.local.add_sockets(opts, rooms);
        } else {
            self.local.del_sockets(opts, rooms);
        }
        Ok(())
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
        let broadcast_subject = Subject::from(subjects.broadcast(uid.as_str()));
        let reply_prefix = subjects.reply_prefix(uid.as_str());
        Self {
            client: state.client.clone(),
            config: state.config.clone(),
            uid,
            broadcast_subject,
            reply_prefix,
            init_error,
            nodes: Nodes::new(state.config.heartbeat_timeout),
            requests: Requests::new(state.config.response_buffer),
            subjects,
            local,
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            registry: state.registry.clone(),
            echo_seen: AtomicBool::new(false),
            pacing: Pacing::new(),
            share: Mutex::new(None),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitRes(Box::pin(async move {
            if let Some(err) = self.init_error.clone() {
                return Err(err.into());
            }
            crate::recv::start(&self).await?;
            *self.share.lock().unwrap_or_else(|e| e.into_inner()) =
                ConnectionShare::register(&self.client, self.subjects.base());
            crate::heartbeat::start(&self).await;
            let view: Arc<dyn NamespaceView> = self.clone();
            self.registry
                .insert(self.local.path(), Arc::downgrade(&view));
            tracing::debug!(ns = %self.local.path(), node = %self.uid, "nats adapter ready");
            on_success();
            Ok(())
        }))
    }

    /// Stops the adapter's tasks and subscriptions at once, then tells the other
    /// nodes this one is leaving (best effort: socketioxide polls this only once
    /// when a namespace is deleted).
    async fn close(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.abort_tasks();
        self.registry.remove(self.local.path(), self.uid);
        self.share.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.requests.close_all();
        self.nodes.forget_all();
        tracing::debug!(ns = %self.local.path(), node = %self.uid, "nats adapter closed");
        let goodbye = RequestOut {
            origin: self.uid,
            id: None,
            body: RequestOutBody::Goodbye,
        }
        .encode();
        if self.is_connected() {
            // Not `self.publish`: closing must not wait for a broken connection.
            let _ = self
                .client
                .publish(self.broadcast_subject.clone(), goodbye)
                .await;
        }
        Ok(())
    }

    async fn server_count(&self) -> Result<u16, Error> {
        let others = self.nodes.alive().len();
        Ok(u16::try_from(others + 1).unwrap_or(u16::MAX))
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        if opts.is_local(self.uid) {
            return self
                .local
                .broadcast(packet, opts)
                .map_err(BroadcastError::from);
        }
        let target = opts.server_id;
        let payload = RequestOut {
            origin: self.uid,
            id: None,
            body: RequestOutBody::Broadcast {
                opts: &opts,
                packet: &packet,
            },
        }
        .encode();
        let volatile = opts.has_flag(socketioxide_core::adapter::BroadcastFlags::Volatile);
        let remote = async {
            if volatile && !self.is_connected() {
                // A volatile message may be dropped: do not wait for NATS.
                tracing::trace!("volatile broadcast not published: NATS disconnected");
                return Ok(());
            }
            self.publish(self.target_subject(target), None, payload)
                .await
        };
        // Deliver locally first when NATS is down, so local sockets do not wait for it.
        let (published, local) = if self.is_connected() {
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
        if opts.is_local(self.uid) {
            let (local, _) = self.local.broadcast_with_ack(packet, opts, timeout);
            return Ok(AckStream::local(local));
        }
        let target = opts.server_id;
        let id = Sid::new();
        let pending = self.requests.register(id);
        let expected = self.expected(target);
        let payload = RequestOut {
            origin: self.uid,
            id: Some(id),
            body: RequestOutBody::BroadcastWithAck {
                opts: &opts,
                packet: &packet,
                ack_timeout: timeout,
            },
        }
        .encode();
        let deadline = Instant::now()
            + self.config.request_timeout
            + timeout.unwrap_or_else(|| self.local.ack_timeout());
        let mut remote = RemoteAcks::new(pending, expected, deadline);
        let published = if remote.is_done() {
            Ok(())
        } else {
            self.publish(
                self.target_subject(target),
                Some(self.reply_subject(id)),
                payload,
            )
            .await
        };
        if target.is_none() {
            // Local sockets get the packet even when publishing failed.
            let (local, _) = self.local.broadcast_with_ack(packet, opts.clone(), timeout);
            published?;
            return Ok(AckStream::new(local, remote));
        }
        published?;
        if let Some(node) = target {
            // Wait for the target's ack count, so that a gone node is an error
            // instead of an empty stream.
            let request_deadline = Instant::now() + self.config.request_timeout;
            while remote.awaits_count_from(&node) {
                match tokio::time::timeout_at(request_deadline, remote.next_event()).await {
                    Ok(Some(Event::Reply(msg))) if is_no_responders(&msg) => {
                        return Err(Error::NodeGone { node });
                    }
                    Ok(Some(Event::NodeLeft(uid))) if uid == node => {
                        return Err(Error::NodeGone { node });
                    }
                    Ok(Some(Event::ConnectionLost)) => return Err(Error::ConnectionLost),
                    Ok(Some(event)) => {
                        let _ = remote.on_event::<E::AckError>(event);
                    }
                    Ok(None) => return Err(Error::Closed),
                    Err(_) => {
                        return Err(Error::Timeout {
                            node,
                            timeout: self.config.request_timeout,
                        });
                    }
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
        if !opts.is_local(self.uid) {
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
        if opts.is_local(self.uid) {
            return Ok(self.local.rooms(opts).into_iter().collect());
        }
        let target = opts.server_id;
        let responses = self
            .request(RequestOutBody::AllRooms { opts: &opts }, target)
            .await?;
        let mut rooms = if target.is_some() {
            HashSet::new()
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
        if opts.is_local(self.uid) {
            return Ok(self.local.fetch_sockets(opts));
        }
        let target = opts.server_id;
        let responses = self
            .request(RequestOutBody::FetchSockets { opts: &opts }, target)
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
