//! REQUIRETLS (RFC 8689) dialogs: offered and accepted only over TLS, with a real STARTTLS
//! handshake over an in-memory duplex against a certificate from a throwaway CA.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use sealgate_store::AuditFilter;
use sealgate_testkit::tls::TestCa;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tests::{LOCAL, World, codes, dialog_with, world_with_tls};
use crate::{Session, SessionInfo, SessionLimits};

const HOST: &str = "relay.test";

async fn tls_world(ca: &TestCa) -> World {
    let leaf = ca.issue(&[HOST]);
    let acceptor = TlsAcceptor::from(Arc::new(leaf.server_config()));
    world_with_tls(SessionLimits::default(), Some(acceptor)).await
}

fn plain_listener() -> SessionInfo {
    SessionInfo {
        peer: LOCAL.parse().expect("peer"),
        tls: None,
        starttls_allowed: true,
        client_cert: None,
    }
}

/// Sends `command` (nothing when empty) and returns the whole reply, CRLFs included.
async fn say<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>, command: &str) -> String {
    if !command.is_empty() {
        s.write_all(command.as_bytes()).await.expect("write");
        s.flush().await.expect("flush");
    }
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_line(&mut line))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "server closed the connection after {reply:?}");
        reply.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return reply;
        }
    }
}

/// Runs a session on a plain listener, says EHLO, upgrades with STARTTLS, then sends each of
/// `commands` over TLS one at a time. Returns the EHLO reply before TLS and every reply after.
async fn over_starttls(w: &World, ca: &TestCa, commands: &[&str]) -> (String, Vec<String>) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (_stop, rx) = watch::channel(false);
    let session =
        tokio::spawn(Session::new(w.ctx.clone(), plain_listener()).run(Box::new(server), rx));
    let mut plain = BufReader::new(client);
    assert!(say(&mut plain, "").await.starts_with("220 "));
    let before = say(&mut plain, "EHLO client.test\r\n").await;
    assert!(say(&mut plain, "STARTTLS\r\n").await.starts_with("220 "));
    assert!(plain.buffer().is_empty(), "nothing may follow the 220");
    let connector = TlsConnector::from(Arc::new(ca.client_config()));
    let name = ServerName::try_from(HOST).expect("server name");
    let tls = connector
        .connect(name, plain.into_inner())
        .await
        .expect("tls handshake");
    let mut tls = BufReader::new(tls);
    let mut replies = Vec::new();
    for command in commands {
        replies.push(say(&mut tls, command).await);
    }
    drop(tls);
    session.await.expect("session task");
    (before, replies)
}

fn queue_id(reply: &str) -> String {
    reply
        .split("queued as ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("queue id")
        .to_owned()
}

#[tokio::test]
async fn requiretls_is_not_offered_in_plaintext_and_is_refused_there() {
    let ca = TestCa::new();
    let w = tls_world(&ca).await;
    let t = dialog_with(
        &w,
        plain_listener(),
        b"EHLO x\r\nMAIL FROM:<a@x.test> REQUIRETLS\r\nMAIL FROM:<a@x.test>\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(codes(&t), [220, 250, 530, 250, 221], "{t}");
    assert!(t.contains("250-STARTTLS"), "TLS is on offer: {t}");
    assert!(
        !t.contains("250-REQUIRETLS") && !t.contains("250 REQUIRETLS"),
        "{t}"
    );
    assert!(t.contains("530 5.7.10 REQUIRETLS needs TLS"), "{t}");
    assert_eq!(w.store.count_messages().await.expect("count"), 0);
}

#[tokio::test]
async fn requiretls_is_offered_after_starttls() {
    let ca = TestCa::new();
    let w = tls_world(&ca).await;
    let (before, after) = over_starttls(&w, &ca, &["EHLO client.test\r\n", "QUIT\r\n"]).await;
    assert!(!before.contains("REQUIRETLS"), "{before}");
    assert!(before.contains("250-STARTTLS"), "{before}");
    let ehlo = &after[0];
    assert!(ehlo.contains("250-REQUIRETLS\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(after[1].starts_with("221 "), "{after:?}");
}

#[tokio::test]
async fn requiretls_over_tls_is_accepted_stored_and_audited() {
    let ca = TestCa::new();
    let w = tls_world(&ca).await;
    let message = "Subject: results\r\nTLS-Required: No\r\n\r\nbody\r\n.\r\n";
    let (_, replies) = over_starttls(
        &w,
        &ca,
        &[
            "EHLO client.test\r\n",
            "MAIL FROM:<a@x.test> REQUIRETLS\r\n",
            "RCPT TO:<b@y.test>\r\n",
            "DATA\r\n",
            message,
            "MAIL FROM:<a@x.test>\r\n",
            "RCPT TO:<b@y.test>\r\n",
            "DATA\r\n",
            message,
            "QUIT\r\n",
        ],
    )
    .await;
    let got: Vec<u16> = replies.iter().flat_map(|r| codes(r)).collect();
    assert_eq!(
        got,
        [250, 250, 250, 354, 250, 250, 250, 354, 250, 221],
        "{replies:?}"
    );
    let (strict, plain) = (queue_id(&replies[4]), queue_id(&replies[8]));
    let row = w.store.message(&strict).await.expect("read").expect("row");
    assert!(row.requiretls, "REQUIRETLS recorded on the message");
    assert!(row.tls.is_some());
    let row = w.store.message(&plain).await.expect("read").expect("row");
    assert!(!row.requiretls, "the flag belongs to one transaction only");
    // RFC 8689 §5: the header stays as sent; REQUIRETLS wins over it in the policy engine.
    let body = w
        .ctx
        .queue
        .open(&strict.parse().expect("id"))
        .await
        .expect("open");
    let body = String::from_utf8(body).expect("utf8");
    assert!(body.contains("\r\nTLS-Required: No\r\n"), "{body}");
    let filter = AuditFilter {
        message_id: Some(strict),
        ..Default::default()
    };
    let events = w.store.audit_after(0, &filter, 10).await.expect("audit");
    let data: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
    assert_eq!(data["requiretls"], true, "{data}");
}

#[tokio::test]
async fn requiretls_on_an_implicit_tls_session_needs_ehlo() {
    let ca = TestCa::new();
    let w = tls_world(&ca).await;
    let info = SessionInfo {
        tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
        starttls_allowed: false,
        client_cert: None,
        ..plain_listener()
    };
    let t = dialog_with(
        &w,
        info,
        b"HELO x\r\nMAIL FROM:<a@x.test> REQUIRETLS\r\nEHLO x\r\nMAIL FROM:<a@x.test> REQUIRETLS\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(codes(&t), [220, 250, 555, 250, 250, 221], "{t}");
    assert!(t.contains("555 5.5.4 REQUIRETLS needs EHLO"), "{t}");
    assert!(t.contains("250-REQUIRETLS\r\n"), "{t}");
}
