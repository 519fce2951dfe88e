//! A minimal socket.io client over websocket (engine.io v4, socket.io v5, the
//! default parser), lean enough that the load client is not the bottleneck: it
//! parses only the packet header and the two numbers the benchmark needs.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Nanoseconds since the Unix epoch: the nodes stamp events with the same clock.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one receiving client saw.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Events received (`m` and `b`).
    pub(crate) events: AtomicU64,
    /// When the last event arrived, ns since the epoch.
    pub(crate) last_ns: AtomicU64,
    /// Latencies in µs, recorded only while `record` is set.
    pub(crate) latencies_us: Mutex<Vec<u32>>,
    /// Whether to record latencies.
    pub(crate) record: std::sync::atomic::AtomicBool,
}

/// Open a socket.io connection to namespace `ns` (`""` for `/`) with `auth`,
/// and wait for the CONNECT answer.
async fn open(port: u16, ns: &str, auth: &Value) -> Result<Ws, String> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("websocket to port {port}: {e}"))?;
    // engine.io OPEN, then socket.io CONNECT with auth
    expect_text(&mut ws, "0").await?;
    ws.send(Message::text(format!("40{ns}{auth}")))
        .await
        .map_err(|e| e.to_string())?;
    expect_text(&mut ws, &format!("40{ns}")).await?;
    Ok(ws)
}

async fn expect_text(ws: &mut Ws, prefix: &str) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with(prefix) => return Ok(t.to_string()),
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                ws.send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Some(Ok(Message::Text(t))) => return Err(format!("expected {prefix}, got {t}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

/// Parse `"name",seq,ts` from the start of an event's array body.
fn seq_ts(body: &str) -> Option<(u64, u64)> {
    let rest = body.strip_prefix('"')?;
    let rest = &rest[rest.find("\",")? + 2..];
    let mut nums = rest.split([',', ']']);
    let seq = nums.next()?.parse().ok()?;
    let ts = nums.next()?.parse().ok()?;
    Some((seq, ts))
}

/// Connect a receiving client and spawn its reader; it answers pings and acks.
pub(crate) async fn receiver(port: u16, auth: Value) -> Result<Arc<Received>, String> {
    let mut ws = open(port, "", &auth).await?;
    let stats = Arc::new(Received::default());
    let out = stats.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let t = text.as_str();
            if t == "2" {
                if ws.send(Message::text("3")).await.is_err() {
                    return;
                }
                continue;
            }
            // 42[...] event, 42<id>[...] event with ack, 451-[...] binary event
            let (body, ack) = if let Some(rest) = t.strip_prefix("42") {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let ack = (digits > 0).then(|| rest[..digits].to_owned());
                (&rest[digits..], ack)
            } else if let Some(rest) = t.strip_prefix("451-") {
                (rest, None)
            } else {
                continue;
            };
            if let Some(id) = ack {
                if ws.send(Message::text(format!("43{id}[1]"))).await.is_err() {
                    return;
                }
                continue;
            }
            let Some((_, ts)) = body.strip_prefix('[').and_then(seq_ts) else {
                continue;
            };
            let now = now_ns();
            out.events.fetch_add(1, Ordering::Relaxed);
            out.last_ns.store(now, Ordering::Relaxed);
            if out.record.load(Ordering::Relaxed) {
                let us = now.saturating_sub(ts) / 1000;
                if let Ok(mut l) = out.latencies_us.lock() {
                    l.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
        }
    });
    Ok(stats)
}

/// The control namespace, as it prefixes packets.
const CTL: &str = "/ctl,";

/// A control connection: sends events with an ack and waits for the answer.
#[derive(Debug)]
pub(crate) struct Control {
    ws: Ws,
    next_id: u64,
}

impl Control {
    /// Connect to a node's control handlers.
    pub(crate) async fn connect(port: u16) -> Result<Self, String> {
        let ws = open(port, CTL, &serde_json::json!({})).await?;
        Ok(Self { ws, next_id: 0 })
    }

    /// Emit `event` with `data` and wait for the node's ack.
    pub(crate) async fn call(&mut self, event: &str, data: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let packet = format!("42{CTL}{id}{}", serde_json::json!([event, data]));
        self.ws
            .send(Message::text(packet))
            .await
            .map_err(|e| e.to_string())?;
        let prefix = format!("43{CTL}{id}");
        let answer = expect_text(&mut self.ws, &prefix).await?;
        let mut v: Value = serde_json::from_str(&answer[prefix.len()..])
            .map_err(|e| format!("bad ack {answer}: {e}"))?;
        Ok(v.get_mut(0).map(Value::take).unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_seq_and_timestamp() {
        assert_eq!(super::seq_ts(r#""m",12,345,"xx"]"#), Some((12, 345)));
        assert_eq!(
            super::seq_ts(r#""b",1,2,{"_placeholder":true,"num":0}]"#),
            Some((1, 2))
        );
        assert_eq!(super::seq_ts(r#""m",1]"#), None);
    }
}
