//! Requests and responses exchanged between nodes, and their MessagePack encoding.
//!
//! Every message is one MessagePack array whose first two elements are the protocol
//! [`VERSION`] and the message type. Requests continue with the sender's id and an
//! optional request id; responses continue with the responder's id. The remaining
//! elements depend on the type; see `PROTOCOL.md` for the byte-level description.
//!
//! Compatibility rules: a decoder rejects another major version, ignores elements
//! appended after the ones it knows (so a minor revision may add trailing fields),
//! and reports unknown message types so the caller can drop them.

use std::{borrow::Cow, collections::VecDeque, str::FromStr, time::Duration};

use bytes::Bytes;
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, RemoteSocketData, Room},
    packet::{Packet, PacketData},
};

use crate::{
    ProtocolError,
    msgpack::{Reader, Writer},
};

/// The protocol version written in every message.
pub const VERSION: u64 = 1;

/// The type of a request, the second element of a request message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum RequestKind {
    /// Deliver a packet to the matching sockets.
    Broadcast = 0,
    /// Deliver a packet to the matching sockets and stream their acks back.
    BroadcastWithAck = 1,
    /// Disconnect the matching sockets.
    DisconnectSockets = 2,
    /// Answer with the rooms of the matching sockets.
    AllRooms = 3,
    /// Make the matching sockets join rooms.
    AddSockets = 4,
    /// Make the matching sockets leave rooms.
    DelSockets = 5,
    /// Answer with the matching sockets.
    FetchSockets = 6,
    /// A node of the namespace is alive.
    Heartbeat = 20,
    /// A node joined the namespace; every node answers with a [`RequestKind::Heartbeat`].
    Hello = 21,
    /// A node leaves the namespace.
    Goodbye = 22,
    /// Who serves the namespace? Every node answers with [`ResponseKind::Nodes`];
    /// unlike [`RequestKind::Hello`] it does not make the sender a node (emitters use it).
    Discover = 23,
    /// A server-side event for the other nodes' handlers (optionally acknowledged).
    ServerEvent = 30,
    /// The `customRequest` of the Node.js `socket.io-nats` and `socket.io-redis`
    /// adapters: every node answers through its custom hook.
    CustomRequest = 31,
}

impl RequestKind {
    fn from_u64(v: u64) -> Result<Self, ProtocolError> {
        Ok(match v {
            0 => Self::Broadcast,
            1 => Self::BroadcastWithAck,
            2 => Self::DisconnectSockets,
            3 => Self::AllRooms,
            4 => Self::AddSockets,
            5 => Self::DelSockets,
            6 => Self::FetchSockets,
            20 => Self::Heartbeat,
            21 => Self::Hello,
            22 => Self::Goodbye,
            23 => Self::Discover,
            30 => Self::ServerEvent,
            31 => Self::CustomRequest,
            kind => return Err(ProtocolError::UnknownKind { kind }),
        })
    }
}

/// A request to encode, borrowing its contents.
#[derive(Debug, Clone, Copy)]
pub struct RequestOut<'a> {
    /// The node (or emitter) sending the request.
    pub origin: Uid,
    /// Set when the sender waits for responses on the reply subject.
    pub id: Option<Sid>,
    /// What is asked.
    pub body: RequestOutBody<'a>,
}

