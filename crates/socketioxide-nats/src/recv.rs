//! The receiving side: the three subscriptions of a namespace and what a node does
//! with each request it receives.
//!
//! The receive loop never awaits: local deliveries are synchronous and every
//! answer is published from a spawned task, so a slow publish cannot stall the
//! subscription (which NATS would then report as a slow consumer).

use std::{
    str::FromStr,
    sync::{Arc, Weak},
};

use async_nats::{Message, Subject, Subscriber, connection::State};
use bytes::Bytes;
use futures_util::StreamExt;
use socketioxide_core::{
    Sid, Uid,
    adapter::{RemoteSocketData, Room, SocketEmitter},
};
use socketioxide_nats_protocol::{
    ProtocolError,
    message::{
        RequestBody, RequestIn, RequestOut, RequestOutBody, ResponseOut, ResponseOutBody,
        decode_request,
    },
};

use crate::{
    CustomRequest, Error, NatsAdapter, ServerEvent, events::Replier, handle::NamespaceView,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Broadcast,
    Node,
    Reply,
}

/// Subscribe to the namespace's subjects and spawn the receive loop.
pub(crate) async fn start<E: SocketEmitter>(adapter: &Arc<NatsAdapter<E>>) -> Result<(), Error> {
    let s = adapter.subjects();
    let uid = adapter.uid();
    let broadcast = subscribe(adapter, s.broadcast_filter()).await?;
    let node = subscribe(adapter, s.node_filter(uid.as_str())).await?;
    let replies = subscribe(adapter, s.reply_filter(uid.as_str())).await?;

    if adapter.client().connection_state() == State::Connected {
        // Make sure the server holds the subscriptions before the node announces itself.
        let flushed =
            tokio::time::timeout(adapter.config().publish_timeout, adapter.client().flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!(ns = %adapter.subjects().base(), "could not flush the subscriptions to NATS; they apply once it answers");
        }
    } else {
        tracing::warn!(
            ns = %adapter.subjects().base(),
            state = %adapter.client().connection_state(),
            "NATS is not connected yet: the namespace receives nothing until it connects"
        );
    }

    let stream = futures_util::stream::select(
        futures_util::stream::select(
            broadcast.map(|m| (Source::Broadcast, m)),
            node.map(|m| (Source::Node, m)),
        ),
        replies.map(|m| (Source::Reply, m)),
    );
    let task = tokio::spawn(recv_loop(Arc::downgrade(adapter), stream));
    adapter.track(task.abort_handle());
    Ok(())
}

async fn subscribe<E>(adapter: &NatsAdapter<E>, subject: String) -> Result<Subscriber, Error> {
    let timeout = adapter.config().publish_timeout;
    match tokio::time::timeout(timeout, adapter.client().subscribe(subject.clone())).await {
        Ok(Ok(sub)) => {
            tracing::debug!(%subject, "subscribed");
            Ok(sub)
        }
        Ok(Err(source)) => Err(Error::Subscribe { subject, source }),
        Err(_) => Err(Error::Unreachable {
            action: format!("subscribe to {subject}"),
            timeout,
            state: adapter.client().connection_state().to_string(),
        }),
    }
}

async fn recv_loop<E: SocketEmitter>(
    adapter: Weak<NatsAdapter<E>>,
    mut stream: impl futures_core::Stream<Item = (Source, Message)> + Unpin,
) {
    while let Some((source, msg)) = stream.next().await {
        // Holding only a weak reference lets the adapter drop with its namespace.
        let Some(adapter) = adapter.upgrade() else {
            return;
        };
        match source {
            Source::Reply => adapter.on_reply(msg),
            Source::Broadcast | Source::Node => adapter.on_request(msg),
        }
    }
    tracing::warn!(
        "NATS subscriptions ended (the client was closed or drained); this node no longer receives cluster messages"
    );
}

impl<E: SocketEmitter> NatsAdapter<E> {
    fn on_reply(&self, msg: Message) {
        let id = msg
            .subject
            .strip_prefix(self.reply_prefix())
            .and_then(|id| Sid::from_str(id).ok());
        match id {
            Some(id) => {
                if !self.requests.route(id, msg) {
                    // Normal for answers arriving after their request completed.
                    tracing::trace!(req_id = %id, "response to a finished request dropped");
                }
            }
            None => {
                tracing::warn!(subject = %msg.subject, "message on a reply subject without a request id dropped")
            }
        }
    }

