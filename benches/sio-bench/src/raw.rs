//! The brokers alone, without socket.io: one publisher and a few subscribers on
//! one channel, at the socket.io packet's size. `raw` is NATS (async-nats),
//! `raw-redis` is Redis pub/sub (redis-rs, the client socketioxide-redis uses): the
//! hop each adapter cannot go below.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use socketioxide_nats::async_nats;
use socketioxide_redis::drivers::redis::redis_client;

use crate::{client::Received, now_ns};

const CHANNEL: &str = "sio-bench.raw";

/// The publishing side of a raw configuration.
pub(crate) enum Publisher {
    Nats(async_nats::Client),
    Redis(redis_client::aio::MultiplexedConnection),
}

impl Publisher {
    /// Publish one message carrying the send time, padded to `template`'s length.
    pub(crate) async fn publish(&self, template: &[u8]) -> Result<(), String> {
        let payload = stamped(template);
        match self {
            Self::Nats(client) => client
                .publish(CHANNEL, payload)
                .await
                .map_err(|e| e.to_string()),
            Self::Redis(conn) => redis_client::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(payload.as_ref())
                .query_async::<i64>(&mut conn.clone())
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Publish `count` messages as fast as the client takes them: queued one after
    /// the other for NATS, `inflight` PUBLISHes pipelined for Redis (each waits
    /// for its reply).
    pub(crate) async fn burst(
        &self,
        count: u64,
        template: &[u8],
        inflight: usize,
    ) -> Result<(), String> {
        match self {
            Self::Nats(client) => {
                for _ in 0..count {
                    self.publish(template).await?;
                }
                client.flush().await.map_err(|e| e.to_string())
            }
            Self::Redis(_) => {
                let mut errors = futures_util::stream::iter(0..count)
                    .map(|_| self.publish(template))
                    .buffer_unordered(inflight.max(1))
                    .filter_map(|r| std::future::ready(r.err()));
                match errors.next().await {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
        }
    }
}

fn stamped(template: &[u8]) -> Bytes {
    let mut m = template.to_vec();
    m[..8].copy_from_slice(&now_ns().to_be_bytes());
    m.into()
}

fn sent_ns(payload: &[u8]) -> u64 {
    payload
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// A NATS publisher and `subscribers` subscribers, each on its own connection.
pub(crate) async fn nats(
    url: &str,
    subscribers: usize,
) -> Result<(Publisher, Vec<Arc<Received>>), String> {
    let connect = || async { async_nats::connect(url).await.map_err(|e| e.to_string()) };
    let publisher = connect().await?;
    let mut receivers = Vec::new();
    for _ in 0..subscribers {
        let sub_client = connect().await?;
        let mut sub = sub_client
            .subscribe(CHANNEL)
            .await
            .map_err(|e| e.to_string())?;
        sub_client.flush().await.map_err(|e| e.to_string())?;
        let stats = Arc::new(Received::default());
        let out = stats.clone();
        tokio::spawn(async move {
            let _keep = sub_client;
            while let Some(msg) = sub.next().await {
                out.got(sent_ns(&msg.payload));
            }
        });
        receivers.push(stats);
    }
    Ok((Publisher::Nats(publisher), receivers))
}

/// A Redis publisher and `subscribers` subscribers, each on its own connection,
/// with TCP_NODELAY like the socketioxide-redis nodes of the benchmark.
pub(crate) async fn redis(
    url: &str,
    subscribers: usize,
) -> Result<(Publisher, Vec<Arc<Received>>), String> {
    let info = redis_client::IntoConnectionInfo::into_connection_info(url)
        .map_err(|e| e.to_string())?
        .set_tcp_settings(redis_client::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis_client::Client::open(info).map_err(|e| e.to_string())?;
    let publisher = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let mut receivers = Vec::new();
    for _ in 0..subscribers {
        let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
        pubsub.subscribe(CHANNEL).await.map_err(|e| e.to_string())?;
        let stats = Arc::new(Received::default());
        let out = stats.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                out.got(sent_ns(msg.get_payload_bytes()));
            }
        });
        receivers.push(stats);
    }
    Ok((Publisher::Redis(publisher), receivers))
}
