//! Which other nodes serve this namespace, learned from heartbeats.
//!
//! NATS cannot count the subscribers of a subject (there is no equivalent of
//! Redis `PUBSUB NUMSUB`), so nodes announce themselves: a `Hello` when they
//! start, a `Heartbeat` every interval and a `Goodbye` when they close. Only those
//! messages make a node known, so an emitter, which never sends them, is never
//! counted. Any other message from a known node also proves it alive.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use socketioxide_core::{Sid, Uid};

#[derive(Debug)]
pub(crate) struct Nodes {
    /// Keyed by the id's characters: `Uid` itself is not `Hash`.
    seen: Mutex<HashMap<Sid, (Uid, Instant)>>,
    timeout: Duration,
}

impl Nodes {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, (Uid, Instant)>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert or remove), so poisoning is ignored.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a heartbeat; tell whether the node was unknown.
    pub(crate) fn heartbeat(&self, uid: Uid) -> bool {
        self.lock().insert(*uid, (uid, Instant::now())).is_none()
    }

    /// Refresh a known node; unknown senders (emitters) are ignored.
    pub(crate) fn touch(&self, uid: Uid) {
        if let Some((_, seen)) = self.lock().get_mut(&*uid) {
            *seen = Instant::now();
        }
    }

    /// Forget a node; tell whether it was known.
    pub(crate) fn remove(&self, uid: Uid) -> bool {
        self.lock().remove(&*uid).is_some()
    }

    /// Forget the nodes not heard from within the timeout and return them.
    pub(crate) fn prune(&self) -> Vec<Uid> {
        let now = Instant::now();
        let mut dead = Vec::new();
        self.lock().retain(|_, (uid, seen)| {
            let alive = now.duration_since(*seen) <= self.timeout;
            if !alive {
                dead.push(*uid);
            }
            alive
        });
        dead
    }

    /// The nodes currently alive.
    pub(crate) fn alive(&self) -> Vec<Uid> {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|(_, seen)| now.duration_since(*seen) <= self.timeout)
            .map(|(uid, _)| *uid)
            .collect()
    }

    /// Count every known node as just heard from: after this node's own NATS
    /// connection was down, their silence meant nothing.
    pub(crate) fn refresh_all(&self) {
        let now = Instant::now();
        for (_, seen) in self.lock().values_mut() {
            *seen = now;
        }
    }

    pub(crate) fn forget_all(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let nodes = Nodes::new(Duration::from_millis(50));
        let (a, b) = (Uid::new(), Uid::new());
        assert!(nodes.heartbeat(a));
        assert!(!nodes.heartbeat(a));
        nodes.touch(b);
        assert_eq!(nodes.alive(), vec![a], "touch must not discover a node");
        assert!(nodes.heartbeat(b));
        assert!(nodes.remove(b));
        assert!(!nodes.remove(b));
        std::thread::sleep(Duration::from_millis(80));
        assert!(nodes.alive().is_empty());
        assert_eq!(nodes.prune(), vec![a]);
        assert!(nodes.prune().is_empty());
    }
}