/// The body of a [`RequestOut`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RequestOutBody<'a> {
    /// See [`RequestKind::Broadcast`].
    Broadcast {
        /// Which sockets.
        opts: &'a BroadcastOptions,
        /// What to send them.
        packet: &'a Packet,
    },
    /// See [`RequestKind::BroadcastWithAck`].
    BroadcastWithAck {
        /// Which sockets.
        opts: &'a BroadcastOptions,
        /// What to send them.
        packet: &'a Packet,
        /// How long the sockets have to ack; `None` lets each node use its default.
        ack_timeout: Option<Duration>,
    },
    /// See [`RequestKind::DisconnectSockets`].
    DisconnectSockets {
        /// Which sockets.
        opts: &'a BroadcastOptions,
    },
    /// See [`RequestKind::AllRooms`].
    AllRooms {
        /// Which sockets.
        opts: &'a BroadcastOptions,
    },
    /// See [`RequestKind::AddSockets`].
    AddSockets {
        /// Which sockets.
        opts: &'a BroadcastOptions,
        /// The rooms to join.
        rooms: &'a [Room],
    },
    /// See [`RequestKind::DelSockets`].
    DelSockets {
        /// Which sockets.
        opts: &'a BroadcastOptions,
        /// The rooms to leave.
        rooms: &'a [Room],
    },
    /// See [`RequestKind::FetchSockets`].
    FetchSockets {
        /// Which sockets.
        opts: &'a BroadcastOptions,
    },
    /// See [`RequestKind::Heartbeat`].
    Heartbeat,
    /// See [`RequestKind::Hello`].
    Hello,
    /// See [`RequestKind::Goodbye`].
    Goodbye,
    /// See [`RequestKind::Discover`].
    Discover,
    /// See [`RequestKind::ServerEvent`].
    ServerEvent {
        /// The event name.
        event: &'a str,
        /// The event data, MessagePack-encoded by the sender.
        data: &'a [u8],
    },
    /// See [`RequestKind::CustomRequest`].
    CustomRequest {
        /// The request data, MessagePack-encoded by the sender.
        data: &'a [u8],
    },
}

impl RequestOutBody<'_> {
    /// The type written on the wire.
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::Broadcast { .. } => RequestKind::Broadcast,
            Self::BroadcastWithAck { .. } => RequestKind::BroadcastWithAck,
            Self::DisconnectSockets { .. } => RequestKind::DisconnectSockets,
            Self::AllRooms { .. } => RequestKind::AllRooms,
            Self::AddSockets { .. } => RequestKind::AddSockets,
            Self::DelSockets { .. } => RequestKind::DelSockets,
            Self::FetchSockets { .. } => RequestKind::FetchSockets,
            Self::Heartbeat => RequestKind::Heartbeat,
            Self::Hello => RequestKind::Hello,
            Self::Goodbye => RequestKind::Goodbye,
            Self::Discover => RequestKind::Discover,
            Self::ServerEvent { .. } => RequestKind::ServerEvent,
            Self::CustomRequest { .. } => RequestKind::CustomRequest,
        }
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestIn {
    /// The node (or emitter) that sent the request.
    pub origin: Uid,
    /// Set when the sender waits for responses on the reply subject.
    pub id: Option<Sid>,
    /// What is asked.
    pub body: RequestBody,
}

/// The body of a [`RequestIn`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestBody {
    /// See [`RequestKind::Broadcast`].
    Broadcast {
        /// Which sockets.
        opts: BroadcastOptions,
        /// What to send them.
        packet: Packet,
    },
    /// See [`RequestKind::BroadcastWithAck`].
    BroadcastWithAck {
        /// Which sockets.
        opts: BroadcastOptions,
        /// What to send them.
        packet: Packet,
        /// How long the sockets have to ack; `None` means this node's default.
        ack_timeout: Option<Duration>,
    },
    /// See [`RequestKind::DisconnectSockets`].
    DisconnectSockets {
        /// Which sockets.
        opts: BroadcastOptions,
    },
    /// See [`RequestKind::AllRooms`].
    AllRooms {
        /// Which sockets.
        opts: BroadcastOptions,
    },
    /// See [`RequestKind::AddSockets`].
    AddSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to join.
        rooms: Vec<Room>,
    },
    /// See [`RequestKind::DelSockets`].
    DelSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// The rooms to leave.
        rooms: Vec<Room>,
    },
    /// See [`RequestKind::FetchSockets`].
    FetchSockets {
        /// Which sockets.
        opts: BroadcastOptions,
    },
    /// See [`RequestKind::Heartbeat`].
    Heartbeat,
    /// See [`RequestKind::Hello`].
    Hello,
    /// See [`RequestKind::Goodbye`].
    Goodbye,
    /// See [`RequestKind::Discover`].
    Discover,
    /// See [`RequestKind::ServerEvent`].
    ServerEvent {
        /// The event name.
        event: String,
        /// The event data as the sender encoded it (MessagePack).
        data: Bytes,
    },
    /// See [`RequestKind::CustomRequest`].
    CustomRequest {
        /// The request data as the sender encoded it (MessagePack).
        data: Bytes,
    },
}

