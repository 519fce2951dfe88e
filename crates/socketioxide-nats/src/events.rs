//! Server-side events and custom requests: messages between the nodes
//! themselves, not for sockets.
//!
//! Their data is MessagePack, written with `rmp_serde::to_vec_named` (structs as
//! maps, so other languages can read them), and read with any
//! `serde::Deserialize` type.

use std::{fmt, future::Future, sync::Arc};

use async_nats::Subject;
use bytes::Bytes;
use futures_core::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use socketioxide_core::Uid;

use crate::{Error, view::NamespaceView};

pub(crate) type EventHandler = Arc<dyn Fn(ServerEvent) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type CustomHook =
    Arc<dyn Fn(CustomRequest) -> BoxFuture<'static, Result<Bytes, String>> + Send + Sync>;

pub(crate) fn encode<T: Serialize + ?Sized>(data: &T) -> Result<Bytes, Error> {
    Ok(Bytes::from(rmp_serde::to_vec_named(data)?))
}

pub(crate) fn decode<T: DeserializeOwned>(data: &[u8]) -> Result<T, Error> {
    Ok(rmp_serde::from_slice(data)?)
}

pub(crate) fn handler<F, Fut>(f: F) -> EventHandler
where
    F: Fn(ServerEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |ev| Box::pin(f(ev)))
}

pub(crate) fn hook<F, Fut, R>(f: F) -> CustomHook
where
    F: Fn(CustomRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, String>> + Send + 'static,
    R: Serialize,
{
    Arc::new(move |req| {
        let fut = f(req);
        Box::pin(async move {
            let value = fut.await?;
            rmp_serde::to_vec_named(&value)
                .map(Bytes::from)
                .map_err(|e| format!("cannot encode the custom hook's answer: {e}"))
        })
    })
}

/// Where to send the ack of a server event.
pub(crate) struct Replier {
    pub(crate) view: Arc<dyn NamespaceView>,
    pub(crate) subject: Subject,
}

/// A server-side event sent by another node (or an emitter), as received by a
/// handler registered with
/// [`NatsHandle::on_server_event`](crate::NatsHandle::on_server_event).
///
/// When the sender waits for an acknowledgement, answer with
/// [`ack`](Self::ack); an event dropped without an ack is answered with an error,
/// so the sender does not wait for its timeout.
pub struct ServerEvent {
    pub(crate) origin: Uid,
    pub(crate) event: String,
    pub(crate) data: Bytes,
    pub(crate) reply: Option<Replier>,
}

impl fmt::Debug for ServerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerEvent")
            .field("origin", &self.origin)
            .field("event", &self.event)
            .field("data_len", &self.data.len())
            .field("wants_ack", &self.reply.is_some())
            .finish()
    }
}

impl ServerEvent {
    /// The id of the node (or emitter) that sent the event.
    pub fn origin(&self) -> Uid {
        self.origin
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The event data, decoded.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode(&self.data)
    }

    /// The raw MessagePack data.
    pub fn raw_data(&self) -> &Bytes {
        &self.data
    }

    /// Whether the sender waits for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.reply.is_some()
    }

    /// Acknowledge the event with `value`. Does nothing if the sender does not
    /// wait for an ack.
    pub async fn ack<T: Serialize + ?Sized>(mut self, value: &T) -> Result<(), Error> {
        let Some(replier) = self.reply.take() else {
            return Ok(());
        };
        let data = encode(value)?;
        replier.view.reply(replier.subject, Ok(data)).await
    }
}

impl Drop for ServerEvent {
    fn drop(&mut self) {
        let Some(replier) = self.reply.take() else {
            return;
        };
        let event = std::mem::take(&mut self.event);
        // Tell the sender now rather than letting it wait for its timeout.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let reason =
                    format!("the handler of server event {event:?} did not acknowledge it");
                let _ = replier.view.reply(replier.subject, Err(reason)).await;
            });
        }
    }
}

/// A custom request (the `customRequest` of the Node.js `socket.io-nats` and
/// `socket.io-redis` adapters), as received by the hook set
/// with [`NatsHandle::set_custom_hook`](crate::NatsHandle::set_custom_hook).
#[derive(Debug, Clone)]
pub struct CustomRequest {
    pub(crate) origin: Uid,
    pub(crate) data: Bytes,
}

impl CustomRequest {
    /// The id of the node (or emitter) that sent the request.
    pub fn origin(&self) -> Uid {
        self.origin
    }

    /// The request data, decoded.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode(&self.data)
    }

    /// The raw MessagePack data.
    pub fn raw_data(&self) -> &Bytes {
        &self.data
    }
}
