//! The protocol test vectors shared with the emitters of other languages
//! (`vectors/protocol-v1.json`): every message type, encoded by this crate.
//!
//! This test builds each message, encodes it, and checks the file against it
//! byte for byte and field by field, and that the file's bytes decode back into
//! the same message: the vectors cannot drift from the code. The Node.js and
//! Python suites decode and encode the same file. To write the file after a
//! deliberate change: `UPDATE_VECTORS=1 cargo test -p socketioxide-nats-protocol --test vectors`.

use std::{borrow::Cow, collections::VecDeque, str::FromStr, time::Duration};

use bytes::Bytes;
use serde_json::{Value as Json, json};
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, RemoteSocketData},
    packet::{Packet, PacketData},
};
use socketioxide_nats_protocol::message::*;

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/protocol-v1.json"
);

const A: &str = "NodeA00000000000";
const B: &str = "NodeB00000000000";
const C: &str = "NodeC00000000000";
const REQ: &str = "Req0000000000001";
const S1: &str = "Sock000000000001";
const S2: &str = "Sock-00000000_02";

fn uid(s: &str) -> Uid {
    Uid::from_str(s).unwrap()
}
fn sid(s: &str) -> Sid {
    Sid::from_str(s).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ===== messages as JSON: the language-neutral view the other suites read =====

fn opt_str(s: Option<&str>) -> Json {
    s.map_or(Json::Null, |s| json!(s))
}

fn opts_json(o: &BroadcastOptions) -> Json {
    json!({
        "flags": o.flags(),
        "rooms": o.rooms.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
        "except": o.except.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
        "sid": opt_str(o.sid.as_ref().map(Sid::as_str)),
        "server_id": opt_str(o.server_id.as_ref().map(|u| u.as_str())),
    })
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Str(text, bins) => json!({
            "kind": 0,
            "text": text.as_str(),
            "attachments": bins.as_ref().map(|b| b.iter().map(|b| hex(b)).collect::<Vec<_>>()),
        }),
        Value::Bytes(b) => json!({ "kind": 1, "bytes": hex(b) }),
    }
}

fn packet_json(p: &Packet) -> Json {
    let (kind, data, ack, error): (u8, Option<&Value>, Option<i64>, Option<&str>) = match &p.inner {
        PacketData::Connect(v) => (0, v.as_ref(), None, None),
        PacketData::Disconnect => (1, None, None, None),
        PacketData::Event(v, ack) => (2, Some(v), *ack, None),
        PacketData::EventAck(v, ack) => (3, Some(v), Some(*ack), None),
        PacketData::ConnectError(e) => (4, None, None, Some(e)),
        PacketData::BinaryEvent(v, ack) => (5, Some(v), *ack, None),
        PacketData::BinaryAck(v, ack) => (6, Some(v), Some(*ack), None),
    };
    json!({
        "ns": p.ns.as_str(),
        "type": kind,
        "data": data.map_or(Json::Null, value_json),
        "ack": ack,
        "error": error,
    })
}

fn request_json(r: &RequestIn) -> Json {
    use RequestBody as B;
    let mut m = json!({
        "origin": r.origin.as_str(),
        "id": opt_str(r.id.as_ref().map(Sid::as_str)),
    });
    let (kind, fields) = match &r.body {
        B::Broadcast { opts, packet } => (
            RequestKind::Broadcast,
            json!({ "opts": opts_json(opts), "packet": packet_json(packet) }),
        ),
        B::BroadcastWithAck {
            opts,
            packet,
            ack_timeout,
        } => (
            RequestKind::BroadcastWithAck,
            json!({
                "opts": opts_json(opts),
                "packet": packet_json(packet),
                "ack_timeout_ms": ack_timeout.map(|t| t.as_millis() as u64),
            }),
        ),
        B::DisconnectSockets { opts } => (
            RequestKind::DisconnectSockets,
            json!({ "opts": opts_json(opts) }),
        ),
        B::AllRooms { opts } => (RequestKind::AllRooms, json!({ "opts": opts_json(opts) })),
        B::AddSockets { opts, rooms } | B::DelSockets { opts, rooms } => (
            if matches!(r.body, B::AddSockets { .. }) {
                RequestKind::AddSockets
            } else {
                RequestKind::DelSockets
            },
            json!({
                "opts": opts_json(opts),
                "rooms": rooms.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
            }),
        ),
        B::FetchSockets { opts } => (
            RequestKind::FetchSockets,
            json!({ "opts": opts_json(opts) }),
        ),
        B::Heartbeat => (RequestKind::Heartbeat, json!({})),
        B::Hello => (RequestKind::Hello, json!({})),
        B::Goodbye => (RequestKind::Goodbye, json!({})),
        B::Discover => (RequestKind::Discover, json!({})),
        B::ServerEvent { event, data } => (
            RequestKind::ServerEvent,
            json!({ "event": event, "data": hex(data) }),
        ),
        B::CustomRequest { data } => (RequestKind::CustomRequest, json!({ "data": hex(data) })),
        other => panic!("a request type the vectors do not cover: {other:?}"),
    };
    m["type"] = json!(kind as u8);
    merge(&mut m, fields);
    m
}

