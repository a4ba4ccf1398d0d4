//! STARTTLS under each policy, with certificates from a throwaway CA.

use std::sync::Arc;

use sealgate_testkit::tls::TestCa;
use sha2::{Digest, Sha256};

use super::*;

struct Pki {
    ca: TestCa,
    server: Arc<rustls::ServerConfig>,
    leaf_sha256: String,
}

fn pki() -> Pki {
    let ca = TestCa::new();
    let leaf = ca.issue(&[MX, "127.0.0.2"]);
    let leaf_sha256 = hex::encode(Sha256::digest(leaf.chain_der()[0].as_ref()));
    Pki {
        server: Arc::new(leaf.server_config()),
        ca,
        leaf_sha256,
    }
}

fn tls_sink_options(server: Option<Arc<rustls::ServerConfig>>) -> SinkOptions {
    SinkOptions {
        tls: server,
        ..options(SinkScript::default())
    }
}

async fn connect_with(
    sink: &SmtpSink,
    name: &str,
    policy: &TlsPolicy,
) -> Result<SmtpConnection, ClientError> {
    SmtpConnection::connect(sink.addr(), name, &cfg(), policy).await
}

#[tokio::test]
async fn opportunistic_starttls_reports_version_cipher_and_leaf_hash() {
    let pki = pki();
    let sink = sink(tls_sink_options(Some(pki.server.clone()))).await;
    let policy = TlsPolicy::Opportunistic(Arc::new(pki.ca.client_config()));
    let mut conn = connect_with(&sink, MX, &policy).await.expect("connect");

    let info = conn.tls().expect("tls negotiated").clone();
    assert_eq!(info.version, "TLSv1.3");
    assert!(info.cipher.starts_with("TLS13_"), "{}", info.cipher);
    assert_eq!(
        info.peer_cert_sha256.as_deref(),
        Some(pki.leaf_sha256.as_str())
    );
    // RFC 3207 §4.2: the post-TLS EHLO no longer lists STARTTLS.
    assert!(!conn.extensions().starttls);

    conn.send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    conn.quit().await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
    assert_eq!(received[0].data, MESSAGE);
    assert_eq!(count_verb(&sink, "EHLO"), 2);
    assert_eq!(sink.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_ip_address_can_be_the_verification_name() {
    let pki = pki();
    let sink = sink(tls_sink_options(Some(pki.server.clone()))).await;
    let policy = TlsPolicy::Required(Arc::new(pki.ca.client_config()));
    let conn = connect_with(&sink, "127.0.0.2", &policy)
        .await
        .expect("connect");
    assert!(conn.tls().is_some());
}

#[tokio::test]
async fn required_tls_without_starttls_sends_nothing() {
    let pki = pki();
    let sink = sink(tls_sink_options(None)).await;
    let policy = TlsPolicy::Required(Arc::new(pki.ca.client_config()));
    let error = connect_with(&sink, MX, &policy)
        .await
        .expect_err("must fail");
    assert!(matches!(error, ClientError::TlsRequired), "{error:?}");
    assert!(!error.is_permanent());
    assert!(sink.received().is_empty());
    assert_eq!(count_verb(&sink, "MAIL"), 0);
}

#[tokio::test]
async fn opportunistic_tls_without_starttls_delivers_in_plaintext() {
    let pki = pki();
    let sink = sink(tls_sink_options(None)).await;
    let policy = TlsPolicy::Opportunistic(Arc::new(pki.ca.client_config()));
    let mut conn = connect_with(&sink, MX, &policy).await.expect("connect");
    assert!(conn.tls().is_none());
    conn.send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert_eq!(sink.received().len(), 1);
    assert!(!sink.received()[0].tls);
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_required_tls_and_sends_nothing() {
    let ours = pki();
    let theirs = pki();
    let sink = sink(tls_sink_options(Some(theirs.server.clone()))).await;
    let policy = TlsPolicy::Required(Arc::new(ours.ca.client_config()));
    let error = connect_with(&sink, MX, &policy)
        .await
        .expect_err("must fail");
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
    assert!(!error.is_permanent());
    assert!(sink.received().is_empty());
    assert_eq!(count_verb(&sink, "MAIL"), 0);
}

#[tokio::test]
async fn a_name_not_in_the_certificate_fails_without_plaintext_retry() {
    let pki = pki();
    let sink = sink(tls_sink_options(Some(pki.server.clone()))).await;
    let policy = TlsPolicy::Opportunistic(Arc::new(pki.ca.client_config()));
    let error = connect_with(&sink, "mx2.example.test", &policy)
        .await
        .expect_err("must fail");
    assert!(matches!(error, ClientError::Tls { .. }), "{error:?}");
    assert_eq!(sink.connections(), 1);
    assert_eq!(count_verb(&sink, "MAIL"), 0);
}

#[tokio::test]
async fn disabled_tls_ignores_an_offered_starttls() {
    let pki = pki();
    let sink = sink(tls_sink_options(Some(pki.server.clone()))).await;
    let mut conn = connect_with(&sink, MX, &TlsPolicy::Disabled)
        .await
        .expect("connect");
    assert!(conn.extensions().starttls);
    assert!(conn.tls().is_none());
    conn.send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert_eq!(count_verb(&sink, "STARTTLS"), 0);
    assert!(!sink.received()[0].tls);
}

#[tokio::test]
async fn replies_sent_ahead_of_the_handshake_are_discarded() {
    let pki = pki();
    let script = SinkScript::default().inject_after_starttls("250 2.0.0 injected");
    let sink = sink(SinkOptions {
        tls: Some(pki.server.clone()),
        ..options(script)
    })
    .await;
    let policy = TlsPolicy::Required(Arc::new(pki.ca.client_config()));
    let mut conn = connect_with(&sink, MX, &policy).await.expect("connect");
    // Had the injected 250 been read as the EHLO reply, the real list would be lost.
    assert!(conn.extensions().pipelining);
    let result = conn
        .send(&envelope(&["r@example.test"]), MESSAGE)
        .await
        .expect("transaction");
    assert!(matches!(
        result.outcome_for("r@example.test"),
        (Outcome::Delivered, _)
    ));
    assert!(sink.received()[0].tls);
}
