//! Which other nodes serve this namespace: the one place that decides it.
//!
//! NATS cannot count the subscribers of a subject, so nodes announce themselves
//! (`Hello` at start, `Heartbeat` every interval, `Goodbye` when closing). None of
//! these is trusted as it comes, since anyone who can publish on the prefix can
//! send them: a node is counted only once it has **proven** itself by answering a
//! message whose reply subject only a receiver could know — this node's `Hello`
//! (it then answers with the nodes it knows), or a **probe**, a `Discover` sent to
//! its own node subject. Ids that never answer are never counted, so forged hellos
//! and heartbeats cannot make requests wait for nodes that do not exist.
//!
//! * **Discovery.** At start and after each reconnect the node publishes a `Hello`
//!   with a reply subject. Every node answers it (rate-limited) with the nodes it
//!   knows, which proves the answerer; named nodes not yet known are probed.
//!   Discovery is *settled* once an answer came and every named node is proven or
//!   found gone, when NATS says nobody listens, or after [`DISCOVERY_WINDOW`].
//!   Cluster requests made before that wait for it (see [`Liveness::expected_since`]).
//! * **Probes** are sent for an unknown id heard from (a hello, a heartbeat;
//!   rate-limited), for a known node that says goodbye (a forged goodbye must not
//!   make the others forget a live node), for nodes named in discovery answers, and
//!   for a node a request has been waiting for (see [`completion`](crate::completion)):
//!   NATS answers "no responders" at once when nobody listens on the node's
//!   subject; when something else does, only the node's own answer counts, within
//!   [`probe_timeout`](crate::NatsAdapterConfig::probe_timeout).
//! * **Forgetting.** A node is forgotten when a probe finds it gone, or when
//!   nothing was heard from it for the heartbeat timeout; waiting requests are told
//!   at once (the one call of [`Requests::node_left`](crate::requests::Requests::node_left)).
//! * **Connection changes.** After this node's connection came back (the client's
//!   connect counter moved, however briefly it was down), the silence of the
//!   others meant nothing: they are refreshed and discovery runs again.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use async_nats::Subject;
use socketioxide_core::{Sid, Uid};
use socketioxide_nats_protocol::{
    message::{RequestOutBody, ResponseBody, ResponseOutBody, decode_response},
    publish::saturating_add,
};
use tokio::{
    sync::watch,
    time::{Instant, MissedTickBehavior},
};

use crate::{
    requests::{Event, is_no_responders},
    send::Link,
    tasks::AbortOnDrop,
};

/// The longest a node waits for the answers to its `Hello` before its requests
/// stop waiting for discovery. Long enough for a second `Hello` (sent after
/// [`HELLO_AGAIN`]) to reach servers of a NATS cluster that had not yet learnt of
/// this node's subscriptions when the first one arrived.
pub(crate) const DISCOVERY_WINDOW: Duration = Duration::from_secs(1);
/// When discovery repeats its `Hello` if it is not settled yet.
const HELLO_AGAIN: Duration = Duration::from_millis(300);
/// How often the liveness task checks the connection and the silent nodes, at most.
const MAX_SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How long after a goodbye its sender is probed: by then the sender's
/// subscriptions are gone (it drops them as it says goodbye), so NATS answers
/// "no responders" at once, while a node whose goodbye was forged answers.
const GOODBYE_PROBE_DELAY: Duration = Duration::from_millis(25);
/// A node that proved itself this recently is not probed again: a live node that
/// is merely slow to answer a request is asked at most this often.
const PROOF_FRESH: Duration = Duration::from_millis(200);
/// The most nodes one namespace keeps track of; ids past it are not probed.
const MAX_NODES: usize = 4096;
/// The most probes in flight at once.
const MAX_PROBES: usize = 256;
/// Hellos answered, and unknown ids probed, per second in the long run
/// (twice as many in a burst): a rolling restart of a large cluster fits, a
/// flood of forged hellos cannot make every node publish in proportion.
const ANSWERS_PER_SECOND: f64 = 50.0;

