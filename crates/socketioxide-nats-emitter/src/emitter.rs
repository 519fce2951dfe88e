use std::{fmt, sync::Arc, time::Duration};

use async_nats::{Client, Subject};
use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::{
    Sid, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, Room, RoomParam},
    packet::Packet,
};
use socketioxide_nats_protocol::{
    completion::Expect,
    message::{RequestOut, RequestOutBody, ResponseBody, ResponseKind},
    subjects::{NsSubjects, validate_prefix},
};

use crate::{
    AckError, EmitError, EmitterConfig,
    request::{self, Target},
};

/// Event names socket.io keeps for itself.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// A socket of the cluster, as returned by [`Operators::fetch_sockets`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The socket id.
    pub id: Sid,
    /// The id of the server holding it.
    pub server_id: Uid,
    /// Its namespace.
    pub ns: String,
}

struct Inner {
    client: Client,
    config: EmitterConfig,
    uid: Uid,
}

/// Emits into a socketioxide-nats cluster from a process that is not a socket.io
/// server. Cheap to clone; never counted as a server.
///
/// ```no_run
/// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
/// use socketioxide_nats_emitter::{Emitter, async_nats};
///
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let emitter = Emitter::new(client);
/// emitter.of("/chat").to("room1").emit("news", &"hello from a worker").await?;
/// let sockets = emitter.of("/chat").fetch_sockets().await?;
/// println!("{} sockets on {} servers", sockets.len(), emitter.of("/chat").server_count().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("uid", &self.inner.uid)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter with the default configuration (prefix `socket.io`, common parser).
    pub fn new(client: Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                config: EmitterConfig::default(),
                uid: Uid::new(),
            }),
        }
    }

    /// An emitter with a custom configuration; fails if the prefix is invalid.
    pub fn with_config(client: Client, config: EmitterConfig) -> Result<Self, EmitError> {
        validate_prefix(&config.prefix)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                uid: Uid::new(),
            }),
        })
    }

    /// The id this emitter signs its messages with.
    pub fn uid(&self) -> Uid {
        self.inner.uid
    }

    /// Operate on namespace `ns`; a missing leading `/` is added.
    pub fn of(&self, ns: impl AsRef<str>) -> Operators {
        let ns = ns.as_ref();
        let ns = if ns.starts_with('/') {
            ns.to_owned()
        } else {
            format!("/{ns}")
        };
        // Valid by construction: the prefix was checked when the emitter was built.
        let subjects = NsSubjects::new(&self.inner.config.prefix, &ns)
            .unwrap_or_else(|_| NsSubjects::with_default_prefix(&ns));
        let mut opts = BroadcastOptions::default();
        opts.add_flag(BroadcastFlags::Broadcast);
        Operators {
            emitter: self.clone(),
            ns,
            subjects,
            opts,
            ack_timeout: None,
        }
    }

    /// Select sockets of the `/` namespace in `rooms`. See [`Operators::to`].
    pub fn to(&self, rooms: impl RoomParam) -> Operators {
        self.of("/").to(rooms)
    }

    /// Alias of [`to`](Self::to).
    pub fn within(&self, rooms: impl RoomParam) -> Operators {
        self.of("/").within(rooms)
    }

    /// Exclude the sockets of the `/` namespace in `rooms`. See [`Operators::except`].
    pub fn except(&self, rooms: impl RoomParam) -> Operators {
        self.of("/").except(rooms)
    }

    /// Wait until everything published so far has been written to NATS.
    ///
    /// Emits return once NATS' client has queued the message; a process that exits
    /// (or drops its last client handle) right after emitting should flush first,
    /// or its last messages may never leave.
    pub async fn flush(&self) -> Result<(), EmitError> {
        let timeout = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, self.inner.client.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(EmitError::Unreachable {
                action: "flush".into(),
                timeout,
                state: self.inner.client.connection_state().to_string(),
            }),
        }
    }

    /// Emit `event` to every socket of the `/` namespace.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.of("/").emit(event, data).await
    }
}

/// What to do, on which sockets of which namespace. Built from
/// [`Emitter::of`]; every method consumes and returns it, like socketioxide's
/// operators.
#[derive(Clone)]
pub struct Operators {
    emitter: Emitter,
    ns: String,
    subjects: NsSubjects,
    opts: BroadcastOptions,
    ack_timeout: Option<Duration>,
}

