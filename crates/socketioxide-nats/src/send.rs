//! The sending side: one namespace's link to NATS. Every message the adapter
//! publishes goes through here, bounded in time (a publish never waits longer than
//! [`publish_timeout`](crate::NatsAdapterConfig::publish_timeout)) and, for work
//! started by other nodes' messages, in number.

use std::sync::Arc;

use async_nats::{Client, Subject, connection::State};
use bytes::Bytes;
use futures_util::FutureExt;
use socketioxide_core::{Sid, Uid};
use socketioxide_nats_protocol::{
    message::{RequestOut, RequestOutBody, ResponseOut, ResponseOutBody},
    publish::{PublishFailure, publish_bounded},
    subjects::NsSubjects,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    Error, NatsAdapterConfig,
    requests::{Pending, Requests},
    stats::Stats,
};

/// What one namespace adapter needs to talk to the others: its client, its
/// subjects, its waiting requests and its counters. Shared by the adapter, the
/// receive loop, liveness and the requests in flight.
#[derive(Debug)]
pub(crate) struct Link {
    client: Client,
    uid: Uid,
    subjects: NsSubjects,
    /// Where this node publishes requests for every node, built once.
    broadcast_subject: Subject,
    /// The response-subject prefix of this node, to route replies by request id.
    reply_prefix: String,
    pub(crate) config: NatsAdapterConfig,
    pub(crate) requests: Arc<Requests>,
    pub(crate) stats: Stats,
    /// Handlers, hooks and answers that could not be published at once.
    work: Arc<Semaphore>,
    /// Remote broadcasts with acks still forwarding acks.
    ack_forwarders: Arc<Semaphore>,
}

impl Link {
    /// The link of namespace `ns` (its path), whose subjects are `subjects`.
    pub(crate) fn new(
        client: Client,
        config: NatsAdapterConfig,
        uid: Uid,
        ns: &str,
        subjects: NsSubjects,
    ) -> Self {
        let broadcast_subject = Subject::from(subjects.broadcast(uid.as_str()));
        let reply_prefix = subjects.reply_prefix(uid.as_str());
        let requests = Requests::new(config.response_buffer);
        let max = config.max_concurrent_work.max(1);
        Self {
            client,
            uid,
            subjects,
            broadcast_subject,
            reply_prefix,
            requests,
            stats: Stats::new(ns),
            work: Arc::new(Semaphore::new(max)),
            ack_forwarders: Arc::new(Semaphore::new(max)),
            config,
        }
    }

    /// This node's id in the cluster (socketioxide's server id).
    pub(crate) fn uid(&self) -> Uid {
        self.uid
    }

    pub(crate) fn subjects(&self) -> &NsSubjects {
        &self.subjects
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn reply_prefix(&self) -> &str {
        &self.reply_prefix
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Which connection the client is on: the number of times it connected, or
    /// `None` while it is disconnected. Answers published to this node are lost
    /// when it changes, however briefly the connection was down (a 10 ms cluster
    /// failover included), which polling the state would miss.
    pub(crate) fn connection_epoch(&self) -> Option<u64> {
        self.is_connected().then(|| {
            self.client
                .statistics()
                .connects
                .load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    pub(crate) fn unreachable(&self, action: String) -> Error {
        Error::Unreachable {
            action,
            timeout: self.config.publish_timeout,
            state: self.client.connection_state().to_string(),
        }
    }

    /// Publish one message, failing within `publish_timeout` if NATS is unreachable.
    pub(crate) async fn publish(
        &self,
        subject: Subject,
        reply: Option<Subject>,
        payload: Bytes,
    ) -> Result<(), Error> {
        let bound = self.config.publish_timeout;
        match publish_bounded(&self.client, subject.clone(), reply, payload, bound).await {
            Ok(()) => Ok(()),
            Err(PublishFailure::TooLarge { size, max }) => {
                Err(Error::PayloadTooLarge { size, max })
            }
            Err(PublishFailure::Refused(source)) => Err(Error::Publish {
                subject: subject.to_string(),
                source,
            }),
            Err(_) => Err(self.unreachable(format!("publish to {subject}"))),
        }
    }

    pub(crate) fn encode_request(&self, id: Option<Sid>, body: RequestOutBody<'_>) -> Bytes {
        RequestOut {
            origin: self.uid,
            id,
            body,
        }
        .encode()
    }

    pub(crate) fn response(&self, body: ResponseOutBody<'_>) -> Bytes {
        ResponseOut {
            origin: self.uid,
            body,
        }
        .encode()
    }

    /// `{prefix}.{ns}.b.{uid}` for every node, or the node subject of `target`.
    pub(crate) fn target_subject(&self, target: Option<Uid>) -> Subject {
        match target {
            Some(node) => Subject::from(self.subjects.node(node.as_str(), self.uid.as_str())),
            None => self.broadcast_subject.clone(),
        }
    }

    fn reply_subject(&self, id: Sid) -> Subject {
        Subject::from(self.subjects.reply(self.uid.as_str(), id.as_str()))
    }

    /// Publish a message for every node, expecting no answer.
    pub(crate) async fn publish_to_all(&self, body: RequestOutBody<'_>) -> Result<(), Error> {
        let payload = self.encode_request(None, body);
        self.publish(self.broadcast_subject.clone(), None, payload)
            .await
    }

    /// Register a request and publish it, to every node or to `target`. Answers
    /// reach the returned [`Pending`], registered before the publish so that none
    /// arrives unrouted.
    /// `internal` marks the adapter's own requests (discovery, probes), which
    /// [`NatsHandle::pending_requests`](crate::NatsHandle::pending_requests) does not count.
    pub(crate) async fn send_request(
        &self,
        body: RequestOutBody<'_>,
        target: Option<Uid>,
        internal: bool,
    ) -> Result<Pending, Error> {
        let id = Sid::new();
        let pending = self.requests.register(id, internal);
        let payload = self.encode_request(Some(id), body);
        self.publish(
            self.target_subject(target),
            Some(self.reply_subject(id)),
            payload,
        )
        .await?;
        Ok(pending)
    }

    /// Publish an answer (or any message started by another node's message)
    /// without making the caller wait: the receive loop must never await. Almost
    /// always the client takes it at once; otherwise a task finishes the publish,
    /// within [`max_concurrent_work`](NatsAdapterConfig::max_concurrent_work)
    /// tasks, and past that the answer is dropped and counted.
    pub(crate) fn answer(self: &Arc<Self>, subject: Subject, payload: Bytes) {
        let this = self.clone();
        let mut publish = Box::pin(async move {
            if let Err(error) = this.publish(subject.clone(), None, payload).await {
                tracing::debug!(%subject, %error, "cannot publish an answer");
            }
        });
        if publish.as_mut().now_or_never().is_some() {
            return;
        }
        if let Some(permit) = self.work_permit() {
            tokio::spawn(async move {
                publish.await;
                drop(permit);
            });
        }
    }

    /// A slot for a task started by another node's message, or `None` (counted)
    /// when too many are running.
    pub(crate) fn work_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permit(&self.work, "handlers and answers")
    }

    /// A slot for a remote broadcast with acks, or `None` (counted).
    pub(crate) fn ack_forwarder_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permit(&self.ack_forwarders, "ack forwarders")
    }

    fn permit(&self, slots: &Arc<Semaphore>, what: &str) -> Option<OwnedSemaphorePermit> {
        let permit = slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.stats.overloaded.inc();
            tracing::debug!(
                what,
                max = self.config.max_concurrent_work,
                "work dropped: too much running for other nodes' messages"
            );
        }
        permit
    }
}
