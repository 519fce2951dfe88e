//! The stream of acks of a cluster-wide `emit_with_ack`.
//!
//! Each remote node first answers with the number of its sockets that were sent
//! the packet, then with one ack (or ack error) per socket. The stream ends as soon
//! as the local acks are done and every node has reported all its acks, left the
//! cluster, or said it has no matching socket, so a broadcast to an empty room
//! ends at once instead of waiting for the timeouts. A deadline of request
//! timeout + ack timeout bounds it in any case.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures_core::{FusedStream, Stream};
use serde::de::DeserializeOwned;
use socketioxide_core::{
    Sid, Uid, Value,
    adapter::{AckStreamItem, SocketEmitter},
};
use socketioxide_nats_protocol::message::{ResponseBody, decode_response};
use tokio::time::{Instant, Sleep};

use crate::requests::{Event, Pending, is_no_responders};

pin_project_lite::pin_project! {
    /// The acks of the sockets that matched an `emit_with_ack`, on every node.
    ///
    /// Returned by the adapter to socketioxide, which wraps it in its own `AckStream`.
    pub struct AckStream<E: SocketEmitter> {
        #[pin]
        local: E::AckStream,
        remote: Option<RemoteAcks>,
    }
}

impl<E: SocketEmitter> fmt::Debug for AckStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckStream")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl<E: SocketEmitter> AckStream<E> {
    pub(crate) fn local(local: E::AckStream) -> Self {
        Self {
            local,
            remote: None,
        }
    }

    pub(crate) fn new(local: E::AckStream, remote: RemoteAcks) -> Self {
        Self {
            local,
            remote: Some(remote),
        }
    }
}

impl<E: SocketEmitter> Stream for AckStream<E> {
    type Item = AckStreamItem<E::AckError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let local_done = this.local.is_terminated()
            || match this.local.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => true,
                Poll::Pending => false,
            };
        if let Some(remote) = this.remote.as_mut() {
            match remote.poll_next::<E::AckError>(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => *this.remote = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        if local_done {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl<E: SocketEmitter> FusedStream for AckStream<E> {
    fn is_terminated(&self) -> bool {
        self.local.is_terminated() && self.remote.is_none()
    }
}

/// The remote half of an [`AckStream`].
pub(crate) struct RemoteAcks {
    pending: Pending,
    /// Nodes still owing something: `None` before their ack count, then the
    /// number of acks still to come.
    waiting: HashMap<Sid, Option<u32>>,
    deadline: Pin<Box<Sleep>>,
}

impl fmt::Debug for RemoteAcks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAcks")
            .field("req_id", &self.pending.id)
            .field("waiting", &self.waiting)
            .finish()
    }
}

impl RemoteAcks {
    pub(crate) fn new(
        pending: Pending,
        nodes: impl IntoIterator<Item = Sid>,
        deadline: Instant,
    ) -> Self {
        Self {
            pending,
            waiting: nodes.into_iter().map(|uid| (uid, None)).collect(),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether `node` has not answered anything yet.
    pub(crate) fn awaits_count_from(&self, node: &Uid) -> bool {
        matches!(self.waiting.get(&**node), Some(None))
    }

    /// The next event for this request, bounded by the stream deadline; `None`
    /// once the deadline passed or the adapter closed.
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        let deadline = self.deadline.deadline();
        self.pending.recv_until(deadline).await.ok()
    }

    fn poll_next<Err: DeserializeOwned>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<AckStreamItem<Err>>> {
        loop {
            if self.waiting.is_empty() {
                return Poll::Ready(None);
            }
            if self.deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!(
                    req_id = %self.pending.id,
                    waiting = ?self.waiting,
                    "ack stream deadline reached"
                );
                self.waiting.clear();
                return Poll::Ready(None);
            }
            match self.pending.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.waiting.clear();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(event)) => {
                    if let Some(item) = self.on_event(event) {
                        return Poll::Ready(Some(item));
                    }
                }
            }
        }
    }

    /// Apply one event; return an ack to yield, if it is one.
    pub(crate) fn on_event<Err: DeserializeOwned>(
        &mut self,
        event: Event,
    ) -> Option<AckStreamItem<Err>> {
        let msg = match event {
            Event::NodeLeft(uid) => {
                if self.waiting.remove(&*uid).is_some() {
                    tracing::debug!(req_id = %self.pending.id, node = %uid, "node left: its acks will not come");
                }
                return None;
            }
            Event::ConnectionLost => {
                // Remote acks stop coming with the connection: end now rather
                // than at the deadline.
                tracing::warn!(
                    req_id = %self.pending.id,
                    waiting = ?self.waiting,
                    "NATS connection lost: the remote acks still awaited are lost"
                );
                self.waiting.clear();
                return None;
            }
            Event::Reply(msg) if is_no_responders(&msg) => {
                // Only a request to one node can find no responders: that node is gone.
                self.waiting.clear();
                return None;
            }
            Event::Reply(msg) => msg,
        };
        let res = match decode_response(msg.payload) {
            Ok(res) => res,
            Err(error) => {
                tracing::warn!(req_id = %self.pending.id, %error, "undecodable ack response dropped");
                return None;
            }
        };
        let origin = res.origin;
        match res.body {
            ResponseBody::AckCount(count) => {
                match self.waiting.get_mut(&*origin) {
                    Some(slot @ None) => *slot = Some(count),
                    Some(Some(_)) => {
                        tracing::warn!(node = %origin, "duplicate ack count ignored");
                    }
                    // A node we did not know about yet: wait for its acks too.
                    None => {
                        self.waiting.insert(*origin, Some(count));
                    }
                }
                if self.waiting.get(&*origin) == Some(&Some(0)) {
                    self.waiting.remove(&*origin);
                }
                None
            }
            ResponseBody::Ack { sid, result } => {
                let Some(Some(left)) = self.waiting.get_mut(&*origin) else {
                    tracing::warn!(node = %origin, socket = %sid, "unexpected ack dropped");
                    return None;
                };
                *left -= 1;
                if *left == 0 {
                    self.waiting.remove(&*origin);
                }
                decode_ack(sid, result)
            }
            _ => {
                tracing::warn!(node = %origin, "unexpected response type to a broadcast with ack");
                None
            }
        }
    }
}

fn decode_ack<Err: DeserializeOwned>(
    sid: Sid,
    result: Result<Value, bytes::Bytes>,
) -> Option<AckStreamItem<Err>> {
    match result {
        Ok(value) => Some((sid, Ok(value))),
        Err(bytes) => match rmp_serde::from_slice::<Err>(&bytes) {
            Ok(err) => Some((sid, Err(err))),
            Err(error) => {
                tracing::warn!(socket = %sid, %error, "undecodable ack error dropped");
                None
            }
        },
    }
}