impl fmt::Debug for Operators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operators")
            .field("ns", &self.ns)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Operators {
    /// Select the sockets in `rooms` (room names or socket ids, one or many); call
    /// it again to add rooms. A socket in several of them is reached once.
    pub fn to(mut self, rooms: impl RoomParam) -> Self {
        self.opts.rooms.extend(rooms.into_room_iter());
        self
    }

    /// Alias of [`to`](Self::to).
    pub fn within(self, rooms: impl RoomParam) -> Self {
        self.to(rooms)
    }

    /// Exclude the sockets in `rooms`.
    pub fn except(mut self, rooms: impl RoomParam) -> Self {
        self.opts.except.extend(rooms.into_room_iter());
        self
    }

    /// The event may be dropped for clients that are not ready to receive it.
    pub fn volatile(mut self) -> Self {
        self.opts.add_flag(BroadcastFlags::Volatile);
        self
    }

    /// How long clients have to acknowledge [`emit_with_ack`](Self::emit_with_ack).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = Some(timeout);
        self
    }

    fn config(&self) -> &EmitterConfig {
        &self.emitter.inner.config
    }

    fn target(&self) -> Target<'_> {
        let inner = &self.emitter.inner;
        Target {
            client: &inner.client,
            subjects: &self.subjects,
            origin: inner.uid,
            ns: &self.ns,
            prefix: &inner.config.prefix,
            probe_timeout: inner.config.probe_timeout,
        }
    }

    fn packet<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<Packet, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_owned()));
        }
        let value = self.config().parser.encode(event, data)?;
        Ok(Packet::event(self.ns.clone(), value))
    }

    async fn publish(&self, body: RequestOutBody<'_>) -> Result<(), EmitError> {
        let inner = &self.emitter.inner;
        let payload = RequestOut {
            origin: inner.uid,
            id: None,
            body,
        }
        .encode();
        let subject = Subject::from(self.subjects.broadcast(inner.uid.as_str()));
        request::publish(
            &inner.client,
            subject,
            None,
            payload,
            self.config().request_timeout,
        )
        .await
    }

    /// Emit `event` with `data` (any serializable value; `bytes::Bytes` and
    /// `Vec<u8>` travel as binary, a tuple as several arguments) to the selected
    /// sockets of every server.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        let packet = self.packet(event, data)?;
        self.publish(RequestOutBody::Broadcast {
            opts: &self.opts,
            packet: &packet,
        })
        .await
    }

    /// Emit `event` and collect the acks of the selected sockets of every server:
    /// one entry per socket, an [`AckError::Timeout`] for a client that did not
    /// answer within the [`timeout`](Self::timeout). Ends as soon as every live
    /// server has reported all its acks; a crashed server is found gone within a
    /// probe (see [`EmitterConfig::probe_timeout`]).
    ///
    /// Fails with [`EmitError::Incomplete`] if a live server has not reported
    /// all its acks within the request timeout plus the ack timeout.
    pub async fn emit_with_ack<T, V>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<(Sid, Result<V, AckError>)>, EmitError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        let packet = self.packet(event, data)?;
        let ack_timeout = self.ack_timeout.unwrap_or(self.config().ack_timeout);
        let body = RequestOutBody::BroadcastWithAck {
            opts: &self.opts,
            packet: &packet,
            ack_timeout: Some(ack_timeout),
        };
        // Saturating: a caller may ask for `Duration::MAX`.
        let wait = self.config().request_timeout.saturating_add(ack_timeout);
        let collected = request::request(self.target(), Some((body, Expect::Acks)), wait).await?;
        let parser = self.config().parser;
        Ok(collected
            .responses
            .into_iter()
            .filter_map(|res| match res.body {
                ResponseBody::Ack { sid, result } => Some((sid, decode_ack(parser, result))),
                _ => None,
            })
            .collect())
    }

    /// Make the selected sockets of every server join `rooms`.
    pub async fn join(&self, rooms: impl RoomParam) -> Result<(), EmitError> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        self.publish(RequestOutBody::AddSockets {
            opts: &self.opts,
            rooms: &rooms,
        })
        .await
    }

    /// Make the selected sockets of every server leave `rooms`.
    pub async fn leave(&self, rooms: impl RoomParam) -> Result<(), EmitError> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        self.publish(RequestOutBody::DelSockets {
            opts: &self.opts,
            rooms: &rooms,
        })
        .await
    }

    /// Disconnect the selected sockets of every server.
    pub async fn disconnect(&self) -> Result<(), EmitError> {
        self.publish(RequestOutBody::DisconnectSockets { opts: &self.opts })
            .await
    }

    /// A request every server answers once, with an answer of type `kind`.
    async fn ask(
        &self,
        body: RequestOutBody<'_>,
        kind: ResponseKind,
    ) -> Result<request::Collected, EmitError> {
        let timeout = self.config().request_timeout;
        request::request(self.target(), Some((body, Expect::One(kind))), timeout).await
    }

    /// The selected sockets of every server.
    ///
    /// Ends as soon as every live server answered. Fails with
    /// [`EmitError::Incomplete`] rather than returning a partial list if a live
    /// server did not answer within the request timeout.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>, EmitError> {
        let collected = self
            .ask(
                RequestOutBody::FetchSockets { opts: &self.opts },
                ResponseKind::Sockets,
            )
            .await?;
        let mut sockets = Vec::new();
        for res in collected.responses {
            if let ResponseBody::Sockets(list) = res.body {
                sockets.extend(list.into_iter().map(|s| SocketInfo {
                    id: s.id,
                    server_id: s.server_id,
                    ns: s.ns.to_string(),
                }));
            }
        }
        Ok(sockets)
    }

    /// The rooms of the selected sockets of every server, sorted.
    ///
    /// Fails with [`EmitError::Incomplete`] rather than returning a partial list
    /// if a live server did not answer within the request timeout.
    pub async fn rooms(&self) -> Result<Vec<String>, EmitError> {
        let collected = self
            .ask(
                RequestOutBody::AllRooms { opts: &self.opts },
                ResponseKind::Rooms,
            )
            .await?;
        Ok(request::rooms(collected.responses))
    }

    /// The ids of the servers of this namespace: those that answered, once every
    /// server named by another answered or was found gone, or at the request
    /// timeout.
    pub async fn nodes(&self) -> Result<Vec<Uid>, EmitError> {
        let collected =
            request::request(self.target(), None, self.config().request_timeout).await?;
        Ok(collected.nodes)
    }

    /// How many servers serve this namespace (the emitter is never counted).
    pub async fn server_count(&self) -> Result<usize, EmitError> {
        Ok(self.nodes().await?.len())
    }

    /// Emit a server-side event to every server of this namespace; their handlers
    /// receive it like one sent by a server.
    pub async fn server_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        let data = rmp_serde::to_vec_named(data)?;
        self.publish(RequestOutBody::ServerEvent { event, data: &data })
            .await
    }
}

