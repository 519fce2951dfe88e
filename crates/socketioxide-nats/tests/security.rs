//! Authentication, TLS and confinement, each against a nats-server configured that
//! way: the adapter works over every kind of NATS credentials, wrong or missing
//! credentials fail at start-up with a clear error, and apps sharing a NATS server
//! under per-prefix permissions see nothing of each other.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nats_harness::{Operator, Pki, nkey_user};
use socketioxide_nats::{
    ConnectionMonitor, NatsAdapterConfig,
    async_nats::{self, ConnectErrorKind, ConnectOptions},
};

/// Two nodes over clients made by `connect`: a broadcast and a fetch cross them.
async fn assert_cluster_works(
    connect: impl AsyncFn() -> async_nats::Client,
    config: NatsAdapterConfig,
) {
    let nodes = [
        node_with(connect().await, config.clone()).await,
        node_with(connect().await, config).await,
    ];
    start_ns!(nodes, "/", join_own_id);
    let mut a = client(&nodes[0].io, "/").await;
    let _b = client(&nodes[1].io, "/").await;
    nodes[1].io.emit("hello", "over auth").await.unwrap();
    assert_eq!(a.next().await, r#"42["hello","over auth"]"#);
    assert_eq!(nodes[1].io.fetch_sockets().await.unwrap().len(), 2);
}

fn options() -> ConnectOptions {
    ConnectOptions::new().connection_timeout(Duration::from_secs(2))
}

/// The error of a connection attempt that must fail, and its kind.
async fn refused(options: ConnectOptions, url: &str) -> (ConnectErrorKind, String) {
    match options.connect(url).await {
        Ok(_) => panic!("connected without valid credentials"),
        Err(e) => (e.kind(), e.to_string()),
    }
}

#[tokio::test]
async fn user_and_password() {
    let nats = NatsServer::builder()
        .config("authorization { user: alice, password: \"s3cret pass\", timeout: 2 }\n")
        .start();
    let url = nats.url();
    assert_cluster_works(
        async || {
            options()
                .user_and_password("alice".into(), "s3cret pass".into())
                .connect(&url)
                .await
                .unwrap()
        },
        test_config(),
    )
    .await;

    let wrong = options().user_and_password("alice".into(), "nope".into());
    let (kind, text) = refused(wrong, &url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation, "{text}");
    assert!(text.contains("authorization violation"), "{text}");
    let (kind, _) = refused(options(), &url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation);
    // async-nats does not use credentials written in the URL: documented pitfall.
    let in_url = url.replace("nats://", "nats://alice:s3cret%20pass@");
    let (kind, _) = refused(options(), &in_url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation);
}

#[tokio::test]
async fn token() {
    let nats = NatsServer::builder()
        .config("authorization { token: \"t0ken-XYZ\" }\n")
        .start();
    let url = nats.url();
    assert_cluster_works(
        async || {
            options()
                .token("t0ken-XYZ".into())
                .connect(&url)
                .await
                .unwrap()
        },
        test_config(),
    )
    .await;
    let (kind, _) = refused(options().token("wrong".into()), &url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation);
    let (kind, _) = refused(options(), &url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation);
}

#[tokio::test]
async fn nkey() {
    let (public, seed) = nkey_user();
    let nats = NatsServer::builder()
        .config(format!(
            "authorization {{ users: [ {{ nkey: {public} }} ] }}\n"
        ))
        .start();
    let url = nats.url();
    assert_cluster_works(
        async || options().nkey(seed.clone()).connect(&url).await.unwrap(),
        test_config(),
    )
    .await;
    let (_, stranger) = nkey_user();
    let (kind, _) = refused(options().nkey(stranger), &url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation);
    let (kind, text) = refused(options().nkey("SUnot-a-seed".into()), &url).await;
    assert_eq!(kind, ConnectErrorKind::Authentication, "{text}");
}

#[tokio::test]
async fn credentials_file() {
    let operator = Operator::new();
    let nats = NatsServer::builder()
        .config(operator.server_config())
        .start();
    let url = nats.url();
    let creds = operator.user_creds("node", &[]);
    assert_cluster_works(
        async || {
            options()
                .credentials_file(&creds)
                .await
                .unwrap()
                .connect(&url)
                .await
                .unwrap()
        },
        test_config(),
    )
    .await;

    // A user signed by another operator's account is refused.
    let other = Operator::new();
    let stranger = other.user_creds("stranger", &[]);
    let with_stranger = options().credentials_file(&stranger).await.unwrap();
    let (kind, _) = refused(with_stranger, &url).await;
    assert_eq!(kind, ConnectErrorKind::AuthorizationViolation);
    // A missing file is an error before any connection is tried.
    let err = options()
        .credentials_file("/nonexistent/app.creds")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
}

#[tokio::test]
async fn tls_server_verified() {
    let pki = Pki::generate();
    let nats = NatsServer::builder()
        .config(pki.server_config(false))
        .start();
    let url = nats.url().replace("nats://", "tls://");
    assert_cluster_works(
        async || {
            options()
                .require_tls(true)
                .add_root_certificates(pki.file("ca.pem"))
                .connect(&url)
                .await
                .unwrap()
        },
        test_config(),
    )
    .await;
    // Without our CA the server's certificate is not trusted.
    let (kind, text) = refused(options().require_tls(true), &url).await;
    assert_eq!(kind, ConnectErrorKind::Io, "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn tls_mutual() {
    let pki = Pki::generate();
    let nats = NatsServer::builder()
        .config(pki.server_config(true))
        .start();
    let url = nats.url().replace("nats://", "tls://");
    let trusted = || {
        options()
            .require_tls(true)
            .add_root_certificates(pki.file("ca.pem"))
    };
    assert_cluster_works(
        async || {
            trusted()
                .add_client_certificate(pki.file("client.pem"), pki.file("client-key.pem"))
                .connect(&url)
                .await
                .unwrap()
        },
        test_config(),
    )
    .await;
    // No client certificate: the server refuses the handshake.
    let (kind, text) = refused(trusted(), &url).await;
    assert_eq!(kind, ConnectErrorKind::Io, "{text}");
    assert!(text.contains("CertificateRequired"), "{text}");
}

/// The permissions the crate docs give for an app: publish and subscribe on its
/// prefix, nothing else (the adapter needs no `_INBOX` and no other subject).
fn confined_user(user: &str, prefix: &str) -> String {
    format!(
        "{{ user: {user}, password: pw, permissions: {{ publish: [\"{prefix}.>\"], subscribe: [\"{prefix}.>\"] }} }}"
    )
}

#[tokio::test]
async fn apps_confined_to_their_prefix_see_nothing_of_each_other() {
    let nats = NatsServer::builder()
        .config(format!(
            "authorization {{ users: [\n {}\n {}\n] }}\n",
            confined_user("app-a", "app-a"),
            confined_user("app-b", "app-b"),
        ))
        .start();
    let url = nats.url();
    let connect = async |user: &str, monitor: &ConnectionMonitor| {
        monitor
            .attach(options().user_and_password(user.into(), "pw".into()))
            .connect(&url)
            .await
            .unwrap()
    };
    let config = |prefix: &'static str| test_config().with_prefix(prefix);

    // App A, confined to `app-a.>`, runs every operation, targeted ones included.
    let quiet = ConnectionMonitor::new();
    let a = [
        node_with(connect("app-a", &quiet).await, config("app-a")).await,
        node_with(connect("app-a", &quiet).await, config("app-a")).await,
    ];
    start_ns!(a, "/", join_own_id);
    let mut a0 = client(&a[0].io, "/").await;
    let mut a1 = client(&a[1].io, "/").await;

    // App B uses its own prefix; an intruder with B's credentials tries A's.
    let b = [node_with(connect("app-b", &quiet).await, config("app-b")).await];
    start_ns!(b, "/", join_own_id);
    let mut b0 = client(&b[0].io, "/").await;
    let refused = ConnectionMonitor::new();
    let intruder = node_with(connect("app-b", &refused).await, config("app-a")).await;
    intruder.io.ns("/", join_own_id).await.unwrap();
    let mut spy = client(&intruder.io, "/").await;

    a[0].io.emit("secret", "for app a").await.unwrap();
    assert_eq!(a1.next().await, r#"42["secret","for app a"]"#);
    assert_eq!(a0.next().await, r#"42["secret","for app a"]"#);
    let remote = a[0]
        .io
        .to(a1.id.clone())
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .expect("a1 found from node 0");
    remote.join("vip").await.unwrap();
    assert_eq!(
        a[0].io
            .rooms()
            .await
            .unwrap()
            .iter()
            .filter(|r| *r == "vip")
            .count(),
        1
    );
    assert_eq!(a[1].io.fetch_sockets().await.unwrap().len(), 2);

    // The intruder's subscriptions and publishes were refused by the server:
    // reported on its monitor, and neither side saw the other.
    intruder.io.emit("forged", "from b").await.unwrap();
    // Its own local socket gets it, as with any emit; nobody else will.
    assert_eq!(spy.next().await, r#"42["forged","from b"]"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused.stats().authorization_errors < 2 {
        assert!(
            Instant::now() < deadline,
            "permission violations not reported: {:?}",
            refused.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = refused.stats().last_error.unwrap_or_default();
    assert!(
        last.to_lowercase().contains("permissions violation"),
        "{last}"
    );
    assert_eq!(quiet.stats().authorization_errors, 0, "{:?}", quiet.stats());
    assert_eq!(intruder.handle.server_count("/"), Some(1));
    recv_none(&mut spy.rx, 300).await;
    recv_none(&mut b0.rx, 0).await;
    recv_none(&mut a0.rx, 0).await;
    recv_none(&mut a1.rx, 0).await;
    assert_eq!(b[0].io.fetch_sockets().await.unwrap().len(), 1);
}