fn response_json(r: &ResponseIn) -> Json {
    use ResponseBody as B;
    let mut m = json!({ "origin": r.origin.as_str() });
    let (kind, fields) = match &r.body {
        B::Ack { sid, result } => (
            ResponseKind::Ack,
            match result {
                Ok(v) => json!({ "sid": sid.as_str(), "ok": true, "value": value_json(v) }),
                Err(e) => json!({ "sid": sid.as_str(), "ok": false, "error": hex(e) }),
            },
        ),
        B::AckCount(n) => (ResponseKind::AckCount, json!({ "count": n })),
        B::Rooms(rooms) => (
            ResponseKind::Rooms,
            json!({ "rooms": rooms.iter().map(|r| r.as_ref()).collect::<Vec<_>>() }),
        ),
        B::Sockets(sockets) => (
            ResponseKind::Sockets,
            json!({ "sockets": sockets.iter().map(|s| json!({
                "id": s.id.as_str(), "server_id": s.server_id.as_str(), "ns": s.ns.as_str(),
            })).collect::<Vec<_>>() }),
        ),
        B::Done(n) => (ResponseKind::Done, json!({ "count": n })),
        B::Reply(Ok(d)) => (ResponseKind::Reply, json!({ "ok": true, "data": hex(d) })),
        B::Reply(Err(reason)) => (
            ResponseKind::Reply,
            json!({ "ok": false, "reason": reason }),
        ),
        B::Nodes(nodes) => (
            ResponseKind::Nodes,
            json!({ "nodes": nodes.iter().map(|n| n.as_str()).collect::<Vec<_>>() }),
        ),
        other => panic!("a response type the vectors do not cover: {other:?}"),
    };
    m["type"] = json!(kind as u8);
    merge(&mut m, fields);
    m
}

fn merge(into: &mut Json, from: Json) {
    if let (Json::Object(into), Json::Object(from)) = (into, from) {
        into.extend(from);
    }
}

// ===== the messages =====

fn opts(flags: &[BroadcastFlags], rooms: &[&str], except: &[&str]) -> BroadcastOptions {
    let mut o = BroadcastOptions::default();
    for f in flags {
        o.add_flag(*f);
    }
    o.rooms = rooms.iter().map(|r| Cow::Owned(r.to_string())).collect();
    o.except = except.iter().map(|r| Cow::Owned(r.to_string())).collect();
    o
}

fn text(t: &str) -> Value {
    Value::Str(Str::from(t.to_owned()), None)
}

