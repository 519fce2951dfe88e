//! Asking the servers, and knowing when every live server has answered.
//!
//! An emitter does not follow heartbeats, so each request goes out together
//! with a `Discover`, both with reply subjects under a fresh requester id. Every
//! server answers `Discover` with the other servers it knows; the request waits
//! for every server that answered it and every server named in an answer. Which
//! of them still owes what is the protocol crate's [`Tracker`], shared with the
//! adapter.
//!
//! A server named by the others may have crashed: they keep naming it until
//! their heartbeat timeout. So 50 ms after the request started, every server
//! that has sent nothing yet is **probed**: a `Discover` on its own subject, with
//! a reply subject of its own (again every 200 ms while it stays silent). NATS
//! answers "no responders" (status 503) at once when nobody listens there: the
//! server is gone. Its own answer (a `Nodes` whose origin is the server) means
//! it is alive: the request keeps waiting for it. No answer within the probe
//! timeout also means gone (something else listens on its subject, such as a
//! monitor subscribed to the whole prefix).
//!
//! Answers are routed by the last token of their subject, the request id: a
//! 503 on the request or its `Discover` (published on the broadcast subject)
//! means no server serves the namespace at all; a 503 on a probe means only that
//! one server is gone.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use socketioxide_core::{Sid, Uid};
use socketioxide_nats_protocol::{
    completion::{Expect, Tracker, Verdict},
    message::{
        RequestOut, RequestOutBody, ResponseBody, ResponseIn, ResponseKind, decode_response,
    },
    publish::{publish_bounded, saturating_add},
    subjects::NsSubjects,
};
use tokio::time::{Instant, MissedTickBehavior};

use crate::EmitError;

/// How long a request waits for a server's first answer before probing it: a
/// live server answers well within it on a working network.
pub(crate) const PROBE_AFTER: Duration = Duration::from_millis(50);
/// How often a server that stays silent (while answering probes) is probed
/// again: it may crash while the request waits.
pub(crate) const PROBE_AGAIN: Duration = Duration::from_millis(200);
/// How often the request checks its probes. Finer than [`PROBE_AFTER`] so that
/// a probe timeout is noticed within a few milliseconds of its end.
const TICK: Duration = Duration::from_millis(10);
/// The most servers one request waits for: a forged `Nodes` answer naming
/// thousands of ids cannot make the emitter probe them all.
const MAX_NODES: usize = 4096;
/// The most probes in flight at once.
const MAX_PROBES: usize = 256;

/// The answers to a request.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The servers that answered `Discover` (or a probe), in arrival order.
    pub(crate) nodes: Vec<Uid>,
    /// The answers to the request itself, in arrival order.
    pub(crate) responses: Vec<ResponseIn>,
}

/// Where a request goes, and how the emitter signs it.
#[derive(Debug)]
pub(crate) struct Target<'a> {
    pub(crate) client: &'a Client,
    pub(crate) subjects: &'a NsSubjects,
    pub(crate) origin: Uid,
    pub(crate) ns: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) probe_timeout: Duration,
}

/// Publish within `bound`, as the adapter does, with this crate's errors.
pub(crate) async fn publish(
    client: &Client,
    subject: Subject,
    reply: Option<Subject>,
    payload: Bytes,
    bound: Duration,
) -> Result<(), EmitError> {
    let name = subject.to_string();
    publish_bounded(client, subject, reply, payload, bound)
        .await
        .map_err(|failure| EmitError::from_publish(&name, bound, failure))
}