/// A node that proved itself.
#[derive(Debug, Clone, Copy)]
struct Known {
    uid: Uid,
    /// The moment from which this node is sure to receive what this node
    /// publishes (see [`Liveness::expected_since`]).
    since: Instant,
    /// Anything heard from it (heartbeats included, which anyone can forge).
    heard: Instant,
    /// The last proof: an answer to one of this node's messages.
    proven: Instant,
}

#[derive(Debug)]
struct Table {
    nodes: HashMap<Sid, Known>,
    /// Probes in flight, with the `since` to record if the node proves itself.
    probing: HashMap<Sid, Option<Instant>>,
    /// Hellos answered and unknown heartbeats probed.
    budget: Budget,
    /// Probes answered with a probe back (see [`Liveness::on_probe`]): emitters
    /// probe too, and must not spend the budget of the hellos.
    probe_backs: Budget,
}

/// A token bucket.
#[derive(Debug)]
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new() -> Self {
        Self {
            tokens: 2.0 * ANSWERS_PER_SECOND,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * ANSWERS_PER_SECOND;
        self.tokens = (self.tokens + refill).min(2.0 * ANSWERS_PER_SECOND);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A published `Hello`, waiting for its answers.
#[derive(Debug)]
pub(crate) struct Hello {
    pending: crate::requests::Pending,
    started: Instant,
}

/// Why a probe is sent: decides its budget and what is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspicion {
    /// An id never proven announced itself.
    Unknown,
    /// A node named by another in its discovery answer.
    Named,
    /// A known node said goodbye.
    Goodbye,
    /// A request waits for it.
    Silent,
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Alive,
    Gone(&'static str),
    /// This node could not tell (its own connection failed meanwhile).
    Unknown,
}

/// The nodes of one namespace, as this node knows them.
#[derive(Debug)]
pub(crate) struct Liveness {
    link: Arc<Link>,
    table: Mutex<Table>,
    /// `true` once discovery settled.
    settled: watch::Sender<bool>,
}

impl Liveness {
    pub(crate) fn new(link: Arc<Link>) -> Arc<Self> {
        Arc::new(Self {
            link,
            table: Mutex::new(Table {
                nodes: HashMap::new(),
                probing: HashMap::new(),
                budget: Budget::new(),
                probe_backs: Budget::new(),
            }),
            settled: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is a few inserts and removes on one map: a panic in one
        // leaves the table usable, so poisoning is ignored.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn timeout(&self) -> Duration {
        self.link.config.heartbeat_timeout
    }

    /// See [`Link::connection_epoch`].
    pub(crate) fn epoch(&self) -> Option<u64> {
        self.link.connection_epoch()
    }

    pub(crate) fn stats(&self) -> &crate::stats::Stats {
        &self.link.stats
    }

    /// The other live nodes.
    pub(crate) fn alive(&self) -> Vec<Uid> {
        let now = Instant::now();
        let timeout = self.timeout();
        self.lock()
            .nodes
            .values()
            .filter(|n| now.saturating_duration_since(n.heard) <= timeout)
            .map(|n| n.uid)
            .collect()
    }

    pub(crate) fn is_known(&self, uid: Uid) -> bool {
        self.lock().nodes.contains_key(&*uid)
    }

    /// The nodes a request published at `published` must hear from: the live
    /// nodes this node knew, or could know, were subscribed then. A node heard
    /// from before `published` was (a message of it arrived first, and NATS keeps
    /// a subscription ahead of the messages its connection sends after it), and
    /// so was a node that answered a `Hello` this node published before.
    ///
    /// While discovery is not settled (the first moments after start or after a
    /// reconnect), this waits for it, at most [`DISCOVERY_WINDOW`]: a request made
    /// then is published at once, but does not complete before the nodes already
    /// in the cluster are known.
    pub(crate) async fn expected_since(&self, published: Instant) -> Vec<Uid> {
        let mut settled = self.settled.subscribe();
        let wait = settled.wait_for(|s| *s);
        // The discovery task settles within the window; the bound is a safety net.
        let _ = tokio::time::timeout(DISCOVERY_WINDOW + HELLO_AGAIN, wait).await;
        let now = Instant::now();
        let timeout = self.timeout();
        self.lock()
            .nodes
            .values()
            .filter(|n| n.since <= published && now.saturating_duration_since(n.heard) <= timeout)
            .map(|n| n.uid)
            .collect()
    }

    /// A message from `uid` arrived on a subject that names it as the sender.
    /// Tells whether it is a known node.
    pub(crate) fn heard(&self, uid: Uid) -> bool {
        match self.lock().nodes.get_mut(&*uid) {
            Some(known) => {
                known.heard = Instant::now();
                true
            }
            None => false,
        }
    }

    /// One of this node's requests got an answer from `uid`: proof that it is alive.
    pub(crate) fn answered(&self, uid: Uid) {
        if let Some(known) = self.lock().nodes.get_mut(&*uid) {
            let now = Instant::now();
            known.heard = now;
            known.proven = now;
        }
    }

    /// Count `uid` as a node: it answered a message only a receiver could answer.
    fn prove(&self, uid: Uid, since: Option<Instant>) {
        let now = Instant::now();
        let joined = {
            let mut t = self.lock();
            if let Some(known) = t.nodes.get_mut(&*uid) {
                known.heard = now;
                known.proven = now;
                if let Some(since) = since {
                    known.since = known.since.min(since);
                }
                false
            } else if t.nodes.len() >= MAX_NODES {
                false
            } else {
                let since = since.unwrap_or(now);
                t.nodes.insert(
                    *uid,
                    Known {
                        uid,
                        since,
                        heard: now,
                        proven: now,
                    },
                );
                true
            }
        };
        if joined {
            tracing::info!(ns = %self.link.subjects().base(), node = %uid, "node joined");
            self.count_servers();
        }
    }

    /// Forget `uid` and tell the waiting requests. The one way a node leaves.
    fn forget(&self, uid: Uid, why: &str) {
        if self.lock().nodes.remove(&*uid).is_some() {
            tracing::info!(ns = %self.link.subjects().base(), node = %uid, why, "node left");
            self.link.requests.node_left(uid);
            self.count_servers();
        }
    }

    fn count_servers(&self) {
        let others = self.lock().nodes.len();
        self.link.stats.set_servers(others + 1);
    }

    /// Forget every node (the adapter closed).
    pub(crate) fn forget_all(&self) {
        let mut t = self.lock();
        t.nodes.clear();
        t.probing.clear();
    }

    /// A `Hello` from `origin`: answer it, with the known nodes on its reply
    /// subject (or, from a node of an earlier release that sends none, with a
    /// heartbeat on its node subject), and probe it if it is unknown.
    pub(crate) fn on_hello(self: &Arc<Self>, origin: Uid, reply: Option<Subject>) {
        let known = self.heard(origin);
        if !self.lock().budget.take(Instant::now()) {
            self.link.stats.rate_limited.inc();
            return;
        }
        match reply {
            Some(reply) => {
                let nodes = self.alive();
                let res = self.link.response(ResponseOutBody::Nodes(&nodes));
                self.link.answer(reply, res);
            }
            None => {
                let beat = self.link.encode_request(None, RequestOutBody::Heartbeat);
                self.link
                    .answer(self.link.target_subject(Some(origin)), beat);
            }
        }
        if !known {
            // The budget was spent on the answer already.
            self.spawn_probe(origin, Suspicion::Unknown, None);
        }
    }

    /// A `Heartbeat` from `origin`.
    pub(crate) fn on_heartbeat(self: &Arc<Self>, origin: Uid) {
        if !self.heard(origin) {
            self.suspect(origin, Suspicion::Unknown);
        }
    }

    /// A probe from `origin`: an unknown node probing this one is a node this one
    /// missed (both started at once), or an emitter; probe it back, on a budget of
    /// its own.
    pub(crate) fn on_probe(self: &Arc<Self>, origin: Uid) {
        if self.heard(origin) {
            return;
        }
        let allowed = {
            let mut t = self.lock();
            t.nodes.len() < MAX_NODES && t.probe_backs.take(Instant::now())
        };
        if allowed {
            self.spawn_probe(origin, Suspicion::Unknown, None);
        } else {
            self.link.stats.rate_limited.inc();
        }
    }

    /// A `Goodbye` from `origin`: forget it once a probe confirms that it is gone.
    pub(crate) fn on_goodbye(self: &Arc<Self>, origin: Uid) {
        if self.is_known(origin) {
            self.suspect(origin, Suspicion::Goodbye);
        }
    }

    /// Probe `uid` unless a probe is in flight, it proved itself within the probe
    /// timeout, or the budget of its kind is spent.
    pub(crate) fn suspect(self: &Arc<Self>, uid: Uid, why: Suspicion) {
        let now = Instant::now();
        {
            let mut t = self.lock();
            if t.probing.contains_key(&*uid) {
                return;
            }
            match t.nodes.get(&*uid) {
                // A goodbye is checked at once, whatever was heard before it.
                Some(known) if why != Suspicion::Goodbye => {
                    let fresh = now.saturating_duration_since(known.proven) < PROOF_FRESH;
                    if fresh {
                        return;
                    }
                }
                Some(_) => {}
                None => {
                    if t.nodes.len() >= MAX_NODES {
                        return;
                    }
                    if why == Suspicion::Unknown && !t.budget.take(now) {
                        self.link.stats.rate_limited.inc();
                        return;
                    }
                }
            }
        }
        self.spawn_probe(uid, why, None);
    }

    /// Probe `uid`. If it proves itself, it counts from `since`, or from now: a
    /// probe follows a message of it just received, so it got what this node
    /// publishes from now on, even if the answer comes later.
    fn spawn_probe(self: &Arc<Self>, uid: Uid, why: Suspicion, since: Option<Instant>) {
        {
            let mut t = self.lock();
            if t.probing.len() >= MAX_PROBES || t.probing.contains_key(&*uid) {
                return;
            }
            t.probing
                .insert(*uid, Some(since.unwrap_or_else(Instant::now)));
        }
        let this = self.clone();
        tokio::spawn(async move {
            if why == Suspicion::Goodbye {
                tokio::time::sleep(GOODBYE_PROBE_DELAY).await;
            }
            let found = this.probe(uid).await;
            let since = this.lock().probing.remove(&*uid).flatten();
            match found {
                Probe::Alive if why == Suspicion::Goodbye => {
                    tracing::warn!(node = %uid, "goodbye from a node that still answers: ignored (forged?)");
                    this.prove(uid, since);
                }
                Probe::Alive => this.prove(uid, since),
                Probe::Gone(how) => {
                    this.link.stats.probes_failed.inc();
                    if why == Suspicion::Goodbye {
                        this.forget(uid, "said goodbye");
                    } else {
                        this.forget(uid, how);
                    }
                }
                Probe::Unknown => {}
            }
        });
    }

    /// Ask `uid` on its own subject whether it is alive.
    async fn probe(&self, uid: Uid) -> Probe {
        self.link.stats.probes.inc();
        let epoch = self.link.connection_epoch();
        let Ok(mut pending) = self
            .link
            .send_request(RequestOutBody::Discover, Some(uid), true)
            .await
        else {
            return Probe::Unknown;
        };
        let deadline = saturating_add(Instant::now(), self.link.config.probe_timeout);
        loop {
            match pending.recv_until(deadline).await {
                Ok(Event::Reply(msg)) if is_no_responders(&msg) => {
                    return Probe::Gone("nobody listens on its subject");
                }
                Ok(Event::Reply(msg)) => match decode_response(msg.payload) {
                    Ok(res) if res.origin == uid && matches!(res.body, ResponseBody::Nodes(_)) => {
                        return Probe::Alive;
                    }
                    _ => self.link.stats.ignored_responses.inc(),
                },
                Ok(Event::NodeLeft(_)) => {}
                Err(true) if self.link.connection_epoch() == epoch => {
                    return Probe::Gone("it did not answer a liveness probe");
                }
                Err(_) => return Probe::Unknown,
            }
        }
    }

    /// Announce this node and learn the others; see the module docs.
    pub(crate) async fn discover(self: &Arc<Self>) {
        if let Some(hello) = self.hello().await {
            self.listen(hello).await;
        }
    }

    /// Publish the `Hello` that starts a discovery; `None` (discovery settled at
    /// once) if it cannot be published.
    ///
    /// At start it is published before `io.ns(..)` returns: a request made right
    /// after must find the `Hello` ahead of it, since a node that answered the
    /// `Hello` is expected to answer the request too.
    pub(crate) async fn hello(&self) -> Option<Hello> {
        self.settled.send_replace(false);
        let started = Instant::now();
        match self
            .link
            .send_request(RequestOutBody::Hello, None, true)
            .await
        {
            Ok(pending) => Some(Hello { pending, started }),
            Err(error) => {
                tracing::warn!(%error, "cannot announce this node; the others learn of it from its heartbeats");
                self.settled.send_replace(true);
                None
            }
        }
    }

    /// Collect the answers to a `Hello` until discovery settles, then to the end
    /// of the window.
    async fn listen(self: &Arc<Self>, hello: Hello) {
        let Hello {
            mut pending,
            started,
        } = hello;
        let deadline = started + DISCOVERY_WINDOW;
        let hello_id = pending.id;
        let mut named: HashSet<Sid> = HashSet::new();
        // When the first answer came, and the last one.
        let mut first: Option<Duration> = None;
        let mut last = started;
        let mut again = Some(started + HELLO_AGAIN);
        let mut settled = false;
        // After it settles, discovery keeps listening to the window's end, so that
        // a late answer still proves its node.
        loop {
            let now = Instant::now();
            if !settled && let Some(rtt) = first {
                // The nodes got the Hello at about the same time and answer at
                // once: a quiet spell of twice the first round trip means the
                // answers are in. Nodes they named must be proven or found gone.
                let quiet = (2 * rtt).max(Duration::from_millis(10));
                let resolved = |n: &Sid| {
                    let t = self.lock();
                    t.nodes.contains_key(n) || !t.probing.contains_key(n)
                };
                if now >= last + quiet && named.iter().all(resolved) {
                    settled = true;
                    self.settle(started);
                }
            }
            if now >= deadline {
                break;
            }
            let wake = again
                .map_or(deadline, |a| a.min(deadline))
                .min(now + Duration::from_millis(5));
            match pending.recv_until(wake).await {
                Ok(Event::Reply(msg)) if is_no_responders(&msg) => break,
                Ok(Event::Reply(msg)) => {
                    let Ok(res) = decode_response(msg.payload) else {
                        self.link.stats.malformed.inc();
                        continue;
                    };
                    let ResponseBody::Nodes(nodes) = res.body else {
                        self.link.stats.ignored_responses.inc();
                        continue;
                    };
                    if res.origin == self.link.uid() {
                        continue;
                    }
                    last = Instant::now();
                    first.get_or_insert(last - started);
                    // It got the Hello, so it gets everything published after it.
                    self.prove(res.origin, Some(started));
                    for uid in nodes {
                        if uid != self.link.uid() && !self.is_known(uid) && named.insert(*uid) {
                            self.spawn_probe(uid, Suspicion::Named, Some(started));
                        }
                    }
                }
                Ok(Event::NodeLeft(_)) => {}
                Err(false) => break,
                Err(true) => {
                    if again.is_some_and(|a| Instant::now() >= a) {
                        again = None;
                        // Same id: answers to either Hello land here.
                        let payload = self
                            .link
                            .encode_request(Some(hello_id), RequestOutBody::Hello);
                        let reply = Subject::from(
                            self.link
                                .subjects()
                                .reply(self.link.uid().as_str(), hello_id.as_str()),
                        );
                        let _ = self
                            .link
                            .publish(self.link.target_subject(None), Some(reply), payload)
                            .await;
                    }
                }
            }
        }
        if !settled {
            self.settle(started);
        }
    }

    fn settle(&self, started: Instant) {
        let waited = started.elapsed();
        tracing::debug!(ns = %self.link.subjects().base(), nodes = self.alive().len(), ?waited, "discovery settled");
        self.settled.send_replace(true);
    }

    /// Forget the nodes not heard from within the heartbeat timeout.
    fn prune(&self) {
        let now = Instant::now();
        let timeout = self.timeout();
        let dead: Vec<Uid> = self
            .lock()
            .nodes
            .values()
            .filter(|n| now.saturating_duration_since(n.heard) > timeout)
            .map(|n| n.uid)
            .collect();
        for uid in dead {
            tracing::warn!(ns = %self.link.subjects().base(), node = %uid, ?timeout, "node timed out: nothing heard from it");
            self.forget(uid, "heartbeat timeout");
        }
    }

    /// After this node's connection came back: the others' silence meant nothing.
    fn refresh_all(&self) {
        let now = Instant::now();
        for known in self.lock().nodes.values_mut() {
            known.heard = now;
        }
    }

    /// Start the liveness task: discovery (after `hello`), heartbeats, the sweep
    /// of silent nodes and the watch on the connection.
    pub(crate) fn spawn(self: &Arc<Self>, hello: Option<Hello>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run(Arc::downgrade(self), hello))
    }
}

async fn run(liveness: Weak<Liveness>, hello: Option<Hello>) {
    let Some(l) = liveness.upgrade() else { return };
    let config = l.link.config.clone();
    let ns = l.link.subjects().base().to_owned();
    let mut epoch = l.link.connection_epoch();
    let discovery = l.clone();
    // Dropping it (a new discovery, or the end of this task) stops it.
    let mut _discovering = AbortOnDrop(tokio::spawn(async move {
        if let Some(hello) = hello {
            discovery.listen(hello).await;
        }
    }));
    drop(l);

    // `interval` panics on a zero period and `Instant + Duration` overflows on a
    // huge one: both are the user's numbers, so bound them.
    let far = Duration::from_secs(86_400 * 365);
    let interval = config
        .heartbeat_interval
        .clamp(Duration::from_millis(10), far);
    let mut beat = tokio::time::interval_at(saturating_add(Instant::now(), interval), interval);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let sweep_every =
        (config.heartbeat_timeout / 10).clamp(Duration::from_millis(10), MAX_SWEEP_EVERY);
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut beats_failing = false;

    loop {
        tokio::select! {
            _ = beat.tick() => {
                let Some(l) = liveness.upgrade() else { return };
                let ok = match l.link.publish_to_all(RequestOutBody::Heartbeat).await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::debug!(%error, "cannot send a heartbeat");
                        false
                    }
                };
                if ok == beats_failing {
                    beats_failing = !ok;
                    if ok {
                        tracing::info!(%ns, "heartbeats resumed");
                    } else {
                        tracing::warn!(%ns, "cannot send heartbeats: NATS is unreachable");
                    }
                }
            }
            _ = sweep.tick() => {
                let Some(l) = liveness.upgrade() else { return };
                let now = l.link.connection_epoch();
                if now != epoch {
                    match now {
                        Some(_) => {
                            tracing::info!(%ns, "NATS connection restored");
                            l.link.stats.reconnects.inc();
                            l.refresh_all();
                            // The others may have forgotten this node, and it may have
                            // missed their hellos and goodbyes meanwhile.
                            let discovery = l.clone();
                            _discovering = AbortOnDrop(tokio::spawn(async move { discovery.discover().await }));
                        }
                        None => tracing::warn!(%ns, state = %l.link.client().connection_state(), "NATS connection lost; publishing fails after the publish timeout until it is back"),
                    }
                    epoch = now;
                }
                // While this node is cut off, the others' silence says nothing
                // about them: only prune with a working connection.
                if now.is_some() {
                    l.prune();
                }
            }
        }
    }
}
