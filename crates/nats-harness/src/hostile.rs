//! Hostile but well-formed messages for a cluster's subjects.
//!
//! Fuzzing the decoder with bytes finds crashes in parsing; it never gets a node to
//! *act* on a message, because almost no random input decodes. These messages are
//! encoded with the protocol crate's own encoder, so every one of them decodes,
//! and they carry what a careless or malicious publisher on a shared NATS server
//! could send: forged origins (a real node's id, or one that does not match the
//! subject), packets of the other parser or of other types and namespaces, huge
//! counts and timeouts, reply subjects aimed at real nodes or nowhere, unexpected
//! and duplicate responses on real nodes' reply subjects, rooms named `*`, `>`,
//! `.`, ` ` or 8 KiB long.
//!
//! Nothing is published here: [`hostile_message`] builds one message from an
//! [`arbitrary::Unstructured`] (for cargo-fuzz), [`storm`] builds many from a seed
//! (for live-cluster tests, deterministic).
//!
//! ```
//! use nats_harness::hostile::{StormTarget, storm};
//! let target = StormTarget {
//!     prefix: "socket.io".into(),
//!     ns: "/".into(),
//!     nodes: vec![socketioxide_core::Uid::new()],
//! };
//! let messages = storm(7, 100, &target);
//! assert_eq!(messages.len(), 100);
//! assert!(messages.iter().all(|m| m.subject.starts_with("socket.io._2F.")));
//! ```

use std::{borrow::Cow, collections::VecDeque, str::FromStr, time::Duration};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, RemoteSocketData, Room},
    packet::{Packet, PacketData},
};
use socketioxide_nats_protocol::{
    message::{RequestOut, RequestOutBody, ResponseOut, ResponseOutBody},
    subjects::NsSubjects,
};

/// The largest payload [`hostile_message`] builds: far under NATS' default
/// `max_payload` (1 MiB), so a storm is not slowed down by its own size, yet large
/// enough for long room names and lists of hundreds of elements.
pub const MAX_HOSTILE_PAYLOAD: usize = 64 * 1024;

/// What variable-length content (names, texts, binary data, list elements) may add
/// up to in one message; the rest of [`MAX_HOSTILE_PAYLOAD`] covers the framing.
const CONTENT_BUDGET: usize = 48 * 1024;

/// The cluster under attack: where its subjects are and which node ids are real,
/// so that messages can forge them and aim at them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormTarget {
    /// The subject prefix the nodes were configured with (`socket.io` by default).
    pub prefix: String,
    /// The namespace path (`/`, `/chat`), as the application names it.
    pub ns: String,
    /// The uids of the real nodes serving the namespace.
    pub nodes: Vec<Uid>,
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostileMessage {
    /// Where to publish it: a broadcast or node subject for a request, a reply
    /// subject for a response, always under the target's prefix and namespace.
    pub subject: String,
    /// The NATS reply subject to publish it with, if any.
    pub reply: Option<String>,
    /// The encoded message; it decodes with the decoder for its subject.
    pub payload: Bytes,
    /// What it is, such as `request:Broadcast` or `response:Ack`, for logs and
    /// statistics.
    pub what: &'static str,
}

/// Request ids drawn from this small set make responses collide on the same reply
/// subject: duplicates, and answers to requests nobody sent.
const POPULAR_IDS: [&str; 4] = [
    "Req0000000000001",
    "Req0000000000002",
    "AAAAAAAAAAAAAAAA",
    "----------------",
];

/// Room and event names that mean something to NATS, to a shell, to a terminal or
/// to a JSON parser; none of them may change what a node does beyond its own room.
const HOSTILE_NAMES: &[&str] = &[
    "",
    "*",
    ">",
    " ",
    ".",
    "..",
    "a.b",
    "a b",
    "$SYS",
    "$SYS.>",
    "_INBOX.x",
    "socket.io._2F.b.*",
    "\0",
    "\r\nPUB x 1\r\n",
    "\u{202e}",
    "😀",
    "日本語",
    "é",
    "\"",
    "\\",
    "{\"_placeholder\":true,\"num\":0}",
];

/// The request types, chosen through `Arbitrary` so every one is equally likely.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum RequestChoice {
    Broadcast,
    BroadcastWithAck,
    DisconnectSockets,
    AllRooms,
    AddSockets,
    DelSockets,
    FetchSockets,
    Heartbeat,
    Hello,
    Goodbye,
    Discover,
    ServerEvent,
    CustomRequest,
}

/// The response types.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum ResponseChoice {
    Ack,
    AckCount,
    Rooms,
    Sockets,
    Done,
    Reply,
    Nodes,
}