fn requests() -> Vec<(&'static str, Bytes)> {
    use BroadcastFlags::{Broadcast, Volatile};
    let everyone = opts(&[Broadcast], &[], &[]);
    let hello_world = Packet::event("/", text(r#"["hello","world"]"#));
    let mut binary = Packet::event(
        "/chat",
        Value::Str(
            Str::from(r#"["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            Some(VecDeque::from([
                Bytes::from_static(&[1, 2, 3]),
                Bytes::from(vec![0xffu8; 300]),
            ])),
        ),
    );
    if let PacketData::Event(v, ack) = binary.inner {
        binary.inner = PacketData::BinaryEvent(v, ack);
    }
    // ["news", "hi", 1] as the msgpack parser writes it
    let msgpack = Packet::event(
        "/",
        Value::Bytes(Bytes::from_static(&[
            0x93, 0xa4, b'n', b'e', b'w', b's', 0xa2, b'h', b'i', 0x01,
        ])),
    );
    let unicode = Packet::event("/", text(r#"["é😀",{"k":"日本語"}]"#));
    let long_text = Packet::event("/", text(&format!(r#"["long","{}"]"#, "x".repeat(300))));
    let mut to_socket = BroadcastOptions::new(sid(S1));
    to_socket.server_id = Some(uid(B));
    let room_opts = opts(&[Broadcast], &["room1", "room2"], &["muted"]);
    let volatile = opts(&[Broadcast, Volatile], &["", "*", "a.b"], &[]);
    let mut sender_excluded = opts(&[Broadcast], &["lobby"], &[]);
    sender_excluded.sid = Some(sid(S2));
    let many_rooms: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let many: Vec<&str> = many_rooms.iter().map(String::as_str).collect();
    let many_opts = opts(&[Broadcast], &many, &[]);

    let req = |origin: &str, id: Option<&str>, body: RequestOutBody<'_>| {
        RequestOut {
            origin: uid(origin),
            id: id.map(sid),
            body,
        }
        .encode()
    };
    let ping = Packet::event("/", text(r#"["ping"]"#));
    let join_rooms = [Cow::Borrowed("vip"), Cow::Borrowed("room 2")];
    let server_data = [0x81, 0xa3, b'k', b'e', b'y', 0xa1, b'a'];
    vec![
        (
            "broadcast",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &room_opts,
                    packet: &hello_world,
                },
            ),
        ),
        (
            "broadcast-binary",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &everyone,
                    packet: &binary,
                },
            ),
        ),
        (
            "broadcast-msgpack",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &everyone,
                    packet: &msgpack,
                },
            ),
        ),
        (
            "broadcast-volatile-hostile-rooms",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &volatile,
                    packet: &unicode,
                },
            ),
        ),
        (
            "broadcast-except-sender",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &sender_excluded,
                    packet: &hello_world,
                },
            ),
        ),
        (
            "broadcast-to-one-socket",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &to_socket,
                    packet: &hello_world,
                },
            ),
        ),
        (
            "broadcast-16-bit-lengths",
            req(
                A,
                None,
                RequestOutBody::Broadcast {
                    opts: &many_opts,
                    packet: &long_text,
                },
            ),
        ),
        (
            "broadcast-with-ack",
            req(
                A,
                Some(REQ),
                RequestOutBody::BroadcastWithAck {
                    opts: &everyone,
                    packet: &ping,
                    ack_timeout: Some(Duration::from_millis(2000)),
                },
            ),
        ),
        (
            "broadcast-with-ack-default-timeout",
            req(
                A,
                Some(REQ),
                RequestOutBody::BroadcastWithAck {
                    opts: &room_opts,
                    packet: &ping,
                    ack_timeout: None,
                },
            ),
        ),
        (
            "broadcast-with-ack-32-bit-timeout",
            req(
                A,
                Some(REQ),
                RequestOutBody::BroadcastWithAck {
                    opts: &everyone,
                    packet: &ping,
                    ack_timeout: Some(Duration::from_millis(4_000_000_000)),
                },
            ),
        ),
        (
            "disconnect-sockets",
            req(
                A,
                None,
                RequestOutBody::DisconnectSockets { opts: &room_opts },
            ),
        ),
        (
            "all-rooms",
            req(A, Some(REQ), RequestOutBody::AllRooms { opts: &everyone }),
        ),
        (
            "add-sockets",
            req(
                A,
                None,
                RequestOutBody::AddSockets {
                    opts: &room_opts,
                    rooms: &join_rooms,
                },
            ),
        ),
        (
            "add-sockets-to-one-socket",
            req(
                A,
                Some(REQ),
                RequestOutBody::AddSockets {
                    opts: &to_socket,
                    rooms: &join_rooms,
                },
            ),
        ),
        (
            "del-sockets",
            req(
                A,
                None,
                RequestOutBody::DelSockets {
                    opts: &everyone,
                    rooms: &join_rooms,
                },
            ),
        ),
        (
            "fetch-sockets",
            req(
                A,
                Some(REQ),
                RequestOutBody::FetchSockets { opts: &everyone },
            ),
        ),
        ("heartbeat", req(A, None, RequestOutBody::Heartbeat)),
        ("hello", req(A, Some(REQ), RequestOutBody::Hello)),
        ("goodbye", req(A, None, RequestOutBody::Goodbye)),
        ("discover", req(A, Some(REQ), RequestOutBody::Discover)),
        (
            "server-event",
            req(
                A,
                None,
                RequestOutBody::ServerEvent {
                    event: "reload",
                    data: &server_data,
                },
            ),
        ),
        (
            "server-event-with-ack",
            req(
                A,
                Some(REQ),
                RequestOutBody::ServerEvent {
                    event: "reload",
                    data: &server_data,
                },
            ),
        ),
        (
            "custom-request",
            req(
                A,
                Some(REQ),
                RequestOutBody::CustomRequest { data: &server_data },
            ),
        ),
    ]
}

