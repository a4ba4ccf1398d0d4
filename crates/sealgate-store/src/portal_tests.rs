//! The portal's rows on both backends: deposits with their notices and audit in one
//! transaction (and idempotent on retry); the changes after a deposit are in `access`.

use sealgate_testkit::db::TestBackend;
use sealgate_types::{AuditRecord, RecipientState};
use serde_json::json;

use super::*;
use crate::test_support::{audit_kinds, open};

const T0: i64 = 1_795_521_600_000_000;
const DAY: i64 = 86_400_000_000;

fn event(kind: &str, about: &str) -> AuditRecord {
    AuditRecord {
        kind: kind.into(),
        message_id: None,
        recipient: None,
        data: json!({ "about": about }),
    }
}

fn portal_message(id: &str, thread: &str, queue_id: Option<&str>) -> PortalMessageRow {
    PortalMessageRow {
        id: id.into(),
        thread_id: thread.into(),
        message_id: queue_id.map(str::to_owned),
        author: "ehr@clinic.test".into(),
        sender: "ehr@clinic.test".into(),
        key_sealed: vec![1, 0, 255],
        content_sealed: vec![9, 8, 7, 0],
        size: 4,
        created_at: T0,
        purged_at: None,
    }
}

fn grant(id: &str, msg: &str, rcpt: &str, expires_at: i64) -> GrantRow {
    GrantRow {
        id: id.into(),
        token_hash: format!("hash-of-{id}"),
        portal_message_id: msg.into(),
        thread_id: msg.into(),
        recipient: rcpt.into(),
        sender: "ehr@clinic.test".into(),
        expires_at,
        revoked_at: None,
        passphrase_hash: None,
        code_hash: None,
        code_expires_at: None,
        failed_attempts: 0,
        locked_until: None,
        first_viewed_at: None,
        created_at: T0,
    }
}

fn outgoing(id: &str, to: &str, origin: &str) -> PortalOutgoing {
    let message = NewMessage {
        id: id.into(),
        received_at: T0,
        sender: "portal@relay.test".into(),
        size: 3,
        body_sha256: "ab".repeat(32),
        header_message_id: None,
        client_ip: "127.0.0.1".into(),
        helo: "relay.test".into(),
        auth_user: None,
        tls: None,
        requiretls: false,
        key_id: "k1".into(),
        sealed_body: vec![1, 2, 3],
        origin: Some(origin.into()),
    };
    let received = AuditRecord {
        kind: "received".into(),
        message_id: Some(id.into()),
        recipient: None,
        data: json!({ "sender": "portal@relay.test" }),
    };
    (message, vec![to.to_owned()], received)
}

/// Deposits `p1` (queue message q1) with grants g1 (jane) and g2 (joe), expiring in a day.
async fn deposit_two(store: &Store) -> Vec<String> {
    let grants = [
        grant("g1", "p1", "jane@example.test", T0 + DAY),
        grant("g2", "p1", "joe@example.test", T0 + DAY),
    ];
    let notices = [
        outgoing("n1", "jane@example.test", "portal-notice"),
        outgoing("n2", "joe@example.test", "portal-notice"),
    ];
    let audit = [event("portal_notice", "g1"), event("portal_notice", "g2")];
    store
        .portal_deposit(
            &portal_message("p1", "p1", Some("q1")),
            &grants,
            &notices,
            &audit,
        )
        .await
        .unwrap()
}

async fn a_deposit_writes_message_grants_notices_and_audit_together(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    assert_eq!(deposit_two(&store).await, ["g1", "g2"]);
    assert_eq!(
        store.portal_message("p1").await.unwrap(),
        Some(portal_message("p1", "p1", Some("q1")))
    );
    let g1 = store
        .portal_grant_by_token_hash("hash-of-g1")
        .await
        .unwrap();
    assert_eq!(g1, Some(grant("g1", "p1", "jane@example.test", T0 + DAY)));
    let n1 = store.message("n1").await.unwrap().unwrap();
    assert_eq!(n1.origin.as_deref(), Some("portal-notice"));
    let rcpts = store.recipients_of("n2").await.unwrap();
    assert_eq!(rcpts.len(), 1);
    assert_eq!(rcpts[0].rcpt, "joe@example.test");
    assert_eq!(rcpts[0].state, RecipientState::Queued);
    assert_eq!(
        audit_kinds(&store).await,
        ["received", "portal_notice", "received", "portal_notice"]
    );
    assert_eq!(store.portal_thread("p1").await.unwrap().len(), 1);
}

async fn a_retried_deposit_creates_nothing_twice(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_two(&store).await;
    // The same queue message deposited again under a fresh portal id (a retry after a
    // crash): the existing first message is reused, existing grants are skipped.
    let grants = [
        grant("g3", "p2", "jane@example.test", T0 + DAY),
        grant("g4", "p2", "amy@example.test", T0 + DAY),
    ];
    let notices = [
        outgoing("n3", "jane@example.test", "portal-notice"),
        outgoing("n4", "amy@example.test", "portal-notice"),
    ];
    let audit = [event("portal_notice", "g3"), event("portal_notice", "g4")];
    let created = store
        .portal_deposit(
            &portal_message("p2", "p2", Some("q1")),
            &grants,
            &notices,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(created, ["g4"]);
    assert_eq!(store.portal_message("p2").await.unwrap(), None);
    let g4 = store.portal_grant("g4").await.unwrap().unwrap();
    assert_eq!(
        (g4.portal_message_id.as_str(), g4.thread_id.as_str()),
        ("p1", "p1")
    );
    assert!(
        store.message("n3").await.unwrap().is_none(),
        "skipped notice queued"
    );
    assert!(store.message("n4").await.unwrap().is_some());
    assert_eq!(audit_kinds(&store).await.len(), 6);
    let all: Vec<String> = store
        .portal_grants()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
}

async fn a_failed_deposit_writes_nothing(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    // The second grant reuses the first one's token hash: UNIQUE fails mid-transaction.
    let mut second = grant("g2", "p1", "joe@example.test", T0 + DAY);
    second.token_hash = "hash-of-g1".into();
    let grants = [grant("g1", "p1", "jane@example.test", T0 + DAY), second];
    let notices = [
        outgoing("n1", "jane@example.test", "portal-notice"),
        outgoing("n2", "joe@example.test", "portal-notice"),
    ];
    let audit = [event("portal_notice", "g1"), event("portal_notice", "g2")];
    let err = store
        .portal_deposit(
            &portal_message("p1", "p1", Some("q1")),
            &grants,
            &notices,
            &audit,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Portal { op: "deposit", .. }),
        "{err:?}"
    );
    assert!(store.portal_message("p1").await.unwrap().is_none());
    assert!(store.portal_grants().await.unwrap().is_empty());
    assert_eq!(store.count_messages().await.unwrap(), 0);
    assert!(audit_kinds(&store).await.is_empty());
    let uneven = store
        .portal_deposit(&portal_message("p1", "p1", None), &grants[..1], &[], &audit)
        .await;
    assert!(
        matches!(uneven, Err(StoreError::Invalid { .. })),
        "{uneven:?}"
    );
}

sealgate_testkit::on_each_backend!(
    a_deposit_writes_message_grants_notices_and_audit_together,
    a_retried_deposit_creates_nothing_twice,
    a_failed_deposit_writes_nothing,
);

#[path = "portal_access_tests.rs"]
mod access;