/// Build one hostile, well-formed message for `target` from `u`.
///
/// About two thirds are requests on the namespace's broadcast or node subjects,
/// the rest responses on reply subjects, most of them real nodes'. The payload
/// is at most [`MAX_HOSTILE_PAYLOAD`] bytes. Fails only if the target's prefix is
/// not a valid prefix (`arbitrary::Error::IncorrectFormat`); running out of input
/// bytes is not an error, the remaining choices take their first option.
pub fn hostile_message(
    u: &mut Unstructured<'_>,
    target: &StormTarget,
) -> arbitrary::Result<HostileMessage> {
    let subjects = NsSubjects::new(&target.prefix, &target.ns)
        .map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let mut g = Gen {
        u,
        target,
        subjects,
        budget: CONTENT_BUDGET,
    };
    let msg = if g.u.ratio(2u8, 3)? {
        g.request()?
    } else {
        g.response()?
    };
    // The budget keeps messages far under the limit; this only guards against a
    // mistake in its accounting.
    if msg.payload.len() > MAX_HOSTILE_PAYLOAD {
        return Err(arbitrary::Error::IncorrectFormat);
    }
    Ok(msg)
}

/// `count` hostile messages, the same for the same `seed` and target.
///
/// Each message is built by [`hostile_message`] from its own 4 KiB of xorshift
/// output; about 3% are exact copies of an earlier message (replays and duplicate
/// responses).
///
/// # Panics
///
/// If the target's prefix is not a valid subject prefix: a storm that could send
/// nothing would make a test pass without testing anything.
pub fn storm(seed: u64, count: usize, target: &StormTarget) -> Vec<HostileMessage> {
    if let Err(e) = NsSubjects::new(&target.prefix, &target.ns) {
        panic!("storm target: {e}");
    }
    // splitmix64's finalizer spreads neighbouring seeds apart; xorshift has a fixed
    // point at 0, which the finalizer only reaches from one seed.
    let mut state = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    state = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    state ^= state >> 31;
    if state == 0 {
        state = 0x9e37_79b9_7f4a_7c15;
    }
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out: Vec<HostileMessage> = Vec::with_capacity(count);
    let mut buf = vec![0u8; 4096];
    while out.len() < count {
        let r = next();
        if !out.is_empty() && r % 100 < 3 {
            let earlier = out[(r >> 8) as usize % out.len()].clone();
            out.push(earlier);
            continue;
        }
        for chunk in buf.chunks_mut(8) {
            let x = next().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
        // Fails only on an invalid prefix, checked above.
        if let Ok(m) = hostile_message(&mut Unstructured::new(&buf), target) {
            out.push(m);
        }
    }
    out
}

/// The generator's state for one message.
struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    target: &'a StormTarget,
    subjects: NsSubjects,
    /// What variable-length content may still add to the message, in bytes.
    budget: usize,
}

impl Gen<'_, '_> {
    /// Take up to `want` bytes of the content budget; return how many were granted.
    fn spend(&mut self, want: usize) -> usize {
        let n = want.min(self.budget);
        self.budget -= n;
        n
    }

    /// A length in `0..=max`, within the budget, charged to it.
    fn len(&mut self, max: usize) -> arbitrary::Result<usize> {
        let max = max.min(self.budget);
        let n = self.u.int_in_range(0..=max)?;
        Ok(self.spend(n))
    }

    /// How many elements of about `each` bytes a list gets: up to `max`, within the
    /// budget (each is charged when built).
    fn count(&mut self, max: usize, each: usize) -> arbitrary::Result<usize> {
        let max = max.min(self.budget / each.max(1));
        self.u.int_in_range(0..=max)
    }

    /// Up to `max` raw bytes (fewer when the input runs short).
    fn raw(&mut self, max: usize) -> arbitrary::Result<Vec<u8>> {
        let n = self.len(max)?.min(self.u.len());
        Ok(self.u.bytes(n)?.to_vec())
    }

    fn id_str(&mut self) -> arbitrary::Result<String> {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::with_capacity(16);
        for _ in 0..16 {
            s.push(char::from(
                ALPHABET[usize::from(self.u.arbitrary::<u8>()? % 64)],
            ));
        }
        Ok(s)
    }

    fn random_uid(&mut self) -> arbitrary::Result<Uid> {
        let s = self.id_str()?;
        Uid::from_str(&s).map_err(|_| arbitrary::Error::IncorrectFormat)
    }

    fn random_sid(&mut self) -> arbitrary::Result<Sid> {
        let s = self.id_str()?;
        Sid::from_str(&s).map_err(|_| arbitrary::Error::IncorrectFormat)
    }

    fn real_node(&mut self) -> arbitrary::Result<Option<Uid>> {
        if self.target.nodes.is_empty() {
            return Ok(None);
        }
        Ok(Some(*self.u.choose(&self.target.nodes)?))
    }

