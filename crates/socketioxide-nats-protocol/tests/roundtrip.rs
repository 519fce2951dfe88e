//! Every message type survives encode → decode unchanged, binary payloads are not
//! inflated, and malformed input of every shape is rejected without panicking.

use std::{borrow::Cow, collections::VecDeque, time::Duration};

use bytes::Bytes;
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, RemoteSocketData, Room},
    packet::{Packet, PacketData},
};
use socketioxide_nats_protocol::{
    ProtocolError,
    message::{
        RequestBody, RequestOut, RequestOutBody, ResponseBody, ResponseOut, ResponseOutBody,
        decode_request, decode_response,
    },
};

fn opts() -> BroadcastOptions {
    let mut o = BroadcastOptions::new(Sid::new());
    o.add_flag(BroadcastFlags::Broadcast);
    o.add_flag(BroadcastFlags::Volatile);
    o.rooms = vec![
        Cow::Borrowed("a.b"),
        Cow::Owned("*".into()),
        Cow::Borrowed(""),
    ]
    .into();
    o.except = vec![Cow::Borrowed("😀")].into();
    o.server_id = Some(Uid::new());
    o
}

fn packets() -> Vec<Packet> {
    let bins: VecDeque<Bytes> = vec![Bytes::from_static(&[0, 1, 2, 255]), Bytes::new()].into();
    vec![
        Packet::event(
            "/",
            Value::Str(Str::from(r#"["ev",1,"2"]"#.to_owned()), None),
        ),
        Packet::event(
            "/chat.v2",
            Value::Str(
                Str::from(r#"["ev",{"_placeholder":true,"num":0}]"#.to_owned()),
                Some(bins),
            ),
        ),
        Packet::event("/", Value::Bytes(Bytes::from(vec![0x93u8, 1, 2, 3]))),
        Packet {
            ns: Str::from("/x"),
            inner: PacketData::Event(Value::Str(Str::from("[]".to_owned()), None), Some(-5)),
        },
        Packet::ack("/", Value::Str(Str::from("[1]".to_owned()), None), 42),
        Packet::disconnect("/"),
        Packet::connect_error("/", "nope"),
        Packet::connect("/", None),
    ]
}

fn roundtrip_request(body: RequestOutBody<'_>, id: Option<Sid>) -> RequestBody {
    let origin = Uid::new();
    let bytes = RequestOut { origin, id, body }.encode();
    let req = decode_request(bytes).expect("decodes");
    assert_eq!(req.origin, origin);
    assert_eq!(req.id, id);
    req.body
}

#[test]
fn requests_roundtrip() {
    let o = opts();
    for p in packets() {
        assert_eq!(
            roundtrip_request(
                RequestOutBody::Broadcast {
                    opts: &o,
                    packet: &p
                },
                None
            ),
            RequestBody::Broadcast {
                opts: o.clone(),
                packet: p.clone()
            }
        );
        for t in [None, Some(Duration::from_millis(1234))] {
            assert_eq!(
                roundtrip_request(
                    RequestOutBody::BroadcastWithAck {
                        opts: &o,
                        packet: &p,
                        ack_timeout: t
                    },
                    Some(Sid::new())
                ),
                RequestBody::BroadcastWithAck {
                    opts: o.clone(),
                    packet: p.clone(),
                    ack_timeout: t
                }
            );
        }
    }
    let rooms: Vec<Room> = vec![Cow::Borrowed("r1"), Cow::Borrowed("$SYS.>")];
    assert_eq!(
        roundtrip_request(
            RequestOutBody::AddSockets {
                opts: &o,
                rooms: &rooms
            },
            Some(Sid::new())
        ),
        RequestBody::AddSockets {
            opts: o.clone(),
            rooms: rooms.clone()
        }
    );
    assert_eq!(
        roundtrip_request(
            RequestOutBody::DelSockets {
                opts: &o,
                rooms: &rooms
            },
            None
        ),
        RequestBody::DelSockets {
            opts: o.clone(),
            rooms: rooms.clone()
        }
    );
    assert_eq!(
        roundtrip_request(RequestOutBody::DisconnectSockets { opts: &o }, None),
        RequestBody::DisconnectSockets { opts: o.clone() }
    );
    assert_eq!(
        roundtrip_request(RequestOutBody::AllRooms { opts: &o }, Some(Sid::new())),
        RequestBody::AllRooms { opts: o.clone() }
    );
    assert_eq!(
        roundtrip_request(RequestOutBody::FetchSockets { opts: &o }, Some(Sid::new())),
        RequestBody::FetchSockets { opts: o.clone() }
    );
    assert_eq!(
        roundtrip_request(RequestOutBody::Heartbeat, None),
        RequestBody::Heartbeat
    );
    assert_eq!(
        roundtrip_request(RequestOutBody::Hello, None),
        RequestBody::Hello
    );
    assert_eq!(
        roundtrip_request(RequestOutBody::Goodbye, None),
        RequestBody::Goodbye
    );
}

fn roundtrip_response(body: ResponseOutBody<'_>) -> ResponseBody {
    let origin = Uid::new();
    let resp = decode_response(ResponseOut { origin, body }.encode()).expect("decodes");
    assert_eq!(resp.origin, origin);
    resp.body
}

#[test]
fn responses_roundtrip() {
    let sid = Sid::new();
    let v = Value::Str(
        Str::from("[1]".to_owned()),
        Some(vec![Bytes::from_static(b"\0\xff")].into()),
    );
    assert_eq!(
        roundtrip_response(ResponseOutBody::Ack {
            sid,
            result: Ok(&v)
        }),
        ResponseBody::Ack {
            sid,
            result: Ok(v.clone())
        }
    );
    assert_eq!(
        roundtrip_response(ResponseOutBody::Ack {
            sid,
            result: Err(&[0xa7, b'T'])
        }),
        ResponseBody::Ack {
            sid,
            result: Err(Bytes::from_static(&[0xa7, b'T']))
        }
    );
    assert_eq!(
        roundtrip_response(ResponseOutBody::AckCount(7)),
        ResponseBody::AckCount(7)
    );
    assert_eq!(
        roundtrip_response(ResponseOutBody::Done(0)),
        ResponseBody::Done(0)
    );
    let rooms: Vec<Room> = vec![Cow::Borrowed("x"), Cow::Borrowed("")];
    assert_eq!(
        roundtrip_response(ResponseOutBody::Rooms(&rooms)),
        ResponseBody::Rooms(rooms)
    );
    let sockets = vec![RemoteSocketData {
        id: Sid::new(),
        server_id: Uid::new(),
        ns: Str::from("/a"),
    }];
    assert_eq!(
        roundtrip_response(ResponseOutBody::Sockets(&sockets)),
        ResponseBody::Sockets(sockets)
    );
    assert_eq!(
        roundtrip_response(ResponseOutBody::Reply(Ok(&[1, 2]))),
        ResponseBody::Reply(Ok(Bytes::from_static(&[1, 2])))
    );
    assert_eq!(
        roundtrip_response(ResponseOutBody::Reply(Err("no hook"))),
        ResponseBody::Reply(Err("no hook".into()))
    );
    let nodes = vec![Uid::new(), Uid::new()];
    assert_eq!(
        roundtrip_response(ResponseOutBody::Nodes(&nodes)),
        ResponseBody::Nodes(nodes)
    );
}

#[test]
fn binary_payloads_are_not_inflated() {
    let o = BroadcastOptions::default();
    for size in [1_000usize, 100_000, 1_000_000] {
        let payload = Bytes::from(vec![0xffu8; size]);
        // msgpack parser: the whole payload is binary
        let p = Packet::event("/", Value::Bytes(payload.clone()));
        let enc = RequestOut {
            origin: Uid::new(),
            id: None,
            body: RequestOutBody::Broadcast {
                opts: &o,
                packet: &p,
            },
        }
        .encode();
        assert!(enc.len() <= size * 105 / 100 + 64, "{size}: {}", enc.len());
        // common parser: binary attachment next to a JSON text
        let p = Packet::event(
            "/",
            Value::Str(
                Str::from(r#"["e",{"_placeholder":true,"num":0}]"#.to_owned()),
                Some(vec![payload].into()),
            ),
        );
        let enc = RequestOut {
            origin: Uid::new(),
            id: None,
            body: RequestOutBody::Broadcast {
                opts: &o,
                packet: &p,
            },
        }
        .encode();
        assert!(enc.len() <= size * 105 / 100 + 96, "{size}: {}", enc.len());
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let o = opts();
    for p in packets() {
        let full = RequestOut {
            origin: Uid::new(),
            id: Some(Sid::new()),
            body: RequestOutBody::BroadcastWithAck {
                opts: &o,
                packet: &p,
                ack_timeout: Some(Duration::from_secs(1)),
            },
        }
        .encode();
        for cut in 0..full.len() {
            assert!(decode_request(full.slice(..cut)).is_err(), "cut at {cut}");
        }
    }
    let v = Value::Bytes(Bytes::from_static(b"abc"));
    let full = ResponseOut {
        origin: Uid::new(),
        body: ResponseOutBody::Ack {
            sid: Sid::new(),
            result: Ok(&v),
        },
    }
    .encode();
    for cut in 0..full.len() {
        assert!(decode_response(full.slice(..cut)).is_err(), "cut at {cut}");
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let o = opts();
    let p = &packets()[1];
    let full = RequestOut {
        origin: Uid::new(),
        id: None,
        body: RequestOutBody::Broadcast {
            opts: &o,
            packet: p,
        },
    }
    .encode();
    for i in 0..full.len() {
        for x in [0x00u8, 0xff, 0xc1, 0xdd, 0x9f] {
            let mut bad = full.to_vec();
            bad[i] = x;
            let _ = decode_request(Bytes::from(bad)); // must not panic
        }
    }
}

#[test]
fn other_versions_and_unknown_types_are_reported() {
    let mut bytes = RequestOut {
        origin: Uid::new(),
        id: None,
        body: RequestOutBody::Heartbeat,
    }
    .encode()
    .to_vec();
    bytes[1] = 2; // version
    assert_eq!(
        decode_request(Bytes::from(bytes.clone())),
        Err(ProtocolError::UnsupportedVersion { version: 2 })
    );
    bytes[1] = 1;
    bytes[2] = 99; // type
    assert_eq!(
        decode_request(Bytes::from(bytes)),
        Err(ProtocolError::UnknownKind { kind: 99 })
    );
}

#[test]
fn trailing_fields_from_a_newer_minor_revision_are_ignored() {
    let origin = Uid::new();
    let bytes = RequestOut {
        origin,
        id: None,
        body: RequestOutBody::Heartbeat,
    }
    .encode()
    .to_vec();
    // bump the array length from 4 to 6 and append a map and a string
    let mut extended = vec![0x96];
    extended.extend_from_slice(&bytes[1..]);
    extended.extend_from_slice(&[0x81, 0xa1, b'k', 0x01, 0xa2, b'h', b'i']);
    let req = decode_request(Bytes::from(extended)).unwrap();
    assert_eq!(req.body, RequestBody::Heartbeat);
    assert_eq!(req.origin, origin);
}

/// `ack_timeout_ms` is a `uint`: every value the encoder can write must decode, up
/// to the `u64::MAX` it writes for durations too long for milliseconds in a `u64`
/// (`Duration::MAX` included), or every other node would drop the message.
#[test]
fn ack_timeouts_roundtrip_over_the_whole_u64_range() {
    let o = opts();
    let p = Packet::event("/", Value::Str(Str::from("[\"ping\"]"), None));
    let ms = Duration::from_millis;
    for (sent, received) in [
        (ms(0), ms(0)),
        (ms(1), ms(1)),
        (ms(u64::from(u32::MAX)), ms(u64::from(u32::MAX))),
        (ms(i64::MAX as u64), ms(i64::MAX as u64)),
        (ms(i64::MAX as u64 + 1), ms(i64::MAX as u64 + 1)),
        (ms(u64::MAX), ms(u64::MAX)),
        (Duration::MAX, ms(u64::MAX)), // the encoder saturates the milliseconds
    ] {
        let bytes = RequestOut {
            origin: Uid::new(),
            id: Some(Sid::new()),
            body: RequestOutBody::BroadcastWithAck {
                opts: &o,
                packet: &p,
                ack_timeout: Some(sent),
            },
        }
        .encode();
        let req = decode_request(bytes.clone())
            .unwrap_or_else(|e| panic!("ack timeout {sent:?} does not decode: {e}"));
        let RequestBody::BroadcastWithAck { ack_timeout, .. } = req.body else {
            panic!("{sent:?}: decoded as another request: {:?}", req.body);
        };
        assert_eq!(ack_timeout, Some(received), "{sent:?}");
        if received >= ms(i64::MAX as u64 + 1) {
            // The value only fits a uint64, the marker the decoder used to refuse.
            assert_eq!(bytes[bytes.len() - 9], 0xcf, "{sent:?}");
        }
    }
}

// ----- random input -----

/// xorshift64, so the random tests are deterministic without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 24) as u8
    }
    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.byte()).collect()
    }
    fn id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..16).map(|_| char::from(*self.pick(ALPHABET))).collect()
    }
    fn sid(&mut self) -> Sid {
        self.id().parse().expect("a valid id")
    }
    fn uid(&mut self) -> Uid {
        self.id().parse().expect("a valid id")
    }
}

