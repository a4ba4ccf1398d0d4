//! Store tests: every case runs against a fresh SQLite file and a fresh PostgreSQL database.

use std::time::Duration;

use sealgate_store::{AuditFilter, Backend, NewMessage, Store, StoreError};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_types::{AuditEntry, AuditRecord, GENESIS_HASH, RecipientState, time::now_micros};
use serde_json::json;

async fn open(backend: TestBackend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url, 10, Duration::from_secs(10))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

fn message(id: &str) -> NewMessage {
    NewMessage {
        id: id.to_owned(),
        received_at: 1_764_000_000_000_000,
        sender: "alice@example.org".into(),
        size: 1234,
        body_sha256: "ab".repeat(32),
        header_message_id: Some("<x@example.org>".into()),
        client_ip: "192.0.2.7".into(),
        helo: "client.example.org".into(),
        auth_user: None,
        tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
        requiretls: false,
        key_id: "k1".into(),
        sealed_body: vec![0, 1, 2, 255],
        origin: None,
    }
}

fn received(id: &str) -> AuditRecord {
    AuditRecord {
        kind: "received".into(),
        message_id: Some(id.to_owned()),
        recipient: None,
        data: json!({"size": 1234, "sender": "alice@example.org"}),
    }
}

fn note(n: u32) -> AuditRecord {
    AuditRecord {
        kind: "note".into(),
        message_id: None,
        recipient: Some(format!("r{n}@example.net")),
        data: json!({"n": n}),
    }
}

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn all_audit(store: &Store) -> Vec<AuditEntry> {
    store
        .audit_after(0, &AuditFilter::default(), 1_000_000)
        .await
        .expect("read audit")
}

/// Checks seq 1..=n, the links and every hash, and that the head names the last row.
async fn assert_chain_intact(store: &Store, n: i64) {
    let rows = all_audit(store).await;
    assert_eq!(rows.len() as i64, n);
    let mut prev = GENESIS_HASH.to_owned();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as i64 + 1);
        assert_eq!(row.prev_hash, prev, "link at {}", row.seq);
        assert_eq!(row.hash, row.expected_hash(), "hash at {}", row.seq);
        prev = row.hash.clone();
    }
    assert_eq!(store.audit_head().await.expect("head"), (n, prev));
}

async fn migrating_twice_is_idempotent(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    store.migrate().await.expect("second migrate");
    let expected = match backend {
        TestBackend::Sqlite => Backend::Sqlite,
        TestBackend::Postgres => Backend::Postgres,
    };
    assert_eq!(store.backend(), expected);
    assert_eq!(
        store.audit_head().await.expect("head"),
        (0, GENESIS_HASH.to_owned())
    );
    store.close().await;
}

async fn enqueue_writes_message_recipients_and_audit_together(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let before = now_micros();
    let msg = message("m1");
    store
        .enqueue(
            &msg,
            &rcpts(&["b@example.net", "c@example.net"]),
            &received("m1"),
        )
        .await
        .expect("enqueue");

    assert_eq!(store.message("m1").await.expect("read"), Some(msg));
    assert_eq!(store.message("nope").await.expect("read"), None);
    assert_eq!(store.count_messages().await.expect("count"), 1);
    let rows = store.recipients_of("m1").await.expect("recipients");
    let names: Vec<&str> = rows.iter().map(|r| r.rcpt.as_str()).collect();
    assert_eq!(names, ["b@example.net", "c@example.net"]);
    for r in &rows {
        assert_eq!((r.state, r.attempts), (RecipientState::Queued, 0));
        assert!(r.next_attempt_at >= before && r.next_attempt_at == r.updated_at);
        assert_eq!(
            (&r.last_reply, &r.lease_owner, r.lease_until),
            (&None, &None, None)
        );
    }
    let audit = all_audit(&store).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].kind.as_str(), audit[0].message_id.as_deref()),
        ("received", Some("m1"))
    );
    assert_eq!(
        audit[0].data,
        r#"{"sender":"alice@example.org","size":1234}"#
    );
    assert_chain_intact(&store, 1).await;
}

