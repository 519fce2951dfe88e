//! `sionats watch`: the adapter's traffic, one readable line per message.
//!
//! It subscribes to the broadcast subjects (`{prefix}.{ns}.b.*`) and the reply
//! subjects (`{prefix}.{ns}.r.*.*`) only, never to the servers' own subjects
//! (`{prefix}.{ns}.n.*.*`). NATS answers "no responders" to a request published
//! to a subject nobody subscribes to; servers and emitters rely on that answer
//! to learn at once that a server is gone (its subscriptions went with it). A
//! watcher subscribed there would receive those requests instead, and a crashed
//! server would only be noticed at a probe timeout.

use futures_util::StreamExt;
use socketioxide_core::{Value, adapter::BroadcastOptions, packet::PacketData};
use socketioxide_nats_emitter::async_nats;
use socketioxide_nats_protocol::{
    message::{RequestBody, ResponseBody, decode_request, decode_response},
    subjects::{NsSubjects, untoken},
};

/// What `watch` subscribes to: the broadcast and reply subjects of namespace
/// `ns`, or of every namespace with `None`. Never the servers' own subjects:
/// see the module docs.
pub(crate) fn subjects(prefix: &str, ns: Option<&str>) -> Result<[String; 2], String> {
    let base = match ns {
        Some(ns) => NsSubjects::new(prefix, ns)
            .map_err(|e| e.to_string())?
            .base()
            .to_owned(),
        None => format!("{prefix}.*"),
    };
    Ok([format!("{base}.b.*"), format!("{base}.r.*.*")])
}

