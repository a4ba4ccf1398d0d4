//! Sessions against abuse: slow clients bounded per command, over-long lines, AUTH failures
//! throttled across sessions and audited, cached successes ended by a password change.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sealgate_crypto::hash_password;
use sealgate_store::AuditFilter;
use sealgate_types::AuditRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::tests::{LOCAL, World, codes, dialog_with, messages, world, world_with};
use crate::{AuthSettings, Session, SessionInfo, SessionLimits, ThrottleLimits};

/// Runs a session fed by `feed` (which writes to the client side as it likes) and returns
/// what the server said until it closed, and how long that took.
async fn trickled<F, Fut>(w: &World, feed: F) -> (String, Duration)
where
    F: FnOnce(tokio::io::WriteHalf<tokio::io::DuplexStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(1 << 16);
    let info = SessionInfo {
        peer: LOCAL.parse().expect("peer"),
        tls: None,
        starttls_allowed: true,
        client_cert: None,
    };
    let (_tx, rx) = watch::channel(false);
    let started = Instant::now();
    let session = tokio::spawn(Session::new(w.ctx.clone(), info).run(Box::new(server), rx));
    let (mut r, wr) = tokio::io::split(client);
    let writer = tokio::spawn(feed(wr));
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut out))
        .await
        .expect("the session ended in time")
        .expect("read");
    let took = started.elapsed();
    writer.abort();
    session.await.expect("session");
    (String::from_utf8_lossy(&out).into_owned(), took)
}

