//! Node liveness: announce this node, beat at an interval, forget silent nodes.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use async_nats::connection::State;
use socketioxide_core::adapter::SocketEmitter;
use socketioxide_nats_protocol::message::{RequestOut, RequestOutBody};
use tokio::time::{Instant, MissedTickBehavior};

use crate::NatsAdapter;

/// What the heartbeat task does once, at a delay after the first `Hello`.
#[derive(Clone, Copy)]
enum Step {
    /// Repeat the `Hello`: in a NATS cluster a new subscription takes up to a few
    /// hundred milliseconds to reach every server, and the answers to the first
    /// `Hello` may be lost meanwhile.
    Hello,
    /// Warn if nodes sharing this node's connection cannot hear it: by then its
    /// hellos, if echoed at all, have come back.
    CheckEcho,
}

/// The start-up steps, in order of their delay.
const STEPS: [(Duration, Step); 3] = [
    (Duration::from_millis(300), Step::Hello),
    (Duration::from_millis(1500), Step::Hello),
    (Duration::from_secs(2), Step::CheckEcho),
];

/// Announce the node and spawn the heartbeat task.
pub(crate) async fn start<E: SocketEmitter>(adapter: &Arc<NatsAdapter<E>>) {
    send(adapter, RequestOutBody::Hello).await;
    let task = tokio::spawn(run(Arc::downgrade(adapter)));
    adapter.track(task.abort_handle());
}

async fn send<E: SocketEmitter>(adapter: &NatsAdapter<E>, body: RequestOutBody<'static>) -> bool {
    let payload = RequestOut {
        origin: adapter.uid(),
        id: None,
        body,
    }
    .encode();
    let subject = adapter.subjects().broadcast(adapter.uid().as_str());
    match adapter.publish(subject.into(), None, payload).await {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "cannot send a heartbeat");
            false
        }
    }
}

async fn run<E: SocketEmitter>(adapter: Weak<NatsAdapter<E>>) {
    let (interval, timeout) = match adapter.upgrade() {
        Some(a) => (a.config().heartbeat_interval, a.config().heartbeat_timeout),
        None => return,
    };
    let interval = interval.max(Duration::from_millis(10));
    let start = Instant::now();
    let mut beat = tokio::time::interval_at(start + interval, interval);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Detect dead nodes within a tenth of the timeout after it expires.
    let sweep_every = (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut steps = STEPS.iter();
    let mut next_step = steps.next();
    let mut last_state = State::Connected;
    let mut beats_failing = false;

    loop {
        let step_at = next_step.map_or(start, |(delay, _)| start + *delay);
        tokio::select! {
            _ = tokio::time::sleep_until(step_at), if next_step.is_some() => {
                // The branch only runs while a step is left.
                let (Some(a), Some(&(_, step))) = (adapter.upgrade(), next_step) else { return };
                match step {
                    Step::Hello => {
                        send(&a, RequestOutBody::Hello).await;
                    }
                    Step::CheckEcho => {
                        if let Some(users) = a.deaf_to_siblings() {
                            tracing::warn!(
                                ns = %a.subjects().base(),
                                servers = users,
                                "{users} socket.io servers of this process share one NATS connection built with no_echo: \
                                 they never receive each other's messages. Give each server its own connection, or keep echo on"
                            );
                        }
                    }
                }
                next_step = steps.next();
            }
            _ = beat.tick() => {
                let Some(a) = adapter.upgrade() else { return };
                let ok = send(&a, RequestOutBody::Heartbeat).await;
                if ok == beats_failing {
                    beats_failing = !ok;
                    if ok {
                        tracing::info!(ns = %a.subjects().base(), "heartbeats resumed");
                    } else {
                        tracing::warn!(ns = %a.subjects().base(), "cannot send heartbeats: NATS is unreachable");
                    }
                }
            }
            _ = sweep.tick() => {
                let Some(a) = adapter.upgrade() else { return };
                if a.is_closed() {
                    return;
                }
                let state = a.client().connection_state();
                // While this node is cut off, the others' silence says nothing
                // about them: only prune with a working connection.
                if state == State::Connected {
                    for node in a.nodes.prune() {
                        tracing::warn!(ns = %a.subjects().base(), %node, ?timeout, "node timed out: nothing heard from it");
                        a.requests.node_left(node);
                    }
                }
                if state != last_state {
                    match state {
                        State::Connected => {
                            tracing::info!(ns = %a.subjects().base(), "NATS connection restored");
                            a.nodes.refresh_all();
                            // Other nodes may have timed this one out meanwhile.
                            send(&a, RequestOutBody::Hello).await;
                        }
                        _ => {
                            tracing::warn!(ns = %a.subjects().base(), %state, "NATS connection lost; publishing fails after the publish timeout until it is back");
                            // Waiting requests would otherwise wait for answers
                            // that were lost with the connection.
                            a.requests.connection_lost();
                        }
                    }
                    last_state = state;
                }
            }
        }
    }
}
