//! Sender binding dialogs: a user and a relay network, in MAIL FROM and in the header, with
//! the audit record a refusal leaves and nothing queued for it.

use std::sync::Arc;

use base64::Engine as _;
use sealgate_store::AuditFilter;
use sealgate_types::AllowedSenders;

use super::super::tests::{LOCAL, World, codes, dialog_with, world_with_tls};
use crate::{IngressContext, RelayClients, SessionInfo, SessionLimits};

const OUTSIDE: &str = "192.0.2.10:40000";
const PASSWORD: &str = "a long passphrase";

/// A world whose store has user `alice` permitted `senders`.
async fn world_with_user(senders: &[&str]) -> World {
    let w = world_with_tls(SessionLimits::default(), None).await;
    let hash = sealgate_crypto::hash_password(PASSWORD).expect("hash");
    let allowed = AllowedSenders::parse_list(senders).expect("rules");
    let note = |kind: &str| sealgate_types::AuditRecord {
        kind: kind.into(),
        message_id: None,
        recipient: None,
        data: serde_json::json!({ "user": "alice" }),
    };
    w.store
        .user_upsert(
            "alice",
            &hash,
            Some((&allowed, &note("user_senders_changed"))),
            &note("user_saved"),
        )
        .await
        .expect("user");
    w
}

/// A world where 127.0.0.0/8 is the `[[relay.client]]` "ehr", permitted `senders`.
async fn world_with_network(senders: &str) -> World {
    let mut w = world_with_tls(SessionLimits::default(), None).await;
    let cfg = sealgate_config::Config::from_toml(&format!(
        "[relay]\nnetworks = []\n[[relay.client]]\nname = \"ehr\"\n\
         networks = [\"127.0.0.0/8\"]\nsenders = {senders}\n"
    ))
    .expect("config");
    w.ctx = Arc::new(IngressContext {
        hostname: w.ctx.hostname.clone(),
        queue: w.ctx.queue.clone(),
        recorder: w.ctx.recorder.clone(),
        store: w.ctx.store.clone(),
        tls: None,
        relay: RelayClients::from_config(&cfg.relay).expect("relay clients"),
        tenants: crate::Tenants::default(),
        inbound: None,
        postmaster: w.ctx.postmaster.clone(),
        limits: w.ctx.limits.clone(),
        auth: Arc::new(crate::AuthGuard::new(crate::AuthSettings::default()).expect("auth guard")),
    });
    w
}

/// A session that is already TLS (so AUTH is offered), from `peer`.
fn over_tls(peer: &str) -> SessionInfo {
    SessionInfo {
        peer: peer.parse().expect("peer"),
        tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
        starttls_allowed: false,
        client_cert: None,
    }
}

fn plain(peer: &str) -> SessionInfo {
    SessionInfo {
        peer: peer.parse().expect("peer"),
        tls: None,
        starttls_allowed: false,
        client_cert: None,
    }
}

fn auth_alice() -> String {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{PASSWORD}"));
    format!("EHLO ehr.clinic.test\r\nAUTH PLAIN {creds}\r\n")
}

/// A whole transaction from `mail_from` with a header `From:` of `from`.
fn message(mail_from: &str, from: &str) -> String {
    format!(
        "MAIL FROM:<{mail_from}>\r\nRCPT TO:<jane@example.org>\r\nDATA\r\n\
         From: {from}\r\nTo: jane@example.org\r\nSubject: results\r\n\r\nhello\r\n.\r\n"
    )
}

/// The `sender_refused` records, as JSON data.
async fn refusals(w: &World) -> Vec<serde_json::Value> {
    w.store
        .audit_after(0, &AuditFilter::default(), 100)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.kind == "sender_refused")
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect()
}

async fn queued(w: &World) -> i64 {
    w.store.count_messages().await.expect("count")
}

#[tokio::test]
async fn a_user_may_use_its_own_address_and_gets_553_for_another_in_mail_from() {
    let w = world_with_user(&["alice@clinic.test"]).await;
    let input = format!(
        "{}MAIL FROM:<ceo@clinic.test>\r\nMAIL FROM:<\"ceo\"@Clinic.Test>\r\n{}QUIT\r\n",
        auth_alice(),
        message("Alice@clinic.test", "Alice <alice@clinic.test>"),
    );
    let t = dialog_with(&w, over_tls(OUTSIDE), input.as_bytes()).await;
    assert_eq!(
        codes(&t),
        [220, 250, 235, 553, 553, 250, 250, 354, 250, 221],
        "{t}"
    );
    assert!(
        t.contains("553 5.7.1 Sender address not allowed for this client"),
        "{t}"
    );
    assert_eq!(queued(&w).await, 1);
    let refused = refusals(&w).await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["auth_user"], "alice");
    assert_eq!(refused[0]["field"], "mail-from");
    assert_eq!(refused[0]["sender"], "ceo@clinic.test");
    assert_eq!(refused[0]["client_ip"], "192.0.2.10");
    assert!(refused[0].get("network").is_none(), "{refused:?}");
}