/// The type of a response, the second element of a response message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum ResponseKind {
    /// One socket's ack (or its failure).
    Ack = 0,
    /// How many acks this node will send for a broadcast with acks.
    AckCount = 1,
    /// The rooms of the matching sockets of this node.
    Rooms = 2,
    /// The matching sockets of this node.
    Sockets = 3,
    /// A join, leave or disconnect request was applied.
    Done = 4,
    /// The answer of a server-event handler or custom hook.
    Reply = 5,
    /// The nodes the responder knows alive (answer to [`RequestKind::Discover`]).
    Nodes = 6,
}

impl ResponseKind {
    fn from_u64(v: u64) -> Result<Self, ProtocolError> {
        Ok(match v {
            0 => Self::Ack,
            1 => Self::AckCount,
            2 => Self::Rooms,
            3 => Self::Sockets,
            4 => Self::Done,
            5 => Self::Reply,
            6 => Self::Nodes,
            kind => return Err(ProtocolError::UnknownKind { kind }),
        })
    }
}

/// A response to encode, borrowing its contents.
#[derive(Debug, Clone, Copy)]
pub struct ResponseOut<'a> {
    /// The node answering.
    pub origin: Uid,
    /// The answer.
    pub body: ResponseOutBody<'a>,
}

/// The body of a [`ResponseOut`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ResponseOutBody<'a> {
    /// See [`ResponseKind::Ack`].
    Ack {
        /// The socket that answered.
        sid: Sid,
        /// Its ack payload, or its error encoded with MessagePack by the caller.
        result: Result<&'a Value, &'a [u8]>,
    },
    /// See [`ResponseKind::AckCount`].
    AckCount(u32),
    /// See [`ResponseKind::Rooms`].
    Rooms(&'a [Room]),
    /// See [`ResponseKind::Sockets`].
    Sockets(&'a [RemoteSocketData]),
    /// See [`ResponseKind::Done`]: how many local sockets matched.
    Done(u32),
    /// See [`ResponseKind::Reply`]: MessagePack data, or why there is none.
    Reply(Result<&'a [u8], &'a str>),
    /// See [`ResponseKind::Nodes`]: the other live nodes the responder knows.
    Nodes(&'a [Uid]),
}

/// A decoded response.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseIn {
    /// The node that answered.
    pub origin: Uid,
    /// The answer.
    pub body: ResponseBody,
}

/// The body of a [`ResponseIn`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResponseBody {
    /// See [`ResponseKind::Ack`].
    Ack {
        /// The socket that answered.
        sid: Sid,
        /// Its ack payload, or its error as the MessagePack bytes the responder wrote.
        result: Result<Value, Bytes>,
    },
    /// See [`ResponseKind::AckCount`].
    AckCount(u32),
    /// See [`ResponseKind::Rooms`].
    Rooms(Vec<Room>),
    /// See [`ResponseKind::Sockets`].
    Sockets(Vec<RemoteSocketData>),
    /// See [`ResponseKind::Done`]: how many local sockets matched.
    Done(u32),
    /// See [`ResponseKind::Reply`]: MessagePack data, or why there is none.
    Reply(Result<Bytes, String>),
    /// See [`ResponseKind::Nodes`]: the other live nodes the responder knows.
    Nodes(Vec<Uid>),
}

// ===== encoding =====

fn write_header(w: &mut Writer, len: usize, kind: u8, origin: &Uid) {
    w.array(len);
    w.uint(VERSION);
    w.uint(u64::from(kind));
    w.str(origin.as_str());
}

