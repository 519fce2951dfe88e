//! Asking the servers: an emitter does not follow heartbeats, so each request
//! goes out together with a `Discover`. Every server answers `Discover` with the
//! other live servers it knows, so after one round trip the emitter knows whom
//! to wait for, and the request completes as soon as all of them answered.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use async_nats::{Client, Message, StatusCode, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use socketioxide_core::{Sid, Uid};
use socketioxide_nats_protocol::{
    message::{RequestOut, RequestOutBody, ResponseBody, ResponseIn, decode_response},
    subjects::NsSubjects,
};
use tokio::time::Instant;

use crate::EmitError;

/// What the request expects from each server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Nothing but the discovery (server count, node list).
    Nothing,
    /// One response.
    One,
    /// An ack count, then that many acks.
    Acks,
}

/// The answers to a request.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// Every server that answered or was reported alive.
    pub(crate) nodes: Vec<Uid>,
    /// The responses to the request itself, in arrival order.
    pub(crate) responses: Vec<ResponseIn>,
    /// Servers reported alive that did not complete their answer in time.
    pub(crate) silent: Vec<Uid>,
}

#[derive(Debug, Default)]
struct NodeState {
    discovered: bool,
    /// `None` before the ack count, then the acks still due.
    acks_due: Option<u32>,
    done: bool,
}

pub(crate) struct Target<'a> {
    pub(crate) client: &'a Client,
    pub(crate) subjects: &'a NsSubjects,
    pub(crate) origin: Uid,
    pub(crate) ns: &'a str,
    pub(crate) prefix: &'a str,
}

pub(crate) async fn publish(
    client: &Client,
    subject: Subject,
    reply: Option<Subject>,
    payload: Bytes,
    bound: Duration,
) -> Result<(), EmitError> {
    let max = client.max_payload();
    if payload.len() > max {
        return Err(EmitError::PayloadTooLarge {
            size: payload.len(),
            max,
        });
    }
    let deadline = Instant::now() + bound;
    while client.connection_state() != async_nats::connection::State::Connected {
        if Instant::now() >= deadline {
            return Err(EmitError::Unreachable {
                action: format!("publish to {subject}"),
                timeout: bound,
                state: client.connection_state().to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = async {
        match reply {
            Some(r) => client.publish_with_reply(subject.clone(), r, payload).await,
            None => client.publish(subject.clone(), payload).await,
        }
    };
    match tokio::time::timeout_at(deadline, sent).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(EmitError::Publish {
            subject: subject.to_string(),
            source,
        }),
        Err(_) => Err(EmitError::Unreachable {
            action: format!("publish to {subject}"),
            timeout: bound,
            state: client.connection_state().to_string(),
        }),
    }
}

/// Send `body` (if any) with a discovery, and collect the answers until every
/// known server completed its answer or `timeout` passes.
pub(crate) async fn request(
    t: Target<'_>,
    body: Option<RequestOutBody<'_>>,
    expect: Expect,
    timeout: Duration,
) -> Result<Collected, EmitError> {
    // A fresh requester id per request: its answers have their own subjects.
    let requester = Uid::new();
    let (discover_id, request_id) = (Sid::new(), Sid::new());
    let filter = t.subjects.reply_filter(requester.as_str());
    let mut sub =
        t.client
            .subscribe(filter.clone())
            .await
            .map_err(|source| EmitError::Subscribe {
                subject: filter,
                source,
            })?;
    let to = Subject::from(t.subjects.broadcast(t.origin.as_str()));
    let reply = |id: Sid| {
        Some(Subject::from(
            t.subjects.reply(requester.as_str(), id.as_str()),
        ))
    };
    let discover = RequestOut {
        origin: t.origin,
        id: Some(discover_id),
        body: RequestOutBody::Discover,
    }
    .encode();
    publish(t.client, to.clone(), reply(discover_id), discover, timeout).await?;
    if let Some(body) = body {
        let payload = RequestOut {
            origin: t.origin,
            id: Some(request_id),
            body,
        }
        .encode();
        publish(t.client, to, reply(request_id), payload, timeout).await?;
    }

    let discover_token = discover_id.as_str().to_owned();
    let mut nodes: HashMap<Sid, (Uid, NodeState)> = HashMap::new();
    let mut collected = Collected::default();
    let deadline = Instant::now() + timeout;
    let complete = |nodes: &HashMap<Sid, (Uid, NodeState)>| {
        !nodes.is_empty()
            && nodes
                .values()
                .all(|(_, s)| s.discovered && (expect == Expect::Nothing || s.done))
    };
    while !complete(&nodes) {
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await else {
            break;
        };
        if msg.status == Some(StatusCode::NO_RESPONDERS) {
            return Err(EmitError::NoServers {
                ns: t.ns.to_owned(),
                prefix: t.prefix.to_owned(),
            });
        }
        let is_discover = msg.subject.rsplit('.').next() == Some(discover_token.as_str());
        let res = match decode(msg) {
            Some(res) => res,
            None => continue,
        };
        let state = &mut nodes
            .entry(*res.origin)
            .or_insert_with(|| (res.origin, NodeState::default()))
            .1;
        if is_discover {
            state.discovered = true;
            if let ResponseBody::Nodes(others) = &res.body {
                for uid in others {
                    nodes
                        .entry(**uid)
                        .or_insert_with(|| (*uid, NodeState::default()));
                }
            }
            continue;
        }
        match (&res.body, expect) {
            (ResponseBody::AckCount(n), Expect::Acks) => {
                state.acks_due = Some(*n);
                state.done = *n == 0;
            }
            (ResponseBody::Ack { .. }, Expect::Acks) => match state.acks_due.as_mut() {
                Some(due) if *due > 0 => {
                    *due -= 1;
                    state.done = *due == 0;
                    collected.responses.push(res);
                }
                _ => tracing::warn!(node = %res.origin, "unexpected ack dropped"),
            },
            (_, Expect::One) => {
                state.done = true;
                collected.responses.push(res);
            }
            _ => tracing::warn!(node = %res.origin, "unexpected response dropped"),
        }
    }
    if nodes.is_empty() {
        return Err(EmitError::Timeout {
            ns: t.ns.to_owned(),
            timeout,
        });
    }
    for (uid, state) in nodes.into_values() {
        if !state.discovered || (expect != Expect::Nothing && !state.done) {
            collected.silent.push(uid);
        }
        collected.nodes.push(uid);
    }
    if !collected.silent.is_empty() {
        let silent: Vec<String> = collected.silent.iter().map(ToString::to_string).collect();
        tracing::warn!(
            ns = t.ns,
            ?silent,
            ?timeout,
            "some servers did not answer in time"
        );
    }
    Ok(collected)
}

fn decode(msg: Message) -> Option<ResponseIn> {
    match decode_response(msg.payload) {
        Ok(res) => Some(res),
        Err(error) => {
            tracing::warn!(subject = %msg.subject, %error, "undecodable answer dropped");
            None
        }
    }
}

/// The rooms in answers, merged and sorted.
pub(crate) fn rooms(responses: Vec<ResponseIn>) -> Vec<String> {
    let mut all = HashSet::new();
    for res in responses {
        if let ResponseBody::Rooms(rooms) = res.body {
            all.extend(rooms.into_iter().map(|r| r.into_owned()));
        }
    }
    let mut all: Vec<String> = all.into_iter().collect();
    all.sort();
    all
}
