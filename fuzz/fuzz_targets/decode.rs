//! Arbitrary bytes into both decoders.
//!
//! A node decodes whatever any publisher on a shared NATS server sends, so decoding
//! must never panic, hang or allocate more than the input justifies (scripts/fuzz.sh
//! caps memory and time per input). Whatever is accepted must also mean exactly one
//! thing: re-encoding it and decoding again gives the same message, otherwise a
//! message relayed or answered by a node could change on the way.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketioxide_core::{Str, Value, packet::PacketData};
use socketioxide_nats_protocol::message::{
    RequestBody, RequestIn, ResponseBody, ResponseIn, decode_request, decode_response,
};

#[path = "../common/out.rs"]
mod out;
use out::{request_out, response_out};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    // Both decoders see every input: the same bytes can arrive on a request or a
    // reply subject, and the kinds overlap numerically.
    if let Ok(req) = decode_request(input.clone()) {
        check_request(&input, &req);
    }
    if let Ok(resp) = decode_response(input.clone()) {
        check_response(&input, &resp);
    }
});

fn check_request(input: &Bytes, req: &RequestIn) {
    let encoded = request_out(req).encode();
    let again = decode_request(encoded.clone()).expect("a re-encoded request decodes");
    assert_eq!(&again, req, "request changed through encode/decode");
    // The encoder is canonical: a second round must not change a single byte.
    assert_eq!(request_out(&again).encode(), encoded);

    match &req.body {
        RequestBody::Broadcast { packet, .. } | RequestBody::BroadcastWithAck { packet, .. } => {
            check_str(&packet.ns);
            if let PacketData::Connect(Some(v))
            | PacketData::Event(v, _)
            | PacketData::EventAck(v, _)
            | PacketData::BinaryEvent(v, _)
            | PacketData::BinaryAck(v, _) = &packet.inner
            {
                check_value(input, v);
            }
        }
        RequestBody::ServerEvent { data, .. } | RequestBody::CustomRequest { data } => {
            check_sliced(input, data)
        }
        _ => {}
    }
}

fn check_response(input: &Bytes, resp: &ResponseIn) {
    let encoded = response_out(resp).encode();
    let again = decode_response(encoded.clone()).expect("a re-encoded response decodes");
    assert_eq!(&again, resp, "response changed through encode/decode");
    assert_eq!(response_out(&again).encode(), encoded);

    match &resp.body {
        ResponseBody::Ack { result: Ok(v), .. } => check_value(input, v),
        ResponseBody::Ack { result: Err(b), .. } | ResponseBody::Reply(Ok(b)) => {
            check_sliced(input, b)
        }
        _ => {}
    }
}

/// Payload texts and namespaces are built with `Str::from_bytes_unchecked`, whose
/// safety rests on the reader having validated them: check that claim directly.
fn check_str(s: &Str) {
    assert!(
        std::str::from_utf8(s.as_bytes()).is_ok(),
        "Str is not UTF-8"
    );
}

fn check_value(input: &Bytes, v: &Value) {
    match v {
        Value::Str(text, bins) => {
            check_str(text);
            for b in bins.iter().flatten() {
                check_sliced(input, b);
            }
        }
        Value::Bytes(b) => check_sliced(input, b),
    }
}

/// Binary payloads are documented to be slices of the received buffer, not copies
/// (they can be megabytes). Empty slices are exempt: `Bytes` does not keep a
/// pointer for them.
fn check_sliced(input: &Bytes, b: &Bytes) {
    if b.is_empty() {
        return;
    }
    let range = input.as_ptr_range();
    let start = b.as_ptr();
    assert!(
        range.start <= start && start.wrapping_add(b.len()) <= range.end,
        "binary payload was copied instead of sliced"
    );
}
