//! No length read from the wire is trusted for an allocation: decoding a message
//! that claims billions of elements or gigabytes of data allocates about as much
//! as the message itself, measured by a counting global allocator.
//!
//! Two families of inputs:
//!
//! * tiny messages claiming 4 G elements or bytes: they must allocate nothing big;
//! * messages near NATS' `max_payload` (1 MiB by default, and 8 MiB, a raised limit)
//!   for every list a message carries (sockets, rooms, nodes, the rooms and except
//!   rooms of broadcast options, the rooms of a join, binary attachments), both
//!   honest ones made of as many of the smallest elements as fit (they decode) and
//!   forged ones whose count claims more elements than are present.
//!
//! A decoded list costs `size_of::<element>()` per element whatever the bytes on the
//! wire, so the bound per case is `size_of::<element>() / smallest encoding of an
//! element` bytes per input byte, and some of these are large by nature:
//!
//! | list               | element             | size | smallest encoding        | ratio |
//! |--------------------|---------------------|------|--------------------------|-------|
//! | sockets            | `RemoteSocketData`  | 64   | 36 (`93`, 2 ids, `a0`)   | 1.8×  |
//! | nodes              | `Uid`               | 16   | 17 (a 16-char str)       | 0.9×  |
//! | rooms (everywhere) | `Room` = `Cow<str>` | 24   | 1 (`a0`, the empty name) | 24×   |
//! | binary attachments | `Bytes`             | 32   | 2 (`c4 00`, empty bin)   | 16×   |
//!
//! The rooms and attachments ratios are unavoidable with the public types
//! (`Vec<Room>`, `SmallVec<[Room; 4]>`, `VecDeque<Bytes>` from socketioxide-core);
//! what the decoder must avoid is the ratio a forged count used to give, the element
//! size per input byte (64× for sockets: a forged 1 MiB Sockets response reserved
//! 63 MiB).
#![allow(unsafe_code)] // the GlobalAlloc impl below, test-only

