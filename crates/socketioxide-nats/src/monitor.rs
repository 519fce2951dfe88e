//! Watching the NATS connection: the recommended client settings, and counters
//! and logs of what the client reports.
//!
//! async-nats reports connection changes, slow consumers and server errors only
//! through a callback given when connecting, before the adapter exists; without
//! one, a subscription that overflows drops messages silently. The monitor is that
//! callback, in a form the application can keep and read.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_nats::{ClientError, ConnectOptions, Event, ServerError};

/// The ping interval of [`ConnectionMonitor::recommended_options`].
///
/// A server that stops answering (frozen, or behind a dead link that keeps the TCP
/// connection open) is detected after about three unanswered pings, so 6 s instead
/// of async-nats's default of 3 minutes.
pub const RECOMMENDED_PING_INTERVAL: Duration = Duration::from_secs(2);

/// The connection timeout of [`ConnectionMonitor::recommended_options`].
///
/// A reconnection attempt to a server that accepts TCP but never answers (a frozen
/// process) gives up after this long and moves on to the next server.
pub const RECOMMENDED_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Watches one NATS client: logs every event it reports with `tracing` and counts
/// them, so an application can read and export them.
///
/// Attach it when connecting, then keep a clone to read [`stats`](Self::stats):
///
/// ```no_run
/// use socketioxide_nats::{ConnectionMonitor, NatsAdapterCtr};
///
/// # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
/// let monitor = ConnectionMonitor::new();
/// let client = monitor
///     .recommended_options()
///     .name("socket.io node 1")
///     .connect("nats://127.0.0.1:4222")
///     .await?;
/// let ctr = NatsAdapterCtr::new_with_nats(client);
/// // ... later, e.g. in a metrics endpoint:
/// let stats = monitor.stats();
/// if stats.slow_consumers > 0 {
///     eprintln!("a subscription overflowed {} times: messages were dropped", stats.slow_consumers);
/// }
/// # Ok(()) }
/// ```
///
/// A *slow consumer* is a subscription whose buffer
/// ([`ConnectOptions::subscription_capacity`], 65 536 messages by default) was full
/// when a message arrived, because the node could not keep up: that message was
/// dropped. The monitor counts every drop and logs them at `warn` level, at most
/// one line per second so that an overloaded node is not slowed down further.
#[derive(Clone, Default)]
pub struct ConnectionMonitor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    connects: AtomicU64,
    disconnects: AtomicU64,
    slow_consumers: AtomicU64,
    lame_duck: AtomicU64,
    server_errors: AtomicU64,
    authorization_errors: AtomicU64,
    client_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// When a slow consumer was last logged, and how many drops were not logged
    /// since: async-nats reports every dropped message, and a log line per drop
    /// would slow an overloaded node down further.
    slow_log: Mutex<(Option<Instant>, u64)>,
}

/// At most one slow-consumer log line per this period.
const SLOW_LOG_PERIOD: Duration = Duration::from_secs(1);

/// What a [`ConnectionMonitor`] has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Connections established, the first one included.
    pub connects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Messages dropped because a subscription's buffer was full.
    pub slow_consumers: u64,
    /// Times the server announced it is shutting down (lame duck mode).
    pub lame_duck: u64,
    /// Errors sent by the server, authorization errors included.
    pub server_errors: u64,
    /// Authorization errors and permission violations: wrong credentials, or a
    /// subject the client's NATS user may not use.
    pub authorization_errors: u64,
    /// Errors of the client itself, e.g. giving up reconnecting.
    pub client_errors: u64,
    /// The last error reported by the server or the client, as text.
    pub last_error: Option<String>,
}

impl ConnectionMonitor {
    /// A monitor that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect options with the settings recommended for the adapter and this
    /// monitor attached.
    ///
    /// * [`ping_interval`](ConnectOptions::ping_interval)
    ///   [`RECOMMENDED_PING_INTERVAL`] and
    ///   [`connection_timeout`](ConnectOptions::connection_timeout)
    ///   [`RECOMMENDED_CONNECTION_TIMEOUT`]: a frozen server is left for another one
    ///   of the cluster within about 10 s.
    ///
    /// Everything else keeps async-nats's defaults (reconnect forever, fail at once
    /// if the first connection fails); chain more settings as usual.
    pub fn recommended_options(&self) -> ConnectOptions {
        self.attach(
            ConnectOptions::new()
                .ping_interval(RECOMMENDED_PING_INTERVAL)
                .connection_timeout(RECOMMENDED_CONNECTION_TIMEOUT),
        )
    }

