//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/`:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_corpus
//! ```
//!
//! Seeds are built with the real encoder so that every message type, both parsers'
//! payload shapes and every optional field start out valid: the fuzzer then spends
//! its time mutating deep fields instead of rediscovering the framing. Ids are
//! fixed so that regenerating gives byte-identical files.
//!
//! The structured target's inputs are not messages but the entropy its generator
//! draws from; its seeds are xorshift output, one per message type it can build
//! (found by running the generator as the target does), so every type is in the
//! corpus from the first run.

use std::{borrow::Cow, collections::VecDeque, fs, io, path::Path, str::FromStr, time::Duration};

use arbitrary::Unstructured;
use bytes::Bytes;
use nats_harness::hostile::hostile_message;
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, RemoteSocketData, Room},
    packet::{Packet, PacketData},
};
use socketioxide_nats_protocol::message::{
    RequestOut, RequestOutBody, ResponseOut, ResponseOutBody, decode_request, decode_response,
};

#[path = "../common/targets.rs"]
mod targets;

fn main() -> io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");

    let decode = root.join("decode");
    reset(&decode)?;
    let mut n = 0;
    for (name, bytes) in requests() {
        assert!(decode_request(bytes.clone()).is_ok(), "{name} must decode");
        fs::write(decode.join(name), &bytes)?;
        n += 1;
    }
    for (name, bytes) in responses() {
        assert!(decode_response(bytes.clone()).is_ok(), "{name} must decode");
        fs::write(decode.join(name), &bytes)?;
        n += 1;
    }
    for (name, bytes) in edge_cases() {
        fs::write(decode.join(name), bytes)?;
        n += 1;
    }
    println!("{n} seeds in {}", decode.display());

    let tokens = root.join("subject_token");
    reset(&tokens)?;
    let long = "é/".repeat(150);
    let names = [
        ("empty", ""),
        ("root", "/"),
        ("chat", "/chat.v2"),
        ("star", "*"),
        ("gt", ">"),
        ("dot", "a.b"),
        ("space", "a b"),
        ("crlf", "a\r\nb"),
        ("sys", "$SYS"),
        ("sys-all", "$SYS.>"),
        ("underscore", "_"),
        ("escape-lookalike", "_5F"),
        ("hash-lookalike", "_h00"),
        ("emoji", "/😀"),
        ("cjk", "日本語"),
        ("at-limit", &"a".repeat(200)),
        ("over-limit", &"a".repeat(201)),
        ("long", &long),
    ];
    for (name, text) in names {
        fs::write(tokens.join(name), text)?;
    }
    println!("{} seeds in {}", names.len(), tokens.display());

    let structured = root.join("structured");
    reset(&structured)?;
    let seeds = structured_seeds();
    for (what, seed) in &seeds {
        fs::write(structured.join(what.replace(':', "-")), seed)?;
    }
    println!("{} seeds in {}", seeds.len(), structured.display());
    Ok(())
}

/// One 1 KiB input per message type the structured target can build: the first
/// xorshift output, from a fixed start, that makes it build that type.
fn structured_seeds() -> std::collections::BTreeMap<&'static str, Vec<u8>> {
    const TYPES: usize = 20; // 13 requests, 7 responses
    let targets = targets::targets();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut seeds = std::collections::BTreeMap::new();
    for _ in 0..100_000 {
        let seed: Vec<u8> = (0..1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        // The same steps as fuzz_targets/structured.rs.
        let mut u = Unstructured::new(&seed);
        let Ok(target) = u.choose(&targets) else {
            continue;
        };
        if let Ok(m) = hostile_message(&mut u, target) {
            seeds.entry(m.what).or_insert(seed);
        }
        if seeds.len() == TYPES {
            return seeds;
        }
    }
    panic!(
        "only {} message types found: {:?}",
        seeds.len(),
        seeds.keys()
    );
}

/// Start from an empty directory so seeds that are no longer generated disappear.
fn reset(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::create_dir_all(dir)
}

