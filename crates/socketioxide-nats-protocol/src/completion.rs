//! When a cluster request is complete: which nodes still owe an answer.
//!
//! A request goes to every node; each node answers once (rooms, sockets, a
//! reply), or, for a broadcast with acks, with an ack count followed by that many
//! acks. The requester decides which nodes it waits for, then feeds every response
//! it receives to a [`Tracker`], which accepts each expected answer exactly once
//! and ignores everything else: answers from nodes it does not wait for,
//! duplicates, a second ack count, acks past the count or before it, responses of
//! the wrong type. A forged or replayed response can therefore neither complete a
//! request early nor make it wait longer.
//!
//! The adapter and the emitter share this logic; neither does I/O here, so it is
//! tested without a broker.

use std::collections::HashMap;

use socketioxide_core::{Sid, Uid};

use crate::message::{ResponseBody, ResponseIn, ResponseKind};

/// What a request expects from each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One response of this type.
    One(ResponseKind),
    /// An [`AckCount`](ResponseKind::AckCount), then that many [`Ack`](ResponseKind::Ack)s.
    Acks,
}

/// Where one node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Nothing received yet.
    Waiting,
    /// Its ack count arrived; this many acks are still due.
    AcksDue(u32),
    /// It answered everything it owed.
    Done,
    /// It left the cluster (or was found gone) before answering in full.
    Gone,
}

impl Progress {
    fn owes(self) -> bool {
        matches!(self, Progress::Waiting | Progress::AcksDue(_))
    }
}

/// What the tracker made of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The answer a node owed: keep it (for acks, yield it).
    Accept,
    /// Not an answer this request waits for: drop it.
    Ignore(Ignored),
}

/// Why a response was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Its sender is not a node the request waits for.
    UnexpectedNode,
    /// The node already answered (or was found gone).
    Duplicate,
    /// Not the type of answer the request expects.
    WrongKind,
    /// An ack before the node's ack count, or past it.
    AckOutOfCount,
}

impl Ignored {
    /// A short description, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::UnexpectedNode => "from a node the request does not wait for",
            Ignored::Duplicate => "a duplicate of an answer already received",
            Ignored::WrongKind => "of a type the request does not expect",
            Ignored::AckOutOfCount => "an ack outside the node's ack count",
        }
    }
}

/// The nodes a request waits for, and what each still owes.
///
/// ```
/// use socketioxide_core::Uid;
/// use socketioxide_nats_protocol::completion::{Expect, Tracker, Verdict};
/// use socketioxide_nats_protocol::message::{ResponseBody, ResponseIn, ResponseKind};
///
/// let (a, b) = (Uid::new(), Uid::new());
/// let mut t = Tracker::new(Expect::One(ResponseKind::Rooms), [a, b]);
/// let answer = |origin| ResponseIn { origin, body: ResponseBody::Rooms(vec![]) };
/// assert_eq!(t.on_response(&answer(a)), Verdict::Accept);
/// assert!(t.on_response(&answer(a)) != Verdict::Accept, "counted once");
/// assert!(!t.is_complete());
/// t.gone(b);
/// assert!(t.is_complete());
/// ```
#[derive(Debug, Clone)]
pub struct Tracker {
    expect: Expect,
    /// Keyed by the id's characters: `Uid` is not `Hash`.
    nodes: HashMap<Sid, (Uid, Progress)>,
}

impl Tracker {
    /// A tracker waiting for `nodes`.
    pub fn new(expect: Expect, nodes: impl IntoIterator<Item = Uid>) -> Self {
        let mut t = Self {
            expect,
            nodes: HashMap::new(),
        };
        for uid in nodes {
            t.expect(uid);
        }
        t
    }

    /// What the request expects from each node.
    pub fn expects(&self) -> Expect {
        self.expect
    }

    /// Also wait for `uid`; nothing changes if it is tracked already (answered,
    /// gone, or still owing).
    pub fn expect(&mut self, uid: Uid) {
        self.nodes.entry(*uid).or_insert((uid, Progress::Waiting));
    }

