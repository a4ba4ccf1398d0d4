//! Durability: what a client was told is queued survives SIGKILL, exactly once, and the audit
//! chain stays intact — on SQLite and on PostgreSQL.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sealgate_testkit::db::TestBackend;
use sealgate_tests::{Daemon, DaemonOpts, py_send};

use crate::inspect::{Inspect, fresh_db};

const SENDERS: usize = 4;
const PER_SENDER: &str = "400";

fn acknowledged_messages_survive_sigkill_exactly_once(backend: TestBackend) {
    let db = fresh_db(backend);
    let mut daemon = Daemon::start(DaemonOpts::with_db(&db.url));
    let addr = daemon.addr("starttls");
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let to = format!("patient{i}@example.org");
            std::thread::spawn(move || {
                py_send(
                    addr,
                    &[
                        "--count",
                        PER_SENDER,
                        "--to",
                        &to,
                        "--to",
                        "archive@example.net",
                    ],
                )
            })
        })
        .collect();

    // Kill the daemon while the senders are mid-stream.
    let inspect = Inspect::new(daemon.db_url(), None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while inspect.message_count() < 150 {
        assert!(
            Instant::now() < deadline,
            "senders made no progress\n{}",
            daemon.output_report()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.kill9();
    let results: Vec<_> = senders
        .into_iter()
        .map(|s| s.join().expect("sender thread"))
        .collect();
    assert!(
        results.iter().any(|r| !r.output.status.success()),
        "every sender finished before the kill: the test did not cut anything off"
    );
    let acked: Vec<String> = results.iter().flat_map(|r| r.queue_ids()).collect();
    // 150 were committed before the kill; each connection may have had its last one committed
    // but not yet acknowledged when the daemon died.
    assert!(
        acked.len() >= 150 - SENDERS,
        "only {} acknowledged",
        acked.len()
    );

    daemon.restart();
    let after = Inspect::new(daemon.db_url(), None);
    let count = after.message_count();
    for id in &acked {
        assert!(after.has_message(id), "acknowledged message {id} was lost");
        let rcpts = after.recipients(id);
        assert_eq!(rcpts.len(), 2, "{id}: {rcpts:?}");
        assert!(rcpts.iter().all(|(_, state)| state == "queued"));
    }
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(
        unique.len(),
        acked.len(),
        "a queue id was acknowledged twice"
    );
    // Committed but unacknowledged (killed between commit and reply) is allowed: at most one
    // per connection. Anything beyond that would be a duplicate or a phantom.
    let extra = count - acked.len() as i64;
    assert!(
        (0..=SENDERS as i64).contains(&extra),
        "{count} stored for {} acknowledged",
        acked.len()
    );
    let events = after.received_events();
    assert_eq!(
        events.len() as i64,
        count,
        "one received event per stored message"
    );
    let header_ids: HashSet<&str> = events
        .values()
        .filter_map(|d| d["header_message_id"].as_str())
        .collect();
    assert_eq!(
        header_ids.len() as i64,
        count,
        "one client message stored twice"
    );

    let verify = daemon.cli(["audit", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        text.contains(&format!("audit log ok: {count} events")),
        "{text}"
    );
    // The restarted daemon keeps accepting.
    py_send(daemon.addr("starttls"), &[]).assert_all_queued();
}

on_both_backends!(acknowledged_messages_survive_sigkill_exactly_once);