fn write_opts(w: &mut Writer, opts: &BroadcastOptions) {
    w.array(5);
    w.uint(u64::from(opts.flags()));
    write_rooms(w, &opts.rooms);
    write_rooms(w, &opts.except);
    w.opt_str(opts.sid.as_ref().map(Sid::as_str));
    w.opt_str(opts.server_id.as_ref().map(|id| id.as_str()));
}

fn write_rooms(w: &mut Writer, rooms: &[Room]) {
    w.array(rooms.len());
    for r in rooms {
        w.str(r);
    }
}

fn write_value(w: &mut Writer, value: &Value) {
    match value {
        Value::Str(s, bins) => {
            w.array(3);
            w.uint(0);
            w.str(s.as_str());
            match bins {
                Some(bins) => {
                    w.array(bins.len());
                    for b in bins {
                        w.bin(b);
                    }
                }
                None => w.nil(),
            }
        }
        Value::Bytes(b) => {
            w.array(2);
            w.uint(1);
            w.bin(b);
        }
    }
}

fn write_packet(w: &mut Writer, packet: &Packet) {
    let (kind, data, ack, error): (u8, Option<&Value>, Option<i64>, Option<&str>) =
        match &packet.inner {
            PacketData::Connect(v) => (0, v.as_ref(), None, None),
            PacketData::Disconnect => (1, None, None, None),
            PacketData::Event(v, ack) => (2, Some(v), *ack, None),
            PacketData::EventAck(v, ack) => (3, Some(v), Some(*ack), None),
            PacketData::ConnectError(e) => (4, None, None, Some(e)),
            PacketData::BinaryEvent(v, ack) => (5, Some(v), *ack, None),
            PacketData::BinaryAck(v, ack) => (6, Some(v), Some(*ack), None),
        };
    w.array(5);
    w.str(packet.ns.as_str());
    w.uint(u64::from(kind));
    match data {
        Some(v) => write_value(w, v),
        None => w.nil(),
    }
    match ack {
        Some(a) => w.int(a),
        None => w.nil(),
    }
    w.opt_str(error);
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::Str(s, bins) => s.len() + bins.iter().flatten().map(|b| b.len() + 5).sum::<usize>(),
        Value::Bytes(b) => b.len(),
    }
}

fn packet_len(p: &Packet) -> usize {
    let data = match &p.inner {
        PacketData::Connect(Some(v))
        | PacketData::Event(v, _)
        | PacketData::EventAck(v, _)
        | PacketData::BinaryEvent(v, _)
        | PacketData::BinaryAck(v, _) => value_len(v),
        PacketData::ConnectError(e) => e.len(),
        _ => 0,
    };
    data + p.ns.len() + 32
}

impl RequestOut<'_> {
    /// Encode the request.
    ///
    /// ```
    /// use socketioxide_nats_protocol::message::{RequestOut, RequestOutBody, decode_request, RequestBody};
    /// use socketioxide_core::Uid;
    /// let origin = Uid::new();
    /// let bytes = RequestOut { origin, id: None, body: RequestOutBody::Heartbeat }.encode();
    /// let req = decode_request(bytes).unwrap();
    /// assert_eq!(req.origin, origin);
    /// assert_eq!(req.body, RequestBody::Heartbeat);
    /// ```
    pub fn encode(&self) -> Bytes {
        use RequestOutBody as B;
        let (fields, hint) = match &self.body {
            B::Broadcast { packet, .. } => (6, packet_len(packet)),
            B::BroadcastWithAck { packet, .. } => (7, packet_len(packet)),
            B::AddSockets { rooms, .. } | B::DelSockets { rooms, .. } => {
                (6, rooms.iter().map(|r| r.len() + 5).sum())
            }
            B::DisconnectSockets { .. } | B::AllRooms { .. } | B::FetchSockets { .. } => (5, 0),
            B::Heartbeat | B::Hello | B::Goodbye | B::Discover => (4, 0),
            B::ServerEvent { event, data } => (6, event.len() + data.len()),
            B::CustomRequest { data } => (5, data.len()),
        };
        let mut w = Writer::with_capacity(hint + 96);
        write_header(&mut w, fields, self.body.kind() as u8, &self.origin);
        w.opt_str(self.id.as_ref().map(Sid::as_str));
        match &self.body {
            B::Broadcast { opts, packet } => {
                write_opts(&mut w, opts);
                write_packet(&mut w, packet);
            }
            B::BroadcastWithAck {
                opts,
                packet,
                ack_timeout,
            } => {
                write_opts(&mut w, opts);
                write_packet(&mut w, packet);
                match ack_timeout {
                    Some(t) => w.uint(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                    None => w.nil(),
                }
            }
            B::AddSockets { opts, rooms } | B::DelSockets { opts, rooms } => {
                write_opts(&mut w, opts);
                write_rooms(&mut w, rooms);
            }
            B::DisconnectSockets { opts } | B::AllRooms { opts } | B::FetchSockets { opts } => {
                write_opts(&mut w, opts)
            }
            B::Heartbeat | B::Hello | B::Goodbye | B::Discover => {}
            B::ServerEvent { event, data } => {
                w.str(event);
                w.bin(data);
            }
            B::CustomRequest { data } => w.bin(data),
        }
        w.finish()
    }
}

