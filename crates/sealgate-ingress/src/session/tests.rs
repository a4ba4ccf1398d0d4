//! Session dialogs over an in-memory duplex, against a real SQLite store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sealgate_crypto::KeyRing;
use sealgate_queue::Queue;
use sealgate_store::{AuditFilter, Store};
use sealgate_testkit::db::{TestBackend, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::{IngressContext, RelayClients, Session, SessionInfo, SessionLimits};

pub(super) struct World {
    pub(super) ctx: crate::Context,
    pub(super) store: Store,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

pub(super) async fn world(limits: SessionLimits) -> World {
    world_with_tls(limits, None).await
}

/// A world whose listener offers TLS with `tls` (STARTTLS on a plain listener).
pub(super) async fn world_with_tls(
    limits: SessionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> World {
    world_with(limits, tls, crate::AuthSettings::default()).await
}

/// A world with its own AUTH guard settings.
pub(super) async fn world_with(
    limits: SessionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: crate::AuthSettings,
) -> World {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = Store::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let dir = tempfile::tempdir().expect("tempdir");
    let (keys, _) = KeyRing::load_or_create(&dir.path().join("seal.key")).expect("keys");
    let queue = Queue::new(store.clone(), Arc::new(keys));
    let ctx = Arc::new(IngressContext {
        hostname: "relay.test".into(),
        recorder: sealgate_queue::Recorder::start(queue.clone(), "relay.test:1".into()),
        queue,
        store: store.clone(),
        tls: tls.map(|acceptor| crate::ServerTls {
            acceptor,
            clients: None,
        }),
        relay: RelayClients::any_sender(vec!["127.0.0.0/8".parse().expect("net")]),
        tenants: crate::Tenants::default(),
        inbound: None,
        postmaster: Some(sealgate_types::EmailAddress::parse(POSTMASTER).expect("address")),
        limits,
        auth: Arc::new(crate::AuthGuard::new(auth).expect("auth guard")),
    });
    World {
        ctx,
        store,
        _db: db,
        _dir: dir,
    }
}

/// Sends `input` at once (as a pipelining client would) and returns everything the server
/// said until it closed the connection.
pub(super) async fn dialog(w: &World, peer: &str, input: &[u8]) -> String {
    let info = SessionInfo {
        peer: peer.parse::<SocketAddr>().expect("peer"),
        tls: None,
        starttls_allowed: true,
        client_cert: None,
    };
    dialog_with(w, info, input).await
}

/// [`dialog`] on a connection described by `info` (e.g. one that is already TLS).
pub(super) async fn dialog_with(w: &World, info: SessionInfo, input: &[u8]) -> String {
    let (client, server) = tokio::io::duplex(4 << 20);
    let (_tx, rx) = watch::channel(false);
    let session = tokio::spawn(Session::new(w.ctx.clone(), info).run(Box::new(server), rx));
    let (mut r, mut wr) = tokio::io::split(client);
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&input).await;
        wr
    });
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut out))
        .await
        .expect("session ended")
        .expect("read");
    let _ = writer.await;
    session.await.expect("session task");
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn codes(transcript: &str) -> Vec<u16> {
    transcript
        .lines()
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .filter_map(|l| l[..3].parse().ok())
        .collect()
}

pub(super) async fn messages(w: &World) -> i64 {
    w.store.count_messages().await.expect("count")
}

pub(super) const LOCAL: &str = "127.0.0.1:40000";
pub(super) const OUTSIDE: &str = "192.0.2.10:40000";
/// The operator address `<Postmaster>` goes to in every test world.
pub(super) const POSTMASTER: &str = "ops@clinic.test";

