//! The receiving side: the three subscriptions of a namespace and what a node does
//! with each message it receives.
//!
//! Anyone who can publish on the prefix can send any well-formed message, so
//! nothing is applied as it comes:
//!
//! * a request must come from the node its subject names (the last token), and
//!   not claim to come from this node;
//! * a broadcast packet must be an event of this namespace, in the form of this
//!   node's socket.io parser (socketioxide's parsers panic on the other form);
//! * who is a node is [`liveness`](crate::liveness)'s decision, answers go to
//!   [`completion`](crate::completion) through [`requests`](crate::requests);
//! * work that outlives the message (handlers, answers that cannot be published
//!   at once, ack forwarders) is bounded in number, remote ack timeouts in time.
//!
//! The loop never awaits: local deliveries are synchronous and every answer is
//! published without waiting (see [`Link::answer`]), so a slow publish cannot
//! stall the subscription (which NATS would then report as a slow consumer). And
//! it never dies from a message: a panic while handling one is caught, counted
//! and logged. If it ends anyway, the adapter's watchdog takes the node out of the
//! cluster.

use std::{
    panic::AssertUnwindSafe,
    str::FromStr,
    sync::{Arc, Weak},
};

use async_nats::{Message, Subject, Subscriber, connection::State};
use bytes::Bytes;
use futures_util::StreamExt;
use socketioxide_core::{
    Sid, Uid,
    adapter::{RemoteSocketData, Room, SocketEmitter},
    packet::{Packet, PacketData},
};
use socketioxide_nats_protocol::{
    ProtocolError,
    message::{RequestBody, RequestIn, ResponseOutBody, decode_request},
};
use tokio::task::JoinHandle;

use crate::{
    CustomRequest, Error, NatsAdapter, ServerEvent, events::Replier, requests::Routed, send::Link,
    view::NamespaceView,
};

/// Which subscription a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `{prefix}.{ns}.b.*`, or a room subject.
    Broadcast,
    /// This node's own subject.
    Node,
    /// This node's reply subjects.
    Reply,
}

/// Subscribe to the namespace's subjects and spawn the receive loop.
pub(crate) async fn start<E: SocketEmitter>(
    adapter: &Arc<NatsAdapter<E>>,
) -> Result<JoinHandle<()>, Error> {
    let link = &adapter.link;
    let s = link.subjects();
    let uid = link.uid();
    let broadcast = subscribe(link, s.broadcast_filter()).await?;
    let node = subscribe(link, s.node_filter(uid.as_str())).await?;
    let replies = subscribe(link, s.reply_filter(uid.as_str())).await?;
    // Without room routing, this node takes every room's broadcasts (those that
    // nodes with routing send on room subjects); with it, it subscribes to the
    // rooms it has members in (see the rooms module).
    let rooms = if link.config.room_routing {
        None
    } else {
        Some(subscribe(link, s.rooms_filter()).await?)
    };

    if link.client().connection_state() == State::Connected {
        // Make sure the server holds the subscriptions before the node announces itself.
        let flushed =
            tokio::time::timeout(link.config.publish_timeout, link.client().flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!(ns = %s.base(), "could not flush the subscriptions to NATS; they apply once it answers");
        }
    } else {
        tracing::warn!(
            ns = %s.base(),
            state = %link.client().connection_state(),
            "NATS is not connected yet: the namespace receives nothing until it connects"
        );
    }

    let stream = futures_util::stream::select(
        futures_util::stream::select(
            broadcast.map(|m| (Source::Broadcast, m)),
            node.map(|m| (Source::Node, m)),
        ),
        futures_util::stream::select(
            replies.map(|m| (Source::Reply, m)),
            futures_util::stream::iter(rooms)
                .flatten()
                .map(|m| (Source::Broadcast, m)),
        ),
    );
    Ok(tokio::spawn(recv_loop(Arc::downgrade(adapter), stream)))
}

pub(crate) async fn subscribe(link: &Link, subject: String) -> Result<Subscriber, Error> {
    let timeout = link.config.publish_timeout;
    match tokio::time::timeout(timeout, link.client().subscribe(subject.clone())).await {
        Ok(Ok(sub)) => {
            tracing::debug!(%subject, "subscribed");
            Ok(sub)
        }
        Ok(Err(source)) => Err(Error::Subscribe { subject, source }),
        Err(_) => Err(link.unreachable(format!("subscribe to {subject}"))),
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
        adapter.receive(source, msg);
    }
    tracing::warn!(
        "NATS subscriptions ended (the client was closed or drained); this node no longer receives cluster messages"
    );
}