/// Send `ask` (a request and what it expects from each server; `None` to only
/// discover the servers) with a `Discover`, and collect the answers until every
/// live server answered, or `timeout` passes.
///
/// At the timeout, a request still missing the answer of a live server fails
/// with [`EmitError::Incomplete`]; discovery alone returns the servers that
/// answered.
pub(crate) async fn request(
    t: Target<'_>,
    ask: Option<(RequestOutBody<'_>, Expect)>,
    timeout: Duration,
) -> Result<Collected, EmitError> {
    // A fresh requester id per request: its answers, and its probes' answers,
    // have subjects of their own.
    let requester = Uid::new();
    let (discover_id, request_id) = (Sid::new(), Sid::new());
    let filter = t.subjects.reply_filter(requester.as_str());
    let mut sub =
        t.client
            .subscribe(filter.clone())
            .await
            .map_err(|source| EmitError::Subscribe {
                subject: filter,
                source,
            })?;
    let reply = |id: &str| Some(Subject::from(t.subjects.reply(requester.as_str(), id)));
    let to = Subject::from(t.subjects.broadcast(t.origin.as_str()));
    let signed = |id: Sid, body| {
        RequestOut {
            origin: t.origin,
            id: Some(id),
            body,
        }
        .encode()
    };
    let discover = signed(discover_id, RequestOutBody::Discover);
    publish(
        t.client,
        to.clone(),
        reply(discover_id.as_str()),
        discover,
        timeout,
    )
    .await?;
    let expect = match ask {
        Some((body, expect)) => {
            let payload = signed(request_id, body);
            publish(t.client, to, reply(request_id.as_str()), payload, timeout).await?;
            Some(expect)
        }
        None => None,
    };

    let started = Instant::now();
    let mut round = Round::new(
        t.origin,
        discover_id,
        request_id,
        expect,
        started,
        t.probe_timeout,
    );
    let deadline = tokio::time::sleep_until(saturating_add(started, timeout));
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval_at(started + PROBE_AFTER, TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let timed_out = loop {
        if round.is_complete() {
            break false;
        }
        tokio::select! {
            msg = sub.next() => {
                let Some(msg) = msg else {
                    // The client was closed: no answer can arrive any more, and
                    // what came so far is not known to be complete.
                    return Err(EmitError::Unreachable {
                        action: "receive the servers' answers".into(),
                        timeout,
                        state: t.client.connection_state().to_string(),
                    });
                };
                let token = msg.subject.rsplit('.').next().unwrap_or_default();
                let no_responders = msg.status == Some(StatusCode::NO_RESPONDERS);
                if round.on_reply(token, no_responders, msg.payload).is_err() {
                    return Err(EmitError::NoServers {
                        ns: t.ns.to_owned(),
                        prefix: t.prefix.to_owned(),
                    });
                }
            }
            _ = tick.tick() => {
                for (target, id) in round.due_probes(Instant::now()) {
                    let subject = Subject::from(t.subjects.node(target.as_str(), t.origin.as_str()));
                    let payload = signed(id, RequestOutBody::Discover);
                    // Bounded like the probe itself: a probe that cannot leave
                    // within its own timeout says nothing about the server.
                    let sent = publish(t.client, subject, reply(id.as_str()), payload, t.probe_timeout).await;
                    if let Err(error) = sent {
                        tracing::debug!(node = %target, %error, "cannot send a liveness probe");
                        round.unsent(id);
                    }
                }
            }
            _ = &mut deadline => break true,
        }
    };
    round.finish(timed_out, timeout, t.ns)
}

/// NATS reported that nobody listens on the broadcast subject.
#[derive(Debug, PartialEq, Eq)]
struct NoServers;

/// A probe in flight.
#[derive(Debug)]
struct Probe {
    target: Uid,
    deadline: Instant,
}

/// One request's state: whom it waits for and what came. No I/O here, so the
/// decisions are tested without a broker.
#[derive(Debug)]
struct Round {
    /// The emitter itself: never a server, never waited for.
    me: Uid,
    discover_id: Sid,
    request_id: Sid,
    started: Instant,
    probe_timeout: Duration,
    /// Who answered `Discover` (or a probe): every server owes one `Nodes`.
    discovery: Tracker,
    /// Who answered the request; `None` for discovery alone.
    request: Option<Tracker>,
    /// The servers whose `Nodes` answer was accepted, in arrival order.
    answered: Vec<Uid>,
    responses: Vec<ResponseIn>,
    /// Probes in flight, by request id.
    probes: HashMap<Sid, Probe>,
    /// The servers being probed, and when each was last probed.
    probing: HashSet<Sid>,
    probed_at: HashMap<Sid, Instant>,
    /// Set once a name was dropped for [`MAX_NODES`], to warn once.
    overflow: bool,
}

impl Round {
    fn new(
        me: Uid,
        discover_id: Sid,
        request_id: Sid,
        expect: Option<Expect>,
        started: Instant,
        probe_timeout: Duration,
    ) -> Self {
        Self {
            me,
            discover_id,
            request_id,
            started,
            probe_timeout,
            discovery: Tracker::new(Expect::One(ResponseKind::Nodes), []),
            request: expect.map(|e| Tracker::new(e, [])),
            answered: Vec::new(),
            responses: Vec::new(),
            probes: HashMap::new(),
            probing: HashSet::new(),
            probed_at: HashMap::new(),
            overflow: false,
        }
    }

    /// Wait for `uid`'s answers too (nothing changes if it is tracked already).
    fn expect(&mut self, uid: Uid) {
        if uid == self.me || self.discovery.is_expected(uid) {
            return;
        }
        if self.discovery.len() >= MAX_NODES {
            if !self.overflow {
                self.overflow = true;
                tracing::warn!(
                    max = MAX_NODES,
                    "more servers named than one request waits for: the others are ignored"
                );
            }
            return;
        }
        self.discovery.expect(uid);
        if let Some(request) = &mut self.request {
            request.expect(uid);
        }
    }

    /// A server stopped serving (or never served): stop waiting for it.
    fn gone(&mut self, uid: Uid, why: &str) {
        let owed = self.discovery.gone(uid);
        let owed = self.request.as_mut().is_some_and(|r| r.gone(uid)) || owed;
        if owed {
            tracing::debug!(node = %uid, why, "not waiting for a server found gone");
        }
    }

    /// An answer on the reply subject whose last token is `token`.
    fn on_reply(
        &mut self,
        token: &str,
        no_responders: bool,
        payload: Bytes,
    ) -> Result<(), NoServers> {
        let is_request = token == self.request_id.as_str() && self.request.is_some();
        if token == self.discover_id.as_str() || is_request {
            if no_responders {
                // Both were published on the broadcast subject.
                return Err(NoServers);
            }
            if let Some(res) = decode(token, payload)
                && res.origin != self.me
            {
                if is_request {
                    self.on_request_answer(res);
                } else {
                    self.on_discover_answer(res);
                }
            }
            return Ok(());
        }
        let Some(probe_id) = self.probes.keys().find(|id| id.as_str() == token).copied() else {
            tracing::debug!(token, "answer to no pending request dropped");
            return Ok(());
        };
        self.on_probe_answer(probe_id, no_responders, payload);
        Ok(())
    }

    fn on_discover_answer(&mut self, res: ResponseIn) {
        // Only a receiver of the Discover knows its reply subject.
        self.expect(res.origin);
        self.on_nodes(&res);
    }

    /// A `Nodes` answer from `res.origin`, to the Discover or to a probe: the
    /// server is alive, and names the servers it knows.
    fn on_nodes(&mut self, res: &ResponseIn) {
        let ResponseBody::Nodes(named) = &res.body else {
            tracing::debug!(node = %res.origin, "answer of the wrong type to a Discover dropped");
            return;
        };
        if self.discovery.on_response(res) == Verdict::Accept {
            self.answered.push(res.origin);
        }
        for uid in named {
            self.expect(*uid);
        }
    }

    fn on_request_answer(&mut self, res: ResponseIn) {
        let Some(request) = &mut self.request else {
            return;
        };
        // A server's answer can arrive before its answer to the Discover. Only a
        // receiver of the request knows the request's reply subject, so the
        // first answer there is itself proof that its sender serves the
        // namespace: wait for it from then on. Simpler than buffering early
        // answers until the Discover answer comes, and as safe: a forged id
        // gets a probe like any silent server and is found gone.
        if opens(request.expects(), &res.body) {
            self.expect(res.origin);
        }
        let Some(request) = &mut self.request else {
            return;
        };
        match request.on_response(&res) {
            Verdict::Accept => self.responses.push(res),
            Verdict::Ignore(why) => {
                tracing::debug!(node = %res.origin, why = why.as_str(), "answer ignored");
            }
        }
    }

    fn on_probe_answer(&mut self, probe_id: Sid, no_responders: bool, payload: Bytes) {
        let Some(target) = self.probes.get(&probe_id).map(|p| p.target) else {
            return;
        };
        if no_responders {
            self.end_probe(probe_id);
            self.gone(target, "nobody listens on its subject");
            return;
        }
        let Some(res) = decode(probe_id.as_str(), payload) else {
            return;
        };
        if res.origin == target && matches!(res.body, ResponseBody::Nodes(_)) {
            self.end_probe(probe_id);
            self.on_nodes(&res);
        } else {
            // Something else listening on the server's subject: only the
            // server's own answer counts, until the probe times out.
            tracing::debug!(node = %target, from = %res.origin, "probe answer not from the probed server ignored");
        }
    }

    fn end_probe(&mut self, probe_id: Sid) {
        if let Some(p) = self.probes.remove(&probe_id) {
            self.probing.remove(&*p.target);
        }
    }

    /// A probe could not be published: it says nothing, try again later.
    fn unsent(&mut self, probe_id: Sid) {
        self.end_probe(probe_id);
    }

    /// Time out the probes due, and pick the servers to probe now: those that
    /// owe something and have sent nothing of it, not probed within
    /// [`PROBE_AGAIN`]. Returns each with the request id of its probe, already
    /// counted in flight.
    fn due_probes(&mut self, now: Instant) -> Vec<(Uid, Sid)> {
        let expired: Vec<(Sid, Uid)> = self
            .probes
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, p)| (*id, p.target))
            .collect();
        for (id, target) in expired {
            self.end_probe(id);
            self.gone(target, "it did not answer a liveness probe");
        }
        if now < self.started + PROBE_AFTER {
            return Vec::new();
        }
        let mut silent = self.discovery.owing();
        if let Some(request) = &self.request {
            silent.extend(request.owing());
        }
        let mut due = Vec::new();
        for uid in silent {
            let is_silent = self.discovery.is_silent(uid)
                || self.request.as_ref().is_some_and(|r| r.is_silent(uid));
            let recent = self
                .probed_at
                .get(&*uid)
                .is_some_and(|at| now.saturating_duration_since(*at) < PROBE_AGAIN);
            if !is_silent || recent || self.probing.contains(&*uid) {
                continue;
            }
            if self.probes.len() >= MAX_PROBES {
                break;
            }
            let id = Sid::new();
            self.probes.insert(
                id,
                Probe {
                    target: uid,
                    deadline: saturating_add(now, self.probe_timeout),
                },
            );
            self.probing.insert(*uid);
            self.probed_at.insert(*uid, now);
            due.push((uid, id));
        }
        due
    }

    /// Every server known answered in full, or is gone.
    fn is_complete(&self) -> bool {
        !self.discovery.is_empty()
            && self.discovery.is_complete()
            && self.request.as_ref().is_none_or(Tracker::is_complete)
    }

    fn finish(self, timed_out: bool, timeout: Duration, ns: &str) -> Result<Collected, EmitError> {
        if self.discovery.is_empty() {
            return Err(EmitError::Timeout {
                ns: ns.to_owned(),
                timeout,
            });
        }
        if let Some(request) = &self.request {
            let missing = request.owing();
            if !missing.is_empty() {
                tracing::debug!(ns, ?missing, ?timeout, timed_out, "request incomplete");
                return Err(EmitError::Incomplete { missing, timeout });
            }
        }
        Ok(Collected {
            nodes: self.answered,
            responses: self.responses,
        })
    }
}

