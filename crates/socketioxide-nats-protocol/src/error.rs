use thiserror::Error;

/// Why a prefix was refused or a received message could not be decoded.
///
/// Decoding errors are expected on a shared NATS server (a foreign publisher, a
/// node running a newer protocol): the adapter logs them and drops the message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The configured subject prefix cannot be used.
    #[error(
        "invalid subject prefix {prefix:?}: {reason}; use dot-separated tokens of ASCII letters, digits, '-' and '_', such as \"socket.io\""
    )]
    InvalidPrefix {
        /// The refused prefix (cut to 128 characters).
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message ended in the middle of a field.
    #[error("truncated message: it ends inside the {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// A field has the wrong MessagePack type.
    #[error("malformed message: unexpected MessagePack marker 0x{marker:02x} for the {what}")]
    Unexpected {
        /// The field being read.
        what: &'static str,
        /// The MessagePack marker byte found instead.
        marker: u8,
    },
    /// A length prefix claims more elements than the message holds.
    #[error("malformed message: the {what} claims {len} elements, more than the message holds")]
    LengthTooLarge {
        /// The field being read.
        what: &'static str,
        /// The claimed length.
        len: usize,
    },
    /// A number does not fit its field.
    #[error("malformed message: the {what} is out of range")]
    OutOfRange {
        /// The field being read.
        what: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("malformed message: the {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
    },
    /// An id is not a 16-character url-safe base64 socketioxide id.
    #[error("malformed message: the {what} is not a socketioxide id")]
    InvalidId {
        /// The field being read.
        what: &'static str,
    },
    /// An enumerated field holds an unknown value.
    #[error("malformed message: unknown {what} {value}")]
    InvalidTag {
        /// The field being read.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// Nested values go deeper than the decoder follows.
    #[error("malformed message: values nested too deeply")]
    TooDeep,
    /// The message was written by another major version of the protocol.
    #[error(
        "message uses protocol version {version}, this node speaks version {}; run the same major version of socketioxide-nats on every node",
        crate::VERSION
    )]
    UnsupportedVersion {
        /// The version found in the message.
        version: u64,
    },
    /// The message type is unknown to this version (a newer node sent it).
    #[error("unknown message type {kind}; it was probably sent by a newer node")]
    UnknownKind {
        /// The type found in the message.
        kind: u64,
    },
}
