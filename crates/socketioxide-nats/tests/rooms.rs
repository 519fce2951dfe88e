//! Room routing: a broadcast to one room travels on the room's subject, which
//! only nodes with members subscribe to. Exactness after an adapter-aware join,
//! on one server and across a NATS cluster; the reconcile of plain joins; leaves
//! and disconnects unsubscribe; hostile room names; everything else unchanged;
//! a cluster mixing nodes with and without routing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use socketioxide_core::Sid;
use socketioxide_nats::NatsAdapterConfig;

fn routing() -> NatsAdapterConfig {
    test_config()
        .with_room_routing(true)
        .with_room_reconcile_interval(Duration::from_millis(200))
}

async fn routing_nodes<const N: usize>(urls: &[String]) -> [Node; N] {
    let mut v = Vec::new();
    for i in 0..N {
        let url = &urls[i % urls.len()];
        v.push(node_with(connect(url).await, routing()).await);
    }
    v.try_into().unwrap_or_else(|_| unreachable!())
}

/// Client subscriptions of `nats` on room subjects of `/`.
fn room_subscriptions(nats: &NatsServer) -> usize {
    let subsz = nats.monitor("/connz?subs=1");
    subsz["connections"]
        .as_array()
        .map(|conns| {
            conns
                .iter()
                .flat_map(|c| {
                    c["subscriptions_list"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter(|s| {
                    s.as_str()
                        .is_some_and(|s| s.starts_with("socket.io._2F.room."))
                })
                .count()
        })
        .unwrap_or(0)
}

fn sid(c: &Client) -> Sid {
    c.id.parse().unwrap()
}

/// Joins then, at once, emits: every message after the join returns arrives.
async fn exact_after_join(nodes: &[Node], members_on: usize, publisher: usize) {
    let mut member = client(&nodes[members_on].io, "/").await;
    let mut bystander = client(&nodes[(members_on + 1) % nodes.len()].io, "/").await;
    let mut took = Vec::new();
    for i in 0..20 {
        let room = format!("exact-{i}");
        let t = Instant::now();
        nodes[members_on]
            .handle
            .join("/", sid(&member), room.clone())
            .await
            .unwrap();
        took.push(t.elapsed());
        nodes[publisher]
            .io
            .to(room.clone())
            .emit("m", &i)
            .await
            .unwrap();
        assert_eq!(
            member.next().await,
            format!(r#"42["m",{i}]"#),
            "room {room}"
        );
    }
    recv_none(&mut bystander.rx, 100).await;
    took.sort();
    eprintln!(
        "routed join (subscribe, flush, a request round to {} nodes): median {:?}, max {:?}",
        nodes.len(),
        took[took.len() / 2],
        took[took.len() - 1]
    );
}

#[tokio::test]
async fn a_broadcast_after_a_routed_join_reaches_the_member_on_one_server() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = routing_nodes::<3>(&[nats.url()]).await;
    start_ns!(nodes, "/", join_own_id);
    exact_after_join(&nodes, 1, 0).await;
    // Only the member's node took the room traffic.
    assert_eq!(nodes[1].handle.stats("/").unwrap().broadcasts_received, 20);
    assert_eq!(nodes[2].handle.stats("/").unwrap().broadcasts_received, 0);
    assert_eq!(nodes[1].handle.stats("/").unwrap().room_subscriptions, 20);
}

#[tokio::test]
async fn a_broadcast_after_a_routed_join_reaches_the_member_across_a_nats_cluster() {
    init_tracing();
    let cluster = NatsCluster::start(3);
    // Node i on server i: the publisher's server learns the member's interest
    // through the route, ahead of the join's confirmation.
    let nodes = routing_nodes::<3>(&cluster.urls()).await;
    start_ns!(nodes, "/", join_own_id);
    exact_after_join(&nodes, 2, 0).await;
    exact_after_join(&nodes, 0, 1).await;
}

#[tokio::test]
async fn a_plain_socket_join_is_routed_within_the_reconcile_interval() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = routing_nodes::<2>(&[nats.url()]).await;
    start_ns!(nodes, "/", async |s: socketioxide::extract::SocketRef<
        _,
    >| {
        s.join(s.id);
        // socketioxide does not tell the adapter about this join.
        s.join("plain");
    });
    let mut member = client(&nodes[1].io, "/").await;
    let t = Instant::now();
    loop {
        nodes[0].io.to("plain").emit("m", &()).await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(20), member.rx.recv()).await
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(2), "never routed");
    }
    let took = t.elapsed();
    eprintln!("a plain socket.join was routed after {took:?} (reconcile every 200 ms)");
    assert!(took < Duration::from_millis(450), "{took:?}");
}