/// Writes `bytes` one at a time, `every` apart, then keeps the connection open.
async fn drip(
    mut wr: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    bytes: Vec<u8>,
    every: Duration,
) {
    for b in bytes {
        if wr.write_all(&[b]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_client_trickling_a_command_is_cut_off_at_the_command_timeout() {
    let limits = SessionLimits {
        command_timeout: Duration::from_millis(600),
        ..SessionLimits::default()
    };
    let w = world(limits).await;
    // One byte every 100 ms never lets a single read wait 600 ms; the line never ends.
    let line = b"NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP".to_vec();
    let (t, took) = trickled(&w, move |wr| drip(wr, line, Duration::from_millis(100))).await;
    assert_eq!(codes(&t), [220, 421], "{t}");
    assert!(t.contains("421 4.4.2"), "{t}");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
}

#[tokio::test]
async fn a_client_trickling_its_message_is_cut_off_at_the_data_ceiling() {
    let limits = SessionLimits {
        data_timeout: Duration::from_millis(500),
        data_total_timeout: Duration::from_millis(1200),
        ..SessionLimits::default()
    };
    let w = world(limits).await;
    let (t, took) = trickled(&w, |mut wr| async move {
        let envelope = b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n";
        let _ = wr.write_all(envelope).await;
        drip(wr, vec![b'x'; 10_000], Duration::from_millis(100)).await;
    })
    .await;
    assert_eq!(codes(&t), [220, 250, 250, 250, 354, 421], "{t}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert_eq!(messages(&w).await, 0);
}

#[tokio::test]
async fn an_over_long_command_line_is_answered_and_the_session_goes_on() {
    let w = world(SessionLimits::default()).await;
    let mut input = b"EHLO x\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 40_000));
    input.extend_from_slice(b"\r\nNOOP\r\nMAIL FROM:<a@x.test>\r\nQUIT\r\n");
    let info = SessionInfo {
        peer: LOCAL.parse::<SocketAddr>().expect("peer"),
        tls: None,
        starttls_allowed: true,
        client_cert: None,
    };
    let t = dialog_with(&w, info, &input).await;
    assert_eq!(codes(&t), [220, 250, 500, 250, 250, 221], "{t}");
    assert!(t.contains("500 5.5.2 Line too long"), "{t}");
}

const USER: &str = "ehr";
const PASSWORD: &str = "correct horse battery";

fn tls_client() -> SessionInfo {
    SessionInfo {
        peer: "192.0.2.50:40000".parse().expect("peer"),
        tls: Some("TLSv1.3 test".into()),
        starttls_allowed: false,
        client_cert: None,
    }
}

fn auth_plain(user: &str, password: &str) -> String {
    let token = B64.encode(format!("\0{user}\0{password}"));
    format!("EHLO x\r\nAUTH PLAIN {token}\r\nQUIT\r\n")
}

async fn set_password(w: &World, password: &str) {
    let hash = hash_password(password).expect("hash");
    let audit = AuditRecord {
        kind: "user_saved".into(),
        message_id: None,
        recipient: None,
        data: serde_json::json!({"user": USER}),
    };
    w.store
        .user_upsert(USER, &hash, None, &audit)
        .await
        .expect("user");
}

async fn audit_kinds(w: &World) -> Vec<(String, String)> {
    let rows = w
        .store
        .audit_after(0, &AuditFilter::default(), 1000)
        .await
        .expect("audit");
    rows.into_iter()
        .filter(|r| r.kind.starts_with("auth_"))
        .map(|r| (r.kind, r.data))
        .collect()
}

fn guarded(per_user: u32, per_client: u32) -> AuthSettings {
    AuthSettings {
        throttle: ThrottleLimits {
            per_user,
            per_client,
            window: Duration::from_secs(600),
        },
        ..AuthSettings::default()
    }
}

#[tokio::test]
async fn failed_auth_is_throttled_across_sessions_even_for_the_right_password_and_audited() {
    let w = world_with(SessionLimits::default(), None, guarded(4, 100)).await;
    set_password(&w, PASSWORD).await;
    for n in 0..4 {
        let t = dialog_with(
            &w,
            tls_client(),
            auth_plain(USER, &format!("guess{n}")).as_bytes(),
        )
        .await;
        assert_eq!(codes(&t), [220, 250, 535, 221], "attempt {n}: {t}");
    }
    let t = dialog_with(&w, tls_client(), auth_plain(USER, PASSWORD).as_bytes()).await;
    assert_eq!(codes(&t), [220, 250, 454, 221], "{t}");
    assert!(t.contains("454 4.7.0"), "{t}");
    let other = SessionInfo {
        peer: "192.0.2.51:40000".parse().expect("peer"),
        ..tls_client()
    };
    let t = dialog_with(&w, other, auth_plain(USER, PASSWORD).as_bytes()).await;
    assert_eq!(
        codes(&t),
        [220, 250, 235, 221],
        "another address is not throttled: {t}"
    );

    let kinds = audit_kinds(&w).await;
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth_failed",
            "auth_failed",
            "auth_failed",
            "auth_failed",
            "auth_throttled",
            "auth_succeeded"
        ],
        "{kinds:?}"
    );
    let failed = &kinds[0].1;
    assert!(
        failed.contains(r#""user":"ehr""#) && failed.contains(r#""client_ip":"192.0.2.50""#),
        "{failed}"
    );
    assert!(
        failed.contains(r#""mechanism":"PLAIN""#) && failed.contains("invalid credentials"),
        "{failed}"
    );
    assert!(
        kinds
            .iter()
            .all(|(_, d)| !d.contains("guess") && !d.contains(PASSWORD)),
        "{kinds:?}"
    );
    assert!(
        kinds[5].1.contains(r#""client_ip":"192.0.2.51""#),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn many_users_from_one_address_hit_the_address_limit() {
    let w = world_with(SessionLimits::default(), None, guarded(100, 3)).await;
    set_password(&w, PASSWORD).await;
    for user in ["a", "b", "c"] {
        let t = dialog_with(&w, tls_client(), auth_plain(user, "x").as_bytes()).await;
        assert_eq!(codes(&t), [220, 250, 535, 221], "{user}: {t}");
    }
    let t = dialog_with(&w, tls_client(), auth_plain(USER, PASSWORD).as_bytes()).await;
    assert_eq!(codes(&t), [220, 250, 454, 221], "{t}");
    let kinds = audit_kinds(&w).await;
    let throttled = kinds
        .iter()
        .find(|(k, _)| k == "auth_throttled")
        .expect("throttled");
    assert!(
        !throttled.1.contains("\"user\""),
        "the address, not a user: {throttled:?}"
    );
}

#[tokio::test]
async fn a_remembered_success_ends_when_the_password_changes() {
    let w = world_with(SessionLimits::default(), None, guarded(100, 100)).await;
    set_password(&w, PASSWORD).await;
    let ok = auth_plain(USER, PASSWORD);
    for _ in 0..2 {
        let t = dialog_with(&w, tls_client(), ok.as_bytes()).await;
        assert_eq!(codes(&t), [220, 250, 235, 221], "{t}");
    }
    set_password(&w, "a new password").await;
    let t = dialog_with(&w, tls_client(), ok.as_bytes()).await;
    assert_eq!(
        codes(&t),
        [220, 250, 535, 221],
        "the old password no longer works: {t}"
    );
    let t = dialog_with(
        &w,
        tls_client(),
        auth_plain(USER, "a new password").as_bytes(),
    )
    .await;
    assert_eq!(codes(&t), [220, 250, 235, 221], "{t}");
}
