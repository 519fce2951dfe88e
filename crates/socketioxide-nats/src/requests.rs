//! Routing answers to the requests waiting for them.
//!
//! Each node has one response subscription per namespace,
//! `{prefix}.{ns}.r.{uid}.*`; the last token of a response's subject is the id of
//! the request it answers, so a response reaches its waiting request without
//! being decoded. Node departures are pushed to every waiting request as well, so
//! a request stops waiting for a node the moment it is known to be gone.
//!
//! What a request does with its events (when it is complete) is
//! [`completion`](crate::completion)'s business.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_nats::{Message, StatusCode};
use socketioxide_core::{Sid, Uid};
use tokio::{sync::mpsc, time::Instant};

/// What a waiting request can receive.
#[derive(Debug)]
pub(crate) enum Event {
    /// A message on the request's reply subject.
    Reply(Message),
    /// A node left the namespace.
    NodeLeft(Uid),
}

/// The channel to a waiting request, and whether the adapter made it for itself
/// (discovery, probes) rather than for a caller.
type Handlers = HashMap<Sid, (mpsc::Sender<Event>, bool)>;

#[derive(Debug)]
pub(crate) struct Requests {
    handlers: Mutex<Handlers>,
    buffer: usize,
}

/// What became of a routed response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    Delivered,
    /// No request with this id waits (it finished, or never existed).
    Unknown,
    /// The request's buffer is full: its caller does not read fast enough.
    Overflow,
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
    /// `internal` requests (discovery, probes) are not counted by [`len`](Self::len).
    pub(crate) fn register(self: &Arc<Self>, id: Sid, internal: bool) -> Pending {
        let (tx, rx) = mpsc::channel(self.buffer);
        self.lock().insert(id, (tx, internal));
        Pending {
            id,
            rx,
            requests: self.clone(),
        }
    }

    /// Route a message received on a reply subject.
    pub(crate) fn route(&self, id: Sid, msg: Message) -> Routed {
        let Some(tx) = self.lock().get(&id).map(|(tx, _)| tx.clone()) else {
            return Routed::Unknown;
        };
        match tx.try_send(Event::Reply(msg)) {
            Ok(()) => Routed::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Routed::Overflow,
            // Dropped between the lookup and the send: the request just ended.
            Err(mpsc::error::TrySendError::Closed(_)) => Routed::Unknown,
        }
    }

    /// Tell every waiting request that `uid` is gone.
    pub(crate) fn node_left(&self, uid: Uid) {
        for (tx, _) in self.lock().values() {
            let _ = tx.try_send(Event::NodeLeft(uid));
        }
    }

    /// Drop every registration: waiting requests end with [`Error::Closed`](crate::Error::Closed).
    pub(crate) fn close_all(&self) {
        self.lock().clear();
    }

    /// How many requests of callers are waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|(_, internal)| !internal)
            .count()
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
}

/// NATS's answer to a request nobody was subscribed to.
pub(crate) fn is_no_responders(msg: &Message) -> bool {
    msg.status == Some(StatusCode::NO_RESPONDERS)
}
