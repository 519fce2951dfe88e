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

#[test]
fn random_bytes_never_panic() {
    // xorshift, so the test is deterministic without a dependency
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let len = (s % 64) as usize;
        let mut buf = Vec::with_capacity(len);
        let mut x = s;
        for _ in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            buf.push((x >> 56) as u8);
        }
        if !buf.is_empty() {
            buf[0] = 0x90 | (buf[0] & 0x0f);
        }
        let b = Bytes::from(buf);
        let _ = decode_request(b.clone());
        let _ = decode_response(b);
    }
}