impl<E: SocketEmitter> NatsAdapter<E> {
    /// Handle one message; a panic is caught, counted and logged: no message
    /// can stop a receive loop.
    pub(crate) fn receive(self: &Arc<Self>, source: Source, msg: Message) {
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| match source {
            Source::Reply => self.on_reply(msg),
            Source::Broadcast => self.on_request(msg, false),
            Source::Node => self.on_request(msg, true),
        }));
        if handled.is_err() {
            self.link.stats.panics.inc();
            tracing::error!(
                ns = %self.link.subjects().base(),
                "handling a message panicked; the message was dropped, the node keeps receiving"
            );
        }
    }

    fn on_reply(&self, msg: Message) {
        let id = msg
            .subject
            .strip_prefix(self.link.reply_prefix())
            .and_then(|id| Sid::from_str(id).ok());
        let Some(id) = id else {
            self.link.stats.malformed.inc();
            tracing::debug!(subject = %msg.subject, "message on a reply subject without a request id dropped");
            return;
        };
        match self.link.requests.route(id, msg) {
            Routed::Delivered => {}
            // Normal for answers arriving after their request completed.
            Routed::Unknown => {
                self.link.stats.ignored_responses.inc();
                tracing::trace!(req_id = %id, "response to a finished request dropped");
            }
            Routed::Overflow => {
                self.link.stats.overloaded.inc();
                tracing::warn!(
                    req_id = %id,
                    "response dropped: the caller does not read responses fast enough (see NatsAdapterConfig::response_buffer)"
                );
            }
        }
    }

    /// A request, on the broadcast subject or this node's own (`to_me`).
    fn on_request(self: &Arc<Self>, msg: Message, to_me: bool) {
        // The last token of a request subject is its sender: skip our own echo
        // without decoding it. The echo comes unless the user built the connection
        // with no_echo, which is theirs to choose: several nodes may share one.
        let sender = sender_of(&msg.subject);
        let me = self.uid();
        if sender == me.as_str() {
            self.saw_own_echo();
            return;
        }
        // Only the payload moves into the decoder: the subject stays for the logs.
        match decode_request(msg.payload) {
            Ok(req) if req.origin.as_str() != sender || req.origin == me => {
                self.link.stats.forged.inc();
                tracing::debug!(subject = %msg.subject, origin = %req.origin, "request whose origin is not its subject's sender dropped");
            }
            Ok(req) => self.dispatch(req, msg.reply, to_me),
            Err(error @ ProtocolError::UnknownKind { .. }) => {
                self.link.stats.malformed.inc();
                tracing::debug!(subject = %msg.subject, %error, "request of an unknown type dropped");
            }
            Err(error) => {
                self.link.stats.malformed.inc();
                tracing::debug!(subject = %msg.subject, %error, "malformed request dropped");
            }
        }
    }

    fn dispatch(self: &Arc<Self>, req: RequestIn, reply: Option<Subject>, to_me: bool) {
        let origin = req.origin;
        tracing::trace!(node = %origin, req_id = ?req.id, "request received");
        // Answers go only to a reply subject of this namespace, and for a Hello
        // only to one of its sender: a forged request cannot make this node
        // publish elsewhere.
        let reply = match (req.id, reply) {
            (Some(_), Some(reply)) if self.link.subjects().is_reply_subject(&reply) => Some(reply),
            (Some(id), reply) => {
                tracing::debug!(node = %origin, req_id = %id, ?reply, "request without a valid reply subject: it is applied but not answered");
                None
            }
            (None, _) => None,
        };
        let liveness = &self.liveness;
        match req.body {
            RequestBody::Heartbeat => liveness.on_heartbeat(origin),
            RequestBody::Hello => {
                let own = reply.filter(|r| {
                    r.strip_prefix(self.link.subjects().reply_prefix(origin.as_str()).as_str())
                        .is_some()
                });
                liveness.on_hello(origin, own);
            }
            RequestBody::Goodbye => liveness.on_goodbye(origin),
            RequestBody::Discover => {
                // Discovery does not make the asker a node: emitters use it. But a
                // probe from an unknown node is a sign of a node this one missed
                // (both started at once): probe it back.
                if to_me {
                    liveness.on_probe(origin);
                }
                if let Some(reply) = reply {
                    let nodes = liveness.alive();
                    let res = self.link.response(ResponseOutBody::Nodes(&nodes));
                    self.link.answer(reply, res);
                }
            }
            RequestBody::ServerEvent { event, data } => {
                liveness.heard(origin);
                self.on_server_event(origin, event, data, reply);
            }
            RequestBody::CustomRequest { data } => {
                liveness.heard(origin);
                self.on_custom_request(origin, data, reply);
            }
            body => {
                liveness.heard(origin);
                self.apply(body, reply);
            }
        }
    }

    /// Whether a remote broadcast packet can be delivered here: an event of this
    /// namespace, without an ack id (socketioxide sets its own per socket), its
    /// payload in this node's parser's form.
    fn deliverable(&self, packet: &Packet) -> bool {
        let local = self.get_local_adapter();
        let ok = packet.ns == *local.path()
            && matches!(
                &packet.inner,
                PacketData::Event(v, None) | PacketData::BinaryEvent(v, None) if self.form.fits(v)
            );
        if !ok {
            self.link.stats.wrong_parser.inc();
            tracing::warn!(
                ns = %local.path(),
                packet_ns = %packet.ns,
                packet_type = packet.inner.index(),
                "broadcast dropped: not an event of this namespace in this node's socket.io parser's form \
                 (every node and emitter of a cluster must use the same parser)"
            );
        }
        ok
    }

    fn apply(self: &Arc<Self>, body: RequestBody, reply: Option<Subject>) {
        let local = self.get_local_adapter();
        match body {
            RequestBody::Broadcast { opts, packet } => {
                if !self.deliverable(&packet) {
                    return;
                }
                self.link.stats.broadcasts_received.inc();
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
                if !self.deliverable(&packet) {
                    // The sender gets no count from this node, which it then
                    // probes: it answers, so the sender waits to its deadline.
                    // Answering "no socket" would hide the refusal.
                    return;
                }
                // No forwarder slot: the sockets are not sent the packet either,
                // so nobody waits for acks that could not be forwarded.
                let Some(permit) = reply
                    .as_ref()
                    .and_then(|_| self.link.ack_forwarder_permit())
                else {
                    if reply.is_none() {
                        let timeout = Some(self.cap_ack_timeout(ack_timeout));
                        let _ = local.broadcast_with_ack(packet, opts, timeout);
                    }
                    return;
                };
                let timeout = Some(self.cap_ack_timeout(ack_timeout));
                let (acks, count) = local.broadcast_with_ack(packet, opts, timeout);
                if let Some(reply) = reply {
                    self.spawn_ack_forwarder(reply, acks, count, permit);
                }
            }
            RequestBody::DisconnectSockets { opts } => {
                let matched = reply
                    .as_ref()
                    .map(|_| count(local.sockets(opts.clone()).len()));
                if let Err(errors) = local.disconnect_socket(opts) {
                    tracing::debug!(?errors, "some local sockets could not be disconnected");
                }
                self.reply_done(reply, matched);
            }
            // Only sockets that exist: socketioxide's `add_sockets` adds a socket id
            // named by the options whether it is connected or not, and creates the
            // rooms even when no socket matches, entries nothing would ever remove.
            RequestBody::AddSockets { opts, rooms } => {
                let sockets = local.fetch_sockets(opts);
                for socket in &sockets {
                    local.add_all(socket.id, rooms.clone());
                }
                let done = Some(count(sockets.len()));
                if sockets.is_empty() || !self.config().room_routing {
                    return self.reply_done(reply, done);
                }
                // Done once subscribed to the rooms: the sender's room broadcasts
                // after its join returns must reach these members.
                let Some(permit) = self.link.work_permit() else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(error) = me.route_rooms(&rooms).await {
                        tracing::warn!(%error, "room routing: cannot subscribe to joined rooms");
                    }
                    me.reply_done(reply, done);
                    drop(permit);
                });
            }
            RequestBody::DelSockets { opts, rooms } => {
                let sockets = local.fetch_sockets(opts);
                for socket in &sockets {
                    local.del(socket.id, rooms.clone());
                }
                self.reply_done(reply, Some(count(sockets.len())));
            }
            RequestBody::AllRooms { opts } => {
                let Some(reply) = reply else { return };
                let rooms: Vec<Room> = local.rooms(opts).into_iter().collect();
                let res = self.link.response(ResponseOutBody::Rooms(&rooms));
                self.link.answer(reply, res);
            }
            RequestBody::FetchSockets { opts } => {
                let Some(reply) = reply else { return };
                let sockets: Vec<RemoteSocketData> = local.fetch_sockets(opts);
                let res = self.link.response(ResponseOutBody::Sockets(&sockets));
                self.link.answer(reply, res);
            }
            // Liveness messages are handled by `dispatch`; other types are newer than this node.
            _ => {}
        }
    }

    /// The ack timeout a remote broadcast gets here: the sender's, or this node's
    /// default, never more than [`max_ack_timeout`](crate::NatsAdapterConfig::max_ack_timeout).
    fn cap_ack_timeout(&self, asked: Option<std::time::Duration>) -> std::time::Duration {
        asked
            .unwrap_or_else(|| self.get_local_adapter().ack_timeout())
            .min(self.config().max_ack_timeout)
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
                let res = self.link.response(ResponseOutBody::Reply(Err(&reason)));
                self.link.answer(reply, res);
            }
            return;
        };
        // Past the bound the event is dropped; a sender waiting for its ack
        // sees this node time out.
        let Some(permit) = self.link.work_permit() else {
            return;
        };
        let view: Arc<dyn NamespaceView> = self.clone();
        let reply = reply.map(|subject| Replier { view, subject });
        tokio::spawn(async move {
            handler(ServerEvent {
                origin,
                event,
                data,
                reply,
            })
            .await;
            drop(permit);
        });
    }

    fn on_custom_request(self: &Arc<Self>, origin: Uid, data: Bytes, reply: Option<Subject>) {
        let Some(reply) = reply else { return };
        let Some(permit) = self.link.work_permit() else {
            return;
        };
        let ns = self.get_local_adapter().path().to_string();
        let hook = self.registry().hook(&ns);
        let link = self.link.clone();
        tokio::spawn(async move {
            let result = match hook {
                Some(hook) => hook(CustomRequest { origin, data }).await,
                None => Err("no custom hook is set on this node".to_owned()),
            };
            let body = match &result {
                Ok(data) => ResponseOutBody::Reply(Ok(data)),
                Err(reason) => ResponseOutBody::Reply(Err(reason)),
            };
            let res = link.response(body);
            if let Err(error) = link.publish(reply.clone(), None, res).await {
                tracing::warn!(subject = %reply, %error, "cannot answer a custom request");
            }
            drop(permit);
        });
    }

    fn get_local_adapter(&self) -> &socketioxide_core::adapter::CoreLocalAdapter<E> {
        socketioxide_core::adapter::CoreAdapter::get_local(self)
    }

    /// Answer `Done(matched)` if the sender waits for it.
    fn reply_done(&self, reply: Option<Subject>, matched: Option<u32>) {
        if let (Some(reply), Some(matched)) = (reply, matched) {
            let res = self.link.response(ResponseOutBody::Done(matched));
            self.link.answer(reply, res);
        }
    }

    /// Send the ack count first, then each ack as it arrives, in order on the one
    /// reply subject: the requester relies on the count coming first.
    fn spawn_ack_forwarder(
        &self,
        reply: Subject,
        acks: E::AckStream,
        count_: u32,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let link = self.link.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let res = link.response(ResponseOutBody::AckCount(count_));
            if let Err(error) = link.publish(reply.clone(), None, res).await {
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
                let res = link.response(ResponseOutBody::Ack { sid, result });
                if let Err(error) = link.publish(reply.clone(), None, res).await {
                    tracing::warn!(subject = %reply, %error, "cannot send an ack");
                    return;
                }
            }
        });
    }
}

/// The last token of a request subject, its sender: a 16-character id after the
/// last dot. Taken by length, not by splitting, as it runs for every message; a
/// subject that does not end that way gives a string no id can equal.
fn sender_of(subject: &str) -> &str {
    const ID: usize = 16;
    match subject.len().checked_sub(ID + 1) {
        Some(dot) if subject.as_bytes()[dot] == b'.' => subject.get(dot + 1..).unwrap_or(""),
        _ => "",
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::sender_of;

    #[test]
    fn the_sender_is_the_last_token_of_sixteen_characters() {
        assert_eq!(sender_of("p._2F.b.AAAAAAAAAAAAAAAA"), "AAAAAAAAAAAAAAAA");
        assert_eq!(
            sender_of("p._2F.n.BBBBBBBBBBBBBBBB.AAAAAAAAAAAAAAAA"),
            "AAAAAAAAAAAAAAAA"
        );
        assert_eq!(sender_of("p._2F.b.xAAAAAAAAAAAAAAAA"), "");
        assert_eq!(sender_of("p.b.short"), "");
        assert_eq!(sender_of("AAAAAAAAAAAAAAAA"), "");
        assert_eq!(sender_of(""), "");
    }
}
