//! Room routing: one subscription per room this node has members in.
//!
//! With [`room_routing`](crate::NatsAdapterConfig::room_routing), a broadcast to
//! exactly one room is published on `{prefix}.{ns}.room.{room}.{origin}`
//! ([`routed_room`] says which broadcasts), and a node subscribes to
//! `{prefix}.{ns}.room.{room}.*` while it has local members in `room`. NATS then
//! delivers a room's broadcasts to the nodes with members only, across the
//! servers of a cluster and the gateways of a supercluster alike.
//!
//! socketioxide does not tell adapters when a socket joins a room locally
//! (`socket.join` writes into its local adapter directly), so:
//!
//! * joins that reach the adapter (`io.to(..).join(..)`, `RemoteSocket::join`)
//!   and [`NatsHandle::join`](crate::NatsHandle::join) subscribe before they
//!   return, and flush, so the node's NATS server holds the interest: a room
//!   broadcast published after they return reaches the new member;
//! * a reconcile every [`room_reconcile_interval`](crate::NatsAdapterConfig::room_reconcile_interval)
//!   subscribes to rooms found by a plain `socket.join` (and warns, once, naming
//!   the API to use), and drops the subscriptions of rooms without local members
//!   (after leaves and disconnects, which socketioxide does not report either).
//!
//! Nodes without routing subscribe to every room subject at once
//! (`{prefix}.{ns}.room.*.*`), so a cluster can mix both.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use futures_util::StreamExt;
use socketioxide_core::{
    Sid,
    adapter::{BroadcastFlags, BroadcastOptions, Room, SocketEmitter},
};
use tokio::sync::Mutex;

use socketioxide_nats_protocol::message::RequestOutBody;

use crate::{Error, NatsAdapter, recv::Source, tasks::AbortOnDrop};

/// The room a broadcast is published for, when room routing sends it on the
/// room's own subject: exactly one room, not a socket id (a subscription per
/// socket would cost more than it saves), not local-only, not aimed at one node.
/// Broadcasts with acks, to several rooms or to everybody keep the broadcast
/// subject: every node answers or may match them.
pub(crate) fn routed_room(opts: &BroadcastOptions) -> Option<&str> {
    match opts.rooms.as_slice() {
        [room]
            if !opts.has_flag(BroadcastFlags::Local)
                && opts.server_id.is_none()
                && is_routable(room) =>
        {
            Some(room)
        }
        _ => None,
    }
}

/// Whether a room gets a subscription of its own: not one named like a socket id.
fn is_routable(room: &str) -> bool {
    Sid::from_str(room).is_err()
}

/// This node's room subscriptions.
#[derive(Debug, Default)]
pub(crate) struct RoomSubs {
    /// Each room's subscription, as the task that receives it. Held across the
    /// subscribe and flush of a join, so that a concurrent join of the same room
    /// returns only once the interest is registered, and the reconcile cannot drop
    /// a room a join is adding.
    subs: Mutex<HashMap<String, AbortOnDrop>>,
    /// Whether the reconcile already warned about a plain `socket.join`.
    warned: AtomicBool,
}

impl RoomSubs {
    /// Drop every room subscription (the adapter closes). Without waiting: a
    /// join holding the lock drops its own when the adapter is dropped.
    pub(crate) fn clear(&self) {
        if let Ok(mut subs) = self.subs.try_lock() {
            subs.clear();
        }
    }
}

impl<E: SocketEmitter> NatsAdapter<E> {
    /// Subscribe to the rooms not subscribed yet and flush, so that the node's
    /// NATS server holds the interest when this returns. Does nothing without
    /// room routing.
    pub(crate) async fn route_rooms(&self, rooms: &[Room]) -> Result<(), Error> {
        if !self.config().room_routing {
            return Ok(());
        }
        let mut subs = self.rooms.subs.lock().await;
        let mut added = false;
        for room in rooms.iter().filter(|r| is_routable(r)) {
            if subs.contains_key(room.as_ref()) {
                continue;
            }
            let task = self.spawn_room_subscription(room).await?;
            subs.insert(room.to_string(), task);
            added = true;
        }
        if added {
            self.link.stats.set_room_subscriptions(subs.len());
            let bound = self.config().publish_timeout;
            match tokio::time::timeout(bound, self.link.client().flush()).await {
                Ok(Ok(())) => {}
                _ => return Err(self.link.unreachable("flush the room subscriptions".into())),
            }
            // The flush only proves that this node's server holds the interest. In
            // a NATS cluster (or a supercluster) it reaches the other servers along
            // the route (gateway) connections, ahead of any message this node sends
            // after it: once every node has answered a request sent now, every
            // server with a node knows the interest, and a room broadcast any of
            // them publishes from then on reaches this node.
            self.request(
                RequestOutBody::Discover,
                None,
                socketioxide_nats_protocol::message::ResponseKind::Nodes,
            )
            .await?;
        }
        Ok(())
    }