fn decode_ack<V: DeserializeOwned>(
    parser: crate::Parser,
    result: Result<Value, bytes::Bytes>,
) -> Result<V, AckError> {
    match result {
        Ok(mut value) => parser
            .decode(&mut value)
            .map_err(|e| AckError::Decode(e.to_string())),
        // socketioxide's AckError, as its server encoded it with rmp-serde.
        Err(blob) => match rmp_serde::from_slice::<serde_json::Value>(&blob) {
            Ok(serde_json::Value::String(s)) if s == "Timeout" => Err(AckError::Timeout),
            Ok(other) => Err(AckError::Other(other.to_string())),
            Err(e) => Err(AckError::Other(format!("undecodable ack error: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use socketioxide::{AckError as ServerAckError, ParserError, SocketError};

    use super::*;

    /// The bytes a server puts in an Ack response for a failed ack: socketioxide's
    /// `AckError` written by rmp-serde, exactly as the adapter does.
    fn server_wrote(err: &ServerAckError) -> Result<Value, Bytes> {
        Err(Bytes::from(rmp_serde::to_vec(err).unwrap()))
    }

    fn decode(result: Result<Value, Bytes>) -> Result<String, AckError> {
        decode_ack::<String>(crate::Parser::default(), result)
    }

    #[test]
    fn ack_errors_are_decoded_from_the_bytes_a_server_writes() {
        assert_eq!(
            decode(server_wrote(&ServerAckError::Timeout)),
            Err(AckError::Timeout)
        );
        assert_eq!(
            decode(server_wrote(&ServerAckError::Socket(SocketError::Closed))),
            Err(AckError::Other(r#"{"Socket":"Closed"}"#.into()))
        );
        assert_eq!(
            decode(server_wrote(&ServerAckError::Socket(
                SocketError::InternalChannelFull
            ))),
            Err(AckError::Other(
                r#"{"Socket":"InternalChannelFull"}"#.into()
            ))
        );
        let parse = ParserError::new(std::io::Error::other("bad ack"));
        assert_eq!(
            decode(server_wrote(&ServerAckError::Decode(parse))),
            Err(AckError::Other(r#"{"Decode":"bad ack"}"#.into()))
        );
        match decode(Err(Bytes::from_static(&[0xc1]))) {
            Err(AckError::Other(why)) => assert!(why.starts_with("undecodable ack error"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ack_values_are_decoded_with_the_servers_parser() {
        let value = Value::Str(r#"["yes"]"#.to_owned().into(), None);
        assert_eq!(decode(Ok(value)), Ok("yes".to_owned()));
        let value = Value::Str("[1]".to_owned().into(), None);
        assert!(matches!(decode(Ok(value)), Err(AckError::Decode(_))));
    }
}