use std::{
    alloc::{GlobalAlloc, Layout, System},
    borrow::Cow,
    collections::VecDeque,
    mem::size_of,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use socketioxide_core::{
    Sid, Str, Uid, Value,
    adapter::{BroadcastOptions, RemoteSocketData, Room},
    packet::Packet,
};
use socketioxide_nats_protocol::message::{
    RequestOut, RequestOutBody, ResponseOut, ResponseOutBody, decode_request, decode_response,
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The counters are process-wide: tests that measure hold this lock from start to
/// end, so no other test's allocations land in their figures.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Peak bytes allocated while running `f`, above what was allocated before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

/// A request header (version 1, broadcast, origin, no id) followed by `rest`.
fn request(rest: &[u8]) -> Vec<u8> {
    let mut m = vec![0x96, 0x01, 0x00, 0xb0];
    m.extend_from_slice(b"AAAAAAAAAAAAAAAA");
    m.push(0xc0);
    m.extend_from_slice(rest);
    m
}

#[test]
fn huge_claimed_lengths_allocate_nothing_big() {
    let _serial = serial();
    // The instrument itself sees allocations.
    assert!(peak_during(|| drop(std::hint::black_box(vec![1u8; 100_000]))) >= 100_000);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("4G-element array", request(&[0xdd, 0xff, 0xff, 0xff, 0xff])),
        (
            "4G-element array as rooms",
            request(&[0x95, 0xdd, 0xff, 0xff, 0xff, 0xff]),
        ),
        (
            "4G-byte str",
            request(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
        ),
        ("4G-byte bin", request(&[0xc6, 0xff, 0xff, 0xff, 0xff, 0])),
        ("4G-entry map", request(&[0xdf, 0xff, 0xff, 0xff, 0xff])),
        ("4G-byte ext", request(&[0xc9, 0xff, 0xff, 0xff, 0xff, 0])),
        ("nested arrays", request(&[0x91; 10_000])),
        (
            "top-level 4G array",
            vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        (
            "wrong version",
            vec![0x94, 0x02, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (what, bytes) in hostile {
        let len = bytes.len();
        let data = Bytes::from(bytes);
        let peak = peak_during(|| {
            assert!(decode_request(data.clone()).is_err(), "{what}: decoded");
            assert!(decode_response(data.clone()).is_err(), "{what}: decoded");
        });
        assert!(
            peak <= 4 * 1024 + 2 * len,
            "{what}: decoding a {len}-byte message allocated {peak} bytes"
        );
    }
}

// ----- messages near max_payload -----

const MIB: usize = 1024 * 1024;
/// What a decode may allocate whatever its size: the few small fields around a list.
const SLACK: usize = 64 * 1024;

/// One list-bearing message shape: how to encode it with `n` copies of one element,
/// which decoder reads it, and the bound on what decoding may allocate per input byte.
struct Shape {
    what: &'static str,
    /// The element as the encoder writes it (every copy is the same).
    elem: Vec<u8>,
    /// Encodes the message with `n` copies of the element, with the real encoder.
    encode: Box<dyn Fn(usize) -> Bytes>,
    request: bool,
    /// The bound on bytes allocated per input byte: `size_of::<element>()` over
    /// the smallest encoding of an element, rounded up (the table at the top).
    ratio: f64,
}

fn uid(c: char) -> Uid {
    c.to_string().repeat(16).parse().expect("a valid id")
}

fn sid(c: char) -> Sid {
    c.to_string().repeat(16).parse().expect("a valid id")
}

fn empty_rooms(n: usize) -> Vec<Room> {
    vec![Cow::Borrowed(""); n]
}

fn encode_request(body: RequestOutBody<'_>) -> Bytes {
    RequestOut {
        origin: uid('O'),
        id: Some(sid('I')),
        body,
    }
    .encode()
}

fn encode_response(body: ResponseOutBody<'_>) -> Bytes {
    ResponseOut {
        origin: uid('O'),
        body,
    }
    .encode()
}

fn value(bins: usize) -> Value {
    let bins: VecDeque<Bytes> = vec![Bytes::new(); bins].into();
    Value::Str(Str::from("[]"), Some(bins))
}

fn shapes() -> Vec<Shape> {
    let socket = RemoteSocketData {
        id: sid('S'),
        server_id: uid('N'),
        ns: Str::from(""),
    };
    let mut socket_bytes = vec![0x93, 0xb0];
    socket_bytes.extend_from_slice(socket.id.as_str().as_bytes());
    socket_bytes.push(0xb0);
    socket_bytes.extend_from_slice(socket.server_id.as_str().as_bytes());
    socket_bytes.push(0xa0);
    let mut node_bytes = vec![0xb0];
    node_bytes.extend_from_slice(uid('N').as_str().as_bytes());
    // The unavoidable ratios of the table at the top, checked against the types
    // so that a change in socketioxide-core shows up here rather than as a
    // mysterious failure below.
    assert_eq!(size_of::<RemoteSocketData>(), 64);
    assert_eq!(size_of::<Uid>(), 16);
    assert_eq!(size_of::<Room>(), 24);
    assert_eq!(size_of::<Bytes>(), 32);
    vec![
        Shape {
            what: "Sockets response",
            elem: socket_bytes,
            encode: Box::new(move |n| {
                encode_response(ResponseOutBody::Sockets(&vec![socket.clone(); n]))
            }),
            request: false,
            ratio: 2.0, // 64 / 36
        },
        Shape {
            what: "Nodes response",
            elem: node_bytes,
            encode: Box::new(|n| encode_response(ResponseOutBody::Nodes(&vec![uid('N'); n]))),
            request: false,
            ratio: 1.0, // 16 / 17
        },
        Shape {
            what: "Rooms response",
            elem: vec![0xa0],
            encode: Box::new(|n| encode_response(ResponseOutBody::Rooms(&empty_rooms(n)))),
            request: false,
            ratio: 24.0, // 24 / 1: unavoidable, a Room is 24 bytes
        },
        Shape {
            what: "opts rooms (FetchSockets)",
            elem: vec![0xa0],
            encode: Box::new(|n| {
                let mut opts = BroadcastOptions::default();
                opts.rooms = empty_rooms(n).into();
                encode_request(RequestOutBody::FetchSockets { opts: &opts })
            }),
            request: true,
            ratio: 24.0, // 24 / 1: unavoidable, a Room is 24 bytes
        },
        Shape {
            what: "opts except (AllRooms)",
            elem: vec![0xa0],
            encode: Box::new(|n| {
                let mut opts = BroadcastOptions::default();
                opts.except = empty_rooms(n).into();
                encode_request(RequestOutBody::AllRooms { opts: &opts })
            }),
            request: true,
            ratio: 24.0, // 24 / 1: unavoidable, a Room is 24 bytes
        },
        Shape {
            what: "AddSockets rooms",
            elem: vec![0xa0],
            encode: Box::new(|n| {
                let opts = BroadcastOptions::default();
                encode_request(RequestOutBody::AddSockets {
                    opts: &opts,
                    rooms: &empty_rooms(n),
                })
            }),
            request: true,
            ratio: 24.0, // 24 / 1: unavoidable, a Room is 24 bytes
        },
        Shape {
            what: "bin attachments (Broadcast)",
            elem: vec![0xc4, 0x00],
            encode: Box::new(|n| {
                let opts = BroadcastOptions::default();
                encode_request(RequestOutBody::Broadcast {
                    opts: &opts,
                    packet: &Packet::event("/", value(n)),
                })
            }),
            request: true,
            ratio: 16.0, // 32 / 2: unavoidable, a Bytes is 32 bytes
        },
        Shape {
            what: "bin attachments (Ack response)",
            elem: vec![0xc4, 0x00],
            encode: Box::new(|n| {
                encode_response(ResponseOutBody::Ack {
                    sid: sid('S'),
                    result: Ok(&value(n)),
                })
            }),
            request: false,
            ratio: 16.0, // 32 / 2: unavoidable, a Bytes is 32 bytes
        },
    ]
}

/// The encoder's message for `shape` with its list cut out: the bytes before the
/// list header and after the list's elements. Found by encoding 16 elements (array16
/// header `dc 00 10`), so the framing around the list is the real encoder's.
fn frame(shape: &Shape) -> (Vec<u8>, Vec<u8>) {
    let small = (shape.encode)(16);
    let mut list = vec![0xdc, 0x00, 0x10];
    for _ in 0..16 {
        list.extend_from_slice(&shape.elem);
    }
    let at = small
        .windows(list.len())
        .position(|w| w == list)
        .unwrap_or_else(|| panic!("{}: the list is not where expected", shape.what));
    assert!(
        small[at + 1..].windows(list.len()).all(|w| w != list),
        "{}: the list appears twice",
        shape.what
    );
    (small[..at].to_vec(), small[at + list.len()..].to_vec())
}

/// A message of about `size` bytes made of as many elements as fit.
///
/// Forged, its list header claims the largest count the length check lets through
/// (one element per byte after the header) and a junk byte follows the real
/// elements, so decoding reads them all, then fails.
fn message(shape: &Shape, size: usize, forged: bool) -> (Bytes, usize) {
    let (before, after) = frame(shape);
    let n = (size - before.len() - after.len() - 6) / shape.elem.len();
    let junk: &[u8] = if forged { &[0x00] } else { &[] }; // 0x00 is no element of any list
    let rest = n * shape.elem.len() + junk.len() + after.len();
    let claimed = u32::try_from(if forged { rest } else { n }).expect("fits an array32 header");
    let mut m = Vec::with_capacity(size);
    m.extend_from_slice(&before);
    m.push(0xdd);
    m.extend_from_slice(&claimed.to_be_bytes());
    for _ in 0..n {
        m.extend_from_slice(&shape.elem);
    }
    m.extend_from_slice(junk);
    m.extend_from_slice(&after);
    (Bytes::from(m), n)
}

/// Decode `data` with the shape's decoder and check the peak allocation against
/// `shape.ratio` per input byte, printing the measured ratio.
fn check(shape: &Shape, label: &str, data: &Bytes, must_decode: bool) {
    let len = data.len();
    let peak = peak_during(|| {
        let ok = if shape.request {
            decode_request(data.clone()).is_ok()
        } else {
            decode_response(data.clone()).is_ok()
        };
        assert_eq!(ok, must_decode, "{}, {label}: decodes?", shape.what);
    });
    let measured = peak as f64 / len as f64;
    println!(
        "{:<32} {label:<28} {:>5.1} MiB -> peak {:>6.1} MiB ({measured:>5.2}x, bound {:.2}x)",
        shape.what,
        len as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        shape.ratio
    );
    let bound = (shape.ratio * len as f64) as usize + SLACK;
    assert!(
        peak <= bound,
        "{}, {label}: decoding {len} bytes allocated {peak} bytes, over the bound {bound}",
        shape.what
    );
}

/// Real messages of many tiny elements decode, and allocate what their elements
/// need and no more (the capacity is exact: no growth, no spare half).
#[test]
fn honest_messages_near_max_payload_allocate_their_elements_only() {
    let _serial = serial();
    for shape in shapes() {
        let (data, n) = message(&shape, MIB, false);
        // The hand-assembled message is one the encoder writes too.
        if shape.what == "Rooms response" {
            assert_eq!(
                data,
                encode_response(ResponseOutBody::Rooms(&empty_rooms(n)))
            );
        }
        check(&shape, "honest, 1 MiB", &data, true);
    }
    // The larger size for the list whose elements are the largest.
    let sockets = &shapes()[0];
    let (data, _) = message(sockets, 8 * MIB, false);
    check(sockets, "honest, 8 MiB", &data, true);
}

/// Counts claiming more elements than present: the largest count the length check
/// lets through (one element per byte left), with every real element present after
/// it, so decoding reads them all before it fails (see [`message`]); or with only
/// junk after it, so it fails at the first element (the 8 MiB case, to stay fast).
/// Before the counts were bounded by the smallest element, these reserved
/// `size_of::<element>()` bytes per input byte: 64 MiB for a 1 MiB Sockets response,
/// 512 MiB at 8 MiB.
#[test]
fn forged_counts_near_max_payload_allocate_no_more_than_honest_ones() {
    let _serial = serial();
    for shape in shapes() {
        let (data, _) = message(&shape, MIB, true);
        check(&shape, "forged count, 1 MiB", &data, false);

        let (mut before, _) = frame(&shape);
        let rest = 8 * MIB - before.len() - 5;
        before.push(0xdd);
        before.extend_from_slice(&u32::try_from(rest).expect("fits").to_be_bytes());
        before.resize(8 * MIB, 0x00); // 0x00 is no element of any list
        check(
            &shape,
            "forged count + junk, 8 MiB",
            &Bytes::from(before),
            false,
        );
    }
}
