//! Publishing with a bound: what the adapter and the emitter do for every message.
//!
//! async-nats's `publish` waits while the client's queue is full or the client
//! reconnects, without limit. A socket.io server must not stall its callers that
//! way, so every publish here either completes, fails at once (payload too large,
//! client closed), or fails after `bound`.

use std::time::Duration;

use async_nats::{Client, PublishError, Subject, connection::State};
use bytes::Bytes;
use futures_util::FutureExt;
use tokio::time::Instant;

/// Why a message was not published. Each crate turns it into its own error type.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishFailure {
    /// The payload is larger than the server's `max_payload`.
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The server's `max_payload`.
        max: usize,
    },
    /// The client was not connected, or its queue stayed full, for the whole bound.
    Unreachable {
        /// The client's connection state when giving up.
        state: State,
    },
    /// The client refused the message (it was closed).
    Refused(PublishError),
}

/// Publish `payload` to `subject` (with `reply`), within `bound`.
///
/// The common case, a connected client with room in its queue, takes no clock
/// reading and no timer: the publish completes on its first poll. Profiling
/// showed the timer alone at about 5 % of a broadcast's instructions.
pub async fn publish_bounded(
    client: &Client,
    subject: Subject,
    reply: Option<Subject>,
    payload: Bytes,
    bound: Duration,
) -> Result<(), PublishFailure> {
    let max = client.max_payload();
    if payload.len() > max {
        return Err(PublishFailure::TooLarge {
            size: payload.len(),
            max,
        });
    }
    let mut deadline = None;
    if client.connection_state() != State::Connected {
        let by = deadline_after(bound);
        if !connected_by(client, by).await {
            return Err(PublishFailure::Unreachable {
                state: client.connection_state(),
            });
        }
        deadline = Some(by);
    }
    let publish = async {
        match reply {
            Some(reply) => client.publish_with_reply(subject, reply, payload).await,
            None => client.publish(subject, payload).await,
        }
    };
    let mut publish = std::pin::pin!(publish);
    let outcome = match publish.as_mut().now_or_never() {
        Some(res) => Ok(res),
        None => {
            let by = deadline.unwrap_or_else(|| deadline_after(bound));
            tokio::time::timeout_at(by, publish).await
        }
    };
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(PublishFailure::Refused(source)),
        Err(_) => Err(PublishFailure::Unreachable {
            state: client.connection_state(),
        }),
    }
}

/// Wait until the client is connected, at most until `deadline`.
pub async fn connected_by(client: &Client, deadline: Instant) -> bool {
    while client.connection_state() != State::Connected {
        if Instant::now() >= deadline {
            return false;
        }
        // The client exposes its state but no way to await it: poll.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// `now + d`, saturated: a caller may ask for `Duration::MAX`, which `Instant`
/// cannot represent (adding it panics).
pub fn deadline_after(d: Duration) -> Instant {
    saturating_add(Instant::now(), d)
}

/// `at + d`, or about thirty years after `at` when that overflows (what tokio
/// itself uses for "never").
pub fn saturating_add(at: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    at.checked_add(d.min(FAR))
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let now = Instant::now();
        assert!(saturating_add(now, Duration::MAX) > now + Duration::from_secs(86_400 * 365));
        assert_eq!(
            saturating_add(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let _ = deadline_after(Duration::MAX);
    }
}
