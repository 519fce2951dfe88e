//! What a socket.io user sees, checked with the official JavaScript client over
//! real HTTP/WebSocket connections to in-process servers on loopback ports, with
//! both the default and the msgpack parser and both transports: payloads (binary
//! included) cross nodes intact, volatile emits cross nodes, rooms, acks from every
//! node with a silent client timing out, binary acks and remote disconnects.

mod common;

use std::time::Duration;

use common::{js::bin, *};
use futures_util::StreamExt;
use serde_json::{Value, json};
use socketioxide::{
    AckError,
    extract::{AckSender, Data, SocketRef},
};

async fn scenario(parser: Parser, transport: &str) {
    init_tracing();
    let nats = NatsServer::start();
    let (n0, p0) = served_node(&nats.url(), parser).await;
    let (n1, p1) = served_node(&nats.url(), parser).await;
    let nodes = [n0, n1];
    start_ns!(nodes, "/", async |s: SocketRef<_>| {
        s.join(s.id);
        s.on(
            "join",
            async |s: SocketRef<_>, Data(room): Data<String>, ack: AckSender<_>| {
                s.join(room);
                ack.send(&"joined").ok();
            },
        );
    });
    let mut js = js::JsClients::start().await;
    let p = parser.js_name();
    let _a = js.connect("a", p0, "/", p, transport).await;
    let b = js.connect("b", p1, "/", p, transport).await;
    let c = js.connect("c", p1, "/", p, transport).await;

    // 1. every node gets the payload intact, binary as binary
    nodes[0]
        .io
        .emit("hello", &(1, "two", bytes::Bytes::from_static(&[1, 2, 3])))
        .await
        .unwrap();
    for id in ["a", "b", "c"] {
        assert_eq!(
            js.event(id, "hello").await,
            json!([1, "two", bin(&[1, 2, 3])]),
            "{id}"
        );
    }

    // 2. volatile crosses nodes
    nodes[0].io.volatile().emit("vol", &7).await.unwrap();
    for id in ["a", "b", "c"] {
        assert_eq!(js.event(id, "vol").await, json!([7]), "{id}");
    }

    // 3. a room joined on node 1, broadcast from node 0: only its member gets it
    js.send(json!({"cmd": "emitWithAck", "id": "c", "event": "join", "args": ["room1"]}))
        .await;
    assert_eq!(js.next("c").await["args"], json!(["joined"]));
    nodes[0].io.to("room1").emit("in-room", &"r").await.unwrap();
    nodes[0].io.emit("end", &()).await.unwrap();
    assert_eq!(js.event("c", "in-room").await, json!(["r"]));
    for id in ["a", "b", "c"] {
        assert_eq!(
            js.event(id, "end").await,
            json!([null]),
            "{id} got a room message it should not"
        );
    }

    // 4. acks from both nodes; the silent client times out alone
    js.ack_mode("a", "reply", json!("from-a")).await;
    js.ack_mode("b", "reply", json!(42)).await;
    js.ack_mode("c", "silent", Value::Null).await;
    let acks: Vec<_> = nodes[0]
        .io
        .timeout(Duration::from_millis(700))
        .emit_with_ack::<_, serde_json::Value>("question", &"?")
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(acks.len(), 3, "{acks:?}");
    let by = |sid: &str| acks.iter().find(|(s, _)| s.as_str() == sid).map(|(_, r)| r);
    assert_eq!(by(&b).unwrap().as_ref().unwrap(), &json!(42));
    assert!(matches!(by(&c).unwrap(), Err(AckError::Timeout)));
    assert!(
        acks.iter()
            .any(|(_, r)| matches!(r, Ok(v) if v == &json!("from-a")))
    );
    for id in ["a", "b", "c"] {
        js.event(id, "question").await;
    }

    // 5. a binary ack from a remote socket
    js.ack_mode("b", "reply", bin(&[0xde, 0xad])).await;
    let remote = nodes[0]
        .io
        .to(b.clone())
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .unwrap();
    let got: bytes::Bytes = remote
        .emit_with_ack("binq", &())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &[0xde, 0xad]);
    js.event("b", "binq").await;

    // 6. a remote disconnect is seen by the client as a server disconnect
    nodes[0].io.to(c).disconnect().await.unwrap();
    let ev = js.next("c").await;
    assert_eq!(ev["type"], "disconnect", "{ev}");
    assert_eq!(ev["reason"], "io server disconnect");
    js.nothing("a", 100).await;
}

#[tokio::test]
async fn default_parser_websocket() {
    scenario(Parser::Common, "websocket").await;
}

#[tokio::test]
async fn default_parser_polling() {
    scenario(Parser::Common, "polling").await;
}

#[tokio::test]
async fn msgpack_parser_websocket() {
    scenario(Parser::MsgPack, "websocket").await;
}

#[tokio::test]
async fn msgpack_parser_polling() {
    scenario(Parser::MsgPack, "polling").await;
}