async fn failed_enqueue_writes_nothing(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    store
        .enqueue(&message("m1"), &rcpts(&["b@example.net"]), &received("m1"))
        .await
        .expect("first enqueue");

    // Same id again: the message insert fails after the audit row was appended.
    let dup = store
        .enqueue(&message("m1"), &rcpts(&["x@example.net"]), &received("m1"))
        .await;
    assert!(matches!(dup, Err(StoreError::Enqueue { ref message_id, .. }) if message_id == "m1"));
    assert!(!dup.as_ref().err().is_some_and(StoreError::is_unavailable));

    // A repeated recipient: fails on the second recipient row, after the message row.
    let twice = rcpts(&["y@example.net", "y@example.net"]);
    let res = store.enqueue(&message("m2"), &twice, &received("m2")).await;
    assert!(matches!(res, Err(StoreError::Enqueue { .. })));

    assert_eq!(store.message("m2").await.expect("read"), None);
    assert_eq!(store.count_messages().await.expect("count"), 1);
    let rows = store.recipients_of("m1").await.expect("recipients");
    assert_eq!(rows.len(), 1);
    assert!(
        store
            .recipients_of("m2")
            .await
            .expect("recipients")
            .is_empty()
    );
    assert_chain_intact(&store, 1).await;

    // The chain continues without a gap after the failures.
    store.append_audit(&note(1)).await.expect("append");
    assert_chain_intact(&store, 2).await;
}

async fn database_refuses_to_change_audit_rows(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    store.append_audit(&note(1)).await.expect("append");
    let refused = [
        "UPDATE audit SET data = '{}' WHERE seq = 1",
        "DELETE FROM audit WHERE seq = 1",
        "UPDATE audit_head SET seq = 0, hash = 'x' WHERE id = 1",
        "DELETE FROM audit_head",
    ];
    for sql in refused {
        let err = store.execute_raw(sql).await.expect_err(sql);
        assert!(matches!(err, StoreError::Raw(_)), "{sql}: {err:?}");
    }
    if backend == TestBackend::Postgres {
        store
            .execute_raw("TRUNCATE audit")
            .await
            .expect_err("truncate refused");
    }
    assert_chain_intact(&store, 1).await;
}

async fn audit_reads_filter_and_page(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let mut written = Vec::new();
    for n in 0..6 {
        written.push(store.append_audit(&note(n % 3)).await.expect("append"));
    }
    assert_eq!(
        written.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(all_audit(&store).await, written);

    let page = store
        .audit_after(2, &AuditFilter::default(), 3)
        .await
        .expect("page");
    assert_eq!(page, written[2..5]);
    let last = store
        .audit_last(&AuditFilter::default(), 2)
        .await
        .expect("last");
    assert_eq!(last, written[4..6]);

    let r1 = AuditFilter {
        recipient: Some("r1@example.net".into()),
        ..AuditFilter::default()
    };
    let seqs = |v: Vec<AuditEntry>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.audit_after(0, &r1, 100).await.expect("r1")),
        [2, 5]
    );
    assert_eq!(seqs(store.audit_last(&r1, 1).await.expect("r1 last")), [5]);

    let since = AuditFilter {
        since: Some(written[3].at),
        ..r1.clone()
    };
    assert_eq!(
        seqs(store.audit_after(0, &since, 100).await.expect("since")),
        [5]
    );
    let by_msg = AuditFilter {
        message_id: Some("m1".into()),
        ..AuditFilter::default()
    };
    assert!(
        store
            .audit_after(0, &by_msg, 100)
            .await
            .expect("msg")
            .is_empty()
    );
}

