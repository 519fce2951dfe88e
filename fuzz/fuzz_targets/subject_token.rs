//! Arbitrary namespace names into `subjects::token`.
//!
//! Namespace names come from clients, and the token is spliced between dots into
//! every subject of the namespace: a token with a `.`, a wildcard or whitespace would
//! subscribe to, or publish on, another namespace's subjects (or break the
//! subscription line). The token must also name exactly one namespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketioxide_nats_protocol::subjects::{MAX_TOKEN_LEN, token, untoken};

fuzz_target!(|data: &[u8]| {
    // Namespace names are Rust strings; each corpus file is one name, verbatim.
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let tok = token(name);

    assert!(!tok.is_empty(), "empty token for {name:?}");
    assert!(
        tok.len() <= MAX_TOKEN_LEN,
        "{} bytes for {name:?}",
        tok.len()
    );
    for c in tok.chars() {
        // The documented alphabet; it excludes every NATS separator and wildcard,
        // whitespace, control characters and `$` (system subjects).
        assert!(
            c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "{c:?} in the token {tok:?} of {name:?}"
        );
    }

    // Names whose escaped form would be too long are hashed and cannot be undone;
    // every other token decodes back to its name, which also proves no two names
    // share a token.
    let escaped_len: usize = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                1
            } else {
                3
            }
        })
        .sum();
    if escaped_len > MAX_TOKEN_LEN {
        assert!(tok.starts_with("_h") && tok.len() == 66, "{tok:?}");
        assert_eq!(untoken(&tok), None);
    } else {
        assert_eq!(untoken(&tok).as_deref(), Some(name));
    }
});
