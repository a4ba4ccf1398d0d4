//! Real TLS handshakes over TCP on loopback: the verifiers inside rustls, as the SMTP client
//! uses them after STARTTLS.

use std::io;
use std::net::SocketAddr;

use sealgate_testkit::tls::{Issued, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

/// The client's error, wrapped the way the SMTP client wraps it.
#[derive(Debug, thiserror::Error)]
#[error("tls handshake failed")]
struct HandshakeFailed(#[source] io::Error);

/// Serves one TLS connection that answers "ping" with "pong".
async fn serve_once(server: rustls::ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        // A client that refuses the certificate aborts the handshake: not the server's test.
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let mut ping = [0u8; 4];
            if tls.read_exact(&mut ping).await.is_ok() && &ping == b"ping" {
                let _ = tls.write_all(b"pong").await;
                let _ = tls.shutdown().await;
            }
        }
    });
    addr
}

/// Connects as `host`, says "ping" and expects "pong".
async fn exchange(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<(), HandshakeFailed> {
    let name = ServerName::try_from(host.to_owned()).expect("valid name");
    let run = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await?;
        assert_eq!(&pong, b"pong");
        Ok(())
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("the exchange finishes in time")
        .map_err(HandshakeFailed)
}

/// Presents one certificate chain but signs the handshake with another certificate's key.
#[derive(Debug)]
struct StolenCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for StolenCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn impostor(
    presented: &Issued,
    key_of: &Issued,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = provider
        .key_provider
        .load_private_key(key_of.key_der())
        .expect("load key");
    let certified = rustls::sign::CertifiedKey::new(presented.chain_der(), key);
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(StolenCertificate(Arc::new(certified))))
}

fn tls12_only(issued: &Issued) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .expect("tls 1.2")
    .with_no_client_auth()
    .with_single_cert(issued.chain_der(), issued.key_der())
    .expect("certificate matches key")
}

#[tokio::test]
async fn a_matching_dane_ee_record_completes_a_real_handshake() {
    let issued = TestCa::new().issue(&[MX]);
    let chain = issued.chain_der();
    let auth = dane(vec![tlsa(3, 1, 1, &chain[0])], &[MX]);
    let addr = serve_once(issued.server_config()).await;
    exchange(addr, verifiers().client_config(&auth), MX)
        .await
        .expect("DANE-EE match");
}

#[tokio::test]
async fn a_matching_dane_ta_record_completes_a_real_tls12_handshake() {
    let issued = TestCa::new().issue(&[MX]);
    let chain = issued.chain_der();
    let auth = dane(vec![tlsa(2, 0, 1, &chain[1])], &[MX, "example.test"]);
    let addr = serve_once(tls12_only(&issued)).await;
    exchange(addr, verifiers().client_config(&auth), MX)
        .await
        .expect("DANE-TA match over TLS 1.2");
}

#[tokio::test]
async fn a_mismatching_dane_record_fails_a_real_handshake_as_tlsa_invalid() {
    let issued = TestCa::new().issue(&[MX]);
    let stranger = TestCa::named("Stranger CA").issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(3, 1, 1, &stranger[0])], &[MX]);
    let addr = serve_once(issued.server_config()).await;
    let err = exchange(addr, verifiers().client_config(&auth), MX)
        .await
        .expect_err("no record matches");
    let (kind, detail) = classify_failure(&err).expect("a tls failure");
    assert_eq!(kind, "tlsa-invalid");
    assert!(
        detail.starts_with(&format!(
            "DANE: no TLSA record of {MX} matched the presented chain (records: 3 1 1 "
        )),
        "{detail}"
    );
}

#[tokio::test]
async fn a_webpki_name_mismatch_fails_a_real_handshake_as_host_mismatch() {
    let ca = TestCa::new();
    let issued = ca.issue(&["mx2.example.test"]);
    let verifiers = Verifiers::new(false, &[ca.cert_der()]).expect("verifiers");
    let addr = serve_once(issued.server_config()).await;
    let err = exchange(addr, verifiers.client_config(&PeerAuth::WebPki), MX)
        .await
        .expect_err("wrong name");
    assert_eq!(
        classify_failure(&err).map(|(kind, _)| kind),
        Some("certificate-host-mismatch")
    );
    let addr = serve_once(issued.server_config()).await;
    exchange(
        addr,
        verifiers.client_config(&PeerAuth::WebPki),
        "mx2.example.test",
    )
    .await
    .expect("right name");
}

#[tokio::test]
async fn a_pinned_key_completes_a_real_handshake_and_another_pin_fails_it() {
    let issued = TestCa::new().issue(&[MX]);
    let chain = issued.chain_der();
    let good = PeerAuth::Pinned {
        sha256: vec![hex::encode(Sha256::digest(spki(&chain[0])))],
    };
    let addr = serve_once(issued.server_config()).await;
    exchange(addr, verifiers().client_config(&good), MX)
        .await
        .expect("pin matches");
    let bad = PeerAuth::Pinned {
        sha256: vec![hex::encode(Sha256::digest(&chain[1]))],
    };
    let addr = serve_once(issued.server_config()).await;
    let err = exchange(addr, verifiers().client_config(&bad), MX)
        .await
        .expect_err("pin mismatch");
    assert_eq!(
        classify_failure(&err).map(|(kind, _)| kind),
        Some("validation-failure")
    );
}

#[tokio::test]
async fn a_server_without_the_certificates_key_fails_the_handshake_though_the_record_matches() {
    let ca = TestCa::new();
    let victim = ca.issue(&[MX]);
    let attacker = ca.issue(&[MX]);
    let chain = victim.chain_der();
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        for auth in [
            dane(vec![tlsa(3, 1, 1, &chain[0])], &[MX]),
            dane(vec![tlsa(2, 0, 1, &chain[1])], &[MX]),
            PeerAuth::Pinned {
                sha256: vec![hex::encode(Sha256::digest(&chain[0]))],
            },
        ] {
            let addr = serve_once(impostor(&victim, &attacker, versions)).await;
            let err = exchange(addr, verifiers().client_config(&auth), MX)
                .await
                .expect_err("the handshake signature must not verify");
            let (kind, detail) = classify_failure(&err).expect("a tls failure");
            assert_eq!(kind, "validation-failure", "{detail}");
        }
    }
}

#[tokio::test]
async fn the_opportunistic_config_encrypts_to_any_certificate_but_still_checks_the_key() {
    // A CA nobody trusts, a name that is not the peer's: opportunistic TLS takes it.
    let untrusted = TestCa::new().issue(&["elsewhere.example"]);
    let addr = serve_once(untrusted.server_config()).await;
    exchange(addr, verifiers().opportunistic_config(), MX)
        .await
        .expect("any certificate is accepted");
    let other = TestCa::new().issue(&[MX]);
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let addr = serve_once(impostor(&untrusted, &other, versions)).await;
        exchange(addr, verifiers().opportunistic_config(), MX)
            .await
            .expect_err("a peer without the certificate's key is refused");
    }
}