    async fn spawn_room_subscription(&self, room: &str) -> Result<AbortOnDrop, Error> {
        let subject = self.link.subjects().room_filter(room);
        let mut sub = crate::recv::subscribe(&self.link, subject).await?;
        let me = self.weak();
        Ok(AbortOnDrop(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(adapter) = me.upgrade() else { return };
                adapter.receive(Source::Broadcast, msg);
            }
        })))
    }

    /// Subscribe to the local rooms found without a subscription (a plain
    /// `socket.join`), and drop the subscriptions of rooms without local members.
    pub(crate) async fn reconcile_rooms(&self) {
        let local = socketioxide_core::adapter::CoreAdapter::get_local(self);
        let mut everyone = BroadcastOptions::default();
        everyone.add_flag(BroadcastFlags::Broadcast);
        let present: Vec<Room> = local
            .rooms(everyone)
            .into_iter()
            .filter(|r| is_routable(r))
            .collect();
        let missing: Vec<Room> = {
            let subs = self.rooms.subs.lock().await;
            present
                .iter()
                .filter(|r| !subs.contains_key(r.as_ref()))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            if !self.rooms.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    ns = %local.path(),
                    rooms = ?missing,
                    "room routing: sockets joined rooms with socket.join, which socketioxide does not report; \
                     broadcasts to them reached this node only from now on. Join with NatsHandle::join \
                     (or io.to(..).join(..)) to be subscribed before the join returns"
                );
            } else {
                tracing::debug!(ns = %local.path(), rooms = ?missing, "room routing: rooms found by the reconcile");
            }
            if let Err(error) = self.route_rooms(&missing).await {
                tracing::warn!(%error, "room routing: cannot subscribe to rooms");
            }
        }
        let mut subs = self.rooms.subs.lock().await;
        let before = subs.len();
        // Checked again under the lock: a join that just added a member keeps it.
        subs.retain(|room, _| {
            let mut in_room = BroadcastOptions::default();
            in_room.add_flag(BroadcastFlags::Broadcast);
            in_room.rooms = vec![Room::Owned(room.clone())].into();
            !local.sockets(in_room).is_empty()
        });
        if subs.len() != before {
            self.link.stats.set_room_subscriptions(subs.len());
        }
    }

    /// Start the reconcile of room subscriptions, with room routing on.
    pub(crate) fn spawn_room_reconcile(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.config().room_routing {
            return None;
        }
        let every = self
            .config()
            .room_reconcile_interval
            .max(std::time::Duration::from_millis(10));
        let me = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(adapter) = me.upgrade() else { return };
                adapter.reconcile_rooms().await;
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use socketioxide_core::{Sid, Uid};

    use super::*;

    fn opts(rooms: &[&str]) -> BroadcastOptions {
        let mut o = BroadcastOptions::default();
        o.add_flag(BroadcastFlags::Broadcast);
        o.rooms = rooms.iter().map(|r| Cow::Owned(r.to_string())).collect();
        o
    }

    #[test]
    fn only_broadcasts_to_one_named_room_are_routed() {
        assert_eq!(routed_room(&opts(&["lobby"])), Some("lobby"));
        assert_eq!(routed_room(&opts(&["*"])), Some("*"), "any name is encoded");
        assert_eq!(routed_room(&opts(&[])), None, "to everybody");
        assert_eq!(routed_room(&opts(&["a", "b"])), None, "several rooms");
        let sid = Sid::new();
        assert_eq!(routed_room(&opts(&[sid.as_str()])), None, "a socket id");
        let mut local = opts(&["lobby"]);
        local.add_flag(BroadcastFlags::Local);
        assert_eq!(routed_room(&local), None);
        let mut one_node = opts(&["lobby"]);
        one_node.server_id = Some(Uid::new());
        assert_eq!(routed_room(&one_node), None);
        let mut except = opts(&["lobby"]);
        except.except = vec![Cow::Borrowed("muted")].into();
        except.sid = Some(sid);
        assert_eq!(
            routed_room(&except),
            Some("lobby"),
            "except and sender exclusion filter exactly"
        );
    }
}