/// Request types and how many fields each has at least.
const REQUEST_KINDS: &[(u8, usize)] = &[
    (0, 6),
    (1, 7),
    (2, 5),
    (3, 5),
    (4, 6),
    (5, 6),
    (6, 5),
    (20, 4),
    (21, 4),
    (22, 4),
    (23, 4),
    (30, 6),
    (31, 5),
];
/// Response types and how many fields each has at least.
const RESPONSE_KINDS: &[(u8, usize)] = &[(0, 6), (1, 4), (2, 4), (3, 4), (4, 4), (5, 5), (6, 4)];

/// A valid header: array of `fields`, version 1, `kind`, an origin, and for a
/// request an id (nil or valid).
fn header(rng: &mut Rng, request: bool, kind: u8, fields: usize) -> Vec<u8> {
    let mut m = vec![0x90 | fields as u8, 0x01, kind, 0xb0];
    m.extend_from_slice(rng.id().as_bytes());
    if request {
        if rng.percent(50) {
            m.push(0xc0);
        } else {
            m.push(0xb0);
            m.extend_from_slice(rng.id().as_bytes());
        }
    }
    m
}

/// A random MessagePack value made of the types the protocol uses, with the
/// markers and lengths the decoder reads, so bodies get past their first field.
fn random_value(rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
    match rng.below(if depth > 3 { 8 } else { 11 }) {
        0 => out.push(0xc0),
        1 => out.push(*rng.pick(&[0xc2, 0xc3])),
        2 => out.push(*rng.pick(&[0x00, 0x01, 0x02, 0x05, 0x07, 0x7f, 0xff, 0xe0])),
        3 => {
            let width = *rng.pick(&[0xccu8, 0xcd, 0xce, 0xcf, 0xd0, 0xd3]);
            out.push(width);
            let n = match width {
                0xcc | 0xd0 => 1,
                0xcd => 2,
                0xce => 4,
                _ => 8,
            };
            out.extend((0..n).map(|_| rng.byte()));
        }
        4 | 5 => {
            // a str: often an id, sometimes anything (including invalid UTF-8)
            let s = match rng.below(3) {
                0 => rng.id().into_bytes(),
                1 => b"/".to_vec(),
                _ => rng.bytes(20),
            };
            out.push(0xa0 | s.len() as u8);
            out.extend_from_slice(&s);
        }
        6 => {
            let b = rng.bytes(8);
            out.extend_from_slice(&[0xc4, b.len() as u8]);
            out.extend_from_slice(&b);
        }
        7 => out.push(rng.byte()),
        _ => {
            // an array, often of the lengths options, packets and values have
            let n = *rng.pick(&[0usize, 1, 2, 3, 5, 5, 5, 6]);
            out.push(0x90 | n as u8);
            for _ in 0..n {
                random_value(rng, depth + 1, out);
            }
        }
    }
}

