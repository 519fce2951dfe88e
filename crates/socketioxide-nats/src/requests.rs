//! Requests waiting for answers from other nodes.
//!
//! Each node has one response subscription per namespace,
//! `{prefix}.{ns}.r.{uid}.*`; the last token of a response's subject is the id of
//! the request it answers, so a response is routed to its waiting request without
//! being decoded. Node departures are pushed to every waiting request as well, so
//! a request stops waiting for a node the moment it is known to be gone.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::{Message, StatusCode};
use socketioxide_core::{Sid, Uid};
use socketioxide_nats_protocol::message::{ResponseIn, decode_response};
use tokio::{sync::mpsc, time::Instant};

use crate::Error;

/// What a waiting request can receive.
#[derive(Debug)]
pub(crate) enum Event {
    /// A message on the request's reply subject.
    Reply(Message),
    /// A node left the namespace.
    NodeLeft(Uid),
    /// This node's NATS connection dropped: answers sent meanwhile are lost.
    ConnectionLost,
}

type Handlers = HashMap<Sid, mpsc::Sender<Event>>;

#[derive(Debug)]
pub(crate) struct Requests {
    handlers: Mutex<Handlers>,
    buffer: usize,
}

impl Requests {
    pub(crate) fn new(buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            handlers: Mutex::new(HashMap::new()),
            buffer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Handlers> {
        // Every update is a single insert or remove: a poisoned map is still consistent.
        self.handlers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a request before publishing it, so no answer can arrive unrouted.
    /// The registration is removed when the returned [`Pending`] is dropped.
    pub(crate) fn register(self: &Arc<Self>, id: Sid) -> Pending {
        let (tx, rx) = mpsc::channel(self.buffer);
        self.lock().insert(id, tx);
        Pending {
            id,
            rx,
            requests: self.clone(),
        }
    }

    /// Route a message received on a reply subject; `false` if nobody waits for it.
    pub(crate) fn route(&self, id: Sid, msg: Message) -> bool {
        let Some(tx) = self.lock().get(&id).cloned() else {
            return false;
        };
        if let Err(err) = tx.try_send(Event::Reply(msg)) {
            tracing::warn!(
                req_id = %id,
                error = %err,
                "response dropped: the caller does not read responses fast enough (see NatsAdapterConfig::response_buffer)"
            );
        }
        true
    }

    /// Tell every waiting request that `uid` is gone.
    pub(crate) fn node_left(&self, uid: Uid) {
        self.notify_all(|| Event::NodeLeft(uid));
    }

    /// Tell every waiting request that this node's NATS connection dropped.
    pub(crate) fn connection_lost(&self) {
        self.notify_all(|| Event::ConnectionLost);
    }

    fn notify_all(&self, event: impl Fn() -> Event) {
        for tx in self.lock().values() {
            let _ = tx.try_send(event());
        }
    }

    /// Drop every registration: waiting requests end with what they have.
    pub(crate) fn close_all(&self) {
        self.lock().clear();
    }

    /// How many requests are waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A registered request. Dropping it unregisters it.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) id: Sid,
    rx: mpsc::Receiver<Event>,
    requests: Arc<Requests>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.requests.lock().remove(&self.id);
    }
}

impl Pending {
    /// The next event, `Err(true)` at the deadline, `Err(false)` once the adapter closed.
    pub(crate) async fn recv_until(&mut self, deadline: Instant) -> Result<Event, bool> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(false),
            Err(_) => Err(true),
        }
    }

    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }

    /// Collect one response from each node in `expected`, ending as soon as every
    /// one of them has answered or left, or at `timeout`. Returns the responses
    /// and the nodes that stayed silent.
    ///
    /// With `target` set, the request went to that single node: "no responders"
    /// from NATS means it is gone, and silence means it timed out; both are errors.
    ///
    /// If this node's connection drops meanwhile, the request fails with
    /// [`Error::ConnectionLost`]: the silent nodes are not gone, their answers
    /// are, and a partial answer would look complete.
    pub(crate) async fn gather(
        mut self,
        mut expected: HashSet<Sid>,
        timeout: Duration,
        target: Option<Uid>,
    ) -> Result<(Vec<ResponseIn>, HashSet<Sid>), Error> {
        let deadline = Instant::now() + timeout;
        let mut responses = Vec::with_capacity(expected.len());
        while !expected.is_empty() {
            match self.recv_until(deadline).await {
                Ok(Event::Reply(msg)) if is_no_responders(&msg) => {
                    match target {
                        Some(node) => return Err(Error::NodeGone { node }),
                        // Nobody listens on the broadcast subject: no other node exists.
                        None => {
                            expected.clear();
                            break;
                        }
                    }
                }
                Ok(Event::Reply(msg)) => match decode_response(msg.payload) {
                    Ok(res) => {
                        expected.remove(&*res.origin);
                        responses.push(res);
                    }
                    Err(error) => {
                        tracing::warn!(req_id = %self.id, %error, "undecodable response dropped")
                    }
                },
                Ok(Event::ConnectionLost) => {
                    tracing::warn!(req_id = %self.id, "NATS connection lost during a request");
                    return Err(Error::ConnectionLost);
                }
                Ok(Event::NodeLeft(uid)) => {
                    if expected.remove(&*uid) {
                        tracing::debug!(req_id = %self.id, node = %uid, "stop waiting for a node that left");
                    }
                    if target == Some(uid) {
                        return Err(Error::NodeGone { node: uid });
                    }
                }
                Err(false) => return Err(Error::Closed),
                Err(true) => {
                    if let Some(node) = target {
                        return Err(Error::Timeout { node, timeout });
                    }
                    if !expected.is_empty() {
                        let missing: Vec<String> =
                            expected.iter().map(ToString::to_string).collect();
                        tracing::warn!(
                            req_id = %self.id,
                            ?missing,
                            ?timeout,
                            "request timed out waiting for live nodes; returning the answers received"
                        );
                    }
                    break;
                }
            }
        }
        Ok((responses, expected))
    }
}

pub(crate) fn is_no_responders(msg: &Message) -> bool {
    msg.status == Some(StatusCode::NO_RESPONDERS)
}