#[tokio::test]
async fn a_pipelined_transaction_is_queued_and_audited() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(&w, LOCAL, b"EHLO ehr.clinic.test\r\nMAIL FROM:<ehr@clinic.test> SIZE=60\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: hi\r\nMessage-ID: <m1@clinic.test>\r\n\r\n..dotted line\r\n.\r\nQUIT\r\n").await;
    assert_eq!(codes(&t), [220, 250, 250, 250, 250, 354, 250, 221], "{t}");
    assert!(
        t.contains("250-PIPELINING")
            && t.contains("250-SIZE 26214400")
            && t.contains("250-ENHANCEDSTATUSCODES"),
        "{t}"
    );
    assert!(
        !t.contains("STARTTLS") && !t.contains("AUTH"),
        "no TLS configured, so neither is offered: {t}"
    );
    let id = t
        .split("queued as ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("queue id");
    let body = w
        .ctx
        .queue
        .open(&id.parse().expect("id"))
        .await
        .expect("open");
    let body = String::from_utf8(body).expect("utf8");
    assert!(body.starts_with("Received: from ehr.clinic.test ([127.0.0.1])\r\n\tby relay.test (Sealgate) with ESMTP\r\n\tid "), "{body}");
    assert!(
        body.ends_with("\r\n\r\n.dotted line\r\n"),
        "dot-unstuffed: {body:?}"
    );
    let rcpts = w.store.recipients_of(id).await.expect("rcpts");
    assert_eq!(
        rcpts.iter().map(|r| r.rcpt.as_str()).collect::<Vec<_>>(),
        ["a@x.test", "b@y.test"]
    );
    let filter = AuditFilter {
        message_id: Some(id.to_owned()),
        ..Default::default()
    };
    let events = w.store.audit_after(0, &filter, 10).await.expect("audit");
    assert_eq!(events.len(), 1);
    let data: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
    assert_eq!(data["header_message_id"], "<m1@clinic.test>");
    assert_eq!(data["helo"], "ehr.clinic.test");
    assert_eq!(data["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn clients_outside_the_relay_networks_are_refused_at_rcpt() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(&w, OUTSIDE, b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<victim@y.test>\r\nRCPT TO:<user%other@y.test>\r\nRCPT TO:<@hop.test:v@y.test>\r\nRCPT TO:<\"v@z.test\"@y.test>\r\nDATA\r\nQUIT\r\n").await;
    assert_eq!(
        codes(&t),
        [220, 250, 250, 554, 554, 554, 554, 554, 221],
        "{t}"
    );
    assert!(t.contains("554 5.7.1 Relay access denied"), "{t}");
    assert_eq!(messages(&w).await, 0);
}

#[tokio::test]
async fn rerouting_addresses_are_refused_even_from_trusted_clients() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(&w, LOCAL, b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<user%other@y.test>\r\nRCPT TO:<@hop.test:v@y.test>\r\nRCPT TO:<\"v@z.test\"@y.test>\r\nRCPT TO:<v@[192.0.2.1]>\r\nQUIT\r\n").await;
    assert_eq!(codes(&t), [220, 250, 250, 553, 553, 553, 553, 221], "{t}");
    assert!(t.contains("553 5.1.3"), "{t}");
}

#[tokio::test]
async fn commands_out_of_sequence_get_503() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(&w, LOCAL, b"MAIL FROM:<a@x.test>\r\nEHLO x\r\nRCPT TO:<b@y.test>\r\nDATA\r\nMAIL FROM:<a@x.test>\r\nMAIL FROM:<a@x.test>\r\nDATA\r\nQUIT\r\n").await;
    assert_eq!(
        codes(&t),
        [220, 503, 250, 503, 503, 250, 503, 554, 221],
        "{t}"
    );
}

