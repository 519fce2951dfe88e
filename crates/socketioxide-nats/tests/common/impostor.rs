//! A fake node built from the protocol crate: it says what a node says (hello,
//! heartbeats) and answers only what its [`Mode`] allows, to put the real nodes in
//! front of every kind of peer a publisher on the prefix can pretend to be.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use socketioxide_core::{Sid, Uid, Value};
use socketioxide_nats::async_nats;
use socketioxide_nats_protocol::{
    message::{
        RequestBody, RequestOut, RequestOutBody, ResponseOut, ResponseOutBody, decode_request,
    },
    subjects::NsSubjects,
};
use tokio::task::JoinHandle;

/// What the impostor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Beats, answers nothing: a forger that only publishes.
    Forger,
    /// Beats and answers liveness probes, but no request: a stuck node.
    Stuck,
    /// Like `Stuck`, and answers a broadcast with acks with a count of 1, its ack,
    /// then the count again: a duplicate a real node never sends, from a node that
    /// has finished.
    DuplicateAcks,
}

pub struct Impostor {
    pub uid: Uid,
    pub client: async_nats::Client,
    answering: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Impostor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Impostor {
    /// Start beating in namespace `ns` under the default prefix.
    pub async fn start(url: &str, ns: &str, mode: Mode) -> Self {
        let client = super::connect(url).await;
        let uid = Uid::new();
        let subjects = NsSubjects::new("socket.io", ns).unwrap();
        let answering = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();
        if mode != Mode::Forger {
            let mut node_sub = client
                .subscribe(subjects.node_filter(uid.as_str()))
                .await
                .unwrap();
            let mut all = client.subscribe(subjects.broadcast_filter()).await.unwrap();
            client.flush().await.unwrap();
            let c = client.clone();
            let on = answering.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(msg) = node_sub.next().await {
                    let Ok(req) = decode_request(msg.payload) else {
                        continue;
                    };
                    if matches!(req.body, RequestBody::Discover)
                        && on.load(Ordering::Relaxed)
                        && let Some(reply) = msg.reply
                    {
                        let res = ResponseOut {
                            origin: uid,
                            body: ResponseOutBody::Nodes(&[]),
                        }
                        .encode();
                        let _ = c.publish(reply, res).await;
                    }
                }
            }));
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(msg) = all.next().await {
                    if mode != Mode::DuplicateAcks {
                        continue;
                    }
                    let (Ok(req), Some(reply)) = (decode_request(msg.payload), msg.reply) else {
                        continue;
                    };
                    if !matches!(req.body, RequestBody::BroadcastWithAck { .. }) {
                        continue;
                    }
                    let value = Value::Str("[\"from-impostor\"]".into(), None);
                    let ack = |sid| {
                        ResponseOut {
                            origin: uid,
                            body: ResponseOutBody::Ack {
                                sid,
                                result: Ok(&value),
                            },
                        }
                        .encode()
                    };
                    let count = ResponseOut {
                        origin: uid,
                        body: ResponseOutBody::AckCount(1),
                    }
                    .encode();
                    for payload in [count.clone(), ack(Sid::new()), count] {
                        let _ = c.publish(reply.clone(), payload).await;
                    }
                }
            }));
        }
        let c = client.clone();
        let subject = subjects.broadcast(uid.as_str());
        tasks.push(tokio::spawn(async move {
            let hello = RequestOut {
                origin: uid,
                id: None,
                body: RequestOutBody::Hello,
            }
            .encode();
            let _ = c.publish(subject.clone(), hello).await;
            loop {
                let beat = RequestOut {
                    origin: uid,
                    id: None,
                    body: RequestOutBody::Heartbeat,
                }
                .encode();
                let _ = c.publish(subject.clone(), beat).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        Impostor {
            uid,
            client,
            answering,
            tasks,
        }
    }

    /// Stop answering probes, but keep beating: a crashed node whose heartbeats
    /// someone forges.
    pub fn stop_answering_probes(&self) {
        self.answering.store(false, Ordering::Relaxed);
    }
}