/// Valid messages of every type, to mutate. Ids come from `rng`, so the pool is the
/// same on every run.
fn valid_messages(rng: &mut Rng) -> Vec<(bool, Bytes)> {
    let mut o = BroadcastOptions::new(rng.sid());
    o.add_flag(BroadcastFlags::Broadcast);
    o.rooms = vec![Cow::Borrowed("a"), Cow::Borrowed("")].into();
    o.except = vec![Cow::Borrowed("b")].into();
    o.server_id = Some(rng.uid());
    let rooms: Vec<Room> = vec![Cow::Borrowed("r1"), Cow::Borrowed("r2")];
    let mut out = Vec::new();
    for p in packets() {
        let bodies = [
            RequestOutBody::Broadcast {
                opts: &o,
                packet: &p,
            },
            RequestOutBody::BroadcastWithAck {
                opts: &o,
                packet: &p,
                ack_timeout: Some(Duration::from_secs(2)),
            },
        ];
        for body in bodies {
            let (origin, id) = (rng.uid(), Some(rng.sid()));
            out.push((true, RequestOut { origin, id, body }.encode()));
        }
    }
    let bodies = [
        RequestOutBody::DisconnectSockets { opts: &o },
        RequestOutBody::AllRooms { opts: &o },
        RequestOutBody::FetchSockets { opts: &o },
        RequestOutBody::AddSockets {
            opts: &o,
            rooms: &rooms,
        },
        RequestOutBody::DelSockets {
            opts: &o,
            rooms: &rooms,
        },
        RequestOutBody::ServerEvent {
            event: "ev",
            data: &[0x81, 0xa1, b'k', 0x01],
        },
        RequestOutBody::CustomRequest { data: &[0x01] },
    ];
    for body in bodies {
        let (origin, id) = (rng.uid(), Some(rng.sid()));
        out.push((true, RequestOut { origin, id, body }.encode()));
    }
    let v = Value::Str(
        Str::from("[1]".to_owned()),
        Some(vec![Bytes::from_static(b"\0\xff")].into()),
    );
    let sockets = vec![RemoteSocketData {
        id: rng.sid(),
        server_id: rng.uid(),
        ns: Str::from("/a"),
    }];
    let nodes = vec![rng.uid(), rng.uid()];
    let bodies = [
        ResponseOutBody::Ack {
            sid: rng.sid(),
            result: Ok(&v),
        },
        ResponseOutBody::Ack {
            sid: rng.sid(),
            result: Err(&[0xa7, b'T']),
        },
        ResponseOutBody::AckCount(3),
        ResponseOutBody::Rooms(&rooms),
        ResponseOutBody::Sockets(&sockets),
        ResponseOutBody::Done(1),
        ResponseOutBody::Reply(Ok(&[1, 2])),
        ResponseOutBody::Reply(Err("no")),
        ResponseOutBody::Nodes(&nodes),
    ];
    for body in bodies {
        out.push((
            false,
            ResponseOut {
                origin: rng.uid(),
                body,
            }
            .encode(),
        ));
    }
    out
}

