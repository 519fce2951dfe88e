//! A handle on the cluster state of one socket.io server.
//!
//! socketioxide does not give access to its adapter instances, so the constructor
//! keeps a registry of the namespaces it started, and [`NatsHandle`] reads it.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::{
    Sid, Uid,
    adapter::{Room, RoomParam},
};

use crate::{
    AdapterStats, Error,
    events::{self, CustomHook, CustomRequest, EventHandler, ServerEvent},
    view::{Answers, NamespaceView, ServerRequest},
};

/// The namespaces started from one constructor, and the handlers of server-side
/// events and custom requests registered through its handle.
#[derive(Default)]
pub(crate) struct Registry {
    namespaces: Mutex<HashMap<String, Weak<dyn NamespaceView>>>,
    handlers: Mutex<HashMap<(String, String), EventHandler>>,
    hooks: Mutex<HashMap<String, CustomHook>>,
}

/// Every map of the registry is updated by single inserts and removes, so a
/// poisoned lock still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub(crate) fn insert(&self, ns: &str, adapter: Weak<dyn NamespaceView>) {
        lock(&self.namespaces).insert(ns.to_owned(), adapter);
    }

    pub(crate) fn handler(&self, ns: &str, event: &str) -> Option<EventHandler> {
        lock(&self.handlers)
            .get(&(ns.to_owned(), event.to_owned()))
            .cloned()
    }

    pub(crate) fn hook(&self, ns: &str) -> Option<CustomHook> {
        lock(&self.hooks).get(ns).cloned()
    }

    pub(crate) fn remove(&self, ns: &str, uid: Uid) {
        let mut map = lock(&self.namespaces);
        let same = map
            .get(ns)
            .and_then(Weak::upgrade)
            .is_none_or(|a| *a.uid() == *uid);
        if same {
            map.remove(ns);
        }
    }

    fn get(&self, ns: &str) -> Option<Arc<dyn NamespaceView>> {
        lock(&self.namespaces).get(ns).and_then(Weak::upgrade)
    }

    fn started(&self, ns: &str) -> Result<Arc<dyn NamespaceView>, Error> {
        self.get(ns)
            .ok_or_else(|| Error::NamespaceNotStarted { ns: ns.to_owned() })
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

    /// What the adapter of namespace `ns` dropped, refused or could not finish
    /// since it started: malformed or forged messages, packets of the other
    /// socket.io parser, work past its bounds, probes, requests that ended
    /// incomplete. See [`AdapterStats`].
    pub fn stats(&self, ns: &str) -> Option<AdapterStats> {
        self.registry.get(ns).map(|a| a.stats())
    }

    /// Make the socket `sid` of namespace `ns`, connected to this server, join
    /// `rooms`; with [`room_routing`](crate::NatsAdapterConfig::room_routing),
    /// return only once this node is subscribed to them at its NATS server: every
    /// room broadcast published after this returns, from any node, reaches the
    /// socket. Use it instead of `socket.join` with room routing.
    ///
    /// A plain `socket.join` is picked up by the periodic reconcile instead, up to
    /// [`room_reconcile_interval`](crate::NatsAdapterConfig::room_reconcile_interval)
    /// later, and broadcasts to the room until then miss the socket. Without room
    /// routing this is `socket.join`. A socket that is not (or no longer)
    /// connected to this server joins nothing.
    ///
    /// ```no_run
    /// # use socketioxide::{adapter::Adapter, extract::{Data, SocketRef, State}};
    /// # use socketioxide_nats::NatsHandle;
    /// async fn on_join<A: Adapter>(s: SocketRef<A>, State(handle): State<NatsHandle>, Data(room): Data<String>) {
    ///     if let Err(e) = handle.join(s.ns(), s.id, room.clone()).await {
    ///         eprintln!("joined {room}, but its broadcasts may miss this socket for a moment: {e}");
    ///     }
    /// }
    /// ```
    pub async fn join(&self, ns: &str, sid: Sid, rooms: impl RoomParam) -> Result<(), Error> {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let view = self.registry.started(ns)?;
        view.join(sid, rooms).await
    }

    /// Register the handler of the server-side event `event` of namespace `ns`
    /// (it replaces an earlier one). Events sent by this server never reach it.
    ///
    /// ```no_run
    /// # fn doc(handle: socketioxide_nats::NatsHandle) {
    /// handle.on_server_event("/", "cache:invalidate", async |ev| {
    ///     let key: String = ev.data().unwrap_or_default();
    ///     println!("{} asks to drop {key}", ev.origin());
    ///     let _ = ev.ack(&"dropped").await; // only sent if the sender waits for it
    /// });
    /// # }
    /// ```
    pub fn on_server_event<F, Fut>(&self, ns: &str, event: &str, handler: F)
    where
        F: Fn(ServerEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.registry.handlers)
            .insert((ns.to_owned(), event.to_owned()), events::handler(handler));
    }

    /// Emit a server-side event to every other server of namespace `ns` (never to
    /// this one). `data` is any serializable value.
    pub async fn emit_server<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
    ) -> Result<(), Error> {
        let view = self.registry.started(ns)?;
        view.server_emit(event, events::encode(data)?).await
    }

    /// Emit a server-side event to every other server of namespace `ns` and collect
    /// one answer per server: its handler's ack, or an error (no handler, a handler
    /// that did not ack, a server silent past `timeout` (default: the request
    /// timeout)). Ends as soon as every live server has answered.
    pub async fn emit_server_with_ack<T, R>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
        timeout: Option<Duration>,
    ) -> Result<Vec<(Uid, Result<R, Error>)>, Error>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let view = self.registry.started(ns)?;
        let timeout = timeout.unwrap_or_else(|| view.request_timeout());
        let req = ServerRequest::Event(event.to_owned());
        let answers = view
            .server_request(req, events::encode(data)?, timeout)
            .await?;
        Ok(decode_answers(answers))
    }

    /// Set the custom hook of namespace `ns` (the `customHook` of the Node.js `socket.io-nats` and `socket.io-redis` adapters): it answers
    /// every [`custom_request`](Self::custom_request), including this server's own.
    ///
    /// ```no_run
    /// # fn doc(handle: socketioxide_nats::NatsHandle) {
    /// handle.set_custom_hook("/", async |req| {
    ///     let name: String = req.data().map_err(|e| e.to_string())?;
    ///     Ok(format!("hello {name}"))
    /// });
    /// # }
    /// ```
    pub fn set_custom_hook<F, Fut, R>(&self, ns: &str, hook: F)
    where
        F: Fn(CustomRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, String>> + Send + 'static,
        R: Serialize,
    {
        lock(&self.registry.hooks).insert(ns.to_owned(), events::hook(hook));
    }

    /// Send a custom request (their `customRequest`) to every server of
    /// namespace `ns`, this one included: each answers through its custom hook, and
    /// the result holds one answer per server. Ends as soon as every live server
    /// has answered, or after the request timeout for the silent ones.
    pub async fn custom_request<T, R>(
        &self,
        ns: &str,
        data: &T,
    ) -> Result<Vec<(Uid, Result<R, Error>)>, Error>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let view = self.registry.started(ns)?;
        let data = events::encode(data)?;
        let me = view.uid();
        let local = async {
            match self.registry.hook(ns) {
                Some(hook) => hook(CustomRequest {
                    origin: me,
                    data: data.clone(),
                })
                .await
                .map_err(|reason| Error::Remote { node: me, reason }),
                None => Err(Error::Remote {
                    node: me,
                    reason: "no custom hook is set on this node".into(),
                }),
            }
        };
        let remote =
            view.server_request(ServerRequest::Custom, data.clone(), view.request_timeout());
        let (local, remote) = tokio::join!(local, remote);
        let mut answers = vec![(me, local)];
        answers.extend(remote?);
        Ok(decode_answers(answers))
    }
}

fn decode_answers<R: DeserializeOwned>(answers: Answers) -> Vec<(Uid, Result<R, Error>)> {
    answers
        .into_iter()
        .map(|(node, res)| (node, res.and_then(|data| events::decode(&data))))
        .collect()
}