    /// A real node's uid when there is one and `percent` of the time, else a random one.
    fn node_or_random(&mut self, percent: u8) -> arbitrary::Result<Uid> {
        if self.u.int_in_range(1..=100u8)? <= percent
            && let Some(n) = self.real_node()?
        {
            return Ok(n);
        }
        self.random_uid()
    }

    /// A name: a hostile one from the list, random characters (often from an
    /// alphabet of separators, wildcards and multi-byte characters), or a very long
    /// one.
    fn name(&mut self) -> arbitrary::Result<String> {
        self.spend(8);
        Ok(match self.u.int_in_range(0..=9u8)? {
            0..=3 => (*self.u.choose(HOSTILE_NAMES)?).to_owned(),
            4 | 5 => {
                const CHARS: &[char] = &[
                    'a', 'Z', '0', '.', '*', '>', ' ', '\t', '\n', '\0', '$', '_', '-', '/', '"',
                    '\\', 'é', '😀', '日', '\u{ffff}',
                ];
                let n = self.len(64)? / 4;
                let mut s = String::new();
                for _ in 0..n {
                    s.push(*self.u.choose(CHARS)?);
                }
                s
            }
            6 | 7 => {
                let raw = self.raw(48)?;
                // Lossy: may grow by 3 bytes per invalid byte, charged here.
                let s = String::from_utf8_lossy(&raw).into_owned();
                self.spend(s.len().saturating_sub(raw.len()));
                s
            }
            8 => self.random_uid()?.to_string(), // looks like an id, is a name
            _ => {
                let c = *self.u.choose(&['a', '.', '*', 'é', '😀'])?;
                let n = self.len(8 * 1024)? / c.len_utf8();
                c.to_string().repeat(n)
            }
        })
    }

    fn rooms(&mut self, max: usize) -> arbitrary::Result<Vec<Room>> {
        let n = self.count(max, 16)?;
        let mut rooms = Vec::with_capacity(n);
        for _ in 0..n {
            rooms.push(Cow::Owned(self.name()?));
        }
        Ok(rooms)
    }

    fn opts(&mut self) -> arbitrary::Result<BroadcastOptions> {
        let mut o = BroadcastOptions::default();
        // Any combination, the local flag (never sent by nodes) included.
        let bits = self.u.arbitrary::<u8>()?;
        for (bit, flag) in [
            (1, BroadcastFlags::Local),
            (2, BroadcastFlags::Broadcast),
            (4, BroadcastFlags::Volatile),
        ] {
            if bits & bit != 0 {
                o.add_flag(flag);
            }
        }
        o.rooms = self.rooms(24)?.into();
        o.except = self.rooms(8)?.into();
        if self.u.arbitrary()? {
            o.sid = Some(self.random_sid()?);
        }
        o.server_id = match self.u.int_in_range(0..=3u8)? {
            0 | 1 => None,
            2 => self.real_node()?,
            _ => Some(self.random_uid()?),
        };
        Ok(o)
    }

    /// A JSON text like a socket.io event (`["name", args...]`), or not quite.
    fn json_text(&mut self, bins: usize) -> arbitrary::Result<String> {
        use serde_json::{Value as J, json};
        if self.u.int_in_range(0..=9u8)? == 0 {
            // Not JSON at all, or not an array.
            let raw = self.raw(64)?;
            return Ok(String::from_utf8_lossy(&raw).into_owned());
        }
        let event = if self.u.arbitrary()? {
            J::String(self.name()?)
        } else {
            json!(self.u.arbitrary::<i64>()?) // an event name that is not a string
        };
        let mut items = vec![event];
        for _ in 0..self.u.int_in_range(0..=4u8)? {
            items.push(match self.u.int_in_range(0..=6u8)? {
                0 => J::Null,
                1 => json!(self.u.arbitrary::<bool>()?),
                2 => json!(self.u.arbitrary::<i64>()?),
                3 => J::String(self.name()?),
                // Placeholders pointing at attachments that exist, or not.
                4 => json!({"_placeholder": true, "num": self.u.int_in_range(0..=bins + 1)?}),
                5 => json!({"_placeholder": self.u.arbitrary::<bool>()?, "num": -1}),
                _ => json!([[[{"a": [1, 2, {"b": null}]}]]]),
            });
        }
        let text = J::Array(items).to_string();
        self.spend(text.len());
        Ok(text)
    }

