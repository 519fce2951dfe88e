use std::time::Duration;

use socketioxide_core::parser::ParserError;
use socketioxide_nats_protocol::ProtocolError;

/// Everything that can go wrong when emitting into the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The prefix is not a valid subject prefix, or an answer was malformed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),

    /// socket.io reserves this event name for its own use.
    #[error(
        "{0:?} is a reserved socket.io event name (connect, connect_error, disconnect, disconnecting, newListener, removeListener): pick another name"
    )]
    ReservedEvent(String),

    /// The data could not be encoded by the socket.io parser.
    #[error("cannot encode the event data: {0}")]
    Serialize(#[from] ParserError),

    /// Data for a server-side event could not be encoded as MessagePack.
    #[error("cannot encode the data as MessagePack: {0}")]
    Encode(#[from] rmp_serde::encode::Error),

    /// NATS refused or could not take the message.
    #[error("cannot publish to {subject}: {source}")]
    Publish {
        /// The subject of the message.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::PublishError,
    },

    /// NATS refused the subscription for the answers.
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject of the subscription.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::SubscribeError,
    },

    /// NATS could not be reached in time.
    #[error(
        "NATS is unreachable: could not {action} within {timeout:?} (connection {state}); check the server URL and that nats-server is running"
    )]
    Unreachable {
        /// What the emitter was doing.
        action: String,
        /// How long it waited.
        timeout: Duration,
        /// The client's connection state.
        state: String,
    },

    /// No socket.io server serves this namespace under this prefix (NATS reported
    /// no subscriber).
    #[error(
        "no socket.io server serves namespace {ns:?} with prefix {prefix:?}: check the prefix and that the servers started the namespace"
    )]
    NoServers {
        /// The namespace.
        ns: String,
        /// The prefix.
        prefix: String,
    },

    /// No socket.io server answered in time.
    #[error("no socket.io server of namespace {ns:?} answered within {timeout:?}")]
    Timeout {
        /// The namespace.
        ns: String,
        /// How long the emitter waited.
        timeout: Duration,
    },

    /// The message is larger than the NATS server accepts.
    #[error(
        "message of {size} bytes exceeds the NATS server's max_payload of {max} bytes; send smaller payloads or raise max_payload"
    )]
    PayloadTooLarge {
        /// The encoded size.
        size: usize,
        /// The server's limit.
        max: usize,
    },
}

/// Why a socket's ack did not come.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer within the ack timeout.
    #[error("the client did not acknowledge in time")]
    Timeout,
    /// The ack arrived but could not be decoded into the requested type.
    #[error("cannot decode the ack: {0}")]
    Decode(String),
    /// Any other failure reported by the server (such as a closed socket).
    #[error("the server reported: {0}")]
    Other(String),
}