fn sid(s: &str) -> Sid {
    Sid::from_str(s).expect("16 url-safe base64 characters")
}

fn uid(s: &str) -> Uid {
    Uid::from_str(s).expect("16 url-safe base64 characters")
}

fn node_a() -> Uid {
    uid("NodeA00000000000")
}

fn req_id() -> Option<Sid> {
    Some(sid("Req0000000000001"))
}

fn text(s: &str) -> Str {
    Str::from(s.to_owned())
}

/// Options with every field set, including a flag bit nodes never send (local).
fn full_opts() -> BroadcastOptions {
    let mut o = BroadcastOptions::new(sid("Sock000000000001"));
    o.add_flag(BroadcastFlags::Broadcast);
    o.add_flag(BroadcastFlags::Volatile);
    o.add_flag(BroadcastFlags::Local);
    o.rooms = vec![
        Cow::Borrowed("room1"),
        Cow::Borrowed("a.b"),
        Cow::Borrowed(""),
    ]
    .into();
    o.except = vec![Cow::Borrowed("😀")].into();
    o.server_id = Some(uid("NodeB00000000000"));
    o
}

/// `io.emit(...)`: broadcast flag only, as PROTOCOL.md's examples.
fn every_socket() -> BroadcastOptions {
    let mut o = BroadcastOptions::default();
    o.add_flag(BroadcastFlags::Broadcast);
    o
}

