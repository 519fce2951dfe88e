//! PROTOCOL.md cannot drift from the code: every worked example in it is built
//! here, encoded and compared byte for byte with the hex in the document, and the
//! document's bytes are decoded back into the same message.
//!
//! An example in the document is an HTML comment `<!-- example: NAME -->`
//! followed by a ```` ```hex ```` block of byte pairs; text after `#` on a line is
//! an annotation.

use std::{borrow::Cow, collections::HashMap, str::FromStr};

use bytes::Bytes;
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastFlags, BroadcastOptions, RemoteSocketData},
    packet::Packet,
};
use socketioxide_nats_protocol::message::*;

fn uid(s: &str) -> Uid {
    Uid::from_str(s).unwrap()
}
fn sid(s: &str) -> Sid {
    Sid::from_str(s).unwrap()
}

fn examples() -> HashMap<String, Vec<u8>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../PROTOCOL.md"))
        .expect("PROTOCOL.md at the repository root");
    let mut out = HashMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- example: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next().map(str::trim),
            Some("```hex"),
            "example {name}: a ```hex block must follow"
        );
        let mut bytes = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            let data = l.split('#').next().unwrap_or("");
            for pair in data.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(pair, 16)
                        .unwrap_or_else(|e| panic!("example {name}: bad byte {pair:?}: {e}")),
                );
            }
        }
        assert!(
            out.insert(name.to_owned(), bytes).is_none(),
            "example {name} appears twice"
        );
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| {
            c.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compare an example with the code. With `DUMP_EXAMPLES` set, print what the
/// code writes instead (to write the document).
fn check(examples: &mut HashMap<String, Vec<u8>>, name: &str, encoded: Bytes) {
    if std::env::var_os("DUMP_EXAMPLES").is_some() {
        println!("<!-- example: {name} -->\n```hex\n{}\n```", hex(&encoded));
        examples.insert(name.to_owned(), encoded.to_vec());
        return;
    }
    let doc = examples.get(name).unwrap_or_else(|| {
        panic!(
            "PROTOCOL.md lacks example {name}; it should be:\n{}",
            hex(&encoded)
        )
    });
    assert_eq!(
        doc.as_slice(),
        encoded.as_ref(),
        "example {name} differs from the code, which writes:\n{}",
        hex(&encoded)
    );
}

const A: &str = "NodeA00000000000";
const B: &str = "NodeB00000000000";
const C: &str = "NodeC00000000000";
const REQ: &str = "Req0000000000001";
const SOCK: &str = "Sock000000000001";

#[test]
fn the_examples_of_protocol_md_match_the_code() {
    let mut ex = examples();
    let mut seen = 0;

    // heartbeat
    let req = RequestOut {
        origin: uid(A),
        id: None,
        body: RequestOutBody::Heartbeat,
    };
    check(&mut ex, "heartbeat", req.encode());
    let dec = decode_request(Bytes::from(ex["heartbeat"].clone())).unwrap();
    assert_eq!(
        (dec.origin, dec.id, dec.body),
        (uid(A), None, RequestBody::Heartbeat)
    );
    seen += 1;

    // io.to("room1").emit("hello", "world") with the common parser
    let mut opts = BroadcastOptions::default();
    opts.add_flag(BroadcastFlags::Broadcast);
    opts.rooms.push(Cow::Borrowed("room1"));
    let packet = Packet::event("/", Value::Str(Str::from(r#"["hello","world"]"#), None));
    let req = RequestOut {
        origin: uid(A),
        id: None,
        body: RequestOutBody::Broadcast {
            opts: &opts,
            packet: &packet,
        },
    };
    check(&mut ex, "broadcast", req.encode());
    let dec = decode_request(Bytes::from(ex["broadcast"].clone())).unwrap();
    assert_eq!(
        dec.body,
        RequestBody::Broadcast {
            opts: opts.clone(),
            packet: packet.clone()
        }
    );
    seen += 1;

    // io.of("/chat").emit("file", Bytes) with the common parser: one attachment
    let mut all = BroadcastOptions::default();
    all.add_flag(BroadcastFlags::Broadcast);
    let bin = Packet::event(
        "/chat",
        Value::Str(
            Str::from(r#"["file",{"_placeholder":true,"num":0}]"#),
            Some(vec![Bytes::from_static(&[1, 2, 3])].into()),
        ),
    );
    let req = RequestOut {
        origin: uid(A),
        id: None,
        body: RequestOutBody::Broadcast {
            opts: &all,
            packet: &bin,
        },
    };
    check(&mut ex, "broadcast-binary", req.encode());
    assert_eq!(
        decode_request(Bytes::from(ex["broadcast-binary"].clone()))
            .unwrap()
            .body,
        RequestBody::Broadcast {
            opts: all.clone(),
            packet: bin
        }
    );
    seen += 1;

    // io.fetch_sockets(), answered by node B
    let req = RequestOut {
        origin: uid(A),
        id: Some(sid(REQ)),
        body: RequestOutBody::FetchSockets { opts: &all },
    };
    check(&mut ex, "fetch-sockets", req.encode());
    assert_eq!(
        decode_request(Bytes::from(ex["fetch-sockets"].clone()))
            .unwrap()
            .id,
        Some(sid(REQ))
    );
    let sockets = vec![RemoteSocketData {
        id: sid(SOCK),
        server_id: uid(B),
        ns: Str::from("/"),
    }];
    let res = ResponseOut {
        origin: uid(B),
        body: ResponseOutBody::Sockets(&sockets),
    };
    check(&mut ex, "sockets", res.encode());
    assert_eq!(
        decode_response(Bytes::from(ex["sockets"].clone()))
            .unwrap()
            .body,
        ResponseBody::Sockets(sockets)
    );
    seen += 2;

    // io.emit_with_ack("ping", ()) with a 2 s timeout: one socket on node B answers "pong"
    let ping = Packet::event("/", Value::Str(Str::from(r#"["ping"]"#), None));
    let req = RequestOut {
        origin: uid(A),
        id: Some(sid(REQ)),
        body: RequestOutBody::BroadcastWithAck {
            opts: &all,
            packet: &ping,
            ack_timeout: Some(std::time::Duration::from_secs(2)),
        },
    };
    check(&mut ex, "broadcast-with-ack", req.encode());
    check(
        &mut ex,
        "ack-count",
        ResponseOut {
            origin: uid(B),
            body: ResponseOutBody::AckCount(1),
        }
        .encode(),
    );
    let pong = Value::Str(Str::from(r#"["pong"]"#), None);
    check(
        &mut ex,
        "ack",
        ResponseOut {
            origin: uid(B),
            body: ResponseOutBody::Ack {
                sid: sid(SOCK),
                result: Ok(&pong),
            },
        }
        .encode(),
    );
    assert_eq!(
        decode_response(Bytes::from(ex["ack"].clone()))
            .unwrap()
            .body,
        ResponseBody::Ack {
            sid: sid(SOCK),
            result: Ok(pong)
        }
    );
    seen += 3;

    // socketioxide's AckError::Timeout, as rmp-serde writes it: the str "Timeout"
    let timed_out = [0xa7, b'T', b'i', b'm', b'e', b'o', b'u', b't'];
    check(
        &mut ex,
        "ack-error",
        ResponseOut {
            origin: uid(B),
            body: ResponseOutBody::Ack {
                sid: sid(SOCK),
                result: Err(&timed_out),
            },
        }
        .encode(),
    );
    seen += 1;

    // node A's discovery: a Hello with a request id (and a reply subject), and
    // node B's answer, the nodes it knows
    let req = RequestOut {
        origin: uid(A),
        id: Some(sid(REQ)),
        body: RequestOutBody::Hello,
    };
    check(&mut ex, "hello", req.encode());
    check(
        &mut ex,
        "nodes",
        ResponseOut {
            origin: uid(B),
            body: ResponseOutBody::Nodes(&[uid(C)]),
        }
        .encode(),
    );
    seen += 2;

    // a server-side event "reload" with data {"key":"a"} (MessagePack map)
    let data = [0x81, 0xa3, b'k', b'e', b'y', 0xa1, b'a'];
    let req = RequestOut {
        origin: uid(A),
        id: None,
        body: RequestOutBody::ServerEvent {
            event: "reload",
            data: &data,
        },
    };
    check(&mut ex, "server-event", req.encode());
    seen += 1;

    assert_eq!(
        seen,
        ex.len(),
        "PROTOCOL.md has examples this test does not check"
    );
    assert!(
        std::env::var_os("DUMP_EXAMPLES").is_none(),
        "examples dumped, not checked"
    );
}