fn responses() -> Vec<(&'static str, Bytes)> {
    let res = |body: ResponseOutBody<'_>| {
        ResponseOut {
            origin: uid(B),
            body,
        }
        .encode()
    };
    let pong = text(r#"["pong"]"#);
    let bin_ack = Value::Str(
        Str::from(r#"[{"_placeholder":true,"num":0}]"#),
        Some(VecDeque::from([Bytes::from_static(b"\x00\x01")])),
    );
    let msgpack_ack = Value::Bytes(Bytes::from_static(&[0x91, 0xa2, b'o', b'k']));
    let timeout = [0xa7, b'T', b'i', b'm', b'e', b'o', b'u', b't'];
    let closed = [
        0x81, 0xa6, b'S', b'o', b'c', b'k', b'e', b't', 0xa6, b'C', b'l', b'o', b's', b'e', b'd',
    ];
    let rooms = [
        Cow::Borrowed("room1"),
        Cow::Borrowed(""),
        Cow::Borrowed("é"),
    ];
    let sockets = [
        RemoteSocketData {
            id: sid(S1),
            server_id: uid(B),
            ns: Str::from("/"),
        },
        RemoteSocketData {
            id: sid(S2),
            server_id: uid(B),
            ns: Str::from("/"),
        },
    ];
    let data = [0x92, 0x01, 0xc3];
    vec![
        (
            "ack",
            res(ResponseOutBody::Ack {
                sid: sid(S1),
                result: Ok(&pong),
            }),
        ),
        (
            "ack-binary",
            res(ResponseOutBody::Ack {
                sid: sid(S1),
                result: Ok(&bin_ack),
            }),
        ),
        (
            "ack-msgpack",
            res(ResponseOutBody::Ack {
                sid: sid(S1),
                result: Ok(&msgpack_ack),
            }),
        ),
        (
            "ack-error-timeout",
            res(ResponseOutBody::Ack {
                sid: sid(S1),
                result: Err(&timeout),
            }),
        ),
        (
            "ack-error-socket-closed",
            res(ResponseOutBody::Ack {
                sid: sid(S2),
                result: Err(&closed),
            }),
        ),
        ("ack-count", res(ResponseOutBody::AckCount(3))),
        ("ack-count-zero", res(ResponseOutBody::AckCount(0))),
        ("ack-count-large", res(ResponseOutBody::AckCount(70_000))),
        ("rooms", res(ResponseOutBody::Rooms(&rooms))),
        ("rooms-empty", res(ResponseOutBody::Rooms(&[]))),
        ("sockets", res(ResponseOutBody::Sockets(&sockets))),
        ("done", res(ResponseOutBody::Done(2))),
        ("reply-ok", res(ResponseOutBody::Reply(Ok(&data)))),
        (
            "reply-error",
            res(ResponseOutBody::Reply(Err(
                "no custom hook is set on this node",
            ))),
        ),
        ("nodes", res(ResponseOutBody::Nodes(&[uid(A), uid(C)]))),
        ("nodes-none", res(ResponseOutBody::Nodes(&[]))),
    ]
}

fn build() -> Json {
    let requests: Vec<Json> = requests()
        .into_iter()
        .map(|(name, bytes)| {
            let msg = decode_request(bytes.clone()).expect("a request this crate encoded decodes");
            json!({ "name": name, "hex": hex(&bytes), "message": request_json(&msg) })
        })
        .collect();
    let responses: Vec<Json> = responses()
        .into_iter()
        .map(|(name, bytes)| {
            let msg =
                decode_response(bytes.clone()).expect("a response this crate encoded decodes");
            json!({ "name": name, "hex": hex(&bytes), "message": response_json(&msg) })
        })
        .collect();
    json!({
        "protocol_version": VERSION,
        "about": "socketioxide-nats wire protocol test vectors (PROTOCOL.md). Each entry: the message as \
                  hex bytes and as fields; binary data (bin) is hex. Generated and checked by \
                  crates/socketioxide-nats-protocol/tests/vectors.rs; see vectors/README.md.",
        "requests": requests,
        "responses": responses,
    })
}

#[test]
fn the_shared_vectors_match_the_code() {
    let built = build();
    let text = serde_json::to_string_pretty(&built).unwrap() + "\n";
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(PATH, &text).unwrap();
        return;
    }
    let file = std::fs::read_to_string(PATH)
        .expect("vectors/protocol-v1.json is missing: run with UPDATE_VECTORS=1");
    let on_disk: Json = serde_json::from_str(&file).unwrap();
    assert_eq!(
        on_disk, built,
        "vectors/protocol-v1.json differs from what the code writes (UPDATE_VECTORS=1 rewrites it)"
    );
    // And the other way: the file's bytes decode into the fields the file states.
    for entry in on_disk["requests"].as_array().unwrap() {
        let bytes = Bytes::from(unhex(entry["hex"].as_str().unwrap()));
        let msg = decode_request(bytes).unwrap();
        assert_eq!(request_json(&msg), entry["message"], "{}", entry["name"]);
    }
    for entry in on_disk["responses"].as_array().unwrap() {
        let bytes = Bytes::from(unhex(entry["hex"].as_str().unwrap()));
        let msg = decode_response(bytes).unwrap();
        assert_eq!(response_json(&msg), entry["message"], "{}", entry["name"]);
    }
}

#[test]
fn every_message_type_has_a_vector() {
    let built = build();
    let kinds = |list: &str| -> std::collections::BTreeSet<u64> {
        built[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"]["type"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        kinds("requests"),
        [0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 23, 30, 31]
            .into_iter()
            .collect()
    );
    assert_eq!(kinds("responses"), (0..=6).collect());
}