    /// A packet value in either parser's form, whatever parser the cluster uses.
    fn value(&mut self) -> arbitrary::Result<Value> {
        if self.u.arbitrary()? {
            // The common parser's form: JSON text and optional attachments.
            let bins = if self.u.arbitrary()? {
                let n = self.count(6, 16)?;
                let mut bins = VecDeque::with_capacity(n);
                for _ in 0..n {
                    bins.push_back(Bytes::from(self.raw(256)?));
                }
                Some(bins)
            } else {
                None
            };
            let text = self.json_text(bins.as_ref().map_or(0, VecDeque::len))?;
            Ok(Value::Str(Str::from(text), bins))
        } else {
            // The msgpack parser's form: a MessagePack array, or any bytes.
            let mut b = Vec::new();
            if self.u.arbitrary()? {
                let name = self.name()?;
                let name = &name.as_bytes()[..name.len().min(31)];
                b.push(0x92);
                b.push(0xa0 | name.len() as u8);
                b.extend_from_slice(name);
                let data = self.raw(200)?;
                b.extend_from_slice(&[0xc4, data.len() as u8]);
                b.extend_from_slice(&data);
            } else {
                b = self.raw(512)?;
            }
            Ok(Value::Bytes(Bytes::from(b)))
        }
    }

    fn ack_id(&mut self) -> arbitrary::Result<i64> {
        Ok(match self.u.int_in_range(0..=3u8)? {
            0 => 0,
            1 => i64::MAX,
            2 => i64::MIN,
            _ => self.u.arbitrary()?,
        })
    }

    /// A packet of any type, often for another namespace than the target.
    fn packet(&mut self) -> arbitrary::Result<Packet> {
        let ns = match self.u.int_in_range(0..=9u8)? {
            0..=5 => self.target.ns.clone(),
            6 => "/".to_owned(),
            7 => "/other".to_owned(),
            _ => self.name()?,
        };
        let inner = match self.u.int_in_range(0..=11u8)? {
            0..=4 => {
                let ack = if self.u.arbitrary()? {
                    Some(self.ack_id()?)
                } else {
                    None
                };
                PacketData::Event(self.value()?, ack)
            }
            5 | 6 => {
                let ack = if self.u.arbitrary()? {
                    Some(self.ack_id()?)
                } else {
                    None
                };
                PacketData::BinaryEvent(self.value()?, ack)
            }
            7 => {
                let v = if self.u.arbitrary()? {
                    Some(self.value()?)
                } else {
                    None
                };
                PacketData::Connect(v)
            }
            8 => PacketData::Disconnect,
            9 => PacketData::EventAck(self.value()?, self.ack_id()?),
            10 => PacketData::ConnectError(self.name()?),
            _ => PacketData::BinaryAck(self.value()?, self.ack_id()?),
        };
        Ok(Packet {
            ns: Str::from(ns),
            inner,
        })
    }

    fn ack_timeout(&mut self) -> arbitrary::Result<Option<Duration>> {
        Ok(match self.u.int_in_range(0..=6u8)? {
            0 => None,
            1 => Some(Duration::ZERO),
            2 => Some(Duration::MAX),
            3 => Some(Duration::from_millis(u64::MAX)),
            4 => Some(Duration::from_millis(self.u.arbitrary()?)),
            _ => Some(Duration::from_millis(self.u.int_in_range(0..=10_000)?)),
        })
    }

    /// Who a request claims to be from, and the last token of its subject: the
    /// same random id, a real node's (forgery), or two that disagree.
    fn request_sender(&mut self) -> arbitrary::Result<(Uid, String)> {
        let origin = match self.u.int_in_range(0..=9u8)? {
            0..=4 => self.random_uid()?,
            5..=8 => self.node_or_random(100)?,
            // The same stranger every time, as a replaying publisher would be.
            _ => Uid::from_str(POPULAR_IDS[2]).map_err(|_| arbitrary::Error::IncorrectFormat)?,
        };
        let last = match self.u.int_in_range(0..=9u8)? {
            0..=6 => origin.to_string(),
            7 => self.random_uid()?.to_string(),
            _ => self.node_or_random(100)?.to_string(),
        };
        Ok((origin, last))
    }

    fn request_subject(&mut self, last: &str) -> arbitrary::Result<String> {
        Ok(if self.u.ratio(11u8, 20)? {
            self.subjects.broadcast(last)
        } else {
            let to = match self.u.int_in_range(0..=9u8)? {
                0..=7 => self.node_or_random(100)?.to_string(),
                8 => self.random_uid()?.to_string(),
                _ => last.to_owned(), // to itself
            };
            self.subjects.node(&to, last)
        })
    }

