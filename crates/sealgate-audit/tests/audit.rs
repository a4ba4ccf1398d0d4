//! Audit tests against a fresh SQLite file and a fresh PostgreSQL database each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealgate_audit::{AuditEvent, ChainProblem, format_line, tail, verify};
use sealgate_store::{AuditFilter, NewMessage, Store};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_types::{AuditEntry, AuditRecord, GENESIS_HASH};
use serde_json::json;

async fn open(backend: TestBackend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url, 10, Duration::from_secs(10))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

fn note(n: u32) -> AuditRecord {
    AuditRecord {
        kind: "note".into(),
        message_id: None,
        recipient: Some(format!("r{}@example.net", n % 3)),
        data: json!({ "n": n }),
    }
}

fn received(id: &str) -> (NewMessage, AuditRecord) {
    let msg = NewMessage {
        id: id.to_owned(),
        received_at: 1_764_000_000_000_000,
        sender: "alice@example.org".into(),
        size: 10,
        body_sha256: "cd".repeat(32),
        header_message_id: None,
        client_ip: "192.0.2.7".into(),
        helo: "client.example.org".into(),
        auth_user: Some("alice".into()),
        tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
        requiretls: false,
        key_id: "k1".into(),
        sealed_body: vec![7; 32],
        origin: None,
    };
    let event = AuditEvent::Received {
        message_id: id.to_owned(),
        client_ip: msg.client_ip.clone(),
        helo: msg.helo.clone(),
        tls: msg.tls.clone(),
        auth_user: msg.auth_user.clone(),
        sender: msg.sender.clone(),
        recipients: vec!["bob@example.net".into()],
        size: 10,
        body_sha256: msg.body_sha256.clone(),
        header_message_id: None,
        requiretls: msg.requiretls,
        tenant: None,
        api_key: None,
        origin: None,
    };
    (msg, event.into_record())
}

/// A database with `n` rows, and the append-only triggers dropped so a test can tamper.
async fn tamperable(backend: TestBackend, n: u32) -> (TestDb, Store) {
    let (db, store) = open(backend).await;
    for i in 0..n {
        store.append_audit(&note(i)).await.expect("append");
    }
    let drop_triggers = match backend {
        TestBackend::Sqlite => "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;",
        TestBackend::Postgres => {
            "DROP TRIGGER audit_append_only ON audit; DROP TRIGGER audit_no_truncate ON audit;"
        }
    };
    store
        .execute_raw(drop_triggers)
        .await
        .expect("drop triggers");
    assert!(verify(&store).await.expect("verify").is_intact());
    (db, store)
}

async fn empty_and_written_chains_verify(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.rows, report.head_seq), (0, 0));
    assert_eq!(report.head_hash, GENESIS_HASH);
    assert!(report.is_intact());

    let (msg, rec) = received("m1");
    store
        .enqueue(&msg, &["bob@example.net".into()], &rec)
        .await
        .expect("enqueue");
    let last = store.append_audit(&note(1)).await.expect("append");
    let report = verify(&store).await.expect("verify");
    assert_eq!((report.rows, report.head_seq, report.problem), (2, 2, None));
    assert_eq!(report.head_hash, last.hash);
}

async fn concurrent_writers_leave_a_verifiable_chain(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let tasks: Vec<_> = (0..8u32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    store
                        .append_audit(&note(t * 100 + i))
                        .await
                        .expect("append");
                    if i % 25 == 0 {
                        let (msg, rec) = received(&format!("m-{t}-{i}"));
                        store
                            .enqueue(&msg, &["bob@example.net".into()], &rec)
                            .await
                            .expect("enqueue");
                    }
                }
            })
        })
        .collect();
    // Verify while they write: must never see a false problem.
    while !tasks.iter().all(|t| t.is_finished()) {
        let report = verify(&store).await.expect("verify");
        assert!(report.is_intact(), "{:?}", report.problem);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await.expect("task");
    }
    let n = 8 * 50 + 8 * 2;
    let report = verify(&store).await.expect("verify");
    assert_eq!(
        (report.rows, report.head_seq, report.problem),
        (n, n as i64, None)
    );
    let seqs: Vec<i64> = store
        .audit_after(0, &AuditFilter::default(), 10_000)
        .await
        .expect("read")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>());
}

