//! What the adapter dropped, refused or could not finish, counted per namespace.
//!
//! Anyone who can publish on the prefix can send any well-formed message; the
//! adapter refuses what it cannot apply and keeps going. These counters make the
//! refusals visible (read them with [`NatsHandle::stats`](crate::NatsHandle::stats)),
//! since a log line per dropped message would let a flood slow the node down.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one namespace's counters, from [`NatsHandle::stats`](crate::NatsHandle::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterStats {
    /// Messages that could not be decoded (another protocol version, garbage).
    pub malformed: u64,
    /// Broadcast packets this node cannot deliver: their payload is in the form of
    /// the other socket.io parser, they are not events, or they name another
    /// namespace. Every node of a cluster, and every emitter, must use the same parser.
    pub wrong_parser: u64,
    /// Messages whose sender is not who the subject says, or that claim to come
    /// from this node.
    pub forged: u64,
    /// Work refused past a bound: handlers, answers and ack forwarders over
    /// [`max_concurrent_work`](crate::NatsAdapterConfig::max_concurrent_work), or
    /// responses over a request's [`response_buffer`](crate::NatsAdapterConfig::response_buffer).
    pub overloaded: u64,
    /// Responses a request did not wait for: from nodes it did not ask, duplicates,
    /// or late.
    pub ignored_responses: u64,
    /// Hellos and heartbeats of unknown nodes not answered or probed because they
    /// came faster than the rate limit.
    pub rate_limited: u64,
    /// Liveness probes sent.
    pub probes: u64,
    /// Nodes found gone by a probe (nobody listening on their subject, or no answer
    /// within [`probe_timeout`](crate::NatsAdapterConfig::probe_timeout)), including
    /// ids that were never real nodes.
    pub probes_failed: u64,
    /// Messages whose handling panicked; the panic was caught and the message dropped.
    pub panics: u64,
    /// Requests that ended at their timeout while live nodes had not answered
    /// (they failed with [`Error::Incomplete`](crate::Error::Incomplete), or, for
    /// an ack stream, ended without those nodes' acks).
    pub incomplete: u64,
    /// Requests that failed because this node's NATS connection dropped meanwhile.
    pub connection_lost: u64,
}

/// The live counters behind [`AdapterStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) malformed: Counter,
    pub(crate) wrong_parser: Counter,
    pub(crate) forged: Counter,
    pub(crate) overloaded: Counter,
    pub(crate) ignored_responses: Counter,
    pub(crate) rate_limited: Counter,
    pub(crate) probes: Counter,
    pub(crate) probes_failed: Counter,
    pub(crate) panics: Counter,
    pub(crate) incomplete: Counter,
    pub(crate) connection_lost: Counter,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> AdapterStats {
        AdapterStats {
            malformed: self.malformed.get(),
            wrong_parser: self.wrong_parser.get(),
            forged: self.forged.get(),
            overloaded: self.overloaded.get(),
            ignored_responses: self.ignored_responses.get(),
            rate_limited: self.rate_limited.get(),
            probes: self.probes.get(),
            probes_failed: self.probes_failed.get(),
            panics: self.panics.get(),
            incomplete: self.incomplete.get(),
            connection_lost: self.connection_lost.get(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