async fn smuggling_attempt_is_refused(w: &World, payload: &[u8]) {
    let mut input = b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: one\r\n\r\nfirst".to_vec();
    input.extend_from_slice(payload);
    input.extend_from_slice(b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\nQUIT\r\n");
    let before = messages(w).await;
    let t = dialog(w, LOCAL, &input).await;
    let c = codes(&t);
    assert_eq!(c[..4], [220, 250, 250, 250], "{payload:?}: {t}");
    assert!(
        c[4..].iter().all(|&code| code != 250),
        "{payload:?} yielded a queued message: {t}"
    );
    assert!(
        t.contains(" 5.5.2 ") || t.contains("500"),
        "{payload:?}: {t}"
    );
    assert_eq!(messages(w).await, before, "{payload:?} queued something");
}

#[tokio::test]
async fn every_smuggling_variant_is_refused_and_never_yields_a_second_message() {
    let w = world(SessionLimits::default()).await;
    for payload in [
        &b"\n.\n"[..],
        b"\r.\r",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r\n.\r",
        b"\r\n.\r\r\n",
    ] {
        smuggling_attempt_is_refused(&w, payload).await;
    }
    // A bare LF inside the header section.
    let t = dialog(&w, LOCAL, b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: a\nBcc: x\r\n\r\nbody\r\n.\r\n").await;
    assert!(t.contains("550 5.5.2"), "{t}");
    assert_eq!(messages(&w).await, 0);
}

#[tokio::test]
async fn bare_lf_in_a_command_is_refused_and_closes_the_session() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(&w, LOCAL, b"EHLO x\nMAIL FROM:<a@x.test>\r\n").await;
    assert_eq!(codes(&t), [220, 500], "{t}");
}

#[tokio::test]
async fn size_line_and_recipient_limits_get_the_right_replies() {
    let limits = SessionLimits {
        max_message_size: 2048,
        max_recipients: 2,
        ..SessionLimits::default()
    };
    let w = world(limits).await;
    let long_line = "x".repeat(1200);
    let big = "y".repeat(100);
    let mut big_body = String::new();
    for _ in 0..40 {
        big_body.push_str(&big);
        big_body.push_str("\r\n");
    }
    let input = format!(
        "EHLO x\r\nMAIL FROM:<a@x.test> SIZE=999999\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n{long_line}\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n{big_body}.\r\nQUIT\r\n"
    );
    let t = dialog(&w, LOCAL, input.as_bytes()).await;
    assert_eq!(
        codes(&t),
        [
            220, 250, 552, 250, 250, 250, 452, 354, 550, 250, 250, 354, 552, 221
        ],
        "{t}"
    );
    assert!(t.contains("552 5.3.4") && t.contains("452 4.5.3"), "{t}");
    assert_eq!(messages(&w).await, 0);
}

#[tokio::test]
async fn auth_is_refused_without_tls_and_not_advertised() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(
        &w,
        OUTSIDE,
        b"EHLO x\r\nAUTH PLAIN AGVocgBwYXNzd29yZA==\r\nSTARTTLS\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(codes(&t), [220, 250, 538, 502, 221], "{t}");
    assert!(t.contains("538 5.7.11"), "{t}");
}

#[tokio::test]
async fn helo_vrfy_noop_rset_help_answer_as_rfc_5321_says() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(
        &w,
        LOCAL,
        b"HELO old.client\r\nVRFY bob\r\nNOOP\r\nRSET\r\nHELP\r\nEXPN list\r\nFOO\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        [220, 250, 252, 250, 250, 214, 502, 500, 221],
        "{t}"
    );
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let limits = SessionLimits {
        max_errors: 3,
        ..SessionLimits::default()
    };
    let w = world(limits).await;
    let t = dialog(&w, LOCAL, b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n").await;
    assert_eq!(codes(&t), [220, 500, 500, 500, 421], "{t}");
}

#[tokio::test]
async fn an_idle_client_is_timed_out_with_421() {
    let limits = SessionLimits {
        command_timeout: Duration::from_millis(200),
        ..SessionLimits::default()
    };
    let w = world(limits).await;
    let (client, server) = tokio::io::duplex(1 << 16);
    let info = SessionInfo {
        peer: LOCAL.parse().expect("peer"),
        tls: None,
        starttls_allowed: true,
        client_cert: None,
    };
    let (_tx, rx) = watch::channel(false);
    let session = tokio::spawn(Session::new(w.ctx.clone(), info).run(Box::new(server), rx));
    let (mut r, _keep_open) = tokio::io::split(client);
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut out))
        .await
        .expect("closed")
        .expect("read");
    session.await.expect("session");
    assert_eq!(codes(&String::from_utf8_lossy(&out)), [220, 421]);
}

#[tokio::test]
async fn shutdown_tells_an_idle_session_421() {
    let w = world(SessionLimits::default()).await;
    let (client, server) = tokio::io::duplex(1 << 16);
    let info = SessionInfo {
        peer: LOCAL.parse().expect("peer"),
        tls: None,
        starttls_allowed: true,
        client_cert: None,
    };
    let (tx, rx) = watch::channel(false);
    let session = tokio::spawn(Session::new(w.ctx.clone(), info).run(Box::new(server), rx));
    let (mut r, _keep_open) = tokio::io::split(client);
    let mut greeting = [0u8; 64];
    let n = r.read(&mut greeting).await.expect("greeting");
    assert!(greeting[..n].starts_with(b"220 "));
    tx.send(true).expect("signal");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut out))
        .await
        .expect("closed")
        .expect("read");
    session.await.expect("session");
    assert!(
        String::from_utf8_lossy(&out).starts_with("421 4.3.2"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_database_failure_answers_451_and_writes_nothing() {
    let w = world(SessionLimits::default()).await;
    // Break the store underneath the queue: the accept transaction must fail as a whole.
    w.store
        .execute_raw("DROP TABLE recipients")
        .await
        .expect("drop");
    let t = dialog(&w, LOCAL, b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n").await;
    assert_eq!(codes(&t), [220, 250, 250, 250, 354, 451, 221], "{t}");
    assert!(t.contains("451 4.3.0"), "{t}");
    assert_eq!(messages(&w).await, 0);
    let (seq, _) = w.store.audit_head().await.expect("head");
    assert_eq!(seq, 0, "no audit row written");
}