impl ResponseOut<'_> {
    /// Encode the response.
    ///
    /// ```
    /// use socketioxide_nats_protocol::message::{ResponseOut, ResponseOutBody, decode_response, ResponseBody};
    /// use socketioxide_core::Uid;
    /// let origin = Uid::new();
    /// let bytes = ResponseOut { origin, body: ResponseOutBody::AckCount(3) }.encode();
    /// assert_eq!(decode_response(bytes).unwrap().body, ResponseBody::AckCount(3));
    /// ```
    pub fn encode(&self) -> Bytes {
        use ResponseOutBody as B;
        let (kind, fields, hint) = match &self.body {
            B::Ack { result, .. } => (
                ResponseKind::Ack,
                6,
                match result {
                    Ok(v) => value_len(v),
                    Err(e) => e.len(),
                },
            ),
            B::AckCount(_) => (ResponseKind::AckCount, 4, 0),
            B::Rooms(rooms) => (
                ResponseKind::Rooms,
                4,
                rooms.iter().map(|r| r.len() + 5).sum(),
            ),
            B::Sockets(s) => (ResponseKind::Sockets, 4, s.len() * 48),
            B::Done(_) => (ResponseKind::Done, 4, 0),
            B::Reply(r) => (
                ResponseKind::Reply,
                5,
                match r {
                    Ok(d) => d.len(),
                    Err(e) => e.len(),
                },
            ),
            B::Nodes(n) => (ResponseKind::Nodes, 4, n.len() * 17),
        };
        let mut w = Writer::with_capacity(hint + 48);
        write_header(&mut w, fields, kind as u8, &self.origin);
        match &self.body {
            B::Ack { sid, result } => {
                w.str(sid.as_str());
                match result {
                    Ok(v) => {
                        w.bool(true);
                        write_value(&mut w, v);
                    }
                    Err(e) => {
                        w.bool(false);
                        w.bin(e);
                    }
                }
            }
            B::AckCount(n) | B::Done(n) => w.uint(u64::from(*n)),
            B::Rooms(rooms) => write_rooms(&mut w, rooms),
            B::Sockets(sockets) => {
                w.array(sockets.len());
                for s in *sockets {
                    w.array(3);
                    w.str(s.id.as_str());
                    w.str(s.server_id.as_str());
                    w.str(s.ns.as_str());
                }
            }
            B::Reply(Ok(data)) => {
                w.bool(true);
                w.bin(data);
            }
            B::Reply(Err(reason)) => {
                w.bool(false);
                w.str(reason);
            }
            B::Nodes(nodes) => {
                w.array(nodes.len());
                for n in *nodes {
                    w.str(n.as_str());
                }
            }
        }
        w.finish()
    }
}

// ===== decoding =====

