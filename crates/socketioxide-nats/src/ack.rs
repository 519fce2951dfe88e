//! The stream of acks of a cluster-wide `emit_with_ack`.
//!
//! Each remote node first answers with the number of its sockets that were sent
//! the packet, then with one ack (or ack error) per socket. The stream ends as soon
//! as the local acks are done and every node has reported all its acks, left the
//! cluster, or said it has no matching socket, so a broadcast to an empty room
//! ends at once instead of waiting for the timeouts. A deadline of request
//! timeout + ack timeout bounds it in any case; the counting itself is the
//! [`Waiter`]'s.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use futures_core::{FusedStream, Stream};
use serde::de::DeserializeOwned;
use socketioxide_core::{
    Sid, Value,
    adapter::{AckStreamItem, SocketEmitter},
};
use socketioxide_nats_protocol::message::ResponseBody;

use crate::completion::{Step, Waiter};

pin_project_lite::pin_project! {
    /// The acks of the sockets that matched an `emit_with_ack`, on every node.
    ///
    /// Returned by the adapter to socketioxide, which wraps it in its own `AckStream`.
    pub struct AckStream<E: SocketEmitter> {
        #[pin]
        local: E::AckStream,
        remote: Option<Waiter>,
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

    pub(crate) fn new(local: E::AckStream, remote: Waiter) -> Self {
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
            match poll_remote::<E::AckError>(remote, cx) {
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

/// The next remote ack; `None` once the remote side is over. A remote side that
/// ends in error (timeout with nodes missing, connection lost) ends the stream
/// with the acks received so far: socketioxide's ack stream has no room for an
/// error, so the waiter logged and counted it.
fn poll_remote<Err: DeserializeOwned>(
    remote: &mut Waiter,
    cx: &mut Context<'_>,
) -> Poll<Option<AckStreamItem<Err>>> {
    loop {
        match remote.poll_step(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Step::End(_)) => return Poll::Ready(None),
            Poll::Ready(Step::Answer(res)) => {
                if let ResponseBody::Ack { sid, result } = res.body
                    && let Some(item) = decode_ack(sid, result)
                {
                    return Poll::Ready(Some(item));
                }
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