/// The length of the header of a message from the encoder: array marker, version,
/// type, origin, and for a request its id.
fn header_len(request: bool, m: &[u8]) -> usize {
    let base = 3 + 17;
    match (request, m.get(base)) {
        (true, Some(0xc0)) => base + 1,
        (true, _) => base + 17,
        (false, _) => base,
    }
}

/// Change a few bytes of the body of `m` (after its header): overwrite, insert,
/// delete, truncate, or append trailing fields.
fn mutate_body(rng: &mut Rng, request: bool, m: &Bytes) -> Vec<u8> {
    let start = header_len(request, m);
    let mut m = m.to_vec();
    for _ in 0..1 + rng.below(3) {
        let i = start + rng.below(m.len() - start + 1);
        match rng.below(5) {
            0 | 1 if i < m.len() => m[i] = rng.byte(),
            2 => m.insert(i, rng.byte()),
            3 if i < m.len() => drop(m.remove(i)),
            4 => m.truncate(i),
            _ => m.push(rng.byte()),
        }
    }
    m
}

/// The field an error is about (`None` for errors about no field in particular).
fn field_of(e: &ProtocolError) -> Option<&'static str> {
    match e {
        ProtocolError::Truncated { what }
        | ProtocolError::Unexpected { what, .. }
        | ProtocolError::LengthTooLarge { what, .. }
        | ProtocolError::OutOfRange { what }
        | ProtocolError::InvalidUtf8 { what }
        | ProtocolError::InvalidId { what }
        | ProtocolError::InvalidTag { what, .. } => Some(what),
        _ => None,
    }
}

