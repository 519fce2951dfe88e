//! Hostile but well-formed messages, built from the fuzzer's input by
//! `nats_harness::hostile`, into the decoder of their subject.
//!
//! The `decode` target feeds bytes, and almost none of them decode: the decoder's
//! paths for valid messages with extreme contents (4 000 rooms, 8 KiB names,
//! `u64::MAX` timeouts, every packet type, both parsers' values) are reached only
//! by mutation luck. Here every input is first a valid message, so the fuzzer
//! explores those contents, and then a few bytes of it are changed, so it also
//! explores the malformed messages closest to valid ones.
//!
//! Checks: the message decodes with the decoder for its subject (requests on
//! `.b.` and `.n.` subjects, responses on `.r.`) as the type it was built as; it
//! re-encodes byte for byte (the encoder is canonical and decoding loses nothing);
//! the mutated copy is refused or accepted without a panic by both decoders.
#![no_main]

use arbitrary::Unstructured;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nats_harness::hostile::{HostileMessage, MAX_HOSTILE_PAYLOAD, StormTarget, hostile_message};
use socketioxide_nats_protocol::{
    message::{RequestBody, ResponseBody, decode_request, decode_response},
    subjects::NsSubjects,
};

#[path = "../common/out.rs"]
mod out;
#[path = "../common/targets.rs"]
mod targets;
use out::{request_out, response_out};
use targets::targets;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let targets = targets();
    let Ok(target) = u.choose(&targets) else {
        return;
    };
    // Fails only on an invalid prefix, and these are valid.
    let msg = hostile_message(&mut u, target).expect("a valid target");
    assert!(msg.payload.len() <= MAX_HOSTILE_PAYLOAD);

    if is_request_subject(target, &msg) {
        let req = decode_request(msg.payload.clone())
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", msg.what));
        assert_eq!(request_label(&req.body), msg.what);
        assert!(
            request_out(&req).encode() == msg.payload,
            "{} does not re-encode to the same bytes",
            msg.what
        );
    } else {
        let resp = decode_response(msg.payload.clone())
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", msg.what));
        assert_eq!(response_label(&resp.body), msg.what);
        assert!(
            response_out(&resp).encode() == msg.payload,
            "{} does not re-encode to the same bytes",
            msg.what
        );
    }

    let mutated = mutate(&mut u, &msg.payload);
    let _ = decode_request(mutated.clone());
    let _ = decode_response(mutated);
});

/// Which decoder a node uses for `msg`: its subject must be one of the target's
/// namespace (`{base}.b.*`, `{base}.n.*.*` or `{base}.r.*.*`).
fn is_request_subject(target: &StormTarget, msg: &HostileMessage) -> bool {
    let subjects = NsSubjects::new(&target.prefix, &target.ns).expect("a valid target");
    let rest = msg
        .subject
        .strip_prefix(subjects.base())
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or_else(|| panic!("{} outside the namespace: {}", msg.what, msg.subject));
    match rest.split('.').next() {
        Some("b" | "n") => true,
        Some("r") => false,
        _ => panic!(
            "{}: not a request or reply subject: {}",
            msg.what, msg.subject
        ),
    }
}

/// The `HostileMessage::what` of a decoded request. A match rather than the
/// variant's `Debug` name: formatting the whole body (8 KiB room names, escaped
/// character by character) took most of the time of a run.
fn request_label(body: &RequestBody) -> &'static str {
    use RequestBody as B;
    match body {
        B::Broadcast { .. } => "request:Broadcast",
        B::BroadcastWithAck { .. } => "request:BroadcastWithAck",
        B::DisconnectSockets { .. } => "request:DisconnectSockets",
        B::AllRooms { .. } => "request:AllRooms",
        B::AddSockets { .. } => "request:AddSockets",
        B::DelSockets { .. } => "request:DelSockets",
        B::FetchSockets { .. } => "request:FetchSockets",
        B::Heartbeat => "request:Heartbeat",
        B::Hello => "request:Hello",
        B::Goodbye => "request:Goodbye",
        B::Discover => "request:Discover",
        B::ServerEvent { .. } => "request:ServerEvent",
        B::CustomRequest { .. } => "request:CustomRequest",
        _ => "request:(unknown to the fuzz target)",
    }
}

/// The `HostileMessage::what` of a decoded response.
fn response_label(body: &ResponseBody) -> &'static str {
    use ResponseBody as B;
    match body {
        B::Ack { .. } => "response:Ack",
        B::AckCount(_) => "response:AckCount",
        B::Rooms(_) => "response:Rooms",
        B::Sockets(_) => "response:Sockets",
        B::Done(_) => "response:Done",
        B::Reply(_) => "response:Reply",
        B::Nodes(_) => "response:Nodes",
        _ => "response:(unknown to the fuzz target)",
    }
}

/// A copy of `payload` with 1 to 4 changes chosen by the rest of the input: a bit
/// flipped, a byte set to a MessagePack marker, a byte inserted or removed, or the
/// end cut off.
fn mutate(u: &mut Unstructured<'_>, payload: &Bytes) -> Bytes {
    const MARKERS: [u8; 12] = [
        0x00, 0x7f, 0x90, 0x9f, 0xa0, 0xc0, 0xc1, 0xc4, 0xcf, 0xdc, 0xdd, 0xff,
    ];
    let mut m = payload.to_vec();
    let changes = u.int_in_range(1..=4u8).unwrap_or(1);
    for _ in 0..changes {
        let at = u.choose_index(m.len() + 1).unwrap_or(0);
        match u.int_in_range(0..=4u8).unwrap_or(0) {
            0 if at < m.len() => m[at] ^= 1 << u.int_in_range(0..=7u8).unwrap_or(0),
            1 if at < m.len() => m[at] = *u.choose(&MARKERS).unwrap_or(&0xc1),
            2 => m.insert(at, u.arbitrary().unwrap_or(0xdd)),
            3 if at < m.len() => {
                m.remove(at);
            }
            _ => m.truncate(at),
        }
    }
    Bytes::from(m)
}
