//! Waiting for the answers of one cluster request: the one place that decides
//! when a request is complete, failed, or timed out.
//!
//! Which node still owes what is the protocol crate's [`Tracker`] (shared with the
//! emitter). The [`Waiter`] feeds it the request's events and adds what needs time
//! and this node's state:
//!
//! * every 50 ms, the nodes that have sent nothing yet are handed to
//!   [`Liveness::suspect`], which probes them: a crashed node is found gone within
//!   a probe, not at the request timeout;
//! * a node leaving ([`Event::NodeLeft`]) stops the wait for it; for a request to
//!   one node, that node leaving, or NATS's "no responders", is
//!   [`Error::NodeGone`];
//! * if this node's connection changed since the request was published (however
//!   briefly it was down), answers may have been lost: the request fails with
//!   [`Error::ConnectionLost`] rather than returning a partial answer as complete;
//! * at the deadline, a request still missing live nodes fails with
//!   [`Error::Incomplete`] naming them ([`Error::Timeout`] for a request to one node).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use socketioxide_core::Uid;
use socketioxide_nats_protocol::{
    completion::{Expect, Tracker, Verdict},
    message::{ResponseBody, ResponseIn, decode_response},
    publish::saturating_add,
};
use tokio::time::{Instant, Sleep};

use crate::{
    Error,
    liveness::{Liveness, Suspicion},
    requests::{Event, Pending, is_no_responders},
    stats::Outcome,
};

/// How long a request waits for a node's first answer before probing it.
pub(crate) const PROBE_AFTER: Duration = Duration::from_millis(50);

/// What waiting produced.
#[derive(Debug)]
pub(crate) enum Step {
    /// An answer the request waited for (for acks: a count or an ack).
    Answer(ResponseIn),
    /// The request is over.
    End(Result<(), Error>),
}

/// One request's wait for its answers.
pub(crate) struct Waiter {
    pending: Pending,
    tracker: Tracker,
    liveness: Arc<Liveness>,
    target: Option<Uid>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    check: Pin<Box<Sleep>>,
    /// The connection the request was published on.
    epoch: Option<u64>,
    ended: bool,
    /// For the request metrics: what it asks, and since when.
    kind: &'static str,
    started: Instant,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("req_id", &self.pending.id)
            .field("owing", &self.tracker.owing())
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Waiter {
    /// Wait for `nodes` (or the one `target`) to answer request `pending`, which
    /// was published on connection `epoch`, at most `timeout`.
    pub(crate) fn new(
        pending: Pending,
        expect: Expect,
        nodes: Vec<Uid>,
        target: Option<Uid>,
        liveness: Arc<Liveness>,
        epoch: Option<u64>,
        timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            pending,
            tracker: Tracker::new(expect, nodes),
            liveness,
            target,
            timeout,
            deadline: Box::pin(tokio::time::sleep_until(saturating_add(now, timeout))),
            check: Box::pin(tokio::time::sleep_until(now + PROBE_AFTER)),
            epoch,
            ended: false,
            kind: "request",
            started: now,
        }
    }

    /// Label the request's metrics with `kind`, counting its duration from `started`.
    pub(crate) fn kind(mut self, kind: &'static str, started: Instant) -> Self {
        self.kind = kind;
        self.started = started;
        self
    }

    /// Whether `node` has sent nothing yet.
    pub(crate) fn is_silent(&self, node: Uid) -> bool {
        self.tracker.is_silent(node)
    }

