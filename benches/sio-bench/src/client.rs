//! A minimal socket.io client over websocket (engine.io v4, socket.io v5, the
//! default parser), lean enough that the load client is not the bottleneck: it
//! parses the packet type, an optional ack id and the two numbers at fixed
//! positions of the benchmark's events, `["m",seq,sent_ns,...]`, and nothing else.
//!
//! Packets handled (text frames unless said otherwise):
//! * `0{...}` engine.io OPEN, `2` PING (answered `3`);
//! * `40{"sid":...}` / `40/ctl,{...}` socket.io CONNECT answers;
//! * `42[...]` events, `42<id>[...]` events asking for an ack (answered `43<id>[1]`);
//! * `451-[...,{"_placeholder":true,"num":0}]` binary events, completed by the next
//!   binary frame (the attachment, without prefix in engine.io v4);
//! * `43/ctl,<id>[...]` the answers to the control connection's events;
//! * `43<id>[...]` the answer to a receiving client's `join` event (sent before its
//!   reader starts).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Nanoseconds since the Unix epoch: the nodes stamp events with the same clock.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What one receiving client saw; shared with its reader task.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Benchmark events received (`m`, and `b` once its attachment arrived).
    pub(crate) events: AtomicU64,
    /// Bytes of binary attachments received.
    pub(crate) bin_bytes: AtomicU64,
    /// When the last event arrived, ns since the epoch.
    pub(crate) last_ns: AtomicU64,
    /// Acks sent back for `emit_with_ack` events.
    pub(crate) acks: AtomicU64,
    /// Whether to record latencies.
    pub(crate) record: AtomicBool,
    /// Emit-to-receipt latencies in ns, recorded only while `record` is set.
    pub(crate) latencies_ns: Mutex<Vec<u64>>,
}

