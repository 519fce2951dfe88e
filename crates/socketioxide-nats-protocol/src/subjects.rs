//! NATS subjects used by the adapter, and the encoding that turns any namespace
//! name into exactly one safe subject token.
//!
//! # Layout
//!
//! Every subject lives under the configured prefix (`socket.io` by default) and the
//! encoded namespace (see [`token`]):
//!
//! | subject                              | published by                 | subscribed by           |
//! |--------------------------------------|------------------------------|-------------------------|
//! | `{prefix}.{ns}.b.{origin}`           | a node or emitter, to every node of the namespace | every node: `{prefix}.{ns}.b.*` |
//! | `{prefix}.{ns}.n.{target}.{origin}`  | a node or emitter, to one node | that node: `{prefix}.{ns}.n.{uid}.*` |
//! | `{prefix}.{ns}.r.{requester}.{req}`  | a node answering a request   | the requester: `{prefix}.{ns}.r.{uid}.*` |
//! | `{prefix}.{ns}.room.{room}.{origin}` | a node with room routing, to the members of one room | nodes with members in the room: `{prefix}.{ns}.room.{room}.*`; nodes without routing: `{prefix}.{ns}.room.*.*` |
//!
//! `origin`, `target`, `requester` and `req` are socketioxide ids: 16 characters of
//! url-safe base64 (`[A-Za-z0-9_-]`), which are valid tokens as they are.
//!
//! By default rooms never appear in subjects: every node of a namespace receives
//! each request and filters rooms locally, exactly like socketioxide-redis. With
//! room routing, a broadcast to exactly one room travels on that room's subject
//! (its name encoded with [`token`], so any name is safe; long names are hashed,
//! and receivers still filter exactly, so a collision can only cost an extra
//! delivery, never a wrong one).

use sha2::{Digest, Sha256};

use crate::ProtocolError;

/// The default subject prefix, the `key` option of the Node.js `socket.io-nats`
/// and `socket.io-redis` adapters.
pub const DEFAULT_PREFIX: &str = "socket.io";

/// The longest prefix accepted, in bytes. Together with [`MAX_TOKEN_LEN`] it keeps
/// every subscription line far below the NATS server's 4 096-byte control line.
pub const MAX_PREFIX_LEN: usize = 128;

/// The longest encoded token. Longer encodings are replaced by a hash, see [`token`].
pub const MAX_TOKEN_LEN: usize = 200;

/// Check that a user-supplied prefix is one or more plain NATS tokens.
///
/// A prefix is made of tokens separated by `.`; each token is non-empty and only
/// uses `[A-Za-z0-9_-]`. This rules out wildcards (`*`, `>`), whitespace, system
/// subjects (`$SYS`) and anything that could break a subscription line.
///
/// ```
/// use socketioxide_nats_protocol::subjects::validate_prefix;
/// assert!(validate_prefix("socket.io").is_ok());
/// assert!(validate_prefix("my-app.prod").is_ok());
/// assert!(validate_prefix("app.*").is_err());
/// assert!(validate_prefix("").is_err());
/// ```
pub fn validate_prefix(prefix: &str) -> Result<(), ProtocolError> {
    let invalid = |reason: &'static str| ProtocolError::InvalidPrefix {
        prefix: prefix.chars().take(MAX_PREFIX_LEN).collect(),
        reason,
    };
    if prefix.is_empty() {
        return Err(invalid("it is empty"));
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(invalid("it is longer than 128 bytes"));
    }
    for tok in prefix.split('.') {
        if tok.is_empty() {
            return Err(invalid(
                "it has an empty token (leading, trailing or double '.')",
            ));
        }
        if !tok.bytes().all(is_plain) {
            return Err(invalid(
                "tokens may only contain ASCII letters, digits, '-' and '_'",
            ));
        }
    }
    Ok(())
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Encode any string as exactly one NATS subject token over `[A-Za-z0-9_-]`.
///
/// * ASCII letters, digits and `-` are kept as they are, so common names stay readable;
/// * every other byte (including `_` itself) becomes `_` followed by two uppercase hex
///   digits: `/` → `_2F`, `a.b` → `a_2Eb`, `*` → `_2A`;
/// * the empty string becomes `_` (which no escape produces);
/// * an encoding longer than [`MAX_TOKEN_LEN`] becomes `_h` followed by the 64 lowercase hex
///   digits of the SHA-256 of the name (`_h` can never start an escape).
///
/// The encoding is injective, so two names never share a token (up to SHA-256
/// collisions), and a token can never be a wildcard, contain a `.` or whitespace, or
/// start with `$`.
///
/// ```
/// use socketioxide_nats_protocol::subjects::token;
/// assert_eq!(token("/"), "_2F");
/// assert_eq!(token("/chat.v2"), "_2Fchat_2Ev2");
/// assert_eq!(token("room-1"), "room-1");
/// assert_eq!(token(""), "_");
/// assert_eq!(token(&"x".repeat(5000)).len(), 66);
/// ```
pub fn token(name: &str) -> String {
    if name.is_empty() {
        return "_".to_owned();
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
        if out.len() > MAX_TOKEN_LEN {
            return hashed_token(name);
        }
    }
    out
}

