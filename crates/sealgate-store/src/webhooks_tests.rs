//! The webhook outbox on both backends: events are written exactly with the audit rows they
//! describe (a rolled-back settlement leaves none), per endpoint and type; a message's events
//! are claimed in order; retries, dead events, `410 Gone`, replay and pruning.

use sealgate_testkit::db::TestBackend;
use sealgate_types::time::now_micros;
use sealgate_types::{AuditRecord, RecipientState};
use serde_json::json;

use super::*;
use crate::lease::{SettleItem, Settlement};
use crate::model::NewMessage;
use crate::test_support::open;

fn record(
    kind: &str,
    message: Option<&str>,
    rcpt: Option<&str>,
    data: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        kind: kind.into(),
        message_id: message.map(str::to_owned),
        recipient: rcpt.map(str::to_owned),
        data,
    }
}

fn op(kind: &str) -> AuditRecord {
    record(kind, None, None, json!({ "operator": "test" }))
}

async fn add(store: &Store, id: &str, events: &[&str]) {
    let ep = NewWebhookEndpoint {
        id: id.into(),
        url: format!("http://127.0.0.1:9/{id}"),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret_sealed: "c2VhbGVk".into(),
    };
    store.webhook_add(&ep, &op("webhook_added")).await.unwrap();
}

async fn enqueue(store: &Store, id: &str, rcpts: &[&str]) {
    let msg = NewMessage {
        id: id.into(),
        received_at: now_micros(),
        sender: "ehr@clinic.test".into(),
        size: 3,
        body_sha256: "ab".repeat(32),
        header_message_id: None,
        client_ip: "127.0.0.1".into(),
        helo: "ehr.clinic.test".into(),
        auth_user: None,
        tls: None,
        requiretls: false,
        key_id: "k1".into(),
        sealed_body: vec![1, 2, 3],
        origin: None,
    };
    let rcpts: Vec<String> = rcpts.iter().map(|r| (*r).to_owned()).collect();
    let received = record(
        "received",
        Some(id),
        None,
        json!({ "sender": "ehr@clinic.test", "recipients": rcpts, "client_ip": "127.0.0.1" }),
    );
    store.enqueue(&msg, &rcpts, &received).await.unwrap();
}

/// Claims every due recipient for `owner` and settles each as delivered (an attempt, then the
/// delivery), unless `lose` is set: then the lease is lost first and nothing may be written.
async fn deliver_all(store: &Store, owner: &str, lose: bool) -> bool {
    let now = now_micros();
    let claimed = store
        .claim_due(owner, now, now + 60_000_000, 100)
        .await
        .unwrap();
    let items: Vec<SettleItem> = claimed
        .iter()
        .map(|r| SettleItem {
            recipient_id: r.id,
            settlement: Settlement {
                state: RecipientState::Delivered,
                next_attempt_at: now,
                last_reply: Some("250 ok".into()),
                counts_as_attempt: true,
                warned_at: None,
                held: None,
            },
            audit: vec![
                record(
                    "attempt",
                    Some(&r.message_id),
                    Some(&r.rcpt),
                    json!({ "mx": "mx.test", "tls_version": "TLSv1.3", "verification": "dane",
                        "method": "tls-verified", "reply_code": 250, "outcome": "delivered" }),
                ),
                record(
                    "delivered",
                    Some(&r.message_id),
                    Some(&r.rcpt),
                    json!({ "mx": "mx.test", "reply": "250 2.0.0 ok" }),
                ),
            ],
        })
        .collect();
    let settler = if lose { "someone-else" } else { owner };
    store.settle_group(settler, &items, &[]).await.unwrap()
}

fn types(rows: &[OutboxRow]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (r.endpoint_id.clone(), r.event_type.clone()))
        .collect()
}