/// The errors the header alone can cause; any other outcome means the decoder got
/// to the body of the message.
fn is_header_error(e: &ProtocolError) -> bool {
    matches!(
        e,
        ProtocolError::UnsupportedVersion { .. } | ProtocolError::UnknownKind { .. }
    ) || matches!(
        field_of(e),
        // "request" / "response" also cover too few fields for the type
        Some(
            "request"
                | "response"
                | "protocol version"
                | "request type"
                | "response type"
                | "request origin"
                | "response origin"
                | "request id"
        )
    )
}

/// Random and mutated input never panics, and most of it reaches the bodies of the
/// messages: a generator whose inputs all die at the version byte or the origin
/// would test nothing, so the test counts where decoding stopped and fails if too
/// little got past the header.
#[test]
fn random_bytes_never_panic() {
    const INPUTS: usize = 20_000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pool = valid_messages(&mut rng);
    let (mut past_header, mut decoded) = (0usize, 0usize);
    let mut stopped_at = std::collections::BTreeSet::new();
    for _ in 0..INPUTS {
        let request = rng.percent(60);
        let (buf, request) = match rng.below(10) {
            // 10%: anything, framed as an array (the old test)
            0 => {
                let mut b = rng.bytes(64);
                if let Some(first) = b.first_mut() {
                    *first = 0x90 | (*first & 0x0f);
                }
                (b, request)
            }
            // 30%: a valid header, then random bytes
            1..=3 => {
                let kinds = if request {
                    REQUEST_KINDS
                } else {
                    RESPONSE_KINDS
                };
                let &(kind, min) = rng.pick(kinds);
                let fields = min + rng.below(2);
                let mut b = header(&mut rng, request, kind, fields);
                b.extend(rng.bytes(48));
                (b, request)
            }
            // 30%: a valid header, then random values of the protocol's types
            4..=6 => {
                let kinds = if request {
                    REQUEST_KINDS
                } else {
                    RESPONSE_KINDS
                };
                let &(kind, min) = rng.pick(kinds);
                let fields = min + rng.below(2);
                let mut b = header(&mut rng, request, kind, fields);
                let header_fields = if request { 4 } else { 3 };
                for _ in header_fields..fields {
                    random_value(&mut rng, 0, &mut b);
                }
                (b, request)
            }
            // 30%: a valid message with a few body bytes changed
            _ => {
                let (request, m) = rng.pick(&pool);
                (mutate_body(&mut rng, *request, m), *request)
            }
        };
        let b = Bytes::from(buf);
        // Both decoders see every input (the same bytes can arrive on any subject);
        // the one matching the generated kind is the one counted.
        let (req, resp) = (decode_request(b.clone()), decode_response(b));
        let outcome = if request {
            req.map(drop)
        } else {
            resp.map(drop)
        };
        match outcome {
            Ok(()) => {
                decoded += 1;
                past_header += 1;
            }
            Err(e) if !is_header_error(&e) => {
                past_header += 1;
                // The field and the kind of error, without the values found.
                let variant = format!("{e:?}");
                let variant = variant.split(' ').next().unwrap_or("").to_owned();
                stopped_at.insert((field_of(&e), variant));
            }
            Err(_) => {}
        }
    }
    println!(
        "{INPUTS} inputs: {past_header} past the header, {decoded} decoded, {} distinct (field, error) pairs in bodies",
        stopped_at.len()
    );
    assert!(
        past_header * 100 >= INPUTS * 75,
        "only {past_header} of {INPUTS} inputs got past the header"
    );
    assert!(
        decoded * 100 >= INPUTS * 10,
        "only {decoded} of {INPUTS} inputs decoded"
    );
    // Errors of many kinds in many fields: the bodies are explored, not just entered.
    assert!(
        stopped_at.len() >= 60,
        "only {} distinct body errors: {stopped_at:#?}",
        stopped_at.len()
    );
}