/// Decode a token made by [`token`] back into the name, for display. Hashed
/// tokens (names too long to encode) and strings [`token`] cannot produce give
/// `None`.
///
/// ```
/// use socketioxide_nats_protocol::subjects::{token, untoken};
/// assert_eq!(untoken(&token("/chat.v2")).as_deref(), Some("/chat.v2"));
/// assert_eq!(untoken("_").as_deref(), Some(""));
/// assert_eq!(untoken(&token(&"x".repeat(500))), None);
/// ```
pub fn untoken(tok: &str) -> Option<String> {
    if tok == "_" {
        return Some(String::new());
    }
    let b = tok.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => {
                let hex = b.get(i + 1..i + 3)?;
                let digit = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'A'..=b'F' => Some(c - b'A' + 10),
                    _ => None,
                };
                out.push(digit(hex[0])? << 4 | digit(hex[1])?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || c == b'-' => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

fn hashed_token(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut out = String::with_capacity(66);
    out.push_str("_h");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The subjects of one namespace under one prefix.
///
/// Build it once per namespace; every method only concatenates strings.
///
/// ```
/// use socketioxide_nats_protocol::subjects::NsSubjects;
/// let s = NsSubjects::new("socket.io", "/chat").unwrap();
/// assert_eq!(s.broadcast("AAAAAAAAAAAAAAAA"), "socket.io._2Fchat.b.AAAAAAAAAAAAAAAA");
/// assert_eq!(s.broadcast_filter(), "socket.io._2Fchat.b.*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsSubjects {
    base: String,
}

impl NsSubjects {
    /// Build the subjects of namespace `ns` under `prefix`, validating the prefix.
    pub fn new(prefix: &str, ns: &str) -> Result<Self, ProtocolError> {
        validate_prefix(prefix)?;
        Ok(Self {
            base: format!("{prefix}.{}", token(ns)),
        })
    }

    /// The subjects of namespace `ns` under [`DEFAULT_PREFIX`].
    pub fn with_default_prefix(ns: &str) -> Self {
        Self {
            base: format!("{DEFAULT_PREFIX}.{}", token(ns)),
        }
    }

    /// `{prefix}.{ns}`: the root of every subject of this namespace.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{prefix}.{ns}.b.{origin}`: requests from `origin` to every node.
    pub fn broadcast(&self, origin: &str) -> String {
        format!("{}.b.{origin}", self.base)
    }

    /// `{prefix}.{ns}.b.*`: what every node subscribes to for broadcast requests.
    pub fn broadcast_filter(&self) -> String {
        format!("{}.b.*", self.base)
    }

    /// `{prefix}.{ns}.n.{target}.{origin}`: a request from `origin` to the node `target`.
    pub fn node(&self, target: &str, origin: &str) -> String {
        format!("{}.n.{target}.{origin}", self.base)
    }

    /// `{prefix}.{ns}.n.{uid}.*`: what node `uid` subscribes to for its own requests.
    pub fn node_filter(&self, uid: &str) -> String {
        format!("{}.n.{uid}.*", self.base)
    }

    /// `{prefix}.{ns}.r.{requester}.{req}`: where the answers to request `req` go.
    pub fn reply(&self, requester: &str, req: &str) -> String {
        format!("{}.r.{requester}.{req}", self.base)
    }

    /// `{prefix}.{ns}.r.{uid}.*`: the single response subscription of node `uid`.
    pub fn reply_filter(&self, uid: &str) -> String {
        format!("{}.r.{uid}.*", self.base)
    }

    /// `{prefix}.{ns}.room.{room}.{origin}`: a broadcast from `origin` to the one
    /// room `room` (encoded with [`token`]), for nodes with room routing. Only the
    /// nodes with members in the room subscribe to it, so NATS delivers it to them
    /// alone (across gateways, too: a supercluster forwards it only where interest is).
    ///
    /// ```
    /// use socketioxide_nats_protocol::subjects::NsSubjects;
    /// let s = NsSubjects::new("socket.io", "/").unwrap();
    /// assert_eq!(s.room("lobby", "AAAAAAAAAAAAAAAA"), "socket.io._2F.room.lobby.AAAAAAAAAAAAAAAA");
    /// assert_eq!(s.room_filter("a.b"), "socket.io._2F.room.a_2Eb.*");
    /// ```
    pub fn room(&self, room: &str, origin: &str) -> String {
        format!("{}.room.{}.{origin}", self.base, token(room))
    }

    /// `{prefix}.{ns}.room.{room}.*`: what a node with members in `room` subscribes to.
    pub fn room_filter(&self, room: &str) -> String {
        format!("{}.room.{}.*", self.base, token(room))
    }

    /// `{prefix}.{ns}.room.*.*`: every room's broadcasts, for nodes without room
    /// routing, so that they still receive what routing nodes send.
    pub fn rooms_filter(&self) -> String {
        format!("{}.room.*.*", self.base)
    }

    /// The prefix of the reply subjects of `uid`, `{prefix}.{ns}.r.{uid}.`, used to
    /// route a response by the request id that follows it, without decoding it.
    pub fn reply_prefix(&self, uid: &str) -> String {
        format!("{}.r.{uid}.", self.base)
    }

    /// Whether `subject` is a reply subject of this namespace. Requests carry their
    /// reply subject; a node only answers to subjects inside its own namespace so a
    /// forged request cannot make it publish elsewhere.
    pub fn is_reply_subject(&self, subject: &str) -> bool {
        subject
            .strip_prefix(self.base.as_str())
            .and_then(|rest| rest.strip_prefix(".r."))
            .is_some_and(|rest| {
                let mut toks = rest.split('.');
                let ok =
                    |t: Option<&str>| t.is_some_and(|t| !t.is_empty() && t.bytes().all(is_plain));
                ok(toks.next()) && ok(toks.next()) && toks.next().is_none()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_single_safe_token(t: &str) -> bool {
        !t.is_empty() && t.len() <= 66.max(MAX_TOKEN_LEN) && t.bytes().all(is_plain)
    }

    #[test]
    fn hostile_names_become_one_safe_token() {
        let long = "é".repeat(3000);
        let names = [
            "",
            "*",
            ">",
            ".",
            "a.b",
            "a..b",
            "a b",
            "a\r\nb",
            "\t",
            "$SYS",
            "$SYS.>",
            "_",
            "_5F",
            "_h00",
            "%41",
            "😀",
            "日本語",
            "/chat.v2",
            "a>",
            "*.*",
            &long,
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            let t = token(n);
            assert!(is_single_safe_token(&t), "{n:?} -> {t:?}");
            assert!(seen.insert(t), "collision for {n:?}");
        }
    }

    #[test]
    fn the_examples_of_protocol_md() {
        assert_eq!(token("/"), "_2F");
        assert_eq!(token("/chat"), "_2Fchat");
        assert_eq!(token("/chat.v2"), "_2Fchat_2Ev2");
        assert_eq!(token("/*"), "_2F_2A");
        assert_eq!(token("/😀"), "_2F_F0_9F_98_80");
    }

    #[test]
    fn untoken_inverts_token() {
        for n in ["", "/", "*", "a.b", "_5F", "😀 x", "$SYS.>", "/chat.v2"] {
            assert_eq!(untoken(&token(n)).as_deref(), Some(n));
        }
        assert_eq!(untoken("_zz"), None);
        assert_eq!(untoken("a.b"), None);
    }

    #[test]
    fn escapes_are_injective_on_underscores() {
        assert_ne!(token("_"), token(""));
        assert_eq!(token("_"), "_5F");
        assert_ne!(token("_5F"), token("_"));
        assert_eq!(token("_5F"), "_5F5F");
    }

    #[test]
    fn long_names_are_hashed_with_a_stable_hash() {
        let t = token(&"x".repeat(5000));
        assert!(t.starts_with("_h"));
        assert_eq!(t.len(), 66);
        // SHA-256 is stable across Rust versions, unlike DefaultHasher.
        assert_eq!(t, token(&"x".repeat(5000)));
        assert_ne!(t, token(&"x".repeat(5001)));
    }

    #[test]
    fn boundary_of_the_hash() {
        let just_fits = "a".repeat(MAX_TOKEN_LEN);
        assert_eq!(token(&just_fits), just_fits);
        assert!(token(&"a".repeat(MAX_TOKEN_LEN + 1)).starts_with("_h"));
    }

    #[test]
    fn prefix_validation() {
        for ok in ["socket.io", "a", "my_app.v2", "A-B.c_d"] {
            assert!(validate_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "a.*",
            ">",
            "a b",
            "$SYS",
            "é",
            &"a".repeat(129),
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reply_subjects_are_confined_to_the_namespace() {
        let s = NsSubjects::new("socket.io", "/").unwrap();
        assert!(s.is_reply_subject(&s.reply("AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB")));
        assert!(!s.is_reply_subject("_INBOX.abc"));
        assert!(!s.is_reply_subject("socket.io._2F.r.x.>"));
        assert!(!s.is_reply_subject("socket.io._2F.r.x.y.z"));
        assert!(!s.is_reply_subject("socket.io._2Fa.r.x.y"));
        assert!(!s.is_reply_subject("socket.io._2F.b.x"));
    }
}