// The smallest encoding of one element of each list a message carries. A list
// header's count is only checked against the bytes left, one byte per element;
// reserving that many slots would cost `size_of::<T>()` bytes per input byte
// (64 for a socket), so capacities are bounded by these instead. With them, an
// honest list gets its exact capacity and a forged count no more than the
// elements the bytes left could hold.

/// A room: the empty `str`, `a0`.
const MIN_ROOM: usize = 1;
/// A binary attachment: the empty `bin`, `c4 00`.
const MIN_BIN: usize = 2;
/// An id: a `str` of 16 characters, `b0` and the characters.
const MIN_ID: usize = 17;
/// A socket: `[id, server_id, ns]`, an array header, two ids, the empty `str`.
const MIN_SOCKET: usize = 1 + MIN_ID + MIN_ID + 1;

/// How many `claimed` elements of at least `min_size` bytes each to reserve room
/// for: no more than the bytes left can hold.
fn capacity(r: &Reader, claimed: usize, min_size: usize) -> usize {
    claimed.min(r.remaining() / min_size)
}

fn read_sid(r: &mut Reader, what: &'static str) -> Result<Sid, ProtocolError> {
    Sid::from_str(r.str(what)?).map_err(|_| ProtocolError::InvalidId { what })
}

fn read_uid(r: &mut Reader, what: &'static str) -> Result<Uid, ProtocolError> {
    Uid::from_str(r.str(what)?).map_err(|_| ProtocolError::InvalidId { what })
}

fn read_opt_sid(r: &mut Reader, what: &'static str) -> Result<Option<Sid>, ProtocolError> {
    if r.nil() {
        Ok(None)
    } else {
        read_sid(r, what).map(Some)
    }
}

fn read_rooms(r: &mut Reader, what: &'static str) -> Result<Vec<Room>, ProtocolError> {
    let n = r.array(what)?;
    let mut rooms = Vec::with_capacity(capacity(r, n, MIN_ROOM));
    for _ in 0..n {
        rooms.push(Cow::Owned(r.str(what)?.to_owned()));
    }
    Ok(rooms)
}

/// Read an array header and check it has at least `min` elements; return how many
/// trailing elements to skip once the known ones are read.
fn read_fields(r: &mut Reader, what: &'static str, min: usize) -> Result<usize, ProtocolError> {
    let n = r.array(what)?;
    if n < min {
        return Err(ProtocolError::Truncated { what });
    }
    Ok(n - min)
}

fn skip_extra(r: &mut Reader, extra: usize) -> Result<(), ProtocolError> {
    for _ in 0..extra {
        r.skip()?;
    }
    Ok(())
}

fn read_opts(r: &mut Reader) -> Result<BroadcastOptions, ProtocolError> {
    let extra = read_fields(r, "broadcast options", 5)?;
    let flags = r.uint("broadcast flags")?;
    let mut opts = BroadcastOptions::default();
    for flag in [
        BroadcastFlags::Local,
        BroadcastFlags::Broadcast,
        BroadcastFlags::Volatile,
    ] {
        if flags & flag as u64 != 0 {
            opts.add_flag(flag);
        }
    }
    opts.rooms = read_rooms(r, "rooms")?.into();
    opts.except = read_rooms(r, "except rooms")?.into();
    opts.sid = read_opt_sid(r, "socket id")?;
    opts.server_id = if r.nil() {
        None
    } else {
        Some(read_uid(r, "server id")?)
    };
    skip_extra(r, extra)?;
    Ok(opts)
}

/// Build a [`Str`] over the received buffer without copying it.
#[allow(unsafe_code)]
fn str_from_utf8_bytes(bytes: Bytes) -> Str {
    // SAFETY: `Reader::str_bytes` only returns bytes that passed `std::str::from_utf8`.
    unsafe { Str::from_bytes_unchecked(bytes) }
}

