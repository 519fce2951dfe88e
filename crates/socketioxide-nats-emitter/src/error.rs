use std::time::Duration;

use socketioxide_core::{Uid, parser::ParserError};
use socketioxide_nats_protocol::{ProtocolError, publish::PublishFailure};

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

    /// A request (fetch sockets, rooms, acks) reached its timeout while live
    /// servers had not answered: what they would have said is missing, so no
    /// partial answer is returned as if it were complete.
    ///
    /// The missing servers answer liveness probes but not the request: they are
    /// overloaded, or the request or their answers were lost. Retry; if it
    /// persists, look at those servers. Servers that crashed or left are not
    /// waited for (a probe finds them gone): they never cause this error. A
    /// server count and the node list are not affected: they return the servers
    /// that answered.
    #[error(
        "request timed out after {timeout:?} without the answers of live servers {}",
        uid_list(missing)
    )]
    Incomplete {
        /// The live servers whose answers are missing.
        missing: Vec<Uid>,
        /// How long the request waited.
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

impl EmitError {
    /// A failed publish to `subject`, bounded by `bound`, in the terms this
    /// crate's users already match on.
    pub(crate) fn from_publish(subject: &str, bound: Duration, failure: PublishFailure) -> Self {
        match failure {
            PublishFailure::TooLarge { size, max } => EmitError::PayloadTooLarge { size, max },
            PublishFailure::Refused(source) => EmitError::Publish {
                subject: subject.to_owned(),
                source,
            },
            PublishFailure::Unreachable { state } => EmitError::Unreachable {
                action: format!("publish to {subject}"),
                timeout: bound,
                state: state.to_string(),
            },
            // A failure added to the shared publish later: not published, with
            // the reason kept.
            other => EmitError::Unreachable {
                action: format!("publish to {subject} ({other:?})"),
                timeout: bound,
                state: "unknown".to_owned(),
            },
        }
    }
}

fn uid_list(uids: &[Uid]) -> String {
    let ids: Vec<&str> = uids.iter().map(|u| u.as_str()).collect();
    ids.join(", ")
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