    /// Whether `uid` is one of the nodes this request waits for (or waited for).
    pub fn is_expected(&self, uid: Uid) -> bool {
        self.nodes.contains_key(&*uid)
    }

    /// Count a response: accept it if it is an answer its sender still owed.
    pub fn on_response(&mut self, res: &ResponseIn) -> Verdict {
        let Some((_, progress)) = self.nodes.get_mut(&*res.origin) else {
            return Verdict::Ignore(Ignored::UnexpectedNode);
        };
        let next = match (self.expect, &res.body, *progress) {
            (_, _, Progress::Done | Progress::Gone) => return Verdict::Ignore(Ignored::Duplicate),
            (Expect::One(kind), body, Progress::Waiting) if kind_of(body) == kind => Progress::Done,
            (Expect::One(_), _, _) => return Verdict::Ignore(Ignored::WrongKind),
            (Expect::Acks, ResponseBody::AckCount(0), Progress::Waiting) => Progress::Done,
            (Expect::Acks, ResponseBody::AckCount(n), Progress::Waiting) => Progress::AcksDue(*n),
            (Expect::Acks, ResponseBody::AckCount(_), _) => {
                return Verdict::Ignore(Ignored::Duplicate);
            }
            (Expect::Acks, ResponseBody::Ack { .. }, Progress::AcksDue(1)) => Progress::Done,
            (Expect::Acks, ResponseBody::Ack { .. }, Progress::AcksDue(n)) => {
                Progress::AcksDue(n - 1)
            }
            (Expect::Acks, ResponseBody::Ack { .. }, _) => {
                return Verdict::Ignore(Ignored::AckOutOfCount);
            }
            (Expect::Acks, _, _) => return Verdict::Ignore(Ignored::WrongKind),
        };
        *progress = next;
        Verdict::Accept
    }

    /// `uid` left the cluster: stop waiting for it. Tells whether it still owed
    /// something.
    pub fn gone(&mut self, uid: Uid) -> bool {
        match self.nodes.get_mut(&*uid) {
            Some((_, progress)) if progress.owes() => {
                *progress = Progress::Gone;
                true
            }
            _ => false,
        }
    }

    /// Whether every node answered in full or is gone.
    pub fn is_complete(&self) -> bool {
        !self.nodes.values().any(|(_, p)| p.owes())
    }

    /// The nodes that still owe something.
    pub fn owing(&self) -> Vec<Uid> {
        self.nodes
            .values()
            .filter(|(_, p)| p.owes())
            .map(|(uid, _)| *uid)
            .collect()
    }

    /// Whether `uid` owes something and has sent nothing yet.
    pub fn is_silent(&self, uid: Uid) -> bool {
        matches!(self.nodes.get(&*uid), Some((_, Progress::Waiting)))
    }

    /// How many nodes the request waits for or waited for.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the request waits for no node at all.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

fn kind_of(body: &ResponseBody) -> ResponseKind {
    match body {
        ResponseBody::Ack { .. } => ResponseKind::Ack,
        ResponseBody::AckCount(_) => ResponseKind::AckCount,
        ResponseBody::Rooms(_) => ResponseKind::Rooms,
        ResponseBody::Sockets(_) => ResponseKind::Sockets,
        ResponseBody::Done(_) => ResponseKind::Done,
        ResponseBody::Reply(_) => ResponseKind::Reply,
        ResponseBody::Nodes(_) => ResponseKind::Nodes,
    }
}

#[cfg(test)]
mod tests {
    use socketioxide_core::Value;

    use super::*;

    fn res(origin: Uid, body: ResponseBody) -> ResponseIn {
        ResponseIn { origin, body }
    }

    fn ack(origin: Uid) -> ResponseIn {
        res(
            origin,
            ResponseBody::Ack {
                sid: Sid::new(),
                result: Ok(Value::Str("[1]".into(), None)),
            },
        )
    }

    const IGNORE_DUP: Verdict = Verdict::Ignore(Ignored::Duplicate);