async fn concurrent_appenders_keep_one_gapless_chain(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                store
                    .append_audit(&note(t * 100 + i))
                    .await
                    .expect("append");
                if i % 10 == 0 {
                    let id = format!("m-{t}-{i}");
                    store
                        .enqueue(&message(&id), &rcpts(&["b@example.net"]), &received(&id))
                        .await
                        .expect("enqueue");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(store.count_messages().await.expect("count"), 40);
    assert_chain_intact(&store, 8 * 50 + 40).await;
}

async fn recipients_are_listed_by_state(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    for id in ["m1", "m2"] {
        store
            .enqueue(
                &message(id),
                &rcpts(&["b@example.net", "c@example.net"]),
                &received(id),
            )
            .await
            .expect("enqueue");
    }
    let queued = store
        .list_recipients(Some(RecipientState::Queued), 3)
        .await
        .expect("list");
    assert_eq!(queued.len(), 3);
    assert!(queued.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.list_recipients(None, 10).await.expect("all").len(), 4);
    let delivered = store
        .list_recipients(Some(RecipientState::Delivered), 10)
        .await
        .expect("list");
    assert!(delivered.is_empty());
}

fn user_event(kind: &str, name: &str) -> sealgate_types::AuditRecord {
    sealgate_types::AuditRecord {
        kind: kind.to_owned(),
        message_id: None,
        recipient: None,
        data: serde_json::json!({ "user": name }),
    }
}

async fn envelopes_are_read_in_one_query_for_distinct_known_ids(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    for id in ["m1", "m2"] {
        let msg = NewMessage {
            requiretls: id == "m2",
            origin: (id == "m2").then(|| "portal-notice".to_owned()),
            ..message(id)
        };
        store
            .enqueue(&msg, &rcpts(&["b@example.net"]), &received(id))
            .await
            .expect("enqueue");
    }
    let ids: Vec<String> = ["m1", "m2", "m1", "missing"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let got = store.envelopes(&ids).await.expect("envelopes");
    assert_eq!(got.len(), 2, "{got:?}");
    let m1 = store.message("m1").await.expect("read").expect("m1");
    assert_eq!(got["m1"].sender, m1.sender);
    assert_eq!(got["m1"].received_at, m1.received_at);
    assert!(
        !got["m1"].requiretls && got["m1"].origin.is_none(),
        "{got:?}"
    );
    assert!(
        got["m2"].requiretls,
        "m2 was queued with REQUIRETLS: {got:?}"
    );
    assert_eq!(
        got["m2"].origin.as_deref(),
        Some("portal-notice"),
        "{got:?}"
    );
    assert!(store.envelopes(&[]).await.expect("empty").is_empty());
}

async fn requiretls_flag_is_written_and_read_back(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let msg = NewMessage {
        requiretls: true,
        ..message("m1")
    };
    store
        .enqueue(&msg, &rcpts(&["b@example.net"]), &received("m1"))
        .await
        .expect("enqueue");
    store
        .enqueue(&message("m2"), &rcpts(&["b@example.net"]), &received("m2"))
        .await
        .expect("enqueue");
    let m1 = store.message("m1").await.expect("read").expect("m1");
    assert!(m1.requiretls);
    assert_eq!(m1, msg);
    let m2 = store.message("m2").await.expect("read").expect("m2");
    assert!(!m2.requiretls);
}

async fn users_are_added_replaced_listed_and_removed(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    store
        .user_upsert(
            "bob",
            "$argon2id$one",
            None,
            &user_event("user_saved", "bob"),
        )
        .await
        .expect("add");
    store
        .user_upsert(
            "alice",
            "$argon2id$two",
            None,
            &user_event("user_saved", "alice"),
        )
        .await
        .expect("add");
    let first = store.user_list().await.expect("list");
    store
        .user_upsert(
            "bob",
            "$argon2id$three",
            None,
            &user_event("user_saved", "bob"),
        )
        .await
        .expect("replace");
    let users = store.user_list().await.expect("list");
    assert_eq!(users, first, "replacing keeps created_at");
    assert_eq!(
        users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    assert_eq!(
        store
            .user_password_hash("bob")
            .await
            .expect("hash")
            .as_deref(),
        Some("$argon2id$three")
    );
    assert!(
        store
            .user_remove("bob", &user_event("user_removed", "bob"))
            .await
            .expect("remove")
    );
    assert!(
        !store
            .user_remove("bob", &user_event("user_removed", "bob"))
            .await
            .expect("remove again")
    );
    let kinds: Vec<String> = store
        .audit_after(0, &AuditFilter::default(), 10)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["user_saved", "user_saved", "user_saved", "user_removed"],
        "one event per change, none for a no-op removal"
    );
    assert_eq!(store.user_password_hash("bob").await.expect("hash"), None);
}

async fn audit_listener_wakes_on_new_rows(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let listener = store.audit_listener().await.expect("listener");
    let Some(mut listener) = listener else {
        assert_eq!(backend, TestBackend::Sqlite, "only SQLite has no listener");
        return;
    };
    store.append_audit(&note(1)).await.expect("append");
    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("woken before the timeout")
        .expect("notification");
}

sealgate_testkit::on_each_backend!(multi_thread:
    migrating_twice_is_idempotent,
    enqueue_writes_message_recipients_and_audit_together,
    failed_enqueue_writes_nothing,
    database_refuses_to_change_audit_rows,
    audit_reads_filter_and_page,
    concurrent_appenders_keep_one_gapless_chain,
    recipients_are_listed_by_state,
    envelopes_are_read_in_one_query_for_distinct_known_ids,
    requiretls_flag_is_written_and_read_back,
    users_are_added_replaced_listed_and_removed,
    audit_listener_wakes_on_new_rows,
);

#[path = "store/security.rs"]
mod security;

#[path = "store/sending.rs"]
mod sending;

#[path = "store/settle_deposit.rs"]
mod settle_deposit;

#[path = "store/users.rs"]
mod users;

#[tokio::test]
async fn sqlite_file_and_directory_are_created_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/sealgate.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url, 2, Duration::from_secs(5))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store.append_audit(&note(1)).await.expect("append");
    assert!(path.is_file());
    assert!(path.with_extension("db-wal").is_file(), "journal is WAL");
    store.close().await;
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let err = Store::connect("postgres://nobody@127.0.0.1:1/x", 1, Duration::from_secs(2))
        .await
        .expect_err("nothing listens there");
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn unknown_url_scheme_is_refused() {
    let err = Store::connect("mysql://root:secret@h/db", 1, Duration::from_secs(1))
        .await
        .expect_err("unsupported");
    assert!(!err.to_string().contains("secret"));
    assert!(!err.is_unavailable());
}

/// SQLite answers `SQLITE_FULL` when a write would grow the file past `max_page_count`, just as
/// when the disk is full (and rolls the whole transaction back on its own). Here the pool's only
/// connection gets that limit, so the write that fails and the writes after it share it.
#[tokio::test]
async fn a_write_refused_for_space_is_full_and_writes_succeed_once_space_is_back() {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = Store::connect(&db.url, 1, Duration::from_secs(10))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
        .enqueue(&message("m1"), &rcpts(&["a@example.net"]), &received("m1"))
        .await
        .expect("first message");
    // Cannot go below the current size: the file may not grow any more.
    store
        .execute_raw("PRAGMA max_page_count = 1")
        .await
        .expect("limit");
    let big = NewMessage {
        sealed_body: vec![7; 256 * 1024],
        ..message("m2")
    };
    let err = store
        .enqueue(&big, &rcpts(&["b@example.net"]), &received("m2"))
        .await
        .expect_err("no room for it");
    assert!(err.is_full() && err.is_unavailable(), "{err:?}");
    assert!(store.message("m2").await.expect("read").is_none());
    assert_eq!(all_audit(&store).await.len(), 1, "no audit row of m2");

    store
        .execute_raw("PRAGMA max_page_count = 1073741823")
        .await
        .expect("room again");
    store
        .enqueue(&big, &rcpts(&["b@example.net"]), &received("m2"))
        .await
        .expect("the same write once there is room");
    assert_chain_intact(&store, 2).await;
    store.close().await;
}