#[tokio::test]
async fn leaving_and_disconnecting_drop_the_room_subscription() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = routing_nodes::<2>(&[nats.url()]).await;
    start_ns!(nodes, "/", join_own_id);
    let a = client(&nodes[1].io, "/").await;
    let b = client(&nodes[1].io, "/").await;
    for c in [&a, &b] {
        nodes[1]
            .handle
            .join("/", sid(c), ["left", "gone"])
            .await
            .unwrap();
    }
    assert_eq!(room_subscriptions(&nats), 2);
    // A leave through the adapter and a disconnect: neither is reported by
    // socketioxide; the reconcile notices.
    nodes[0].io.to(a.id.clone()).leave("left").await.unwrap();
    nodes[0].io.to(b.id.clone()).leave("left").await.unwrap();
    let t = Instant::now();
    while room_subscriptions(&nats) != 1 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{}",
            room_subscriptions(&nats)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[1].io.local().disconnect().await.unwrap();
    while room_subscriptions(&nats) != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{}",
            room_subscriptions(&nats)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(nodes[1].handle.stats("/").unwrap().room_subscriptions, 0);
}

#[tokio::test]
async fn a_remote_join_returns_once_the_members_node_is_subscribed() {
    init_tracing();
    let cluster = NatsCluster::start(2);
    let nodes = routing_nodes::<2>(&cluster.urls()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut member = client(&nodes[1].io, "/").await;
    for i in 0..10 {
        let room = format!("remote-{i}");
        // From the other node: a join of the socket id's room, confirmed by
        // node 1 once it is subscribed.
        nodes[0]
            .io
            .to(member.id.clone())
            .join(room.clone())
            .await
            .unwrap();
        nodes[0].io.to(room.clone()).emit("m", &i).await.unwrap();
        assert_eq!(member.next().await, format!(r#"42["m",{i}]"#));
    }
}

#[tokio::test]
async fn hostile_room_names_are_routed_exactly() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = routing_nodes::<2>(&[nats.url()]).await;
    start_ns!(nodes, "/", join_own_id);
    let long = "é".repeat(4000);
    let names = [
        "*",
        ">",
        "a.b",
        "",
        " ",
        "socket.io._2F.b.*",
        "😀",
        long.as_str(),
        "_2A",
    ];
    let mut clients = Vec::new();
    for name in names {
        let c = client(&nodes[1].io, "/").await;
        nodes[1]
            .handle
            .join("/", sid(&c), name.to_owned())
            .await
            .unwrap();
        clients.push(c);
    }
    for (i, name) in names.iter().enumerate() {
        nodes[0]
            .io
            .to(name.to_string())
            .emit("m", &i)
            .await
            .unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.next().await,
            format!(r#"42["m",{i}]"#),
            "room {:?}",
            names[i]
        );
        recv_none(&mut c.rx, 50).await;
    }
}

#[tokio::test]
async fn several_rooms_except_and_acks_work_as_without_routing() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = routing_nodes::<2>(&[nats.url()]).await;
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[1].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;
    nodes[1]
        .handle
        .join("/", sid(&a), ["x", "y"])
        .await
        .unwrap();
    nodes[1]
        .handle
        .join("/", sid(&b), ["y", "muted"])
        .await
        .unwrap();
    // Several rooms: the broadcast subject, each member once.
    nodes[0].io.to(["x", "y"]).emit("m", &1).await.unwrap();
    assert_eq!(a.next().await, r#"42["m",1]"#);
    assert_eq!(b.next().await, r#"42["m",1]"#);
    // One room, except another: routed, filtered exactly.
    nodes[0]
        .io
        .to("y")
        .except("muted")
        .emit("m", &2)
        .await
        .unwrap();
    assert_eq!(a.next().await, r#"42["m",2]"#);
    recv_none(&mut b.rx, 100).await;
    // With acks: the broadcast subject, every node answers.
    let acks = nodes[0]
        .io
        .to("x")
        .timeout(Duration::from_secs(2))
        .emit_with_ack::<_, String>("q", &())
        .await
        .unwrap();
    let q = a.next().await;
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    a.send(&format!(r#"43{id}["ok"]"#)).await;
    let acks: Vec<_> = futures_util::StreamExt::collect(acks).await;
    assert_eq!(acks.len(), 1);
}

#[tokio::test]
async fn nodes_with_and_without_routing_work_together() {
    init_tracing();
    let nats = NatsServer::start();
    let nodes = [
        node_with(connect(&nats.url()).await, routing()).await,
        node_with(connect(&nats.url()).await, test_config()).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let mut on = client(&nodes[0].io, "/").await;
    let mut off = client(&nodes[1].io, "/").await;
    nodes[0].handle.join("/", sid(&on), "r").await.unwrap();
    nodes[1].handle.join("/", sid(&off), "r").await.unwrap();
    // The routing node publishes on the room subject: the other one takes every
    // room subject. The other one publishes on the broadcast subject, which the
    // routing node takes.
    nodes[0].io.to("r").emit("from-on", &()).await.unwrap();
    nodes[1].io.to("r").emit("from-off", &()).await.unwrap();
    // Two senders: no order between their messages.
    for c in [&mut on, &mut off] {
        let mut got = [c.next().await, c.next().await];
        got.sort();
        assert_eq!(got, [r#"42["from-off",null]"#, r#"42["from-on",null]"#]);
    }
}

#[tokio::test]
async fn without_routing_a_node_still_receives_every_room() {
    // Routing off is the default: one broadcast subscription, and the room
    // subjects as one wildcard, whatever the rooms.
    let nats = NatsServer::start();
    let nodes = nodes::<2>(&nats.url()).await;
    start_ns!(nodes, "/", join_own_id);
    let mut c = client(&nodes[1].io, "/").await;
    nodes[1].handle.join("/", sid(&c), "r").await.unwrap();
    nodes[0].io.to("r").emit("m", &()).await.unwrap();
    assert_eq!(c.next().await, r#"42["m",null]"#);
    assert_eq!(
        room_subscriptions(&nats),
        2,
        "the two wildcard subscriptions"
    );
}

/// Two regions joined by a gateway; room members only in region A: room
/// broadcasts from A stay in A, until a socket in region B joins the room.
#[tokio::test]
async fn room_broadcasts_cross_a_gateway_only_where_members_are() {
    use nats_harness::Supercluster;
    init_tracing();
    let sc = Supercluster::start();
    let (a0, a1, b0) = (
        node_with(connect(&sc.a.url()).await, routing()).await,
        node_with(connect(&sc.a.url()).await, routing()).await,
        node_with(connect(&sc.b.url()).await, routing()).await,
    );
    let nodes = [a0, a1, b0];
    start_ns!(nodes, "/", join_own_id);
    let mut in_a = client(&nodes[1].io, "/").await;
    let mut in_b = client(&nodes[2].io, "/").await;
    nodes[1]
        .handle
        .join("/", sid(&in_a), "regional")
        .await
        .unwrap();
    let payload = "x".repeat(1024);
    const N: usize = 100;
    async fn burst(
        io: &Io,
        sc: &nats_harness::Supercluster,
        label: &'static str,
        payload: &str,
    ) -> u64 {
        let before = nats_harness::Supercluster::gateway_bytes_out(&sc.a);
        for _ in 0..N {
            io.to("regional").emit(label, &payload).await.unwrap();
        }
        before
    }
    // Members in region A only.
    let before = burst(&nodes[0].io, &sc, "a-only", &payload).await;
    for _ in 0..N {
        assert!(in_a.next().await.starts_with(r#"42["a-only""#));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let crossed = Supercluster::gateway_bytes_out(&sc.a) - before;
    // Heartbeats and the like still cross; 100 KiB of room traffic must not.
    eprintln!(
        "{N} room broadcasts of 1 KiB, members in region A only: {crossed} bytes crossed the gateway"
    );
    assert!(crossed < 10 * 1024, "{crossed} bytes crossed the gateway");
    recv_none(&mut in_b.rx, 100).await;

    // A socket in region B joins: from now on, exactly those messages cross.
    nodes[2]
        .handle
        .join("/", sid(&in_b), "regional")
        .await
        .unwrap();
    let before = burst(&nodes[0].io, &sc, "both", &payload).await;
    for c in [&mut in_a, &mut in_b] {
        for _ in 0..N {
            assert!(c.next().await.starts_with(r#"42["both""#));
        }
    }
    let crossed = Supercluster::gateway_bytes_out(&sc.a) - before;
    eprintln!(
        "{N} room broadcasts of 1 KiB, a member in region B too: {crossed} bytes crossed the gateway"
    );
    assert!(
        crossed >= (N * 1024) as u64,
        "{crossed} bytes crossed the gateway"
    );
    recv_none(&mut in_b.rx, 100).await;
}

/// What the join's request round waits for: how long a subscription made on one
/// server of a NATS cluster takes to reach a publisher on another (raw NATS).
#[tokio::test]
async fn interest_reaches_the_other_servers_of_a_cluster_within_milliseconds() {
    use futures_util::StreamExt;
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let publisher = connect(&urls[0]).await;
    let subscriber = connect(&urls[2]).await;
    let mut took = Vec::new();
    for i in 0..10 {
        let subject = format!("propagation.{i}");
        let mut sub = subscriber.subscribe(subject.clone()).await.unwrap();
        subscriber.flush().await.unwrap();
        let t = Instant::now();
        loop {
            publisher
                .publish(subject.clone(), "x".into())
                .await
                .unwrap();
            publisher.flush().await.unwrap();
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_micros(200), sub.next()).await
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "interest never propagated"
            );
        }
        took.push(t.elapsed());
    }
    took.sort();
    eprintln!(
        "a subscription on server 2 reached a publisher on server 0 after: median {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
}

#[tokio::test]
async fn closing_a_routing_node_drops_its_room_subscriptions() {
    let nats = NatsServer::start();
    let nodes = routing_nodes::<1>(&[nats.url()]).await;
    nodes[0].io.ns("/", join_own_id).await.unwrap();
    let c = client(&nodes[0].io, "/").await;
    nodes[0]
        .handle
        .join("/", sid(&c), ["a", "b"])
        .await
        .unwrap();
    assert_eq!(room_subscriptions(&nats), 2);
    // The namespace closes (its adapter with it) while its socket is connected.
    nodes[0].io.delete_ns("/");
    let t = Instant::now();
    while room_subscriptions(&nats) != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{}",
            room_subscriptions(&nats)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
