//! Real socket.io clients: the official JavaScript `socket.io-client`, driven
//! from the tests through `e2e/driver.mjs` (one JSON command per line in,
//! one JSON event per line out).

use std::{collections::VecDeque, path::PathBuf, process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::mpsc,
};

use super::RECV_TIMEOUT;

pub struct JsClients {
    _child: Child,
    stdin: ChildStdin,
    events: mpsc::UnboundedReceiver<Value>,
    buffered: VecDeque<Value>,
}

fn tests_js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

impl JsClients {
    pub async fn start() -> Self {
        let dir = tests_js_dir();
        assert!(
            dir.join("node_modules/socket.io-client").is_dir(),
            "the JavaScript test clients are not installed: run `bash scripts/setup.sh` (npm ci in e2e/)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("driver.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start node: install Node.js 20+");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("driver printed non-JSON {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Self {
            _child: child,
            stdin,
            events,
            buffered: VecDeque::new(),
        }
    }

    pub async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("driver stdin");
    }

    /// How client `id` answers server emits that expect an ack: `mode` "reply"
    /// with `value`, or "silent". Returns once the driver applied it.
    pub async fn ack_mode(&mut self, id: &str, mode: &str, value: Value) {
        self.send(json!({"cmd": "ack", "id": id, "mode": mode, "value": value}))
            .await;
        let ev = self.next(id).await;
        assert_eq!(ev["type"], "ack-mode", "{id}: {ev}");
    }

    /// Connect client `id`; return its socket id.
    pub async fn connect(
        &mut self,
        id: &str,
        port: u16,
        ns: &str,
        parser: &str,
        transport: &str,
    ) -> String {
        self.send(json!({
            "cmd": "connect", "id": id, "url": format!("http://127.0.0.1:{port}"),
            "ns": ns, "parser": parser, "transport": transport,
        }))
        .await;
        let ev = self.next(id).await;
        assert_eq!(ev["type"], "connect", "{id}: {ev}");
        ev["sid"].as_str().unwrap().to_owned()
    }

    /// The next event of client `id`, within the receive timeout.
    pub async fn next(&mut self, id: &str) -> Value {
        if let Some(pos) = self.buffered.iter().position(|e| e["id"] == id) {
            return self.buffered.remove(pos).unwrap();
        }
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("client {id} got nothing within {RECV_TIMEOUT:?}"))
                .expect("the driver exited");
            if ev["type"] == "error" && ev.get("id").is_none() {
                panic!("driver error: {ev}");
            }
            if ev["id"] == id {
                return ev;
            }
            self.buffered.push_back(ev);
        }
    }

    /// The next event of `id` must be `event`; return its arguments.
    pub async fn event(&mut self, id: &str, event: &str) -> Value {
        let ev = self.next(id).await;
        assert_eq!(ev["type"], "event", "{id}: {ev}");
        assert_eq!(ev["event"], event, "{id}: {ev}");
        ev["args"].clone()
    }

    /// Nothing for `id` within `ms`.
    pub async fn nothing(&mut self, id: &str, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        if let Some(ev) = self.buffered.iter().find(|e| e["id"] == id) {
            panic!("unexpected event for {id}: {ev}");
        }
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            assert_ne!(ev["id"], id, "unexpected event for {id}: {ev}");
            self.buffered.push_back(ev);
        }
    }
}

pub fn bin(bytes: &[u8]) -> Value {
    use base64::Engine;
    json!({ "$bin": base64::engine::general_purpose::STANDARD.encode(bytes) })
}