/// Whether `body` is the first answer a server sends to a request expecting
/// `expect`.
fn opens(expect: Expect, body: &ResponseBody) -> bool {
    match (expect, body) {
        (Expect::Acks, ResponseBody::AckCount(_)) => true,
        (Expect::One(kind), body) => matches!(
            (kind, body),
            (ResponseKind::Rooms, ResponseBody::Rooms(_))
                | (ResponseKind::Sockets, ResponseBody::Sockets(_))
                | (ResponseKind::Done, ResponseBody::Done(_))
                | (ResponseKind::Reply, ResponseBody::Reply(_))
                | (ResponseKind::Nodes, ResponseBody::Nodes(_))
        ),
        _ => false,
    }
}

fn decode(token: &str, payload: Bytes) -> Option<ResponseIn> {
    match decode_response(payload) {
        Ok(res) => Some(res),
        Err(error) => {
            tracing::warn!(req_id = token, %error, "undecodable answer dropped");
            None
        }
    }
}

/// The rooms in answers, merged and sorted.
pub(crate) fn rooms(responses: Vec<ResponseIn>) -> Vec<String> {
    let mut all = HashSet::new();
    for res in responses {
        if let ResponseBody::Rooms(rooms) = res.body {
            all.extend(rooms.into_iter().map(|r| r.into_owned()));
        }
    }
    let mut all: Vec<String> = all.into_iter().collect();
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    use socketioxide_core::adapter::RemoteSocketData;
    use socketioxide_nats_protocol::message::{ResponseOut, ResponseOutBody};

    use super::*;

    const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

    fn nodes(origin: Uid, named: &[Uid]) -> Bytes {
        ResponseOut {
            origin,
            body: ResponseOutBody::Nodes(named),
        }
        .encode()
    }

    fn sockets(origin: Uid) -> Bytes {
        let list: [RemoteSocketData; 0] = [];
        ResponseOut {
            origin,
            body: ResponseOutBody::Sockets(&list),
        }
        .encode()
    }

    struct Fixture {
        round: Round,
        me: Uid,
        discover: Sid,
        request: Sid,
        at: Instant,
    }

    fn fixture(expect: Option<Expect>) -> Fixture {
        let (me, discover, request, at) = (Uid::new(), Sid::new(), Sid::new(), Instant::now());
        Fixture {
            round: Round::new(me, discover, request, expect, at, PROBE_TIMEOUT),
            me,
            discover,
            request,
            at,
        }
    }

    fn sockets_fixture() -> Fixture {
        fixture(Some(Expect::One(ResponseKind::Sockets)))
    }

    impl Fixture {
        fn discover_answer(&mut self, origin: Uid, named: &[Uid]) {
            let token = self.discover;
            assert_eq!(
                self.round
                    .on_reply(token.as_str(), false, nodes(origin, named)),
                Ok(())
            );
        }
        fn request_answer(&mut self, origin: Uid) {
            let token = self.request;
            assert_eq!(
                self.round.on_reply(token.as_str(), false, sockets(origin)),
                Ok(())
            );
        }
        fn probes_at(&mut self, after: Duration) -> Vec<(Uid, Sid)> {
            self.round.due_probes(self.at + after)
        }
    }

    #[test]
    fn a_named_server_found_gone_by_its_probe_completes_the_request() {
        let mut f = sockets_fixture();
        let (a, crashed) = (Uid::new(), Uid::new());
        f.discover_answer(a, &[crashed]);
        f.request_answer(a);
        assert!(!f.round.is_complete(), "the named server is waited for");
        assert!(
            f.probes_at(Duration::from_millis(10)).is_empty(),
            "not probed before {PROBE_AFTER:?}"
        );
        let due = f.probes_at(PROBE_AFTER);
        assert_eq!(due.len(), 1, "only the silent server is probed");
        assert_eq!(due[0].0, crashed);
        assert!(
            f.probes_at(PROBE_AFTER * 2).is_empty(),
            "one probe at a time"
        );
        // NATS: nobody listens on its subject.
        assert_eq!(
            f.round.on_reply(due[0].1.as_str(), true, Bytes::new()),
            Ok(()),
            "a 503 on a probe is not 'no servers'"
        );
        assert!(f.round.is_complete());
        let collected = f.round.finish(false, Duration::from_secs(2), "/").unwrap();
        assert_eq!(collected.nodes, vec![a]);
        assert_eq!(collected.responses.len(), 1);
    }

    #[test]
    fn a_503_on_the_discover_or_the_request_means_no_servers() {
        let mut f = sockets_fixture();
        let (d, r) = (f.discover, f.request);
        assert_eq!(
            f.round.on_reply(d.as_str(), true, Bytes::new()),
            Err(NoServers)
        );
        assert_eq!(
            f.round.on_reply(r.as_str(), true, Bytes::new()),
            Err(NoServers)
        );
        assert_eq!(
            f.round.on_reply("SomeOtherReq0000", true, Bytes::new()),
            Ok(()),
            "a 503 for nothing pending is dropped"
        );
    }

    #[test]
    fn an_answer_before_the_servers_discover_answer_is_kept() {
        let mut f = sockets_fixture();
        let b = Uid::new();
        f.request_answer(b);
        assert!(
            !f.round.is_complete(),
            "its Discover answer, which may name others, is still due"
        );
        f.discover_answer(b, &[]);
        assert!(f.round.is_complete());
        let collected = f.round.finish(false, Duration::from_secs(2), "/").unwrap();
        assert_eq!(collected.responses.len(), 1);
        assert_eq!(collected.responses[0].origin, b);
    }

    #[test]
    fn only_the_probed_servers_own_answer_proves_it_alive() {
        let mut f = sockets_fixture();
        let (a, stuck) = (Uid::new(), Uid::new());
        f.discover_answer(a, &[stuck]);
        f.request_answer(a);
        let due = f.probes_at(PROBE_AFTER);
        let probe = due[0].1;
        // A monitor on the whole prefix answering in the server's place.
        let _ = f
            .round
            .on_reply(probe.as_str(), false, nodes(Uid::new(), &[]));
        assert!(f.round.probing.contains(&*stuck), "still in flight");
        let _ = f.round.on_reply(probe.as_str(), false, nodes(stuck, &[]));
        assert!(!f.round.probing.contains(&*stuck), "answered: alive");
        assert!(!f.round.is_complete(), "alive, so its answer is still due");
        assert!(
            f.probes_at(PROBE_AFTER + PROBE_AGAIN / 2).is_empty(),
            "not probed again at once"
        );
        let again = f.probes_at(PROBE_AFTER + PROBE_AGAIN);
        assert_eq!(again.len(), 1, "probed again while silent");
        assert_ne!(again[0].1, probe, "each probe has its own request id");
        // Alive at the timeout: the request is incomplete, naming it.
        match f.round.finish(true, Duration::from_secs(2), "/") {
            Err(EmitError::Incomplete { missing, timeout }) => {
                assert_eq!(missing, vec![stuck]);
                assert_eq!(timeout, Duration::from_secs(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_probe_without_an_answer_within_the_probe_timeout_means_gone() {
        let mut f = sockets_fixture();
        let (a, silent) = (Uid::new(), Uid::new());
        f.discover_answer(a, &[silent]);
        f.request_answer(a);
        assert_eq!(f.probes_at(PROBE_AFTER).len(), 1);
        assert!(f.probes_at(PROBE_AFTER + PROBE_TIMEOUT / 2).is_empty());
        assert!(!f.round.is_complete());
        f.probes_at(PROBE_AFTER + PROBE_TIMEOUT);
        assert!(f.round.is_complete());
    }

    #[test]
    fn the_emitter_never_waits_for_itself() {
        let mut f = sockets_fixture();
        let a = Uid::new();
        let me = f.me;
        f.discover_answer(a, &[me]);
        f.request_answer(a);
        assert!(f.round.is_complete());
        f.discover_answer(me, &[]);
        assert_eq!(f.round.discovery.len(), 1);
    }

    #[test]
    fn discovery_alone_returns_who_answered() {
        let mut f = fixture(None);
        let (a, b, stuck) = (Uid::new(), Uid::new(), Uid::new());
        f.discover_answer(a, &[b, stuck]);
        f.discover_answer(b, &[a]);
        assert!(!f.round.is_complete());
        let due = f.probes_at(PROBE_AFTER);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, stuck);
        // A server answering its probe answered the Discover too.
        let _ = f
            .round
            .on_reply(due[0].1.as_str(), false, nodes(stuck, &[]));
        assert!(f.round.is_complete());
        let collected = f.round.finish(false, Duration::from_secs(2), "/").unwrap();
        assert_eq!(collected.nodes, vec![a, b, stuck]);
    }

    #[test]
    fn nothing_answered_is_a_timeout() {
        let f = sockets_fixture();
        assert!(!f.round.is_complete());
        let err = f.round.finish(true, Duration::from_secs(1), "/chat");
        assert!(matches!(err, Err(EmitError::Timeout { .. })), "{err:?}");
    }

    #[test]
    fn names_past_the_bound_are_not_waited_for() {
        let mut f = fixture(None);
        let many: Vec<Uid> = (0..MAX_NODES + 10).map(|_| Uid::new()).collect();
        f.discover_answer(Uid::new(), &many);
        assert_eq!(f.round.discovery.len(), MAX_NODES);
        let due = f.probes_at(PROBE_AFTER);
        assert_eq!(due.len(), MAX_PROBES, "probes in flight are bounded too");
    }
}
