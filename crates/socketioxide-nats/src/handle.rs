//! A handle on the cluster state of one socket.io server.
//!
//! socketioxide does not give access to its adapter instances, so the constructor
//! keeps a registry of the namespaces it started, and [`NatsHandle`] reads it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use socketioxide_core::{Uid, adapter::SocketEmitter};

use crate::NatsAdapter;

/// What the handle can ask a running namespace adapter, whatever its emitter type.
pub(crate) trait NamespaceView: Send + Sync {
    fn uid(&self) -> Uid;
    fn nodes(&self) -> Vec<Uid>;
    fn pending_requests(&self) -> usize;
}

impl<E: SocketEmitter> NamespaceView for NatsAdapter<E> {
    fn uid(&self) -> Uid {
        NatsAdapter::uid(self)
    }
    fn nodes(&self) -> Vec<Uid> {
        self.nodes.alive()
    }
    fn pending_requests(&self) -> usize {
        self.requests.len()
    }
}

/// The namespaces started from one constructor.
#[derive(Default)]
pub(crate) struct Registry {
    namespaces: Mutex<HashMap<String, Weak<dyn NamespaceView>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<dyn NamespaceView>>> {
        // Single inserts and removes only: a poisoned map is still consistent.
        self.namespaces.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, ns: &str, adapter: Weak<dyn NamespaceView>) {
        self.lock().insert(ns.to_owned(), adapter);
    }

    pub(crate) fn remove(&self, ns: &str, uid: Uid) {
        let mut map = self.lock();
        let same = map
            .get(ns)
            .and_then(Weak::upgrade)
            .is_none_or(|a| *a.uid() == *uid);
        if same {
            map.remove(ns);
        }
    }

    fn get(&self, ns: &str) -> Option<Arc<dyn NamespaceView>> {
        self.lock().get(ns).and_then(Weak::upgrade)
    }
}

/// A handle on the cluster as seen by the socket.io server built from one
/// [`NatsAdapterCtr`](crate::NatsAdapterCtr). Get it with
/// [`NatsAdapterCtr::handle`](crate::NatsAdapterCtr::handle) before giving the
/// constructor to socketioxide, and keep it (for example in socketioxide's state).
///
/// Build one constructor per socket.io server: a constructor cloned into two
/// servers of the same process shares one registry, and the handle then sees the
/// namespace of whichever server started it last.
///
/// ```no_run
/// # async fn doc_main() -> Result<(), Box<dyn std::error::Error>> {
/// use socketioxide::SocketIo;
/// use socketioxide_nats::{NatsAdapter, NatsAdapterCtr, async_nats};
///
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let ctr = NatsAdapterCtr::new_with_nats(client);
/// let handle = ctr.handle();
/// let (_layer, io) = SocketIo::builder()
///     .with_adapter::<NatsAdapter<_>>(ctr)
///     .build_layer();
/// io.ns("/", async || {}).await?;
/// println!("{} servers serve /", handle.server_count("/").unwrap_or(0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsHandle {
    pub(crate) registry: Arc<Registry>,
}

impl NatsHandle {
    /// How many servers serve namespace `ns`, this one included, or `None` if this
    /// server has not started `ns`.
    pub fn server_count(&self, ns: &str) -> Option<usize> {
        self.registry.get(ns).map(|a| a.nodes().len() + 1)
    }

    /// The ids of the other live servers of namespace `ns`.
    pub fn nodes(&self, ns: &str) -> Option<Vec<Uid>> {
        self.registry.get(ns).map(|a| a.nodes())
    }

    /// This server's id, as seen by the other nodes (socketioxide's `server_id`).
    pub fn server_id(&self, ns: &str) -> Option<Uid> {
        self.registry.get(ns).map(|a| a.uid())
    }

    /// How many cluster requests of namespace `ns` are waiting for answers. Back to
    /// zero whenever the server is idle; useful to check for leaks.
    pub fn pending_requests(&self, ns: &str) -> Option<usize> {
        self.registry.get(ns).map(|a| a.pending_requests())
    }
}