    /// A reply subject: missing, a real node's (reflection: its answers would reach
    /// a node that never asked), nobody's, or outside the namespace.
    fn reply_subject(&mut self) -> arbitrary::Result<Option<String>> {
        Ok(match self.u.int_in_range(0..=9u8)? {
            0..=2 => None,
            3..=5 => {
                let node = self.node_or_random(100)?.to_string();
                let id = self.request_id()?;
                Some(self.subjects.reply(&node, &id))
            }
            6 | 7 => {
                let (who, id) = (self.id_str()?, self.id_str()?);
                Some(self.subjects.reply(&who, &id))
            }
            8 => Some(format!(
                "{}.elsewhere.{}",
                self.target.prefix,
                self.id_str()?
            )),
            _ => {
                // Another namespace's reply subject.
                let other = NsSubjects::new(&self.target.prefix, "/other")
                    .map_err(|_| arbitrary::Error::IncorrectFormat)?;
                let (who, id) = (self.node_or_random(50)?.to_string(), self.id_str()?);
                Some(other.reply(&who, &id))
            }
        })
    }

    /// A request id: random, or one of a few that every run reuses.
    fn request_id(&mut self) -> arbitrary::Result<String> {
        if self.u.ratio(1u8, 3)? {
            Ok((*self.u.choose(&POPULAR_IDS)?).to_owned())
        } else {
            self.id_str()
        }
    }

    fn request(&mut self) -> arbitrary::Result<HostileMessage> {
        let (origin, last) = self.request_sender()?;
        let subject = self.request_subject(&last)?;
        let reply = self.reply_subject()?;
        // Usually an id when there is a reply subject, but not always, and
        // sometimes one without.
        let id = match (reply.is_some(), self.u.int_in_range(0..=9u8)?) {
            (true, 0..=7) | (false, 0..=1) => Some(
                Sid::from_str(&self.request_id()?)
                    .map_err(|_| arbitrary::Error::IncorrectFormat)?,
            ),
            _ => None,
        };
        use RequestChoice as C;
        let body = match self.u.arbitrary::<RequestChoice>()? {
            C::Broadcast => OwnedRequest::Broadcast(self.opts()?, self.packet()?),
            C::BroadcastWithAck => {
                OwnedRequest::BroadcastWithAck(self.opts()?, self.packet()?, self.ack_timeout()?)
            }
            C::DisconnectSockets => OwnedRequest::DisconnectSockets(self.opts()?),
            C::AllRooms => OwnedRequest::AllRooms(self.opts()?),
            C::AddSockets => OwnedRequest::AddSockets(self.opts()?, self.rooms(32)?),
            C::DelSockets => OwnedRequest::DelSockets(self.opts()?, self.rooms(32)?),
            C::FetchSockets => OwnedRequest::FetchSockets(self.opts()?),
            C::Heartbeat => OwnedRequest::Heartbeat,
            C::Hello => OwnedRequest::Hello,
            C::Goodbye => OwnedRequest::Goodbye,
            C::Discover => OwnedRequest::Discover,
            C::ServerEvent => OwnedRequest::ServerEvent(self.name()?, self.app_data()?),
            C::CustomRequest => OwnedRequest::CustomRequest(self.app_data()?),
        };
        let (body, what) = body.borrow();
        let payload = RequestOut { origin, id, body }.encode();
        Ok(HostileMessage {
            subject,
            reply,
            payload,
            what,
        })
    }

    /// The data of a server event or custom request: MessagePack chosen by the
    /// application, so any bytes, or a small map as the Rust side writes structs.
    fn app_data(&mut self) -> arbitrary::Result<Vec<u8>> {
        if self.u.arbitrary()? {
            self.raw(1024)
        } else {
            Ok(vec![0x81, 0xa1, b'k', 0xc4, 0x01, self.u.arbitrary()?])
        }
    }

    fn count_value(&mut self) -> arbitrary::Result<u32> {
        Ok(match self.u.int_in_range(0..=3u8)? {
            0 => u32::MAX,
            1 => 0,
            2 => self.u.arbitrary()?,
            _ => self.u.int_in_range(1..=100)?,
        })
    }