    fn on_request(self: &Arc<Self>, msg: Message) {
        // The last token of a request subject is its sender: skip our own echo
        // without decoding it. The echo comes unless the user built the connection
        // with no_echo, which is theirs to choose: several nodes may share one.
        let me = self.uid();
        if is_last_token(&msg.subject, me.as_str()) {
            self.saw_own_echo();
            return;
        }
        // Only the payload moves into the decoder: the subject stays for the logs.
        match decode_request(msg.payload) {
            Ok(req) if req.origin == me => {
                tracing::warn!(subject = %msg.subject, "request claiming to come from this node dropped");
            }
            Ok(req) => self.dispatch(req, msg.reply),
            Err(error @ ProtocolError::UnknownKind { .. }) => {
                tracing::debug!(subject = %msg.subject, %error, "request of an unknown type dropped");
            }
            Err(error) => {
                tracing::warn!(subject = %msg.subject, %error, "malformed request dropped");
            }
        }
    }

    fn dispatch(self: &Arc<Self>, req: RequestIn, reply: Option<Subject>) {
        let origin = req.origin;
        tracing::trace!(node = %origin, req_id = ?req.id, "request received");
        let reply = match (req.id, reply) {
            (Some(_), Some(reply)) if self.subjects().is_reply_subject(&reply) => Some(reply),
            (Some(id), reply) => {
                tracing::warn!(node = %origin, req_id = %id, ?reply, "request without a valid reply subject: it is applied but not answered");
                None
            }
            (None, _) => None,
        };
        match req.body {
            RequestBody::Heartbeat => {
                if self.nodes.heartbeat(origin) {
                    tracing::info!(ns = %self.subjects().base(), node = %origin, "node joined");
                }
            }
            RequestBody::Hello => {
                if self.nodes.heartbeat(origin) {
                    tracing::info!(ns = %self.subjects().base(), node = %origin, "node joined");
                }
                // Answered every time: an earlier answer may have been lost while
                // the newcomer's subscriptions propagated through a NATS cluster.
                let beat = RequestOut {
                    origin: self.uid(),
                    id: None,
                    body: RequestOutBody::Heartbeat,
                }
                .encode();
                let subject = self.subjects().node(origin.as_str(), self.uid().as_str());
                self.spawn_publish(Subject::from(subject), beat);
            }
            RequestBody::Goodbye => {
                if self.nodes.remove(origin) {
                    tracing::info!(ns = %self.subjects().base(), node = %origin, "node left");
                    self.requests.node_left(origin);
                }
            }
            RequestBody::Discover => {
                // Discovery does not make the asker a node: emitters use it.
                if let Some(reply) = reply {
                    let nodes = self.nodes.alive();
                    let res = self.response(ResponseOutBody::Nodes(&nodes));
                    self.spawn_publish(reply, res);
                }
            }
            RequestBody::ServerEvent { event, data } => {
                self.nodes.touch(origin);
                self.on_server_event(origin, event, data, reply);
            }
            RequestBody::CustomRequest { data } => {
                self.nodes.touch(origin);
                self.on_custom_request(origin, data, reply);
            }
            body => {
                self.nodes.touch(origin);
                self.apply(body, reply);
            }
        }
    }

    fn apply(self: &Arc<Self>, body: RequestBody, reply: Option<Subject>) {
        let local = self.get_local_adapter();
        match body {
            RequestBody::Broadcast { opts, packet } => {
                if let Err(errors) = local.broadcast(packet, opts) {
                    tracing::debug!(
                        ?errors,
                        "some local sockets could not be sent a remote broadcast"
                    );
                }
            }
            RequestBody::BroadcastWithAck {
                opts,
                packet,
                ack_timeout,
            } => {
                let (acks, count) = local.broadcast_with_ack(packet, opts, ack_timeout);
                if let Some(reply) = reply {
                    self.spawn_ack_forwarder(reply, acks, count);
                }
            }
            RequestBody::DisconnectSockets { opts } => {
                let matched = reply.as_ref().map(|_| count(local.sockets(opts.clone())));
                if let Err(errors) = local.disconnect_socket(opts) {
                    tracing::debug!(?errors, "some local sockets could not be disconnected");
                }
                self.reply_done(reply, matched);
            }
            RequestBody::AddSockets { opts, rooms } => {
                let matched = reply.as_ref().map(|_| count(local.sockets(opts.clone())));
                local.add_sockets(opts, rooms);
                self.reply_done(reply, matched);
            }
            RequestBody::DelSockets { opts, rooms } => {
                let matched = reply.as_ref().map(|_| count(local.sockets(opts.clone())));
                local.del_sockets(opts, rooms);
                self.reply_done(reply, matched);
            }
            RequestBody::AllRooms { opts } => {
                let Some(reply) = reply else { return };
                let rooms: Vec<Room> = local.rooms(opts).into_iter().collect();
                let res = self.response(ResponseOutBody::Rooms(&rooms));
                self.spawn_publish(reply, res);
            }
            RequestBody::FetchSockets { opts } => {
                let Some(reply) = reply else { return };
                let sockets: Vec<RemoteSocketData> = local.fetch_sockets(opts);
                let res = self.response(ResponseOutBody::Sockets(&sockets));
                self.spawn_publish(reply, res);
            }
            // Heartbeats are handled by `dispatch`; other types are newer than this node.
            _ => {}
        }
    }