fn read_value(r: &mut Reader) -> Result<Value, ProtocolError> {
    let n = r.array("payload")?;
    if n < 2 {
        return Err(ProtocolError::Truncated { what: "payload" });
    }
    let (value, used) = match r.uint("payload type")? {
        0 => {
            let s = str_from_utf8_bytes(r.str_bytes("payload text")?);
            let bins = if n < 3 || r.nil() {
                None
            } else {
                let m = r.array("binary attachments")?;
                let mut bins = VecDeque::with_capacity(capacity(r, m, MIN_BIN));
                for _ in 0..m {
                    bins.push_back(r.bin("binary attachment")?);
                }
                Some(bins)
            };
            (Value::Str(s, bins), n.min(3))
        }
        1 => (Value::Bytes(r.bin("binary payload")?), 2),
        value => {
            return Err(ProtocolError::InvalidTag {
                what: "payload type",
                value,
            });
        }
    };
    skip_extra(r, n - used)?;
    Ok(value)
}

fn read_packet(r: &mut Reader) -> Result<Packet, ProtocolError> {
    let extra = read_fields(r, "packet", 5)?;
    let ns = str_from_utf8_bytes(r.str_bytes("packet namespace")?);
    let kind = r.uint("packet type")?;
    let data = if r.nil() { None } else { Some(read_value(r)?) };
    let ack = if r.nil() {
        None
    } else {
        Some(r.int("packet ack id")?)
    };
    let error = r.opt_str("packet error")?.map(str::to_owned);
    skip_extra(r, extra)?;
    let missing = |what| ProtocolError::Truncated { what };
    let inner = match kind {
        0 => PacketData::Connect(data),
        1 => PacketData::Disconnect,
        2 => PacketData::Event(data.ok_or(missing("event payload"))?, ack),
        3 => PacketData::EventAck(
            data.ok_or(missing("ack payload"))?,
            ack.ok_or(missing("ack id"))?,
        ),
        4 => PacketData::ConnectError(error.ok_or(missing("connect error"))?),
        5 => PacketData::BinaryEvent(data.ok_or(missing("event payload"))?, ack),
        6 => PacketData::BinaryAck(
            data.ok_or(missing("ack payload"))?,
            ack.ok_or(missing("ack id"))?,
        ),
        value => {
            return Err(ProtocolError::InvalidTag {
                what: "packet type",
                value,
            });
        }
    };
    Ok(Packet { inner, ns })
}

fn read_version(r: &mut Reader) -> Result<(), ProtocolError> {
    let version = r.uint("protocol version")?;
    if version != VERSION {
        return Err(ProtocolError::UnsupportedVersion { version });
    }
    Ok(())
}

/// Decode a request received on a broadcast or node subject.
pub fn decode_request(data: Bytes) -> Result<RequestIn, ProtocolError> {
    let mut r = Reader::new(data);
    let n = r.array("request")?;
    if n < 4 {
        return Err(ProtocolError::Truncated { what: "request" });
    }
    read_version(&mut r)?;
    let kind = RequestKind::from_u64(r.uint("request type")?)?;
    let origin = read_uid(&mut r, "request origin")?;
    let id = read_opt_sid(&mut r, "request id")?;
    let need = |min: usize| {
        if n < min {
            Err(ProtocolError::Truncated { what: "request" })
        } else {
            Ok(n - min)
        }
    };
    use RequestKind as K;
    let (body, extra) = match kind {
        K::Broadcast => {
            let extra = need(6)?;
            let opts = read_opts(&mut r)?;
            let packet = read_packet(&mut r)?;
            (RequestBody::Broadcast { opts, packet }, extra)
        }
        K::BroadcastWithAck => {
            let extra = need(7)?;
            let opts = read_opts(&mut r)?;
            let packet = read_packet(&mut r)?;
            let ack_timeout = if r.nil() {
                None
            } else {
                Some(Duration::from_millis(r.uint("ack timeout")?))
            };
            let body = RequestBody::BroadcastWithAck {
                opts,
                packet,
                ack_timeout,
            };
            (body, extra)
        }
        K::AddSockets | K::DelSockets => {
            let extra = need(6)?;
            let opts = read_opts(&mut r)?;
            let rooms = read_rooms(&mut r, "rooms")?;
            let body = if kind == K::AddSockets {
                RequestBody::AddSockets { opts, rooms }
            } else {
                RequestBody::DelSockets { opts, rooms }
            };
            (body, extra)
        }
        K::DisconnectSockets | K::AllRooms | K::FetchSockets => {
            let extra = need(5)?;
            let opts = read_opts(&mut r)?;
            let body = match kind {
                K::DisconnectSockets => RequestBody::DisconnectSockets { opts },
                K::AllRooms => RequestBody::AllRooms { opts },
                _ => RequestBody::FetchSockets { opts },
            };
            (body, extra)
        }
        K::Heartbeat => (RequestBody::Heartbeat, n - 4),
        K::Hello => (RequestBody::Hello, n - 4),
        K::Goodbye => (RequestBody::Goodbye, n - 4),
        K::Discover => (RequestBody::Discover, n - 4),
        K::ServerEvent => {
            let extra = need(6)?;
            let event = r.str("server event name")?.to_owned();
            let data = r.bin("server event data")?;
            (RequestBody::ServerEvent { event, data }, extra)
        }
        K::CustomRequest => {
            let extra = need(5)?;
            let data = r.bin("custom request data")?;
            (RequestBody::CustomRequest { data }, extra)
        }
    };
    skip_extra(&mut r, extra)?;
    Ok(RequestIn { origin, id, body })
}

