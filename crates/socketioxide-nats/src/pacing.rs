//! When a broadcast should let the NATS connection write before the local fan-out.
//!
//! `Client::publish` only queues the message for async-nats's connection task. The
//! wake-up puts that task in the current worker's LIFO slot, which other workers
//! cannot steal, so the message reaches the wire only once the broadcasting task
//! yields: after the local fan-out, which takes tens of microseconds with a few
//! dozen sockets. Every remote client waits that long. Yielding right after the
//! publish lets the connection task write first; but a yield is a trip through
//! the scheduler, and during a burst the connection task is awake anyway, so
//! there it only costs throughput. Hence: yield when the previous broadcast is
//! long gone, not when broadcasts follow each other closely.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Broadcasts closer together than this count as a burst.
const BURST_GAP: Duration = Duration::from_micros(200);

#[derive(Debug)]
pub(crate) struct Pacing {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last broadcast.
    last: AtomicU64,
}

impl Pacing {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Record a broadcast; tell whether it should yield after its publish.
    pub(crate) fn should_yield(&self) -> bool {
        // Saturates after 584 years of uptime.
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.should_yield_at(now)
    }

    fn should_yield_at(&self, now_ns: u64) -> bool {
        let last = self.last.swap(now_ns, Ordering::Relaxed);
        now_ns.saturating_sub(last) >= BURST_GAP.as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_after_a_pause_not_within_a_burst() {
        let p = Pacing::new();
        let gap = BURST_GAP.as_nanos() as u64;
        assert!(
            p.should_yield_at(gap),
            "the first broadcast after a pause yields"
        );
        assert!(
            !p.should_yield_at(gap + 1),
            "the next one, at once, is part of a burst"
        );
        assert!(
            !p.should_yield_at(2 * gap),
            "a burst goes on while the gaps stay short"
        );
        assert!(
            p.should_yield_at(3 * gap),
            "a pause as long as the gap ends it"
        );
    }
}
