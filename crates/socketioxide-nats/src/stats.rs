//! What the adapter did, dropped, refused or could not finish, counted per
//! namespace; with the `metrics` feature, also exported through the
//! [`metrics`](https://docs.rs/metrics) facade.
//!
//! Anyone who can publish on the prefix can send any well-formed message; the
//! adapter refuses what it cannot apply and keeps going. These counters make the
//! refusals visible (read them with [`NatsHandle::stats`](crate::NatsHandle::stats),
//! or scrape the exported metrics), since a log line per dropped message would
//! let a flood slow the node down.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// A snapshot of one namespace's counters, from [`NatsHandle::stats`](crate::NatsHandle::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterStats {
    /// Broadcasts this node published for the other nodes.
    pub broadcasts_sent: u64,
    /// Broadcasts from other nodes (or emitters) delivered to this node's sockets.
    pub broadcasts_received: u64,
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
    /// Times this node's NATS connection came back after a drop.
    pub reconnects: u64,
    /// With room routing: the rooms this node is subscribed to now.
    pub room_subscriptions: u64,
}

/// The live counters behind [`AdapterStats`].
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) broadcasts_sent: Counter,
    pub(crate) broadcasts_received: Counter,
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
    pub(crate) reconnects: Counter,
    room_subscriptions: AtomicU64,
    /// The namespace, as the `ns` label of exported metrics.
    #[cfg(feature = "metrics")]
    ns: String,
    #[cfg(feature = "metrics")]
    servers: metrics::Gauge,
    #[cfg(feature = "metrics")]
    room_subscriptions_gauge: metrics::Gauge,
}

/// How a request ended, as the `outcome` label of `socketioxide_nats_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Complete,
    Incomplete,
    NodeGone,
    Timeout,
    ConnectionLost,
    Unreachable,
    Closed,
}

impl Outcome {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Incomplete => "incomplete",
            Outcome::NodeGone => "node_gone",
            Outcome::Timeout => "timeout",
            Outcome::ConnectionLost => "connection_lost",
            Outcome::Unreachable => "unreachable",
            Outcome::Closed => "closed",
        }
    }
}

impl Stats {
    /// The counters of namespace `ns` (its path); exported metrics are labelled with it.
    pub(crate) fn new(ns: &str) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = ns;
        let dropped = |_reason: &'static str| {
            Counter::new(
                #[cfg(feature = "metrics")]
                metrics::counter!("socketioxide_nats_messages_dropped_total", "ns" => ns.to_owned(), "reason" => _reason),
            )
        };
        let counter = |_name: &'static str| {
            Counter::new(
                #[cfg(feature = "metrics")]
                metrics::counter!(_name, "ns" => ns.to_owned()),
            )
        };
        Self {
            broadcasts_sent: counter("socketioxide_nats_broadcasts_sent_total"),
            broadcasts_received: counter("socketioxide_nats_broadcasts_received_total"),
            malformed: dropped("malformed"),
            wrong_parser: dropped("wrong_parser"),
            forged: dropped("forged"),
            overloaded: dropped("overloaded"),
            ignored_responses: dropped("ignored_response"),
            rate_limited: dropped("rate_limited"),
            panics: dropped("panic"),
            probes: counter("socketioxide_nats_probes_total"),
            probes_failed: counter("socketioxide_nats_probes_failed_total"),
            // Also counted as request outcomes; kept for the snapshot.
            incomplete: Counter::new(
                #[cfg(feature = "metrics")]
                metrics::Counter::noop(),
            ),
            connection_lost: Counter::new(
                #[cfg(feature = "metrics")]
                metrics::Counter::noop(),
            ),
            reconnects: counter("socketioxide_nats_reconnects_total"),
            room_subscriptions: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            room_subscriptions_gauge: metrics::gauge!("socketioxide_nats_room_subscriptions", "ns" => ns.to_owned()),
            #[cfg(feature = "metrics")]
            ns: ns.to_owned(),
            #[cfg(feature = "metrics")]
            servers: metrics::gauge!("socketioxide_nats_servers", "ns" => ns.to_owned()),
        }
    }

    /// A request of `kind` ended with `outcome` after `took`.
    pub(crate) fn request_ended(&self, kind: &'static str, outcome: Outcome, took: Duration) {
        match outcome {
            Outcome::Incomplete => self.incomplete.inc(),
            Outcome::ConnectionLost => self.connection_lost.inc(),
            _ => {}
        }
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(
                "socketioxide_nats_requests_total",
                "ns" => self.ns.clone(), "kind" => kind, "outcome" => outcome.as_str()
            )
            .increment(1);
            metrics::histogram!(
                "socketioxide_nats_request_duration_seconds",
                "ns" => self.ns.clone(), "kind" => kind
            )
            .record(took.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (kind, took);
    }

    /// How many servers serve the namespace now, this one included.
    pub(crate) fn set_servers(&self, _count: usize) {
        #[cfg(feature = "metrics")]
        self.servers.set(_count as f64);
    }

    /// How many rooms this node is subscribed to now (room routing).
    pub(crate) fn set_room_subscriptions(&self, count: usize) {
        self.room_subscriptions
            .store(count as u64, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.room_subscriptions_gauge.set(count as f64);
    }

    pub(crate) fn snapshot(&self) -> AdapterStats {
        AdapterStats {
            broadcasts_sent: self.broadcasts_sent.get(),
            broadcasts_received: self.broadcasts_received.get(),
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
            reconnects: self.reconnects.get(),
            room_subscriptions: self.room_subscriptions.load(Ordering::Relaxed),
        }
    }
}

/// A counter of the snapshot, and of the exported metrics with the feature.
#[derive(Debug)]
pub(crate) struct Counter {
    value: AtomicU64,
    #[cfg(feature = "metrics")]
    metric: metrics::Counter,
}

impl Counter {
    fn new(#[cfg(feature = "metrics")] metric: metrics::Counter) -> Self {
        Self {
            value: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metric,
        }
    }

    pub(crate) fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.metric.increment(1);
    }

    fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}
