use std::{borrow::Cow, time::Duration};

use socketioxide_nats_protocol::subjects::DEFAULT_PREFIX;

/// The configuration of the [`NatsAdapter`](crate::NatsAdapter).
///
/// Every node of a cluster must use the same [`prefix`](Self::prefix); the other
/// settings are local to each node.
///
/// ```
/// use std::time::Duration;
/// use socketioxide_nats::NatsAdapterConfig;
///
/// let config = NatsAdapterConfig::new()
///     .with_prefix("my-app")
///     .with_request_timeout(Duration::from_secs(2))
///     .with_heartbeat_interval(Duration::from_secs(2))
///     .with_heartbeat_timeout(Duration::from_secs(5));
/// assert_eq!(config.prefix, "my-app");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsAdapterConfig {
    /// The first tokens of every subject the adapter uses (the `key` option of the
    /// Node.js `socket.io-nats` and `socket.io-redis` adapters).
    /// Dot-separated tokens of ASCII letters, digits, `-` and `_`. Default is `"socket.io"`.
    ///
    /// Apps sharing a NATS server are isolated from each other by using different
    /// prefixes.
    pub prefix: Cow<'static, str>,

    /// How long a request (rooms, fetch sockets, a targeted join, leave or
    /// disconnect) waits for a node that is alive but does not answer. Default is 5 seconds.
    ///
    /// A request normally completes as soon as every live node has answered, so
    /// this only matters when a node is stuck or a message is lost.
    pub request_timeout: Duration,

    /// How often this node tells the others it is alive. Default is 5 seconds.
    pub heartbeat_interval: Duration,

    /// How long without any message from a node before it is considered dead and no
    /// longer waited for. Default is 10 seconds. Keep it above `heartbeat_interval`.
    pub heartbeat_timeout: Duration,

    /// The longest a publish may wait while NATS is unreachable before the emit or
    /// request fails with [`Error::Unreachable`](crate::Error::Unreachable).
    /// Default is 2 seconds.
    pub publish_timeout: Duration,

    /// How many responses to one request are kept while the caller does not poll
    /// them (for example acks of a large `emit_with_ack`). Default is 65 536.
    /// Responses past this bound are dropped with a warning.
    pub response_buffer: usize,

    /// How long a node has to answer a liveness probe. Default is 500 ms.
    ///
    /// A request still waiting for a node 50 ms after it started asks that node
    /// directly, on its own subject, whether it is alive. NATS answers at once when
    /// nobody listens there any more; when something else does (a monitor
    /// subscribed to `{prefix}.>`, a JetStream stream), only the node's own answer
    /// can tell, and a node that does not answer within this time is considered
    /// gone, exactly as after the heartbeat timeout. Raise it for nodes that can be
    /// busy for longer (a receive loop that falls behind answers late).
    pub probe_timeout: Duration,

    /// The longest time the sockets of a remote `emit_with_ack` get to answer on
    /// this node, whatever the sender asked for. Default is 5 minutes.
    ///
    /// Each remote broadcast with acks keeps a task alive until its sockets have
    /// answered or timed out: the bound keeps a sender (or any publisher on the
    /// prefix) from pinning them for days.
    pub max_ack_timeout: Duration,

    /// How many server-side event handlers and custom hooks may run at once for
    /// messages of other nodes, and separately how many remote `emit_with_ack`
    /// may wait for their acks at once. Default is 1 024. Past it, the message is
    /// dropped (the sender sees an error or a timeout) and counted in
    /// [`AdapterStats::overloaded`](crate::AdapterStats::overloaded).
    pub max_concurrent_work: usize,

    /// Room routing: a broadcast to exactly one room travels on a subject of that
    /// room, which only nodes with members in the room subscribe to, so a node
    /// receives the room traffic of its own rooms only. Default is off.
    ///
    /// See the crate documentation's "Room routing" section for the delivery
    /// guarantee (join with [`NatsHandle::join`](crate::NatsHandle::join) or
    /// `io.to(..).join(..)`), its cost, and mixed clusters.
    pub room_routing: bool,

    /// With [`room_routing`](Self::room_routing), how often the node compares its
    /// room subscriptions with the rooms its sockets are in: this catches a plain
    /// `socket.join` (which socketioxide does not tell adapters about) and drops
    /// the subscription of a room whose last local member left. Default is 1 second.
    pub room_reconcile_interval: Duration,
}

impl NatsAdapterConfig {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the subject prefix. Default is `"socket.io"`.
    pub fn with_prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Set the request timeout. Default is 5 seconds.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Set the heartbeat interval. Default is 5 seconds.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Set the heartbeat timeout. Default is 10 seconds.
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Set how long a publish may wait for an unreachable NATS. Default is 2 seconds.
    pub fn with_publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Set how many unread responses one request may buffer. Default is 65 536.
    /// A value of 0 is treated as 1.
    pub fn with_response_buffer(mut self, buffer: usize) -> Self {
        self.response_buffer = buffer.max(1);
        self
    }

    /// Set how long a node has to answer a liveness probe. Default is 500 ms.
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Set the longest ack timeout a remote `emit_with_ack` gets on this node.
    /// Default is 5 minutes.
    pub fn with_max_ack_timeout(mut self, timeout: Duration) -> Self {
        self.max_ack_timeout = timeout;
        self
    }

    /// Turn room routing on or off. Default is off.
    pub fn with_room_routing(mut self, on: bool) -> Self {
        self.room_routing = on;
        self
    }

    /// Set how often room subscriptions are reconciled with the local rooms.
    /// Default is 1 second; at least 10 ms.
    pub fn with_room_reconcile_interval(mut self, interval: Duration) -> Self {
        self.room_reconcile_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Set how much work other nodes' messages may start at once. Default is 1 024.
    /// A value of 0 is treated as 1.
    pub fn with_max_concurrent_work(mut self, max: usize) -> Self {
        self.max_concurrent_work = max.max(1);
        self
    }
}

impl Default for NatsAdapterConfig {
    fn default() -> Self {
        Self {
            prefix: Cow::Borrowed(DEFAULT_PREFIX),
            request_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(2),
            response_buffer: 65_536,
            probe_timeout: Duration::from_millis(500),
            max_ack_timeout: Duration::from_secs(300),
            max_concurrent_work: 1024,
            room_routing: false,
            room_reconcile_interval: Duration::from_secs(1),
        }
    }
}
