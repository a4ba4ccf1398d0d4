//! The real listener: HTTPS with the configured certificate, plain HTTP without, and a
//! graceful stop.

use std::sync::Arc;
use std::time::Duration;

use sealgate_testkit::tls::TestCa;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::fixture::{Fixture, settings};

async fn get<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_portal_serves_https_with_its_certificate_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, key) = ca.issue(&["127.0.0.1"]).write_to(dir.path(), "portal");
    let mut s = settings();
    s.tls = Some((cert, key));
    let f = Fixture::with(s).await;
    let listener = sealgate_portal::bind(&f.ctx.settings).await.expect("bind");
    assert!(listener.is_tls());
    let addr = listener.local_addr;
    let (stop, rx) = watch::channel(false);
    let server = tokio::spawn(sealgate_portal::run(f.ctx.clone(), listener, rx));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(ca.client_config()));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let res = get(tls, &format!("/p/{}", "A".repeat(43))).await;
    assert!(res.starts_with("HTTP/1.1 404"), "{res}");
    assert!(
        res.to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{res}"
    );
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("stops within the grace")
        .expect("no panic");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn without_a_certificate_the_portal_serves_plain_http_for_a_proxy() {
    let f = Fixture::new().await;
    let listener = sealgate_portal::bind(&f.ctx.settings).await.expect("bind");
    assert!(!listener.is_tls());
    let addr = listener.local_addr;
    let (stop, rx) = watch::channel(false);
    let server = tokio::spawn(sealgate_portal::run(f.ctx.clone(), listener, rx));
    let res = get(
        TcpStream::connect(addr).await.expect("connect"),
        "/portal.css",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains("text/css"), "{res}");
    assert!(
        !res.to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{res}"
    );
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("stops")
        .expect("no panic");
}