    fn response(&mut self) -> arbitrary::Result<HostileMessage> {
        // Mostly on real nodes' reply subjects: answers nobody asked for, or
        // duplicates of ones they did (the popular ids).
        let requester = self.node_or_random(80)?.to_string();
        let id = self.request_id()?;
        let subject = self.subjects.reply(&requester, &id);
        let reply = if self.u.ratio(1u8, 10)? {
            self.reply_subject()?
        } else {
            None
        };
        let origin = self.node_or_random(50)?;
        use ResponseChoice as C;
        let body = match self.u.arbitrary::<ResponseChoice>()? {
            C::Ack => {
                let sid = self.random_sid()?;
                if self.u.arbitrary()? {
                    OwnedResponse::Ack(sid, Ok(self.value()?))
                } else {
                    // AckError as rmp-serde writes it, or anything.
                    let error = if self.u.arbitrary()? {
                        b"\xa7Timeout".to_vec()
                    } else {
                        self.raw(64)?
                    };
                    OwnedResponse::Ack(sid, Err(error))
                }
            }
            C::AckCount => OwnedResponse::AckCount(self.count_value()?),
            C::Rooms => OwnedResponse::Rooms(self.rooms(64)?),
            C::Sockets => {
                let n = self.count(64, 48)?;
                let mut sockets = Vec::with_capacity(n);
                for _ in 0..n {
                    self.spend(40);
                    let ns = match self.u.int_in_range(0..=3u8)? {
                        0 | 1 => self.target.ns.clone(),
                        _ => self.name()?,
                    };
                    sockets.push(RemoteSocketData {
                        id: self.random_sid()?,
                        server_id: self.node_or_random(50)?,
                        ns: Str::from(ns),
                    });
                }
                OwnedResponse::Sockets(sockets)
            }
            C::Done => OwnedResponse::Done(self.count_value()?),
            C::Reply => OwnedResponse::Reply(if self.u.arbitrary()? {
                Ok(self.raw(512)?)
            } else {
                Err(self.name()?)
            }),
            C::Nodes => {
                // Real nodes (the target itself included), strangers, duplicates.
                let n = self.count(32, 20)?;
                let mut nodes = Vec::with_capacity(n);
                for _ in 0..n {
                    self.spend(20);
                    nodes.push(self.node_or_random(40)?);
                }
                OwnedResponse::Nodes(nodes)
            }
        };
        let (body, what) = body.borrow();
        let payload = ResponseOut { origin, body }.encode();
        Ok(HostileMessage {
            subject,
            reply,
            payload,
            what,
        })
    }
}

/// A generated request, owning what the encoder borrows.
enum OwnedRequest {
    Broadcast(BroadcastOptions, Packet),
    BroadcastWithAck(BroadcastOptions, Packet, Option<Duration>),
    DisconnectSockets(BroadcastOptions),
    AllRooms(BroadcastOptions),
    AddSockets(BroadcastOptions, Vec<Room>),
    DelSockets(BroadcastOptions, Vec<Room>),
    FetchSockets(BroadcastOptions),
    Heartbeat,
    Hello,
    Goodbye,
    Discover,
    ServerEvent(String, Vec<u8>),
    CustomRequest(Vec<u8>),
}

impl OwnedRequest {
    fn borrow(&self) -> (RequestOutBody<'_>, &'static str) {
        use RequestOutBody as B;
        match self {
            Self::Broadcast(opts, packet) => (B::Broadcast { opts, packet }, "request:Broadcast"),
            Self::BroadcastWithAck(opts, packet, ack_timeout) => (
                B::BroadcastWithAck {
                    opts,
                    packet,
                    ack_timeout: *ack_timeout,
                },
                "request:BroadcastWithAck",
            ),
            Self::DisconnectSockets(opts) => {
                (B::DisconnectSockets { opts }, "request:DisconnectSockets")
            }
            Self::AllRooms(opts) => (B::AllRooms { opts }, "request:AllRooms"),
            Self::AddSockets(opts, rooms) => (B::AddSockets { opts, rooms }, "request:AddSockets"),
            Self::DelSockets(opts, rooms) => (B::DelSockets { opts, rooms }, "request:DelSockets"),
            Self::FetchSockets(opts) => (B::FetchSockets { opts }, "request:FetchSockets"),
            Self::Heartbeat => (B::Heartbeat, "request:Heartbeat"),
            Self::Hello => (B::Hello, "request:Hello"),
            Self::Goodbye => (B::Goodbye, "request:Goodbye"),
            Self::Discover => (B::Discover, "request:Discover"),
            Self::ServerEvent(event, data) => {
                (B::ServerEvent { event, data }, "request:ServerEvent")
            }
            Self::CustomRequest(data) => (B::CustomRequest { data }, "request:CustomRequest"),
        }
    }
}

/// A generated response, owning what the encoder borrows.
enum OwnedResponse {
    Ack(Sid, Result<Value, Vec<u8>>),
    AckCount(u32),
    Rooms(Vec<Room>),
    Sockets(Vec<RemoteSocketData>),
    Done(u32),
    Reply(Result<Vec<u8>, String>),
    Nodes(Vec<Uid>),
}

