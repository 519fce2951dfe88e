//! What a [`NatsHandle`](crate::NatsHandle) and a received server event can ask of
//! a running namespace adapter, whatever its socketioxide emitter type: the
//! adapter is generic over it, they are not.

use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use futures_core::future::BoxFuture;
use socketioxide_core::{
    Sid, Uid,
    adapter::{BroadcastOptions, Room, SocketEmitter},
};
use socketioxide_nats_protocol::{
    completion::Expect,
    message::{RequestOutBody, ResponseBody, ResponseKind, ResponseOutBody},
};

use crate::{AdapterStats, Error, NatsAdapter, completion::gather};

/// A server-to-server request: an acknowledged server event or a custom request.
#[derive(Debug, Clone)]
pub(crate) enum ServerRequest {
    Event(String),
    Custom,
}

/// The answers of the other nodes to a [`ServerRequest`], one per live node.
pub(crate) type Answers = Vec<(Uid, Result<Bytes, Error>)>;

pub(crate) trait NamespaceView: Send + Sync {
    fn uid(&self) -> Uid;
    fn nodes(&self) -> Vec<Uid>;
    fn pending_requests(&self) -> usize;
    fn stats(&self) -> AdapterStats;
    fn request_timeout(&self) -> Duration;
    /// Answer a request on its reply subject.
    fn reply(
        &self,
        subject: Subject,
        result: Result<Bytes, String>,
    ) -> BoxFuture<'_, Result<(), Error>>;
    fn server_emit<'a>(&'a self, event: &'a str, data: Bytes) -> BoxFuture<'a, Result<(), Error>>;
    /// Make the local socket `sid` join `rooms`; with room routing, subscribe to
    /// them and flush first.
    fn join(&self, sid: Sid, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), Error>>;
    fn server_request(
        &self,
        req: ServerRequest,
        data: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Answers, Error>>;
}

impl<E: SocketEmitter> NamespaceView for NatsAdapter<E> {
    fn uid(&self) -> Uid {
        NatsAdapter::uid(self)
    }
    fn nodes(&self) -> Vec<Uid> {
        self.liveness.alive()
    }
    fn pending_requests(&self) -> usize {
        self.link.requests.len()
    }
    fn stats(&self) -> AdapterStats {
        self.link.stats.snapshot()
    }
    fn request_timeout(&self) -> Duration {
        self.config().request_timeout
    }
    fn reply(
        &self,
        subject: Subject,
        result: Result<Bytes, String>,
    ) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let body = match &result {
                Ok(data) => ResponseOutBody::Reply(Ok(data)),
                Err(reason) => ResponseOutBody::Reply(Err(reason)),
            };
            let payload = self.link.response(body);
            self.link.publish(subject, None, payload).await
        })
    }
    fn server_emit<'a>(&'a self, event: &'a str, data: Bytes) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let body = RequestOutBody::ServerEvent { event, data: &data };
            self.link.publish_to_all(body).await
        })
    }
    fn join(&self, sid: Sid, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let local = socketioxide_core::adapter::CoreAdapter::get_local(self);
            // Only a connected socket: a socket id that is not would stay in the
            // rooms for ever (socketioxide removes them on disconnect only).
            if local.fetch_sockets(BroadcastOptions::new(sid)).is_empty() {
                return Ok(());
            }
            local.add_all(sid, rooms.clone());
            self.route_rooms(&rooms).await
        })
    }
    fn server_request(
        &self,
        req: ServerRequest,
        data: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Answers, Error>> {
        Box::pin(async move {
            let body = match &req {
                ServerRequest::Event(event) => RequestOutBody::ServerEvent { event, data: &data },
                ServerRequest::Custom => RequestOutBody::CustomRequest { data: &data },
            };
            let expect = Expect::One(ResponseKind::Reply);
            let waiter = self.request_with(body, None, expect, timeout).await?;
            // A node silent at the timeout is one answer among others: it gets a
            // `Timeout` of its own instead of failing the whole request.
            let (responses, silent) = match gather(waiter).await {
                Ok(responses) => (responses, Vec::new()),
                Err((Error::Incomplete { missing, .. }, responses)) => (responses, missing),
                Err((err, _)) => return Err(err),
            };
            let mut answers: Answers = responses
                .into_iter()
                .filter_map(|res| match res.body {
                    ResponseBody::Reply(Ok(data)) => Some((res.origin, Ok(data))),
                    ResponseBody::Reply(Err(reason)) => Some((
                        res.origin,
                        Err(Error::Remote {
                            node: res.origin,
                            reason,
                        }),
                    )),
                    _ => None,
                })
                .collect();
            answers.extend(
                silent
                    .into_iter()
                    .map(|node| (node, Err(Error::Timeout { node, timeout }))),
            );
            Ok(answers)
        })
    }
}
