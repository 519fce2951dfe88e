//! Which adapters of this process share one NATS connection.
//!
//! Several socket.io servers may share a connection (clones of one client), which
//! works only while the connection echoes their messages back: with `no_echo` they
//! never hear each other, silently. The heartbeat task asks [`ConnectionShare`]
//! whether that is the case once a node's own `Hello` had time to come back, and
//! warns.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use async_nats::Client;

/// A connection, as the server that accepted it names it, and a namespace.
type Key = (String, u64, String);

static USERS: LazyLock<Mutex<HashMap<Key, usize>>> = LazyLock::new(Default::default);

fn users() -> std::sync::MutexGuard<'static, HashMap<Key, usize>> {
    USERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One adapter's use of its connection for one namespace, released on drop.
#[derive(Debug)]
pub(crate) struct ConnectionShare {
    key: Key,
}

impl ConnectionShare {
    /// Registers the adapter of namespace `ns`; `None` while the client has no
    /// server (its connection cannot be told apart from another's then).
    pub(crate) fn register(client: &Client, ns: &str) -> Option<Self> {
        let info = client.server_info();
        if info.server_id.is_empty() {
            return None;
        }
        let key = (info.server_id, info.client_id, ns.to_owned());
        *users().entry(key.clone()).or_default() += 1;
        Some(Self { key })
    }

    /// How many adapters of this namespace in this process use the connection.
    pub(crate) fn users(&self) -> usize {
        users().get(&self.key).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionShare {
    fn drop(&mut self) {
        let mut users = users();
        if let Some(n) = users.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                users.remove(&self.key);
            }
        }
    }
}