#[tokio::test]
async fn a_user_gets_553_for_another_author_in_the_header_and_nothing_is_queued() {
    let w = world_with_user(&["alice@clinic.test"]).await;
    let input = format!(
        "{}{}{}QUIT\r\n",
        auth_alice(),
        message("alice@clinic.test", "The CEO <ceo@clinic.test>"),
        message("alice@clinic.test", "alice@clinic.test"),
    );
    let t = dialog_with(&w, over_tls(OUTSIDE), input.as_bytes()).await;
    assert_eq!(
        codes(&t),
        [220, 250, 235, 250, 250, 354, 553, 250, 250, 354, 250, 221],
        "the refused message ends its transaction; the next one goes through: {t}"
    );
    assert_eq!(queued(&w).await, 1, "only the second message");
    let refused = refusals(&w).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["field"], "header-from");
    assert_eq!(refused[0]["sender"], "ceo@clinic.test");
}

#[tokio::test]
async fn a_user_on_a_relay_network_is_bound_by_its_own_senders() {
    let w = world_with_user(&["@clinic.test"]).await;
    let input = format!("{}MAIL FROM:<ceo@other.test>\r\nQUIT\r\n", auth_alice());
    let t = dialog_with(&w, over_tls(LOCAL), input.as_bytes()).await;
    assert_eq!(codes(&t), [220, 250, 235, 553, 221], "{t}");
}

#[tokio::test]
async fn a_user_without_senders_cannot_send_even_with_the_null_reverse_path() {
    let w = world_with_user(&[]).await;
    let input = format!("{}MAIL FROM:<>\r\nQUIT\r\n", auth_alice());
    let t = dialog_with(&w, over_tls(OUTSIDE), input.as_bytes()).await;
    assert_eq!(codes(&t), [220, 250, 235, 553, 221], "{t}");
    assert_eq!(refusals(&w).await[0]["sender"], "");
}

#[tokio::test]
async fn a_relay_client_network_may_send_only_as_its_senders() {
    let w = world_with_network("[\"@clinic.test\"]").await;
    let input = format!(
        "EHLO ehr\r\nMAIL FROM:<billing@other.test>\r\n{}{}QUIT\r\n",
        message("billing@clinic.test", "billing@other.test"),
        message("billing@clinic.test", "Billing <billing@clinic.test>"),
    );
    let t = dialog_with(&w, plain(LOCAL), input.as_bytes()).await;
    assert_eq!(
        codes(&t),
        [220, 250, 553, 250, 250, 354, 553, 250, 250, 354, 250, 221],
        "{t}"
    );
    assert_eq!(queued(&w).await, 1);
    let refused = refusals(&w).await;
    let seen: Vec<(&str, &str, &str)> = refused
        .iter()
        .map(|r| {
            (
                r["network"].as_str().unwrap_or_default(),
                r["field"].as_str().unwrap_or_default(),
                r["sender"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ehr", "mail-from", "billing@other.test"),
            ("ehr", "header-from", "billing@other.test"),
        ]
    );
}

#[tokio::test]
async fn the_null_reverse_path_passes_but_its_header_is_checked() {
    let w = world_with_network("[\"@clinic.test\"]").await;
    let input = format!(
        "EHLO ehr\r\n{}QUIT\r\n",
        message("", "mailer-daemon@other.test")
    );
    let t = dialog_with(&w, plain(LOCAL), input.as_bytes()).await;
    assert_eq!(codes(&t), [220, 250, 250, 250, 354, 553, 221], "{t}");
    assert_eq!(queued(&w).await, 0);
}

#[tokio::test]
async fn a_sender_header_outside_the_binding_is_refused_too() {
    let w = world_with_network("[\"@clinic.test\"]").await;
    let input = format!(
        "EHLO ehr\r\n{}QUIT\r\n",
        message("a@clinic.test", "a@clinic.test\r\nSender: relay@other.test")
    );
    let t = dialog_with(&w, plain(LOCAL), input.as_bytes()).await;
    assert_eq!(codes(&t), [220, 250, 250, 250, 354, 553, 221], "{t}");
    assert_eq!(refusals(&w).await[0]["field"], "header-sender");
}