    /// Attach this monitor to `options`, replacing any event callback set before.
    pub fn attach(&self, options: ConnectOptions) -> ConnectOptions {
        let inner = self.inner.clone();
        options.event_callback(move |event| {
            let inner = inner.clone();
            async move { inner.record(event) }
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ConnectionStats {
        let i = &self.inner;
        ConnectionStats {
            connects: i.connects.load(Ordering::Relaxed),
            disconnects: i.disconnects.load(Ordering::Relaxed),
            slow_consumers: i.slow_consumers.load(Ordering::Relaxed),
            lame_duck: i.lame_duck.load(Ordering::Relaxed),
            server_errors: i.server_errors.load(Ordering::Relaxed),
            authorization_errors: i.authorization_errors.load(Ordering::Relaxed),
            client_errors: i.client_errors.load(Ordering::Relaxed),
            last_error: i
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl Inner {
    fn record(&self, event: Event) {
        #[cfg(feature = "metrics")]
        metrics::counter!("socketioxide_nats_connection_events_total", "event" => event_name(&event))
            .increment(1);
        match &event {
            Event::Connected => {
                self.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!("NATS connected");
            }
            Event::Disconnected => {
                self.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("NATS disconnected; the client reconnects by itself");
            }
            Event::LameDuckMode => {
                self.lame_duck.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "NATS server entered lame duck mode: it will close this connection soon"
                );
            }
            Event::Draining | Event::Closed => tracing::info!(%event, "NATS connection"),
            Event::SlowConsumer(sid) => {
                let total = self.slow_consumers.fetch_add(1, Ordering::Relaxed) + 1;
                let mut log = self.slow_log.lock().unwrap_or_else(|e| e.into_inner());
                log.1 += 1;
                if log.0.is_none_or(|at| at.elapsed() >= SLOW_LOG_PERIOD) {
                    tracing::warn!(
                        sid,
                        dropped = log.1,
                        total,
                        "NATS slow consumer: a subscription's buffer was full and messages were \
                         dropped; the node cannot keep up (raise ConnectOptions::subscription_capacity \
                         or give it more CPU)"
                    );
                    *log = (Some(Instant::now()), 0);
                }
            }
            Event::ServerError(err) => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                let authorization = match err {
                    ServerError::AuthorizationViolation => true,
                    ServerError::Other(msg) => {
                        let msg = msg.to_ascii_lowercase();
                        msg.contains("permissions violation") || msg.contains("authorization")
                    }
                    ServerError::SlowConsumer(_) => false,
                };
                if authorization {
                    self.authorization_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        error = %err,
                        "NATS refused: check the credentials, and that the NATS user may publish and \
                         subscribe on the adapter's prefix (`{{prefix}}.>`)"
                    );
                } else {
                    tracing::error!(error = %err, "NATS server error");
                }
                self.set_last_error(err.to_string());
            }
            Event::ClientError(err) => {
                self.client_errors.fetch_add(1, Ordering::Relaxed);
                match err {
                    ClientError::MaxReconnects => tracing::error!(
                        "NATS client gave up reconnecting (max_reconnects reached): the adapter stays offline"
                    ),
                    other => tracing::error!(error = %other, "NATS client error"),
                }
                self.set_last_error(err.to_string());
            }
        }
    }

    fn set_last_error(&self, text: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }
}

/// The `event` label of `socketioxide_nats_connection_events_total`.
#[cfg(feature = "metrics")]
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Connected => "connected",
        Event::Disconnected => "disconnected",
        Event::LameDuckMode => "lame_duck",
        Event::Draining => "draining",
        Event::Closed => "closed",
        Event::SlowConsumer(_) => "slow_consumer",
        Event::ServerError(_) => "server_error",
        Event::ClientError(_) => "client_error",
    }
}

impl fmt::Debug for ConnectionMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionMonitor")
            .field("stats", &self.stats())
            .finish()
    }
}