    #[test]
    fn one_answer_per_node_counted_once() {
        let (a, b) = (Uid::new(), Uid::new());
        let mut t = Tracker::new(Expect::One(ResponseKind::Sockets), [a, b]);
        let sockets = |o| res(o, ResponseBody::Sockets(vec![]));
        assert_eq!(t.on_response(&sockets(a)), Verdict::Accept);
        assert_eq!(t.on_response(&sockets(a)), IGNORE_DUP);
        assert_eq!(t.owing(), vec![b]);
        assert_eq!(
            t.on_response(&res(b, ResponseBody::Rooms(vec![]))),
            Verdict::Ignore(Ignored::WrongKind)
        );
        assert!(t.is_silent(b));
        assert_eq!(t.on_response(&sockets(b)), Verdict::Accept);
        assert!(t.is_complete());
    }

    #[test]
    fn answers_from_unexpected_nodes_are_ignored() {
        let a = Uid::new();
        let mut t = Tracker::new(Expect::One(ResponseKind::Done), [a]);
        let stranger = res(Uid::new(), ResponseBody::Done(1));
        assert_eq!(
            t.on_response(&stranger),
            Verdict::Ignore(Ignored::UnexpectedNode)
        );
        assert!(!t.is_complete());
        assert_eq!(t.len(), 1, "a stranger is not added");
    }

    #[test]
    fn acks_follow_their_count() {
        let (a, b) = (Uid::new(), Uid::new());
        let mut t = Tracker::new(Expect::Acks, [a, b]);
        assert_eq!(
            t.on_response(&ack(a)),
            Verdict::Ignore(Ignored::AckOutOfCount),
            "an ack before the count"
        );
        assert_eq!(
            t.on_response(&res(a, ResponseBody::AckCount(2))),
            Verdict::Accept
        );
        assert_eq!(
            t.on_response(&res(a, ResponseBody::AckCount(5))),
            IGNORE_DUP,
            "a second count does not reset the node"
        );
        assert_eq!(t.on_response(&ack(a)), Verdict::Accept);
        assert_eq!(t.on_response(&ack(a)), Verdict::Accept);
        assert_eq!(t.on_response(&ack(a)), IGNORE_DUP, "past the count");
        assert_eq!(
            t.on_response(&res(a, ResponseBody::AckCount(1))),
            IGNORE_DUP,
            "a finished node is not re-inserted by a late count"
        );
        assert_eq!(t.owing(), vec![b]);
        assert_eq!(
            t.on_response(&res(b, ResponseBody::AckCount(0))),
            Verdict::Accept
        );
        assert!(t.is_complete());
    }

    #[test]
    fn a_huge_count_is_only_a_wait_bounded_by_the_deadline() {
        let a = Uid::new();
        let mut t = Tracker::new(Expect::Acks, [a]);
        t.on_response(&res(a, ResponseBody::AckCount(u32::MAX)));
        t.on_response(&ack(a));
        assert!(!t.is_complete());
        assert!(t.gone(a));
        assert!(t.is_complete());
    }

    #[test]
    fn gone_nodes_complete_and_stay_gone() {
        let (a, b) = (Uid::new(), Uid::new());
        let mut t = Tracker::new(Expect::One(ResponseKind::Rooms), [a, b]);
        assert!(t.gone(a));
        assert!(!t.gone(a));
        assert_eq!(
            t.on_response(&res(a, ResponseBody::Rooms(vec![]))),
            IGNORE_DUP,
            "a gone node's late answer is not counted"
        );
        t.expect(a);
        assert!(!t.is_silent(a), "expect does not revive a gone node");
        assert!(!t.gone(Uid::new()));
        t.on_response(&res(b, ResponseBody::Rooms(vec![])));
        assert!(t.is_complete());
        assert!(!t.gone(b), "b had answered");
    }

    #[test]
    fn nobody_to_wait_for_is_complete() {
        let t = Tracker::new(Expect::Acks, []);
        assert!(t.is_complete());
        assert!(t.is_empty());
    }
}