    /// The next answer, or the end of the request.
    pub(crate) fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if self.ended {
            return Poll::Ready(Step::End(Ok(())));
        }
        loop {
            if self.tracker.is_complete() {
                return Poll::Ready(self.end(Ok(())));
            }
            match self.pending.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    if let Some(step) = self.on_event(event) {
                        return Poll::Ready(step);
                    }
                    continue;
                }
                Poll::Ready(None) => return Poll::Ready(self.end(Err(Error::Closed))),
                Poll::Pending => {}
            }
            if self.deadline.as_mut().poll(cx).is_ready() {
                let err = self.failure_at_deadline();
                return Poll::Ready(self.end(Err(err)));
            }
            if self.check.as_mut().poll(cx).is_ready() {
                if self.liveness.epoch() != self.epoch {
                    return Poll::Ready(self.end(Err(Error::ConnectionLost)));
                }
                for node in self.tracker.owing() {
                    if self.tracker.is_silent(node) {
                        self.liveness.suspect(node, Suspicion::Silent);
                    }
                }
                let next = Instant::now() + PROBE_AFTER;
                self.check.as_mut().reset(next);
                continue;
            }
            return Poll::Pending;
        }
    }

    /// Wait for the next step.
    pub(crate) async fn step(&mut self) -> Step {
        std::future::poll_fn(|cx| self.poll_step(cx)).await
    }

    /// End the request: record its outcome, log what went wrong.
    fn end(&mut self, res: Result<(), Error>) -> Step {
        self.ended = true;
        let outcome = match &res {
            Ok(()) => Outcome::Complete,
            Err(Error::ConnectionLost) => Outcome::ConnectionLost,
            Err(Error::Incomplete { .. }) => Outcome::Incomplete,
            Err(Error::NodeGone { .. }) => Outcome::NodeGone,
            Err(Error::Timeout { .. }) => Outcome::Timeout,
            Err(_) => Outcome::Closed,
        };
        self.liveness
            .stats()
            .request_ended(self.kind, outcome, self.started.elapsed());
        match &res {
            Ok(()) => {}
            Err(Error::ConnectionLost) => {
                tracing::warn!(req_id = %self.pending.id, owing = ?self.tracker.owing(), "NATS connection lost during a request: answers may be lost");
            }
            Err(Error::Incomplete { missing, timeout }) => {
                tracing::warn!(req_id = %self.pending.id, ?missing, ?timeout, "request timed out waiting for live nodes");
            }
            Err(error) => tracing::debug!(req_id = %self.pending.id, %error, "request failed"),
        }
        Step::End(res)
    }

    fn failure_at_deadline(&self) -> Error {
        if self.liveness.epoch() != self.epoch {
            return Error::ConnectionLost;
        }
        match self.target {
            Some(node) => Error::Timeout {
                node,
                timeout: self.timeout,
            },
            None => Error::Incomplete {
                missing: self.tracker.owing(),
                timeout: self.timeout,
            },
        }
    }

    fn on_event(&mut self, event: Event) -> Option<Step> {
        let msg = match event {
            Event::NodeLeft(uid) => {
                if self.target == Some(uid) {
                    return Some(self.end(Err(Error::NodeGone { node: uid })));
                }
                if self.tracker.gone(uid) {
                    tracing::debug!(req_id = %self.pending.id, node = %uid, "stop waiting for a node that left");
                }
                return None;
            }
            Event::Reply(msg) => msg,
        };
        if is_no_responders(&msg) {
            return match self.target {
                Some(node) => Some(self.end(Err(Error::NodeGone { node }))),
                // Nobody at all listens on the broadcast subject: no node is left.
                None => {
                    for node in self.tracker.owing() {
                        self.tracker.gone(node);
                    }
                    None
                }
            };
        }
        let res = match decode_response(msg.payload) {
            Ok(res) => res,
            Err(error) => {
                self.liveness.stats().malformed.inc();
                tracing::debug!(req_id = %self.pending.id, %error, "undecodable response dropped");
                return None;
            }
        };
        match self.tracker.on_response(&res) {
            Verdict::Accept => {
                // Acks are many; their count already proved the node.
                if !matches!(res.body, ResponseBody::Ack { .. }) {
                    self.liveness.answered(res.origin);
                }
                Some(Step::Answer(res))
            }
            Verdict::Ignore(why) => {
                self.liveness.stats().ignored_responses.inc();
                tracing::debug!(req_id = %self.pending.id, node = %res.origin, why = why.as_str(), "response ignored");
                None
            }
        }
    }
}

/// Collect the answers of a request expecting one answer per node.
pub(crate) async fn gather(
    mut waiter: Waiter,
) -> Result<Vec<ResponseIn>, (Error, Vec<ResponseIn>)> {
    let mut answers = Vec::new();
    loop {
        match waiter.step().await {
            Step::Answer(res) => answers.push(res),
            Step::End(Ok(())) => return Ok(answers),
            Step::End(Err(err)) => return Err((err, answers)),
        }
    }
}