async fn events_exist_exactly_with_their_committed_audit_rows(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    // Nothing is written while no endpoint exists.
    enqueue(&store, "m0", &["a@x.test"]).await;
    assert!(
        store
            .webhook_events(None, None, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );

    add(&store, "wh_all", &["*"]).await;
    add(
        &store,
        "wh_final",
        &["recipient.delivered", "recipient.bounced"],
    )
    .await;
    enqueue(&store, "m1", &["a@x.test", "b@x.test"]).await;
    // A settlement whose lease was lost rolls back: its events with it.
    assert!(!deliver_all(&store, "node-a", true).await);
    let rows = store.webhook_events(None, None, 0, 100).await.unwrap();
    assert_eq!(
        types(&rows),
        [("wh_all".to_owned(), "message.received".to_owned())]
    );

    // m0 and m1's recipients are claimed (the lost lease above left them inflight: take them
    // over once it runs out) and delivered.
    sqlx::query("UPDATE recipients SET state = 'queued', lease_owner = NULL")
        .execute(&store.pool)
        .await
        .unwrap();
    assert!(deliver_all(&store, "node-a", false).await);
    let rows = store.webhook_events(None, None, 0, 100).await.unwrap();
    let delivered: Vec<&OutboxRow> = rows
        .iter()
        .filter(|r| r.event_type == "recipient.delivered")
        .collect();
    assert_eq!(
        delivered.len(),
        6,
        "3 recipients × 2 endpoints: {:?}",
        types(&rows)
    );
    // Both endpoints get the same event under the same webhook-id; the body carries the
    // attempt's transport evidence and the audit row's seq and hash, nothing of the message.
    let first = delivered[0];
    let twin = delivered
        .iter()
        .find(|r| r.seq == first.seq && r.endpoint_id != first.endpoint_id)
        .unwrap();
    assert_eq!(first.event_id, twin.event_id);
    assert_eq!(first.payload, twin.payload);
    let body: serde_json::Value = serde_json::from_str(&first.payload).unwrap();
    assert_eq!(body["data"]["verification"], "dane");
    assert_eq!(body["data"]["audit_seq"], first.seq);
    let audit = store
        .audit_after(first.seq - 1, &crate::AuditFilter::default(), 1)
        .await
        .unwrap();
    assert_eq!(body["data"]["audit_hash"], audit[0].hash);
    assert_eq!(audit[0].kind, "delivered");
}

async fn a_messages_events_are_claimed_in_order_and_settled_by_their_owner(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    add(&store, "wh_a", &["*"]).await;
    enqueue(&store, "m1", &["a@x.test"]).await;
    enqueue(&store, "m2", &["b@x.test"]).await;
    assert!(deliver_all(&store, "node", false).await);
    let now = now_micros();
    let lease = now + 60_000_000;
    // One event per message at a time: both messages' `received`.
    let first = store.claim_webhooks("n1", now, lease, 100).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|r| r.event_type.as_str())
            .collect::<Vec<_>>(),
        ["message.received", "message.received"]
    );
    // Nothing else is claimable while they are leased, by anyone.
    assert!(
        store
            .claim_webhooks("n2", now, lease, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Another owner cannot settle them.
    let delivered = |rows: &[OutboxRow]| -> Vec<(OutboxRow, WebhookOutcome)> {
        rows.iter()
            .map(|r| {
                (
                    r.clone(),
                    WebhookOutcome::Delivered {
                        status: "204".into(),
                    },
                )
            })
            .collect()
    };
    let gone_audit = |_: &str, _: &str| op("webhook_disabled");
    assert_eq!(
        store
            .settle_webhooks("n2", &delivered(&first), gone_audit)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .settle_webhooks("n1", &delivered(&first), gone_audit)
            .await
            .unwrap(),
        2
    );
    let next = store.claim_webhooks("n2", now, lease, 100).await.unwrap();
    assert_eq!(next.len(), 2);
    assert!(next.iter().all(|r| r.event_type == "recipient.delivered"));

    // A failure retries later; the endpoint's failure streak starts.
    let retry: Vec<_> = next
        .iter()
        .map(|r| {
            (
                r.clone(),
                WebhookOutcome::Retry {
                    status: "500".into(),
                    next_attempt_at: now + 5_000_000,
                },
            )
        })
        .collect();
    assert_eq!(
        store
            .settle_webhooks("n2", &retry, gone_audit)
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .claim_webhooks("n1", now, lease, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store
        .claim_webhooks("n1", now + 5_000_000, lease + 5_000_000, 100)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert!(
        later
            .iter()
            .all(|r| r.attempts == 1 && r.last_status.as_deref() == Some("500"))
    );
    let ep = store.webhook_endpoint("wh_a").await.unwrap().unwrap();
    assert!(ep.failing_since.is_some());
    assert_eq!(
        store
            .webhook_failing_since(now_micros())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .webhook_mark_alerted("wh_a", &op("alert"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .webhook_mark_alerted("wh_a", &op("alert"))
            .await
            .unwrap()
    );

    // Give up on one, deliver the other: the streak ends.
    let (dead, ok) = (later[0].clone(), later[1].clone());
    let results = vec![
        (
            dead.clone(),
            WebhookOutcome::Dead {
                status: "500".into(),
            },
        ),
        (
            ok.clone(),
            WebhookOutcome::Delivered {
                status: "204".into(),
            },
        ),
    ];
    assert_eq!(
        store
            .settle_webhooks("n1", &results, gone_audit)
            .await
            .unwrap(),
        2
    );
    let ep = store.webhook_endpoint("wh_a").await.unwrap().unwrap();
    assert_eq!((ep.failing_since, ep.alerted_at), (None, None));
    let dead_rows = store
        .webhook_events(Some("dead"), None, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        dead_rows.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&dead.id]
    );

    // Replay: the dead event is due again, attempts from zero, same webhook-id; audited with
    // the count.
    let sel = WebhookReplay {
        since: 0,
        until: now_micros() + 1,
        endpoint_id: None,
        include_delivered: false,
    };
    let n = store
        .webhook_replay(&sel, |n| {
            record("webhook_replayed", None, None, json!({ "events": n }))
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    let again = store
        .claim_webhooks("n1", now_micros(), lease * 2, 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].event_id.as_str(), again[0].attempts),
        (dead.event_id.as_str(), 0)
    );
    let replayed = store
        .audit_after(0, &crate::AuditFilter::default(), 1000)
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind == "webhook_replayed")
        .unwrap();
    assert!(replayed.data.contains("\"events\":1"), "{}", replayed.data);

    // Pruning removes settled rows past their keep, not pending ones.
    assert_eq!(store.webhook_prune(now_micros() + 1, 0).await.unwrap(), 3);
    assert_eq!(
        store
            .webhook_events(None, None, 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn gone_disables_the_endpoint_and_its_events_wait(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    add(&store, "wh_a", &["message.received"]).await;
    enqueue(&store, "m1", &["a@x.test"]).await;
    let now = now_micros();
    let rows = store
        .claim_webhooks("n", now, now + 60_000_000, 10)
        .await
        .unwrap();
    let gone = vec![(
        rows[0].clone(),
        WebhookOutcome::Gone {
            status: "410 Gone".into(),
        },
    )];
    let audit = |id: &str, status: &str| {
        record(
            "webhook_disabled",
            None,
            None,
            json!({ "endpoint_id": id, "reason": status }),
        )
    };
    assert_eq!(store.settle_webhooks("n", &gone, audit).await.unwrap(), 1);
    let ep = store.webhook_endpoint("wh_a").await.unwrap().unwrap();
    assert!(ep.disabled_at.is_some());
    assert_eq!(
        ep.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    // Its event is pending but not claimable; new events are not written for it.
    enqueue(&store, "m2", &["a@x.test"]).await;
    let all = store.webhook_events(None, None, 0, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].state.as_str(), all[0].attempts), ("pending", 0));
    assert!(
        store
            .claim_webhooks("n", now_micros(), now + 60_000_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Enabled again, it is due now.
    assert!(
        store
            .webhook_set_disabled("wh_a", None, &op("webhook_enabled"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .webhook_set_disabled("wh_a", None, &op("webhook_enabled"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim_webhooks("n", now_micros(), now + 60_000_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Rotation keeps the old secret; removal takes the outbox rows with it.
    assert!(
        store
            .webhook_rotate("wh_a", "bmV3", now + 1, &op("webhook_rotated"))
            .await
            .unwrap()
    );
    let ep = store.webhook_endpoint("wh_a").await.unwrap().unwrap();
    assert_eq!(
        (ep.secret_sealed.as_str(), ep.previous_sealed.as_deref()),
        ("bmV3", Some("c2VhbGVk"))
    );
    assert!(
        store
            .webhook_remove("wh_a", &op("webhook_removed"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .webhook_remove("wh_a", &op("webhook_removed"))
            .await
            .unwrap()
    );
    assert!(
        store
            .webhook_events(None, None, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

sealgate_testkit::on_each_backend!(
    events_exist_exactly_with_their_committed_audit_rows,
    a_messages_events_are_claimed_in_order_and_settled_by_their_owner,
    gone_disables_the_endpoint_and_its_events_wait,
);
