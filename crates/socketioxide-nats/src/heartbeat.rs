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

/// After the first `Hello`, repeat it at these delays: in a NATS cluster a new
/// subscription takes up to a few hundred milliseconds to reach every server, and
/// the answers to the first `Hello` may be lost meanwhile.
const HELLO_REPEATS: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(1500)];

/// When to check that nodes sharing this node's connection can hear it: by then
/// its hellos, if echoed at all, have come back.
const ECHO_CHECK: Duration = Duration::from_secs(2);

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
    let mut hellos = HELLO_REPEATS.iter().map(|d| start + *d);
    let mut next_hello = hellos.next();
    let mut last_state = State::Connected;
    let mut beats_failing = false;
    let mut echo_checked = false;

    loop {
        let hello_at = next_hello.unwrap_or_else(|| start + Duration::from_secs(86_400 * 365));
        tokio::select! {
            _ = tokio::time::sleep_until(start + ECHO_CHECK), if !echo_checked => {
                echo_checked = true;
                let Some(a) = adapter.upgrade() else { return };
                if let Some(users) = a.deaf_to_siblings() {
                    tracing::warn!(
                        ns = %a.subjects().base(),
                        servers = users,
                        "{users} socket.io servers of this process share one NATS connection built with no_echo: \
                         they never receive each other's messages. Give each server its own connection, or keep echo on"
                    );
                }
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
            _ = tokio::time::sleep_until(hello_at), if next_hello.is_some() => {
                let Some(a) = adapter.upgrade() else { return };
                send(&a, RequestOutBody::Hello).await;
                next_hello = hellos.next();
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
