//! No length read from the wire is trusted for an allocation: decoding a message
//! that claims billions of elements or gigabytes of data allocates about as much
//! as the message itself, measured by a counting global allocator.
#![allow(unsafe_code)] // the GlobalAlloc impl below, test-only

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use socketioxide_nats_protocol::message::{decode_request, decode_response};

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
