use std::time::Duration;

use socketioxide_core::{Uid, adapter::errors::AdapterError};
use socketioxide_nats_protocol::ProtocolError;

/// Everything that can go wrong in the adapter.
///
/// Socketioxide wraps it into an [`AdapterError`] for the operations it returns
/// from; downcast that to this type to match on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration or a message does not fit the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),

    /// NATS could not be reached within
    /// [`publish_timeout`](crate::NatsAdapterConfig::publish_timeout).
    #[error(
        "NATS is unreachable: could not {action} within {timeout:?} (connection {state}); check that nats-server is running and reachable, the adapter resumes by itself when it is back"
    )]
    Unreachable {
        /// What the adapter was doing.
        action: String,
        /// How long it waited.
        timeout: Duration,
        /// The client's connection state at the time.
        state: String,
    },

    /// NATS refused a publish.
    #[error("cannot publish to {subject}: {source}")]
    Publish {
        /// The subject of the message.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::PublishError,
    },

    /// NATS refused a subscription.
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject of the subscription.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::SubscribeError,
    },

    /// The encoded message is larger than the server accepts. Local sockets still
    /// received it; remote nodes did not.
    #[error(
        "message of {size} bytes exceeds the NATS server's max_payload of {max} bytes; send smaller payloads or raise max_payload in the nats-server configuration"
    )]
    PayloadTooLarge {
        /// The size of the encoded message.
        size: usize,
        /// The server's `max_payload`.
        max: usize,
    },

    /// A request aimed at one node found nobody listening: the node is gone.
    #[error(
        "node {node} is gone: NATS has no subscriber for it; fetch the sockets again to get live ones"
    )]
    NodeGone {
        /// The node that was targeted.
        node: Uid,
    },

    /// A request aimed at one node got no answer in time, although the node
    /// answers liveness probes: it is stuck, or the request or its answer was lost.
    #[error("node {node} did not answer within {timeout:?}")]
    Timeout {
        /// The node that was targeted.
        node: Uid,
        /// How long the adapter waited.
        timeout: Duration,
    },

    /// A cluster request (rooms, fetch sockets) reached its timeout while live
    /// nodes had not answered: what they would have said is missing, so no
    /// partial answer is returned as if complete.
    ///
    /// The missing nodes answer liveness probes but not the request: they are
    /// overloaded, or the request or their answers were lost. Retry; if it
    /// persists, look at those nodes (their logs name the request id). Nodes that
    /// crash or leave are not waited for: they never cause this error.
    #[error("request timed out after {timeout:?} without the answers of live nodes {missing:?}")]
    Incomplete {
        /// The live nodes whose answers are missing.
        missing: Vec<Uid>,
        /// How long the request waited.
        timeout: Duration,
    },

    /// The NATS connection dropped while a request waited for answers: answers
    /// sent meanwhile are lost (NATS core delivers at most once), so the request
    /// ends at once instead of returning a partial result. The adapter notices
    /// any reconnection, however short (a failover of a few milliseconds too).
    ///
    /// Retry once the connection is back: the client reconnects by itself.
    #[error("the NATS connection was lost while waiting for the other nodes' answers")]
    ConnectionLost,

    /// The adapter of this namespace was closed.
    #[error("the adapter is closed")]
    Closed,

    /// [`NatsHandle`](crate::NatsHandle) was asked about a namespace this server
    /// has not started (or has closed).
    #[error("namespace {ns:?} is not started on this server: await io.ns({ns:?}, ..) first")]
    NamespaceNotStarted {
        /// The namespace asked for.
        ns: String,
    },

    /// Data for a server-side event or custom request could not be encoded.
    #[error("cannot encode the data as MessagePack: {0}")]
    Encode(#[from] rmp_serde::encode::Error),

    /// Data of a server-side event, its ack or a custom request's answer could not
    /// be decoded into the requested type.
    #[error("cannot decode the MessagePack data into the requested type: {0}")]
    Decode(#[from] rmp_serde::decode::Error),

    /// Another node answered a server-side event or custom request with an error
    /// (no handler, no hook, or the hook failed).
    #[error("node {node} answered with an error: {reason}")]
    Remote {
        /// The node that answered.
        node: Uid,
        /// What it said.
        reason: String,
    },
}

impl From<Error> for AdapterError {
    fn from(err: Error) -> Self {
        AdapterError::from(Box::new(err) as Box<dyn std::error::Error + Send>)
    }
}