impl OwnedResponse {
    fn borrow(&self) -> (ResponseOutBody<'_>, &'static str) {
        use ResponseOutBody as B;
        match self {
            Self::Ack(sid, result) => (
                B::Ack {
                    sid: *sid,
                    result: result.as_ref().map_err(Vec::as_slice),
                },
                "response:Ack",
            ),
            Self::AckCount(n) => (B::AckCount(*n), "response:AckCount"),
            Self::Rooms(rooms) => (B::Rooms(rooms), "response:Rooms"),
            Self::Sockets(sockets) => (B::Sockets(sockets), "response:Sockets"),
            Self::Done(n) => (B::Done(*n), "response:Done"),
            Self::Reply(r) => (
                B::Reply(r.as_ref().map(Vec::as_slice).map_err(String::as_str)),
                "response:Reply",
            ),
            Self::Nodes(nodes) => (B::Nodes(nodes), "response:Nodes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use socketioxide_nats_protocol::message::{
        RequestBody, ResponseBody, decode_request, decode_response,
    };

    use super::*;

    fn target() -> StormTarget {
        StormTarget {
            prefix: "socket.io".into(),
            ns: "/chat".into(),
            nodes: ["NodeA00000000000", "NodeB00000000000", "NodeC00000000000"]
                .iter()
                .map(|s| Uid::from_str(s).expect("valid id"))
                .collect(),
        }
    }

    /// Every token of a NATS subject one can publish on: non-empty, no wildcard, no
    /// whitespace.
    fn is_publishable(subject: &str) -> bool {
        subject.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }

    #[test]
    fn a_storm_covers_every_type_decodes_and_carries_the_hostile_cases() {
        let t = target();
        let s = NsSubjects::new(&t.prefix, &t.ns).expect("valid prefix");
        let (b, n, r) = (
            format!("{}.b.", s.base()),
            format!("{}.n.", s.base()),
            format!("{}.r.", s.base()),
        );
        let real: BTreeSet<String> = t.nodes.iter().map(|n| n.to_string()).collect();
        let storm = storm(1, 5_000, &t);
        assert_eq!(storm.len(), 5_000);

        let mut kinds = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut replies = BTreeSet::new();
        for m in &storm {
            assert!(
                m.payload.len() <= MAX_HOSTILE_PAYLOAD,
                "{}",
                m.payload.len()
            );
            assert!(is_publishable(&m.subject), "{:?}", m.subject);
            if let Some(reply) = &m.reply {
                assert!(is_publishable(reply), "{reply:?}");
                if real.iter().any(|n| reply.starts_with(&s.reply_prefix(n))) {
                    seen.insert("reply aimed at a real node");
                }
                if !s.is_reply_subject(reply) {
                    seen.insert("reply outside the namespace");
                }
            } else if m.subject.starts_with(&b) || m.subject.starts_with(&n) {
                seen.insert("request without a reply subject");
            }
            kinds.insert(m.what);
            let last = m.subject.rsplit('.').next().unwrap_or("");
            if m.subject.starts_with(&b) || m.subject.starts_with(&n) {
                let req =
                    decode_request(m.payload.clone()).unwrap_or_else(|e| panic!("{}: {e}", m.what));
                assert_eq!(
                    format!("request:{:?}", req.body)
                        .split([' ', '(', '{'])
                        .next(),
                    Some(m.what),
                );
                let origin = req.origin.to_string();
                if real.contains(&origin) {
                    seen.insert("request forging a real node's origin");
                }
                if origin != last {
                    seen.insert("origin that is not the subject's last token");
                }
                match &req.body {
                    RequestBody::Broadcast { opts, packet }
                    | RequestBody::BroadcastWithAck { opts, packet, .. } => {
                        match &packet.inner {
                            PacketData::Event(Value::Bytes(_), _) => {
                                seen.insert("msgpack value");
                            }
                            PacketData::Event(Value::Str(..), _) => {
                                seen.insert("common value");
                            }
                            PacketData::Connect(_) => {
                                seen.insert("connect packet");
                            }
                            PacketData::Disconnect => {
                                seen.insert("disconnect packet");
                            }
                            PacketData::EventAck(..) => {
                                seen.insert("ack packet");
                            }
                            PacketData::ConnectError(_) => {
                                seen.insert("connect error packet");
                            }
                            PacketData::BinaryAck(..) => {
                                seen.insert("binary ack packet");
                            }
                            PacketData::BinaryEvent(..) => {
                                seen.insert("binary event packet");
                            }
                        }
                        if packet.ns.as_str() != t.ns {
                            seen.insert("packet of another namespace");
                        }
                        if opts
                            .server_id
                            .is_some_and(|id| real.contains(&id.to_string()))
                        {
                            seen.insert("server_id of a real node");
                        }
                        if opts.sid.is_some() {
                            seen.insert("sid set");
                        }
                        for room in opts.rooms.iter().chain(&opts.except) {
                            match room.as_ref() {
                                "" => seen.insert("empty room"),
                                "*" => seen.insert("room *"),
                                ">" => seen.insert("room >"),
                                "." => seen.insert("room ."),
                                " " => seen.insert("room space"),
                                r if r.len() > 1000 => seen.insert("very long room"),
                                r if !r.is_ascii() => seen.insert("non-ASCII room"),
                                _ => false,
                            };
                        }
                        if let RequestBody::BroadcastWithAck {
                            ack_timeout: Some(timeout),
                            ..
                        } = &req.body
                            && *timeout == Duration::from_millis(u64::MAX)
                        {
                            seen.insert("ack timeout of u64::MAX ms");
                        }
                    }
                    _ => {}
                }
            } else {
                assert!(m.subject.starts_with(&r), "{}", m.subject);
                let resp = decode_response(m.payload.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", m.what));
                assert_eq!(
                    format!("response:{:?}", resp.body)
                        .split([' ', '(', '{'])
                        .next(),
                    Some(m.what),
                );
                if real
                    .iter()
                    .any(|n| m.subject.starts_with(&s.reply_prefix(n)))
                {
                    seen.insert("response on a real node's reply subject");
                }
                if !replies.insert((m.subject.clone(), m.payload.clone())) {
                    seen.insert("duplicate response");
                }
                match resp.body {
                    ResponseBody::AckCount(u32::MAX) | ResponseBody::Done(u32::MAX) => {
                        seen.insert("count of u32::MAX");
                    }
                    _ => {}
                }
            }
        }
        let every_kind: BTreeSet<&str> = [
            "request:Broadcast",
            "request:BroadcastWithAck",
            "request:DisconnectSockets",
            "request:AllRooms",
            "request:AddSockets",
            "request:DelSockets",
            "request:FetchSockets",
            "request:Heartbeat",
            "request:Hello",
            "request:Goodbye",
            "request:Discover",
            "request:ServerEvent",
            "request:CustomRequest",
            "response:Ack",
            "response:AckCount",
            "response:Rooms",
            "response:Sockets",
            "response:Done",
            "response:Reply",
            "response:Nodes",
        ]
        .into();
        let mut per_kind = std::collections::BTreeMap::<&str, usize>::new();
        for m in &storm {
            *per_kind.entry(m.what).or_default() += 1;
        }
        let sizes: Vec<usize> = storm.iter().map(|m| m.payload.len()).collect();
        println!(
            "per kind: {per_kind:?}; payload sizes: max {}, mean {}",
            sizes.iter().max().unwrap_or(&0),
            sizes.iter().sum::<usize>() / sizes.len().max(1)
        );
        assert_eq!(kinds, every_kind);
        let every_case: BTreeSet<&str> = [
            "reply aimed at a real node",
            "reply outside the namespace",
            "request without a reply subject",
            "request forging a real node's origin",
            "origin that is not the subject's last token",
            "msgpack value",
            "common value",
            "connect packet",
            "disconnect packet",
            "ack packet",
            "connect error packet",
            "binary ack packet",
            "binary event packet",
            "packet of another namespace",
            "server_id of a real node",
            "sid set",
            "empty room",
            "room *",
            "room >",
            "room .",
            "room space",
            "very long room",
            "non-ASCII room",
            "ack timeout of u64::MAX ms",
            "response on a real node's reply subject",
            "duplicate response",
            "count of u32::MAX",
        ]
        .into();
        let missing: Vec<_> = every_case.difference(&seen).collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }

    #[test]
    fn a_storm_is_deterministic_for_a_seed() {
        let t = target();
        // assert! rather than assert_eq!: a failure would print megabytes.
        assert!(storm(42, 500, &t) == storm(42, 500, &t));
        for (a, b) in [(42, 43), (0, 1), (0, u64::MAX)] {
            assert!(storm(a, 50, &t) != storm(b, 50, &t), "seeds {a} and {b}");
        }
    }

    /// Random input of any length, dense or sparse: every one builds a message (the
    /// size guard in `hostile_message` never fires), within the size limit.
    #[test]
    fn any_input_builds_a_message_within_the_limit() {
        let t = target();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..3_000usize {
            let len = [0, 3, 64, 1024, 4096, 65536][i % 6];
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Every other run is mostly 0xff: long lengths, last options.
                    if i % 2 == 0 {
                        x as u8
                    } else {
                        (x as u8) | 0xf0
                    }
                })
                .collect();
            let m = hostile_message(&mut Unstructured::new(&data), &t).expect("builds");
            assert!(m.payload.len() <= MAX_HOSTILE_PAYLOAD);
        }
    }

    #[test]
    fn short_or_empty_input_still_builds_a_message() {
        let t = target();
        for len in [0, 1, 7, 64] {
            let data = vec![0xa5; len];
            let m = hostile_message(&mut Unstructured::new(&data), &t).expect("builds");
            assert!(!m.payload.is_empty());
        }
        let mut no_nodes = t.clone();
        no_nodes.nodes.clear();
        assert_eq!(storm(3, 200, &no_nodes).len(), 200);
    }

    #[test]
    fn an_invalid_prefix_is_an_error_not_a_panic() {
        let mut t = target();
        t.prefix = "bad prefix.*".into();
        assert!(hostile_message(&mut Unstructured::new(&[1, 2, 3]), &t).is_err());
    }
}