/// Print every message on `subjects`, decoded, until Ctrl-C.
pub(crate) async fn run(
    client: &async_nats::Client,
    prefix: &str,
    subjects: &[String; 2],
) -> Result<(), String> {
    let mut subs = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let sub = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
        subs.push(sub);
    }
    // Only once the server has the subscriptions is "watching" true.
    client
        .flush()
        .await
        .map_err(|e| format!("cannot subscribe to {}: {e}", subjects.join(" and ")))?;
    eprintln!(
        "watching {} (not the servers' own subjects {}, so that requests to a gone server still get NATS's \"no responders\"; Ctrl-C to stop)",
        subjects.join(" and "),
        node_subjects(prefix, subjects),
    );
    let mut all = futures_util::stream::select_all(subs);
    loop {
        tokio::select! {
            msg = all.next() => match msg {
                Some(m) => println!("{}", describe(prefix, &m.subject, m.payload)),
                None => return Err("the NATS subscription ended".into()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// The node-subject filter matching `subjects`, for the message saying it is
/// not watched.
fn node_subjects(prefix: &str, subjects: &[String; 2]) -> String {
    subjects[0].strip_suffix(".b.*").map_or_else(
        || format!("{prefix}.*.n.*.*"),
        |base| format!("{base}.n.*.*"),
    )
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::Str(s, bins) => {
            let n = bins.as_ref().map_or(0, |b| b.len());
            let bins = if n > 0 {
                format!(" +{n} binary")
            } else {
                String::new()
            };
            format!("{}{bins}", short(s, 200))
        }
        Value::Bytes(b) => format!("<{} bytes msgpack>", b.len()),
    }
}

fn opts(o: &BroadcastOptions) -> String {
    let mut parts = Vec::new();
    if !o.rooms.is_empty() {
        parts.push(format!(
            "to {:?}",
            o.rooms.iter().map(|r| short(r, 40)).collect::<Vec<_>>()
        ));
    }
    if !o.except.is_empty() {
        parts.push(format!(
            "except {:?}",
            o.except.iter().map(|r| short(r, 40)).collect::<Vec<_>>()
        ));
    }
    if let Some(sid) = o.sid {
        parts.push(format!("socket {sid}"));
    }
    if o.has_flag(socketioxide_core::adapter::BroadcastFlags::Volatile) {
        parts.push("volatile".into());
    }
    if parts.is_empty() {
        "all sockets".into()
    } else {
        parts.join(" ")
    }
}

fn msgpack(data: &[u8]) -> String {
    match rmp_serde::from_slice::<serde_json::Value>(data) {
        Ok(v) => short(&v.to_string(), 200),
        Err(_) => format!("<{} bytes>", data.len()),
    }
}

/// One line describing `payload` received on `subject` (`{prefix}.{ns}.{kind}.…`).
pub(crate) fn describe(prefix: &str, subject: &str, payload: bytes::Bytes) -> String {
    let rest = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or(subject);
    let toks: Vec<&str> = rest.split('.').collect();
    let ns = toks
        .first()
        .and_then(|t| untoken(t))
        .unwrap_or_else(|| toks.first().unwrap_or(&"?").to_string());
    let kind = toks.get(1).copied().unwrap_or("?");
    let size = payload.len();
    match kind {
        "b" | "n" => match decode_request(payload) {
            Ok(req) => {
                let to = if kind == "n" {
                    format!(" → {}", toks.get(2).unwrap_or(&"?"))
                } else {
                    String::new()
                };
                let body = match &req.body {
                    RequestBody::Broadcast { opts: o, packet } => match &packet.inner {
                        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => {
                            format!("emit {} to {}", value(v), opts(o))
                        }
                        other => format!("packet type {} to {}", other.index(), opts(o)),
                    },
                    RequestBody::BroadcastWithAck {
                        opts: o,
                        packet,
                        ack_timeout,
                    } => match &packet.inner {
                        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => {
                            format!(
                                "emit with ack ({ack_timeout:?}) {} to {}",
                                value(v),
                                opts(o)
                            )
                        }
                        other => format!("packet type {} with ack to {}", other.index(), opts(o)),
                    },
                    RequestBody::DisconnectSockets { opts: o } => format!("disconnect {}", opts(o)),
                    RequestBody::AllRooms { opts: o } => format!("rooms? of {}", opts(o)),
                    RequestBody::AddSockets { opts: o, rooms } => {
                        format!("join {rooms:?}: {}", opts(o))
                    }
                    RequestBody::DelSockets { opts: o, rooms } => {
                        format!("leave {rooms:?}: {}", opts(o))
                    }
                    RequestBody::FetchSockets { opts: o } => format!("sockets? {}", opts(o)),
                    RequestBody::Heartbeat => "heartbeat".into(),
                    RequestBody::Hello => "hello (node started)".into(),
                    RequestBody::Goodbye => "goodbye (node closing)".into(),
                    RequestBody::Discover => "discover".into(),
                    RequestBody::ServerEvent { event, data } => {
                        format!("server event {event:?} {}", msgpack(data))
                    }
                    RequestBody::CustomRequest { data } => {
                        format!("custom request {}", msgpack(data))
                    }
                    _ => "request of a newer protocol".into(),
                };
                let id = req.id.map(|id| format!(" #{id}")).unwrap_or_default();
                format!("{ns} {}{to}{id}: {body}", req.origin)
            }
            Err(e) => format!("{ns} malformed request on {subject}: {e}"),
        },
        "r" => match decode_response(payload) {
            Ok(res) => {
                let body = match &res.body {
                    ResponseBody::Ack { sid, result: Ok(v) } => {
                        format!("ack from socket {sid}: {}", value(v))
                    }
                    ResponseBody::Ack {
                        sid,
                        result: Err(e),
                    } => format!("ack error from socket {sid}: {}", msgpack(e)),
                    ResponseBody::AckCount(n) => format!("{n} acks to come"),
                    ResponseBody::Rooms(r) => format!("rooms {r:?}"),
                    ResponseBody::Sockets(s) => format!("{} sockets", s.len()),
                    ResponseBody::Done(n) => format!("done ({n} sockets)"),
                    ResponseBody::Reply(Ok(d)) => format!("reply {}", msgpack(d)),
                    ResponseBody::Reply(Err(e)) => format!("reply error: {e}"),
                    ResponseBody::Nodes(n) => format!("knows {} other nodes", n.len()),
                    _ => "response of a newer protocol".into(),
                };
                format!(
                    "{ns} {} → {} #{}: {body}",
                    res.origin,
                    toks.get(2).unwrap_or(&"?"),
                    toks.get(3).unwrap_or(&"?")
                )
            }
            Err(e) => format!("{ns} malformed response on {subject}: {e}"),
        },
        _ => format!("{ns} foreign message on {subject} ({size} bytes)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_broadcasts_and_replies_never_node_subjects() {
        let all = subjects("app.prod", None).unwrap();
        assert_eq!(all, ["app.prod.*.b.*", "app.prod.*.r.*.*"]);
        assert_eq!(node_subjects("app.prod", &all), "app.prod.*.n.*.*");
        let chat = subjects("socket.io", Some("/chat")).unwrap();
        assert_eq!(chat, ["socket.io._2Fchat.b.*", "socket.io._2Fchat.r.*.*"]);
        assert_eq!(node_subjects("socket.io", &chat), "socket.io._2Fchat.n.*.*");
        assert!(subjects("a b", Some("/")).is_err());
    }
}
