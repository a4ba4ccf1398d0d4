//! A settlement that carries what led to it and a portal deposit (`settle_group_with`): the
//! alert, the failed try, the deposit and the recipient's settlement are one transaction, in
//! that order on the hash chain; a lost lease writes none of it.

use sealgate_store::{
    GrantRow, NewMessage, PortalDeposit, PortalMessageRow, SettleItem, Settlement, Store,
};
use sealgate_testkit::db::TestBackend;
use sealgate_types::{AuditRecord, RecipientState, time::now_micros};
use serde_json::json;

use super::{all_audit, message, open, rcpts, received};

const MINUTE: i64 = 60_000_000;

fn record(kind: &str, msg: &str) -> AuditRecord {
    AuditRecord {
        kind: kind.into(),
        message_id: Some(msg.to_owned()),
        recipient: Some("jane@example.test".into()),
        data: json!({ "kind": kind }),
    }
}

/// The deposit of queue message `msg` for jane, as portal message `p`, notice `n`.
fn deposit(msg: &str, p: &str, n: &str) -> PortalDeposit {
    let notice = NewMessage {
        origin: Some("portal-notice".into()),
        ..message(n)
    };
    PortalDeposit {
        msg: PortalMessageRow {
            id: p.into(),
            thread_id: p.into(),
            message_id: Some(msg.into()),
            author: "ehr@clinic.test".into(),
            sender: "ehr@clinic.test".into(),
            key_sealed: vec![1],
            content_sealed: vec![2],
            size: 1,
            created_at: now_micros(),
            purged_at: None,
        },
        grants: vec![GrantRow {
            id: format!("grant-{p}"),
            token_hash: format!("hash-{p}"),
            portal_message_id: p.into(),
            thread_id: p.into(),
            recipient: "jane@example.test".into(),
            sender: "ehr@clinic.test".into(),
            expires_at: now_micros() + 30 * 24 * 60 * MINUTE,
            revoked_at: None,
            passphrase_hash: None,
            code_hash: None,
            code_expires_at: None,
            failed_attempts: 0,
            locked_until: None,
            first_viewed_at: None,
            created_at: now_micros(),
        }],
        notices: vec![(notice, rcpts(&["jane@example.test"]), received(n))],
        audit: vec![record("portal_notice", msg)],
    }
}

fn delivered(id: i64, msg: &str) -> SettleItem {
    SettleItem {
        recipient_id: id,
        settlement: Settlement {
            state: RecipientState::Delivered,
            next_attempt_at: 0,
            last_reply: Some("stored in the secure portal".into()),
            counts_as_attempt: true,
            warned_at: None,
            held: None,
        },
        audit: vec![record("attempt", msg), record("delivered", msg)],
    }
}

async fn queued_and_claimed(store: &Store, msg: &str, owner: &str, until: i64) -> i64 {
    store
        .enqueue(
            &message(msg),
            &rcpts(&["jane@example.test"]),
            &received(msg),
        )
        .await
        .expect("enqueue");
    let now = now_micros();
    let claimed = store.claim_due(owner, now, until, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    claimed[0].id
}

async fn a_failure_that_falls_to_the_portal_is_settled_in_one_transaction(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let id = queued_and_claimed(&store, "m1", "a", now_micros() + MINUTE).await;
    let before = [record("alert", "m1"), record("attempt", "m1")];
    let d = deposit("m1", "p1", "n1");
    let settled = store
        .settle_group_with("a", &before, Some(&d), &[delivered(id, "m1")], &[])
        .await
        .expect("settle");
    assert!(settled);
    let kinds: Vec<String> = all_audit(&store)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "received",
            "alert",
            "attempt",
            "received",
            "portal_notice",
            "attempt",
            "delivered"
        ]
    );
    assert!(store.portal_message("p1").await.expect("read").is_some());
    assert_eq!(
        store.portal_granted("m1").await.expect("read"),
        ["jane@example.test"]
    );
    assert_eq!(store.recipients_of("n1").await.expect("read").len(), 1);
    let row = &store.recipients_of("m1").await.expect("read")[0];
    assert_eq!(row.state, RecipientState::Delivered);
}

async fn a_lost_lease_writes_neither_the_deposit_nor_what_led_to_it(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    // Claimed by a with a lease already over, then taken over by b.
    let id = queued_and_claimed(&store, "m2", "a", now_micros() - 1).await;
    let taken = store
        .claim_due("b", now_micros(), now_micros() + MINUTE, 10)
        .await
        .expect("reclaim");
    assert_eq!(taken.len(), 1);
    let audit_before = all_audit(&store).await.len();
    let before = [record("alert", "m2"), record("attempt", "m2")];
    let d = deposit("m2", "p2", "n2");
    let settled = store
        .settle_group_with("a", &before, Some(&d), &[delivered(id, "m2")], &[])
        .await
        .expect("settle");
    assert!(!settled, "a's lease was lost");
    assert_eq!(all_audit(&store).await.len(), audit_before);
    assert!(store.portal_message("p2").await.expect("read").is_none());
    assert!(store.portal_granted("m2").await.expect("read").is_empty());
    assert!(store.message("n2").await.expect("read").is_none());
}

sealgate_testkit::on_each_backend!(
    a_failure_that_falls_to_the_portal_is_settled_in_one_transaction,
    a_lost_lease_writes_neither_the_deposit_nor_what_led_to_it,
);