fn packets() -> Vec<(&'static str, Packet)> {
    let bins: VecDeque<Bytes> = vec![Bytes::from_static(&[1, 2, 3]), Bytes::new()].into();
    vec![
        (
            "event-common",
            Packet::event("/", Value::Str(text(r#"["hello","world"]"#), None)),
        ),
        (
            "event-common-binary",
            Packet {
                ns: Str::from("/chat"),
                inner: PacketData::BinaryEvent(
                    Value::Str(
                        text(
                            r#"["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                        ),
                        Some(bins),
                    ),
                    None,
                ),
            },
        ),
        (
            // `["ev", 1, <bin 00 ff>]` written by the msgpack parser.
            "event-msgpack",
            Packet::event(
                "/",
                Value::Bytes(Bytes::from_static(&[
                    0x93, 0xa2, b'e', b'v', 0x01, 0xc4, 0x02, 0x00, 0xff,
                ])),
            ),
        ),
        (
            "event-with-ack-id",
            Packet {
                ns: Str::from("/x"),
                inner: PacketData::Event(Value::Str(text("[]"), None), Some(-5)),
            },
        ),
        ("ack", Packet::ack("/", Value::Str(text("[1]"), None), 42)),
        (
            "binary-ack",
            Packet {
                ns: Str::from("/"),
                inner: PacketData::BinaryAck(Value::Bytes(Bytes::from_static(&[0x91, 0x01])), 7),
            },
        ),
        ("connect", Packet::connect("/", None)),
        (
            "connect-with-data",
            Packet::connect("/", Some(Value::Str(text(r#"{"token":"x"}"#), None))),
        ),
        ("disconnect", Packet::disconnect("/")),
        ("connect-error", Packet::connect_error("/", "nope")),
    ]
}

fn requests() -> Vec<(String, Bytes)> {
    let full = full_opts();
    let every = every_socket();
    let rooms: Vec<Room> = vec![Cow::Borrowed("r1"), Cow::Borrowed("$SYS.>")];
    let mut out = Vec::new();
    let mut push = |name: String, id: Option<Sid>, body: RequestOutBody<'_>| {
        let origin = node_a();
        out.push((
            format!("req-{name}"),
            RequestOut { origin, id, body }.encode(),
        ));
    };
    for (pname, packet) in packets() {
        push(
            format!("broadcast-{pname}"),
            None,
            RequestOutBody::Broadcast {
                opts: &every,
                packet: &packet,
            },
        );
    }
    let packet = Packet::event("/", Value::Str(text(r#"["ping"]"#), None));
    push(
        "broadcast-full-opts".into(),
        None,
        RequestOutBody::Broadcast {
            opts: &full,
            packet: &packet,
        },
    );
    push(
        "broadcast-with-ack-timeout".into(),
        req_id(),
        RequestOutBody::BroadcastWithAck {
            opts: &full,
            packet: &packet,
            ack_timeout: Some(Duration::from_secs(2)),
        },
    );
    push(
        "broadcast-with-ack-default-timeout".into(),
        req_id(),
        RequestOutBody::BroadcastWithAck {
            opts: &every,
            packet: &packet,
            ack_timeout: None,
        },
    );
    push(
        "disconnect-sockets".into(),
        req_id(),
        RequestOutBody::DisconnectSockets { opts: &full },
    );
    push(
        "all-rooms".into(),
        req_id(),
        RequestOutBody::AllRooms { opts: &every },
    );
    push(
        "add-sockets".into(),
        req_id(),
        RequestOutBody::AddSockets {
            opts: &full,
            rooms: &rooms,
        },
    );
    push(
        "del-sockets".into(),
        None,
        RequestOutBody::DelSockets {
            opts: &every,
            rooms: &rooms,
        },
    );
    push(
        "fetch-sockets".into(),
        req_id(),
        RequestOutBody::FetchSockets { opts: &every },
    );
    push("heartbeat".into(), None, RequestOutBody::Heartbeat);
    push("hello".into(), None, RequestOutBody::Hello);
    push("goodbye".into(), None, RequestOutBody::Goodbye);
    push("discover".into(), req_id(), RequestOutBody::Discover);
    push(
        "server-event".into(),
        req_id(),
        RequestOutBody::ServerEvent {
            event: "job",
            // {"id": 1}
            data: &[0x81, 0xa2, b'i', b'd', 0x01],
        },
    );
    push(
        "custom-request".into(),
        req_id(),
        RequestOutBody::CustomRequest {
            data: &[0x92, 0xc0, 0xc3],
        },
    );
    out
}

fn responses() -> Vec<(String, Bytes)> {
    let common = Value::Str(
        text("[1]"),
        Some(vec![Bytes::from_static(b"\0\xff")].into()),
    );
    let msgpack = Value::Bytes(Bytes::from_static(&[0x91, 0x01]));
    let rooms: Vec<Room> = vec![Cow::Borrowed("room1"), Cow::Borrowed("")];
    let sockets = vec![RemoteSocketData {
        id: sid("Sock000000000001"),
        server_id: uid("NodeB00000000000"),
        ns: Str::from("/"),
    }];
    let nodes = vec![node_a(), uid("NodeC00000000000")];
    let socket = sid("Sock000000000001");
    let bodies = [
        (
            "ack-common",
            ResponseOutBody::Ack {
                sid: socket,
                result: Ok(&common),
            },
        ),
        (
            "ack-msgpack",
            ResponseOutBody::Ack {
                sid: socket,
                result: Ok(&msgpack),
            },
        ),
        (
            // rmp-serde's encoding of AckError::Timeout.
            "ack-error",
            ResponseOutBody::Ack {
                sid: socket,
                result: Err(b"\xa7Timeout"),
            },
        ),
        ("ack-count", ResponseOutBody::AckCount(3)),
        ("rooms", ResponseOutBody::Rooms(&rooms)),
        ("sockets", ResponseOutBody::Sockets(&sockets)),
        ("done", ResponseOutBody::Done(70_000)),
        (
            "reply-ok",
            ResponseOutBody::Reply(Ok(&[0x81, 0xa1, b'k', 0x01])),
        ),
        ("reply-error", ResponseOutBody::Reply(Err("no hook"))),
        ("nodes", ResponseOutBody::Nodes(&nodes)),
    ];
    bodies
        .into_iter()
        .map(|(name, body)| {
            let origin = uid("NodeB00000000000");
            (
                format!("resp-{name}"),
                ResponseOut { origin, body }.encode(),
            )
        })
        .collect()
}

/// Hand-made malformed inputs, each aimed at one check of the reader.
fn edge_cases() -> Vec<(&'static str, Vec<u8>)> {
    let heartbeat = RequestOut {
        origin: node_a(),
        id: None,
        body: RequestOutBody::Heartbeat,
    }
    .encode()
    .to_vec();
    let broadcast = requests()
        .into_iter()
        .find(|(name, _)| name == "req-broadcast-event-common-binary")
        .map(|(_, b)| b.to_vec())
        .unwrap_or_default();
    // `[1, 20, origin, nil]` with the array header replaced by the caller.
    let body = &heartbeat[1..];
    let with_header = |header: &[u8], tail: &[u8]| [header, body, tail].concat();

    let mut wrong_version = heartbeat.clone();
    wrong_version[1] = 2;
    let mut unknown_kind = heartbeat.clone();
    unknown_kind[2] = 99;
    // version 1 as a uint64, then the rest as is: readers accept any width.
    let wide_version = [&[0x94, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1][..], &heartbeat[2..]].concat();

    vec![
        ("edge-empty", vec![]),
        ("edge-truncated-header", heartbeat[..5].to_vec()),
        (
            "edge-truncated-broadcast",
            broadcast[..broadcast.len() / 2].to_vec(),
        ),
        ("edge-wrong-version", wrong_version),
        ("edge-unknown-kind", unknown_kind),
        ("edge-wide-version", wide_version),
        // Trailing fields from a newer minor revision: a map, a str, ext types.
        (
            "edge-trailing-fields",
            with_header(
                &[0x98],
                &[
                    0x81, 0xa1, b'k', 0x01, 0xa2, b'h', b'i', 0xd4, 0x01, 0x02, 0xc7, 0x01, 0x05,
                    0xff,
                ],
            ),
        ),
        // Array32 claiming 4 billion elements in a tiny message.
        ("edge-huge-array", vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
        // A CustomRequest (no id) whose bin32 claims 2 GiB.
        (
            "edge-huge-bin",
            [
                &[0x95, 0x01, 0x1f][..],
                &heartbeat[3..20],
                &[0xc0, 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00],
            ]
            .concat(),
        ),
        // A ServerEvent (no id) whose str32 name claims 2 GiB.
        (
            "edge-huge-str",
            [
                &[0x96, 0x01, 0x1e][..],
                &heartbeat[3..20],
                &[0xc0, 0xdb, 0x7f, 0xff, 0xff, 0xff, b'x'],
            ]
            .concat(),
        ),
        // A Rooms response whose room list claims 65 535 entries.
        (
            "edge-huge-rooms",
            [
                &[0x94, 0x01, 0x02][..],
                &heartbeat[3..20],
                &[0xdc, 0xff, 0xff, 0xa1, b'r'],
            ]
            .concat(),
        ),
        // A trailing field nested 100 arrays deep (the reader stops at 32).
        ("edge-deep-nesting", with_header(&[0x95], &[0x91; 100])),
        // A trailing map16 claiming 65 535 pairs.
        (
            "edge-huge-map",
            with_header(&[0x95], &[0xde, 0xff, 0xff, 0x01, 0x02]),
        ),
        // Done with a count over u32::MAX, and with a negative count.
        (
            "edge-count-out-of-range",
            [
                &[0x94, 0x01, 0x04][..],
                &heartbeat[3..20],
                &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
            ]
            .concat(),
        ),
        (
            "edge-negative-count",
            [&[0x94, 0x01, 0x01][..], &heartbeat[3..20], &[0xff]].concat(),
        ),
        // An origin that is not a socketioxide id, and one that is not UTF-8.
        (
            "edge-bad-origin",
            [&[0x94, 0x01, 0x14, 0xa3][..], b"a.b", &[0xc0]].concat(),
        ),
        (
            "edge-origin-not-utf8",
            [&[0x94, 0x01, 0x14, 0xb0][..], &[0xff; 16], &[0xc0]].concat(),
        ),
    ]
}
