//! Sending marks: set under a live lease before message data goes out, cleared by settling,
//! kept by a graceful release, and handed to the next claimer until it records them.

use sealgate_store::{RecipientRow, SettleItem, Settlement, Store};
use sealgate_testkit::db::TestBackend;
use sealgate_types::{AuditRecord, RecipientState, time::now_micros};
use serde_json::json;

use super::{all_audit, message, note, open, rcpts, received};

const MINUTE: i64 = 60_000_000;

/// One message with `n` recipients, queued and due.
async fn queued(store: &Store, n: usize) {
    let list: Vec<String> = (0..n).map(|i| format!("r{i}@example.net")).collect();
    let list: Vec<&str> = list.iter().map(String::as_str).collect();
    store
        .enqueue(&message("m1"), &rcpts(&list), &received("m1"))
        .await
        .expect("enqueue");
}

async fn row(store: &Store, id: i64) -> RecipientRow {
    store
        .recipients_of("m1")
        .await
        .expect("read")
        .into_iter()
        .find(|r| r.id == id)
        .expect("recipient")
}

/// Marks one set of recipients for `owner` at `at`, with no audit record: whether it was.
async fn mark(store: &Store, owner: &str, ids: &[i64], at: i64) -> bool {
    let marked = store
        .commit_batch(owner, &[], &[ids.to_vec()], at)
        .await
        .expect("commit");
    marked == [true]
}

/// The id of the one recipient `owner` claims at `now` until `until`.
async fn claim_one(store: &Store, owner: &str, now: i64, until: i64) -> i64 {
    let claimed = store.claim_due(owner, now, until, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    claimed[0].id
}

fn duplicate(id: &str, rcpt: &str) -> AuditRecord {
    AuditRecord {
        kind: "possible_duplicate".into(),
        message_id: Some(id.to_owned()),
        recipient: Some(rcpt.to_owned()),
        data: json!({"previous_owner": "a"}),
    }
}

fn delivered(id: i64) -> SettleItem {
    SettleItem {
        recipient_id: id,
        settlement: Settlement {
            state: RecipientState::Delivered,
            next_attempt_at: 0,
            last_reply: Some("250 ok".into()),
            counts_as_attempt: true,
            warned_at: None,
            held: None,
        },
        audit: Vec::new(),
    }
}

async fn a_sending_mark_needs_a_live_lease_and_settling_clears_it(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    queued(&store, 2).await;
    let now = now_micros();
    let claimed = store
        .claim_due("a", now, now + MINUTE, 10)
        .await
        .expect("claim");
    let (x, y) = (claimed[0].id, claimed[1].id);
    assert!(claimed.iter().all(|r| r.sending_owner.is_none()));

    // Another node, or this one after its lease ran out, may not mark them.
    assert!(!mark(&store, "b", &[x], now).await);
    assert!(!mark(&store, "a", &[x], now + MINUTE + 1).await);
    assert_eq!(row(&store, x).await.sending_owner, None);

    // Events and marks commit together; each set is answered on its own.
    let before = all_audit(&store).await.len();
    let marked = store
        .commit_batch(
            "a",
            &[note(1)],
            &[vec![x, y, x], vec![], vec![y, 9999]],
            now + 5,
        )
        .await
        .expect("commit");
    assert_eq!(marked, [true, true, false]);
    assert_eq!(all_audit(&store).await.len(), before + 1);
    let r = row(&store, x).await;
    assert_eq!(r.sending_owner.as_deref(), Some("a"));
    assert_eq!(r.sending_since, Some(now + 5));

    assert!(
        store
            .settle_group("a", &[delivered(x)], &[])
            .await
            .expect("settle")
    );
    let r = row(&store, x).await;
    assert_eq!(
        (r.state, r.sending_owner, r.sending_since),
        (RecipientState::Delivered, None, None)
    );
    assert_eq!(row(&store, y).await.sending_owner.as_deref(), Some("a"));
}

async fn the_next_claimer_gets_a_dead_nodes_mark_and_records_it_once(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    queued(&store, 1).await;
    let now = now_micros();
    let id = claim_one(&store, "a", now, now + 10).await;
    assert!(mark(&store, "a", &[id], now + 1).await);

    // "a" dies; its lease runs out and "b" claims the recipient with a's mark on it.
    let later = now + 20;
    let taken = store
        .claim_due("b", later, later + MINUTE, 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].sending_owner.as_deref(), Some("a"));
    assert_eq!(taken[0].sending_since, Some(now + 1));
    // Until the mark is on record, the recipient cannot be marked (so cannot be sent) again.
    assert!(!mark(&store, "b", &[id], later).await);

    let audit_before = all_audit(&store).await.len();
    let item = [(id, "a".to_owned(), duplicate("m1", "r0@example.net"))];
    // Only the lease holder records it, and only while the mark is still a's.
    assert!(
        !store
            .note_possible_duplicates("c", &item)
            .await
            .expect("note")
    );
    let wrong = [(id, "z".to_owned(), duplicate("m1", "r0@example.net"))];
    assert!(
        !store
            .note_possible_duplicates("b", &wrong)
            .await
            .expect("note")
    );
    assert_eq!(
        all_audit(&store).await.len(),
        audit_before,
        "nothing written"
    );
    assert!(
        store
            .note_possible_duplicates("b", &item)
            .await
            .expect("note")
    );
    assert!(
        !store
            .note_possible_duplicates("b", &item)
            .await
            .expect("again")
    );
    let audit = all_audit(&store).await;
    assert_eq!(audit.len(), audit_before + 1, "recorded once");
    assert_eq!(
        audit.last().map(|e| e.kind.as_str()),
        Some("possible_duplicate")
    );
    assert_eq!(row(&store, id).await.sending_owner, None);

    assert!(mark(&store, "b", &[id], later + 1).await);
    assert_eq!(row(&store, id).await.sending_owner.as_deref(), Some("b"));
}

async fn a_graceful_release_keeps_the_mark_for_the_next_claimer(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    queued(&store, 1).await;
    let now = now_micros();
    let id = claim_one(&store, "a", now, now + MINUTE).await;
    assert!(mark(&store, "a", &[id], now).await);
    assert_eq!(
        store.release_leases("a", now + 1).await.expect("release"),
        1
    );
    let r = row(&store, id).await;
    assert_eq!(r.state, RecipientState::Queued);
    assert_eq!(r.sending_owner.as_deref(), Some("a"));
    let taken = store
        .claim_due("b", now + 2, now + MINUTE, 10)
        .await
        .expect("claim");
    assert_eq!(taken[0].sending_owner.as_deref(), Some("a"));
}

sealgate_testkit::on_each_backend!(multi_thread:
    a_sending_mark_needs_a_live_lease_and_settling_clears_it,
    the_next_claimer_gets_a_dead_nodes_mark_and_records_it_once,
    a_graceful_release_keeps_the_mark_for_the_next_claimer,
);
