//! The metrics exported through the `metrics` facade (feature `metrics`), scraped
//! in Prometheus text format after known traffic: broadcasts, requests by kind and
//! outcome, their latency, dropped messages, live servers.
#![cfg(feature = "metrics")]

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{
    impostor::{Impostor, Mode},
    *,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use socketioxide_nats::Error;

/// `name{labels}` → value, from the Prometheus text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &BTreeMap<String, f64>, key: &str) -> f64 {
    *metrics
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {metrics:#?}"))
}

#[tokio::test]
async fn metrics_count_the_traffic_by_kind_and_outcome() {
    // Installed before any adapter exists: the adapters register their metrics
    // when their namespace starts.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let nats = NatsServer::start();
    let config = test_config().with_request_timeout(Duration::from_millis(500));
    let nodes = [
        node_with(connect(&nats.url()).await, config.clone()).await,
        node_with(connect(&nats.url()).await, config).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let mut b = client(&nodes[1].io, "/").await;

    // 3 broadcasts from node 0, 1 from node 1: each received by the other node.
    for i in 0..3 {
        nodes[0].io.emit("m", &i).await.unwrap();
    }
    nodes[1].io.emit("m", &3).await.unwrap();
    for c in [&mut a, &mut b] {
        for _ in 0..4 {
            c.next().await;
        }
    }
    // 2 fetches that complete.
    nodes[0].io.fetch_sockets().await.unwrap();
    nodes[1].io.rooms().await.unwrap();
    // Garbage on the broadcast subject: dropped by both nodes.
    let raw = connect(&nats.url()).await;
    raw.publish("socket.io._2F.b.AAAAAAAAAAAAAAAA", "garbage".into())
        .await
        .unwrap();
    raw.flush().await.unwrap();
    // A stuck node: the next fetch ends incomplete.
    let stuck = Impostor::start(&nats.url(), "/", Mode::Stuck).await;
    wait_count(&nodes[0], "/", 3, Duration::from_secs(3), "the stuck node").await;
    assert!(matches!(
        nodes[0].io.fetch_sockets().await,
        Err(Error::Incomplete { .. })
    ));

    let m = parse(&prometheus.render());
    let ns = r#"ns="/""#;
    assert_eq!(
        value(
            &m,
            &format!("socketioxide_nats_broadcasts_sent_total{{{ns}}}")
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            &format!("socketioxide_nats_broadcasts_received_total{{{ns}}}")
        ),
        4.0
    );
    let requests = |kind: &str, outcome: &str| {
        value(
            &m,
            &format!(
                r#"socketioxide_nats_requests_total{{{ns},kind="{kind}",outcome="{outcome}"}}"#
            ),
        )
    };
    assert_eq!(requests("fetch_sockets", "complete"), 1.0);
    assert_eq!(requests("rooms", "complete"), 1.0);
    assert_eq!(requests("fetch_sockets", "incomplete"), 1.0);
    let latency = value(
        &m,
        &format!(
            r#"socketioxide_nats_request_duration_seconds_count{{{ns},kind="fetch_sockets"}}"#
        ),
    );
    assert_eq!(latency, 2.0);
    let slowest = value(
        &m,
        &format!(
            r#"socketioxide_nats_request_duration_seconds{{{ns},kind="fetch_sockets",quantile="1"}}"#
        ),
    );
    assert!(
        (0.45..2.0).contains(&slowest),
        "the incomplete fetch waited its 500 ms: {slowest}"
    );
    assert_eq!(
        value(
            &m,
            &format!(r#"socketioxide_nats_messages_dropped_total{{{ns},reason="malformed"}}"#)
        ),
        2.0
    );
    assert_eq!(
        value(&m, &format!("socketioxide_nats_servers{{{ns}}}")),
        3.0
    );
    drop(stuck);
}