impl Received {
    /// Count an event sent at `sent_ns` as received now.
    pub(crate) fn got(&self, sent_ns: u64) {
        let now = now_ns();
        self.events.fetch_add(1, Ordering::Relaxed);
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        if self.record.load(Ordering::Relaxed)
            && let Ok(mut l) = self.latencies_ns.lock()
        {
            l.push(now.saturating_sub(sent_ns));
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Open a socket.io connection to namespace `ns` (`""` for `/`, else `"/ctl,"`)
/// with the CONNECT payload `auth`, and wait for the CONNECT answer.
async fn open(port: u16, ns: &str, auth: &str) -> Result<Ws, String> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    // `true`: TCP_NODELAY, as the nodes do on their side.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("websocket to port {port}: {e}"))?;
    expect_text(&mut ws, "0{").await?;
    ws.send(Message::text(format!("40{ns}{auth}")))
        .await
        .map_err(err)?;
    let answer = expect_text(&mut ws, &format!("40{ns}")).await?;
    if !answer.contains("\"sid\"") {
        return Err(format!("connection refused: {answer}"));
    }
    Ok(ws)
}

/// Read until a text frame starting with `prefix`, answering pings meanwhile.
async fn expect_text(ws: &mut Ws, prefix: &str) -> Result<String, String> {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(prefix) => return Ok(t.to_string()),
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    ws.send(Message::text("3")).await.map_err(err)?;
                }
                Some(Ok(Message::Text(t))) => return Err(format!("expected {prefix}…, got {t}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection closed".into()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| format!("no {prefix}… within 10 s"))?
}

/// Parse `seq,sent_ns` after the event name of `["m",seq,sent_ns,...`: the name
/// is one character, so the numbers start at a fixed offset.
fn seq_ts(array: &str) -> Option<(u64, u64)> {
    let rest = array.get(5..)?; // `["m",`
    let mut nums = rest.splitn(3, [',', ']']);
    let seq = nums.next()?.parse().ok()?;
    let ts = nums.next()?.parse().ok()?;
    Some((seq, ts))
}

/// Split the digits of an ack id off the front of `s`.
fn ack_id(s: &str) -> (&str, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(digits)
}

/// Connect a receiving client to `/` in room `room` and spawn its reader.
pub(crate) async fn receiver(port: u16, room: &str) -> Result<Arc<Received>, String> {
    let ws = open(port, "", &format!("{{\"room\":\"{room}\"}}")).await?;
    Ok(spawn_reader(ws))
}

/// How a client's `join` went: the time until its ack, at the client and as the
/// node measured it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joined {
    pub(crate) client_ns: u64,
    pub(crate) node_ns: u64,
}

/// Connect a receiving client to `/` without a room, emit `join room` with an ack
/// and wait for it (on a nats node, `NatsHandle::join`: with room routing, the
/// ack comes once the node is subscribed to the room), then spawn its reader.
pub(crate) async fn receiver_joined(
    port: u16,
    room: &str,
) -> Result<(Arc<Received>, Joined), String> {
    let mut ws = open(port, "", "{}").await?;
    let start = std::time::Instant::now();
    ws.send(Message::text(format!("421[\"join\",\"{room}\"]")))
        .await
        .map_err(err)?;
    let answer = expect_text(&mut ws, "431[").await?;
    let client_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let v: Value = serde_json::from_str(&answer[3..]).map_err(err)?;
    if let Some(e) = v[0].get("error") {
        return Err(format!("join {room} failed on the node: {e}"));
    }
    let node_ns = v[0]["ns"].as_u64().unwrap_or(0);
    Ok((spawn_reader(ws), Joined { client_ns, node_ns }))
}

/// Spawn the reader of a receiving client.
fn spawn_reader(mut ws: Ws) -> Arc<Received> {
    let stats = Arc::new(Received::default());
    let out = stats.clone();
    tokio::spawn(async move {
        // The send time of a binary event waiting for its attachment.
        let mut pending_bin: Option<u64> = None;
        while let Some(Ok(msg)) = ws.next().await {
            let t = match msg {
                Message::Text(t) => t,
                Message::Binary(b) => {
                    if let Some(ts) = pending_bin.take() {
                        out.bin_bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        out.got(ts);
                    }
                    continue;
                }
                Message::Close(_) => return,
                _ => continue,
            };
            let t = t.as_str();
            if t == "2" {
                if ws.send(Message::text("3")).await.is_err() {
                    return;
                }
            } else if let Some(rest) = t.strip_prefix("42") {
                let (id, array) = ack_id(rest);
                if !id.is_empty() {
                    out.acks.fetch_add(1, Ordering::Relaxed);
                    if ws.send(Message::text(format!("43{id}[1]"))).await.is_err() {
                        return;
                    }
                } else if let Some((_, ts)) = seq_ts(array) {
                    out.got(ts);
                }
            } else if let Some(array) = t.strip_prefix("451-") {
                pending_bin = seq_ts(array).map(|(_, ts)| ts);
            } else if t == "1" || t.starts_with("41") {
                return;
            }
        }
    });
    stats
}

/// The control namespace, as it prefixes packets.
const CTL: &str = "/ctl,";

type Pending = HashMap<u64, oneshot::Sender<Value>>;

/// A control connection to a node's `/ctl` namespace. A task owns the websocket,
/// so pings are answered even while no call is under way.
#[derive(Debug)]
pub(crate) struct Control {
    tx: mpsc::Sender<(String, oneshot::Sender<Value>)>,
}

impl Control {
    /// Wait until this node's `fetch_sockets()` sees `want` clients (the remote
    /// adapters discover their peers within a few heartbeats), at most 30 s;
    /// `name` is the configuration, for the error.
    pub(crate) async fn wait_sockets(&self, want: u64, name: &str) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let res = self
                .call(
                    "fetch",
                    serde_json::json!({ "n": 1 }),
                    Duration::from_secs(10),
                )
                .await?;
            let got = res["size"].as_u64().unwrap_or(0);
            if got == want {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "{name}: node 0 sees {got} of {want} sockets after 30 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Connect to the node on `port`.
    pub(crate) async fn connect(port: u16) -> Result<Self, String> {
        let mut ws = open(port, CTL, "{}").await?;
        let (tx, mut rx) = mpsc::channel::<(String, oneshot::Sender<Value>)>(8);
        tokio::spawn(async move {
            let mut pending = Pending::new();
            let mut next_id = 0u64;
            loop {
                tokio::select! {
                    call = rx.recv() => {
                        let Some((packet, answer)) = call else { return };
                        next_id += 1;
                        pending.insert(next_id, answer);
                        // packet is `["event",{...}]`
                        let text = format!("42{CTL}{next_id}{packet}");
                        if ws.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    msg = ws.next() => {
                        let Some(Ok(Message::Text(t))) = msg else {
                            if matches!(msg, None | Some(Err(_))) { return }
                            continue;
                        };
                        if t.as_str() == "2" {
                            if ws.send(Message::text("3")).await.is_err() {
                                return;
                            }
                        } else if let Some(rest) = t.strip_prefix("43").and_then(|r| r.strip_prefix(CTL)) {
                            let (id, array) = ack_id(rest);
                            let Ok(id) = id.parse::<u64>() else { continue };
                            let mut v: Value = serde_json::from_str(array).unwrap_or(Value::Null);
                            let v = v.get_mut(0).map(Value::take).unwrap_or(Value::Null);
                            if let Some(answer) = pending.remove(&id) {
                                let _ = answer.send(v);
                            }
                        }
                    }
                }
            }
        });
        Ok(Self { tx })
    }

    /// Emit `event` with `data` and wait for the node's ack (at most `limit`).
    pub(crate) async fn call(
        &self,
        event: &str,
        data: Value,
        limit: Duration,
    ) -> Result<Value, String> {
        let (answer, rx) = oneshot::channel();
        let packet = serde_json::json!([event, data]).to_string();
        self.tx
            .send((packet, answer))
            .await
            .map_err(|_| "control connection closed".to_owned())?;
        tokio::time::timeout(limit, rx)
            .await
            .map_err(|_| format!("no answer to {event} within {limit:?}"))?
            .map_err(|_| "control connection closed".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::{ack_id, seq_ts};

    #[test]
    fn parses_seq_and_timestamp() {
        assert_eq!(seq_ts(r#"["m",12,345,"xx"]"#), Some((12, 345)));
        assert_eq!(
            seq_ts(r#"["b",1,2,{"_placeholder":true,"num":0}]"#),
            Some((1, 2))
        );
        assert_eq!(seq_ts(r#"["m",1]"#), None);
        assert_eq!(seq_ts(r#"["q",0]"#), None);
    }

    #[test]
    fn splits_ack_ids() {
        assert_eq!(ack_id("17[\"q\",3]"), ("17", "[\"q\",3]"));
        assert_eq!(ack_id("[\"m\"]"), ("", "[\"m\"]"));
    }
}