/// Decode a response received on a reply subject.
pub fn decode_response(data: Bytes) -> Result<ResponseIn, ProtocolError> {
    let mut r = Reader::new(data);
    let n = r.array("response")?;
    if n < 4 {
        return Err(ProtocolError::Truncated { what: "response" });
    }
    read_version(&mut r)?;
    let kind = ResponseKind::from_u64(r.uint("response type")?)?;
    let origin = read_uid(&mut r, "response origin")?;
    use ResponseKind as K;
    let (body, used) = match kind {
        K::Ack => {
            if n < 6 {
                return Err(ProtocolError::Truncated { what: "ack" });
            }
            let sid = read_sid(&mut r, "acking socket id")?;
            let result = if r.bool("ack status")? {
                Ok(read_value(&mut r)?)
            } else {
                Err(r.bin("ack error")?)
            };
            (ResponseBody::Ack { sid, result }, 6)
        }
        K::AckCount | K::Done => {
            let count = u32::try_from(r.uint("count")?)
                .map_err(|_| ProtocolError::OutOfRange { what: "count" })?;
            let body = if kind == K::AckCount {
                ResponseBody::AckCount(count)
            } else {
                ResponseBody::Done(count)
            };
            (body, 4)
        }
        K::Rooms => (ResponseBody::Rooms(read_rooms(&mut r, "rooms")?), 4),
        K::Sockets => {
            let m = r.array("sockets")?;
            let mut sockets = Vec::with_capacity(capacity(&r, m, MIN_SOCKET));
            for _ in 0..m {
                let extra = read_fields(&mut r, "socket", 3)?;
                let id = read_sid(&mut r, "socket id")?;
                let server_id = read_uid(&mut r, "socket server id")?;
                let ns = Str::from(r.str("socket namespace")?.to_owned());
                skip_extra(&mut r, extra)?;
                sockets.push(RemoteSocketData { id, server_id, ns });
            }
            (ResponseBody::Sockets(sockets), 4)
        }
        K::Reply => {
            if n < 5 {
                return Err(ProtocolError::Truncated { what: "reply" });
            }
            let result = if r.bool("reply status")? {
                Ok(r.bin("reply data")?)
            } else {
                Err(r.str("reply error")?.to_owned())
            };
            (ResponseBody::Reply(result), 5)
        }
        K::Nodes => {
            let m = r.array("nodes")?;
            let mut nodes = Vec::with_capacity(capacity(&r, m, MIN_ID));
            for _ in 0..m {
                nodes.push(read_uid(&mut r, "node id")?);
            }
            (ResponseBody::Nodes(nodes), 4)
        }
    };
    skip_extra(&mut r, n - used)?;
    Ok(ResponseIn { origin, body })
}