async fn edited_row_is_reported_at_its_seq(backend: TestBackend) {
    let (_db, store) = tamperable(backend, 6).await;
    store
        .execute_raw(r#"UPDATE audit SET data = '{"n":99}' WHERE seq = 3"#)
        .await
        .expect("tamper");
    let problem = verify(&store).await.expect("verify").problem;
    assert!(
        matches!(problem, Some(ChainProblem::EditedRow { seq: 3, .. })),
        "{problem:?}"
    );
}

async fn deleted_middle_row_breaks_the_link(backend: TestBackend) {
    let (_db, store) = tamperable(backend, 6).await;
    store
        .execute_raw("DELETE FROM audit WHERE seq = 3")
        .await
        .expect("tamper");
    let report = verify(&store).await.expect("verify");
    assert_eq!(report.rows, 5);
    let problem = report.problem.expect("a problem");
    assert!(
        matches!(problem, ChainProblem::BrokenLink { seq: 4, .. }),
        "{problem:?}"
    );
    assert_eq!(problem.seq(), 4);
}

async fn deleted_first_row_breaks_the_link_to_genesis(backend: TestBackend) {
    let (_db, store) = tamperable(backend, 3).await;
    store
        .execute_raw("DELETE FROM audit WHERE seq = 1")
        .await
        .expect("tamper");
    let problem = verify(&store).await.expect("verify").problem;
    assert!(
        matches!(problem, Some(ChainProblem::BrokenLink { seq: 2, ref expected_prev_hash, .. })
            if expected_prev_hash == GENESIS_HASH),
        "{problem:?}"
    );
}

async fn deleted_last_row_mismatches_the_head(backend: TestBackend) {
    let (_db, store) = tamperable(backend, 6).await;
    store
        .execute_raw("DELETE FROM audit WHERE seq = 6")
        .await
        .expect("tamper");
    let problem = verify(&store).await.expect("verify").problem;
    assert!(
        matches!(
            problem,
            Some(ChainProblem::HeadMismatch {
                head_seq: 6,
                last_seq: 5,
                ..
            })
        ),
        "{problem:?}"
    );

    // Emptying the whole table is the same problem, with no last row at all.
    store
        .execute_raw("DELETE FROM audit")
        .await
        .expect("tamper");
    let problem = verify(&store).await.expect("verify").problem;
    assert!(
        matches!(
            problem,
            Some(ChainProblem::HeadMismatch {
                head_seq: 6,
                last_seq: 0,
                ..
            })
        ),
        "{problem:?}"
    );
}

async fn swapped_rows_are_detected(backend: TestBackend) {
    let (_db, store) = tamperable(backend, 6).await;
    store
        .execute_raw(
            "UPDATE audit SET seq = -1 WHERE seq = 2; \
             UPDATE audit SET seq = 2 WHERE seq = 4; \
             UPDATE audit SET seq = 4 WHERE seq = -1;",
        )
        .await
        .expect("tamper");
    let problem = verify(&store).await.expect("verify").problem;
    assert!(
        matches!(problem, Some(ChainProblem::BrokenLink { seq: 2, .. })),
        "{problem:?}"
    );
}

async fn tail_prints_the_last_rows_then_follows(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    for i in 0..5 {
        store.append_audit(&note(i)).await.expect("append");
    }
    let filter = AuditFilter {
        recipient: Some("r1@example.net".into()),
        ..AuditFilter::default()
    };
    let mut printed = Vec::new();
    tail(&store, &filter, 10, false, |e| printed.push(e.seq))
        .await
        .expect("tail");
    assert_eq!(printed, [2, 5]);

    let seen: Arc<Mutex<Vec<AuditEntry>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let follower = {
        let store = store.clone();
        let filter = filter.clone();
        tokio::spawn(async move {
            tail(&store, &filter, 1, true, |e| {
                sink.lock().expect("lock").push(e.clone())
            })
            .await
        })
    };
    // Wait until the initial row is out, then write one row that matches and one that doesn't.
    let seqs = || {
        seen.lock()
            .expect("lock")
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while seqs().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("initial row printed");
    store.append_audit(&note(6)).await.expect("append"); // r0: filtered out
    let new = store.append_audit(&note(7)).await.expect("append"); // r1
    tokio::time::timeout(Duration::from_secs(10), async {
        while seqs().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("followed row printed in time");
    follower.abort();
    assert_eq!(seqs(), [5, new.seq]);
    let line = format_line(&seen.lock().expect("lock")[1]);
    assert!(line.contains(" #7 note rcpt=r1@example.net n=7"), "{line}");
}

sealgate_testkit::on_each_backend!(multi_thread:
    empty_and_written_chains_verify,
    concurrent_writers_leave_a_verifiable_chain,
    edited_row_is_reported_at_its_seq,
    deleted_middle_row_breaks_the_link,
    deleted_first_row_breaks_the_link_to_genesis,
    deleted_last_row_mismatches_the_head,
    swapped_rows_are_detected,
    tail_prints_the_last_rows_then_follows,
);