    fn on_server_event(
        self: &Arc<Self>,
        origin: Uid,
        event: String,
        data: Bytes,
        reply: Option<Subject>,
    ) {
        let ns = self.get_local_adapter().path().to_string();
        let Some(handler) = self.registry().handler(&ns, &event) else {
            tracing::debug!(%ns, %event, node = %origin, "server event without a handler on this node");
            if let Some(reply) = reply {
                let reason = format!("no handler for server event {event:?} on this node");
                let res = self.response(ResponseOutBody::Reply(Err(&reason)));
                self.spawn_publish(reply, res);
            }
            return;
        };
        let view: Arc<dyn NamespaceView> = self.clone();
        let reply = reply.map(|subject| Replier { view, subject });
        tokio::spawn(handler(ServerEvent {
            origin,
            event,
            data,
            reply,
        }));
    }

    fn on_custom_request(self: &Arc<Self>, origin: Uid, data: Bytes, reply: Option<Subject>) {
        let Some(reply) = reply else { return };
        let ns = self.get_local_adapter().path().to_string();
        let hook = self.registry().hook(&ns);
        let this = self.clone();
        tokio::spawn(async move {
            let result = match hook {
                Some(hook) => hook(CustomRequest { origin, data }).await,
                None => Err("no custom hook is set on this node".to_owned()),
            };
            let body = match &result {
                Ok(data) => ResponseOutBody::Reply(Ok(data)),
                Err(reason) => ResponseOutBody::Reply(Err(reason)),
            };
            let res = this.response(body);
            if let Err(error) = this.publish(reply.clone(), None, res).await {
                tracing::warn!(subject = %reply, %error, "cannot answer a custom request");
            }
        });
    }

    fn get_local_adapter(&self) -> &socketioxide_core::adapter::CoreLocalAdapter<E> {
        socketioxide_core::adapter::CoreAdapter::get_local(self)
    }

    fn response(&self, body: ResponseOutBody<'_>) -> Bytes {
        ResponseOut {
            origin: self.uid(),
            body,
        }
        .encode()
    }

    fn reply_done(self: &Arc<Self>, reply: Option<Subject>, matched: Option<u32>) {
        if let (Some(reply), Some(matched)) = (reply, matched) {
            let res = self.response(ResponseOutBody::Done(matched));
            self.spawn_publish(reply, res);
        }
    }

    fn spawn_publish(self: &Arc<Self>, subject: Subject, payload: Bytes) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.publish(subject.clone(), None, payload).await {
                tracing::warn!(%subject, %error, "cannot publish a response");
            }
        });
    }

    /// Send the ack count first, then each ack as it arrives, in order on the one
    /// reply subject: the requester relies on the count coming first.
    fn spawn_ack_forwarder(self: &Arc<Self>, reply: Subject, acks: E::AckStream, count_: u32) {
        let this = self.clone();
        tokio::spawn(async move {
            let res = this.response(ResponseOutBody::AckCount(count_));
            if let Err(error) = this.publish(reply.clone(), None, res).await {
                tracing::warn!(subject = %reply, %error, "cannot send an ack count");
                return;
            }
            futures_util::pin_mut!(acks);
            while let Some((sid, result)) = acks.next().await {
                let encoded_err;
                let result = match &result {
                    Ok(value) => Ok(value),
                    Err(err) => match rmp_serde::to_vec(err) {
                        Ok(bytes) => {
                            encoded_err = bytes;
                            Err(encoded_err.as_slice())
                        }
                        Err(error) => {
                            tracing::warn!(%error, "cannot encode an ack error");
                            continue;
                        }
                    },
                };
                let res = this.response(ResponseOutBody::Ack { sid, result });
                if let Err(error) = this.publish(reply.clone(), None, res).await {
                    tracing::warn!(subject = %reply, %error, "cannot send an ack");
                    return;
                }
            }
        });
    }
}

fn count(sids: Vec<socketioxide_core::Sid>) -> u32 {
    u32::try_from(sids.len()).unwrap_or(u32::MAX)
}

/// Whether `token` is the last token of `subject`; a suffix comparison instead
/// of splitting, as it runs for every message received.
fn is_last_token(subject: &str, token: &str) -> bool {
    subject
        .strip_suffix(token)
        .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::is_last_token;

    #[test]
    fn last_token() {
        assert!(is_last_token("p.ns.b.abc", "abc"));
        assert!(!is_last_token("p.ns.b.xabc", "abc"));
        assert!(!is_last_token("abc", "abc"));
        assert!(!is_last_token("p.ns.b.abc.d", "abc"));
    }
}
