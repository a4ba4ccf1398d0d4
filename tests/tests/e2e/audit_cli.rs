//! The operator's command line against a running relay, on SQLite and on PostgreSQL:
//! `audit verify` and `audit tail` (filters, JSON, follow), the database's refusal to change
//! audit rows, tamper detection once those guards are dropped, `users` and `config check`.
//!
//! Messages are sent with Python's smtplib, so the audit rows are the daemon's own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sealgate_testkit::db::TestBackend;
use sealgate_tests::{CliRun as Run, json_lines, py_send, sealgate_bin};
use serde_json::Value;

use crate::bad_input::Relay;

/// One message per recipient, sent in order; returns the queue ids.
fn send_each(relay: &Relay, rcpts: &[&str]) -> Vec<String> {
    rcpts
        .iter()
        .map(|rcpt| {
            let sent = py_send(
                relay.daemon.addr("starttls"),
                &["--from", "alice@clinic.example.test", "--to", rcpt],
            );
            sent.assert_all_queued();
            let ids = sent.queue_ids();
            assert_eq!(ids.len(), 1, "{}", sent.describe());
            ids[0].clone()
        })
        .collect()
}

const RCPTS: [&str; 3] = ["bob@example.org", "carol@example.org", "dave@example.org"];

/// A relay with three messages queued, one to each of [`RCPTS`].
fn relay_with_three_messages(backend: TestBackend) -> (Relay, Vec<String>) {
    let relay = Relay::start(backend, "");
    let ids = send_each(&relay, &RCPTS);
    assert_eq!(relay.db.audit().len(), 3);
    (relay, ids)
}

fn cli(relay: &Relay, args: &[&str]) -> Run {
    Run::of(relay.daemon.cli(args))
}

// ---------------------------------------------------------------------------------------------
// verify and tail

fn verify_and_tail_report_the_received_events(backend: TestBackend) {
    let (relay, ids) = relay_with_three_messages(backend);

    let verify = cli(&relay, &["audit", "verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.describe());
    assert!(
        verify.stdout.contains("audit log ok: 3 events, head "),
        "{}",
        verify.describe()
    );

    let tail = cli(&relay, &["audit", "tail"]);
    assert_eq!(tail.code, Some(0), "{}", tail.describe());
    let lines = tail.lines();
    assert_eq!(lines.len(), 3, "{}", tail.describe());
    for (n, (line, id)) in lines.iter().zip(&ids).enumerate() {
        assert!(line.contains(" received "), "line {n}: {line}");
        assert!(line.contains(&format!("#{} ", n + 1)), "line {n}: {line}");
        assert!(line.contains(&format!("msg={id}")), "line {n}: {line}");
    }

    let last = cli(&relay, &["audit", "tail", "-n", "1"]);
    assert_eq!(last.lines().len(), 1, "{}", last.describe());
    assert!(last.stdout.contains(&ids[2]), "{}", last.describe());
}

on_both_backends!(verify_and_tail_report_the_received_events);

fn is_hex_hash(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn tail_json_prints_linked_objects(backend: TestBackend) {
    let (relay, ids) = relay_with_three_messages(backend);
    let tail = cli(&relay, &["audit", "tail", "--json"]);
    assert_eq!(tail.code, Some(0), "{}", tail.describe());
    let events = json_lines(&tail.stdout);
    assert_eq!(events.len(), 3, "{}", tail.describe());
    let mut prev_hash = Value::from("0".repeat(64));
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], n + 1, "{e}");
        assert_eq!(e["kind"], "received", "{e}");
        assert_eq!(e["message_id"], ids[n].as_str(), "{e}");
        assert_eq!(
            e["data"]["recipients"],
            serde_json::json!([RCPTS[n]]),
            "{e}"
        );
        assert_eq!(e["data"]["sender"], "alice@clinic.example.test", "{e}");
        assert!(is_hex_hash(&e["hash"]), "{e}");
        assert_eq!(
            e["prev_hash"],
            prev_hash,
            "row {} must link to the one before",
            n + 1
        );
        prev_hash = e["hash"].clone();
    }
}

on_both_backends!(tail_json_prints_linked_objects);

fn tail_filters_by_message_and_time(backend: TestBackend) {
    let (relay, ids) = relay_with_three_messages(backend);

    let by_message = cli(&relay, &["audit", "tail", "--message", &ids[1]]);
    assert_eq!(by_message.code, Some(0), "{}", by_message.describe());
    let lines = by_message.lines();
    assert_eq!(lines.len(), 1, "{}", by_message.describe());
    assert!(
        lines[0].contains(&format!("msg={}", ids[1])),
        "{}",
        lines[0]
    );

    let recent = cli(&relay, &["audit", "tail", "--since", "1h"]);
    assert_eq!(recent.code, Some(0), "{}", recent.describe());
    assert_eq!(recent.lines().len(), 3, "{}", recent.describe());

    let future = cli(
        &relay,
        &["audit", "tail", "--since", "2999-01-01T00:00:00Z"],
    );
    assert_eq!(future.code, Some(0), "{}", future.describe());
    assert_eq!(future.lines(), Vec::<&str>::new(), "{}", future.describe());

    let bad_since = cli(&relay, &["audit", "tail", "--since", "yesterday-ish"]);
    assert_ne!(bad_since.code, Some(0), "{}", bad_since.describe());
    assert!(
        bad_since.stderr.contains("--since"),
        "{}",
        bad_since.describe()
    );
}

on_both_backends!(tail_filters_by_message_and_time);

/// An operator asking "what happened to carol's mail" gets the message that was for her.
fn tail_by_recipient_finds_the_message_sent_to_it(backend: TestBackend) {
    let (relay, ids) = relay_with_three_messages(backend);
    let by_rcpt = cli(&relay, &["audit", "tail", "--rcpt", RCPTS[1]]);
    assert_eq!(by_rcpt.code, Some(0), "{}", by_rcpt.describe());
    let lines = by_rcpt.lines();
    assert_eq!(
        lines.len(),
        1,
        "--rcpt {} must find the event of the message sent to it\n{}",
        RCPTS[1],
        by_rcpt.describe()
    );
    assert!(
        lines[0].contains(&format!("msg={}", ids[1])),
        "{}",
        lines[0]
    );
}

on_both_backends!(tail_by_recipient_finds_the_message_sent_to_it);

// ---------------------------------------------------------------------------------------------
// The database guards the log

fn database_refuses_to_update_or_delete_audit_rows(backend: TestBackend) {
    let (relay, _ids) = relay_with_three_messages(backend);
    let before = relay.db.audit();
    for sql in [
        "UPDATE audit SET data = '{}' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 3",
        "DELETE FROM audit",
        "UPDATE audit_head SET seq = 1, hash = 'x' WHERE id = 1",
        "DELETE FROM audit_head",
    ] {
        let err = relay
            .db
            .execute(sql)
            .expect_err(&format!("the database must refuse {sql:?}"));
        assert!(
            err.contains("append-only") || err.contains("only moves forward"),
            "{sql}: {err}"
        );
    }
    assert_eq!(relay.db.audit(), before);
    let verify = cli(&relay, &["audit", "verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.describe());
}

on_both_backends!(database_refuses_to_update_or_delete_audit_rows);

// ---------------------------------------------------------------------------------------------
// Tampering, once the guards are dropped (names from migrations/*/0001_init.sql)

fn drop_audit_guards(relay: &Relay, backend: TestBackend) {
    let sql = match backend {
        TestBackend::Sqlite => "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;",
        TestBackend::Postgres => "DROP TRIGGER audit_append_only ON audit;",
    };
    relay
        .db
        .execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Three messages, the guards dropped, then `tamper` run: `audit verify` must exit 1 and its
/// output must contain every one of `expected`.
fn tampering_is_detected(backend: TestBackend, tamper: &str, expected: &[&str]) {
    let (relay, _ids) = relay_with_three_messages(backend);
    let intact = cli(&relay, &["audit", "verify"]);
    assert_eq!(
        intact.code,
        Some(0),
        "before tampering: {}",
        intact.describe()
    );

    drop_audit_guards(&relay, backend);
    relay
        .db
        .execute(tamper)
        .unwrap_or_else(|e| panic!("{tamper}: {e}"));

    let verify = cli(&relay, &["audit", "verify"]);
    assert_eq!(
        verify.code,
        Some(1),
        "after {tamper:?}: {}",
        verify.describe()
    );
    assert!(
        verify.stdout.contains("audit log BROKEN"),
        "{}",
        verify.describe()
    );
    for want in expected {
        assert!(
            verify.stdout.contains(want),
            "after {tamper:?} the report must name {want:?}: {}",
            verify.describe()
        );
    }
}

const EDIT_ROW_2: &str =
    "UPDATE audit SET data = '{\"recipients\":[\"eve@example.net\"]}' WHERE seq = 2";
const DELETE_ROW_2: &str = "DELETE FROM audit WHERE seq = 2";
const DELETE_ROW_3: &str = "DELETE FROM audit WHERE seq = 3";
/// Three statements, because a unique key may be checked row by row.
const SWAP_ROWS_1_AND_2: &str = "UPDATE audit SET seq = -1 WHERE seq = 1; \
     UPDATE audit SET seq = 1 WHERE seq = 2; \
     UPDATE audit SET seq = 2 WHERE seq = -1;";

#[test]
fn edited_row_is_named_by_verify_on_sqlite() {
    tampering_is_detected(TestBackend::Sqlite, EDIT_ROW_2, &["#2", "edited"]);
}

#[test]
fn edited_row_is_named_by_verify_on_postgres() {
    tampering_is_detected(TestBackend::Postgres, EDIT_ROW_2, &["#2", "edited"]);
}

#[test]
fn deleted_middle_row_breaks_the_link_of_the_next_on_sqlite() {
    tampering_is_detected(
        TestBackend::Sqlite,
        DELETE_ROW_2,
        &["chain broken at row #3"],
    );
}

#[test]
fn deleted_middle_row_breaks_the_link_of_the_next_on_postgres() {
    tampering_is_detected(
        TestBackend::Postgres,
        DELETE_ROW_2,
        &["chain broken at row #3"],
    );
}

#[test]
fn deleted_last_row_no_longer_matches_the_head_on_sqlite() {
    tampering_is_detected(
        TestBackend::Sqlite,
        DELETE_ROW_3,
        &["head names row #3", "#2"],
    );
}

#[test]
fn deleted_last_row_no_longer_matches_the_head_on_postgres() {
    tampering_is_detected(
        TestBackend::Postgres,
        DELETE_ROW_3,
        &["head names row #3", "#2"],
    );
}

#[test]
fn swapped_rows_break_the_chain_on_sqlite() {
    tampering_is_detected(
        TestBackend::Sqlite,
        SWAP_ROWS_1_AND_2,
        &["chain broken at row #1"],
    );
}

#[test]
fn swapped_rows_break_the_chain_on_postgres() {
    tampering_is_detected(
        TestBackend::Postgres,
        SWAP_ROWS_1_AND_2,
        &["chain broken at row #1"],
    );
}

// ---------------------------------------------------------------------------------------------
// tail -f

/// A child process killed (and reaped) when dropped, even when the test panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long `audit tail -f` may take to print an event.
const FOLLOW_WAIT: Duration = Duration::from_secs(15);

/// Waits (at most [`FOLLOW_WAIT`]) for a line containing `needle`; returns the lines read.
fn wait_for_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) -> bool {
    let deadline = Instant::now() + FOLLOW_WAIT;
    loop {
        if seen.iter().any(|l| l.contains(needle)) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => return false,
        }
    }
}

fn tail_follow_prints_events_written_after_it_started(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    let before = send_each(&relay, &[RCPTS[0]]);

    let child = Command::new(sealgate_bin())
        .arg("--config")
        .arg(relay.daemon.config_path())
        .args(["audit", "tail", "-f"])
        .current_dir(relay.daemon.dir())
        .env_remove("SEALGATE_CONFIG")
        .env_remove("SEALGATE_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sealgate audit tail -f");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // The past event shows first: tail is running and has read the head.
    let mut seen = Vec::new();
    assert!(
        wait_for_line(&rx, &mut seen, &before[0]),
        "tail -f did not print the earlier event within {FOLLOW_WAIT:?}: {seen:?}"
    );
    let after = send_each(&relay, &[RCPTS[1]]);
    assert!(
        wait_for_line(&rx, &mut seen, &after[0]),
        "tail -f did not print the new event within {FOLLOW_WAIT:?}: {seen:?}"
    );
    let new_line = seen
        .iter()
        .find(|l| l.contains(&after[0]))
        .expect("found above");
    assert!(new_line.contains(" received "), "{new_line}");
    assert!(new_line.contains("#2 "), "{new_line}");
    assert_eq!(seen.len(), 2, "one line per event: {seen:?}");
    assert_eq!(
        child.0.try_wait().expect("poll tail -f"),
        None,
        "tail -f must keep running"
    );
}

on_both_backends!(tail_follow_prints_events_written_after_it_started);

// ---------------------------------------------------------------------------------------------
// users

fn users_are_added_listed_and_removed(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    let add = Run::of(relay.daemon.cli_with_stdin(
        ["users", "add", "ehr", "--password-stdin", "--any-sender"],
        b"a long passphrase\n",
    ));
    assert_eq!(add.code, Some(0), "{}", add.describe());
    assert!(add.stdout.contains("user ehr saved"), "{}", add.describe());

    let list = cli(&relay, &["users", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.describe());
    let rows: Vec<Vec<&str>> = list
        .lines()
        .iter()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 1, "{}", list.describe());
    assert_eq!(
        (rows[0][0], rows[0][2]),
        ("ehr", "*"),
        "{}",
        list.describe()
    );
    assert!(
        list.stderr.contains("note: ehr is unrestricted"),
        "{}",
        list.describe()
    );

    let remove = cli(&relay, &["users", "remove", "ehr"]);
    assert_eq!(remove.code, Some(0), "{}", remove.describe());
    assert!(
        remove.stdout.contains("user ehr removed"),
        "{}",
        remove.describe()
    );

    let again = cli(&relay, &["users", "remove", "ehr"]);
    assert_eq!(again.code, Some(1), "{}", again.describe());
    assert!(again.stderr.contains("no user ehr"), "{}", again.describe());

    let list = cli(&relay, &["users", "list"]);
    assert_eq!(list.lines(), Vec::<&str>::new(), "{}", list.describe());
}

on_both_backends!(users_are_added_listed_and_removed);

fn too_short_password_is_refused(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    let add = Run::of(relay.daemon.cli_with_stdin(
        ["users", "add", "ehr", "--password-stdin", "--any-sender"],
        b"short\n",
    ));
    assert_ne!(add.code, Some(0), "{}", add.describe());
    assert!(
        add.stderr.contains("password too short"),
        "{}",
        add.describe()
    );
    assert!(add.stderr.contains("at least 8"), "{}", add.describe());
    let list = cli(&relay, &["users", "list"]);
    assert_eq!(list.lines(), Vec::<&str>::new(), "{}", list.describe());
}

on_both_backends!(too_short_password_is_refused);

// ---------------------------------------------------------------------------------------------
// config check (no database involved: one backend-free test each)

/// `sealgate config check FILE` with a scrubbed environment.
pub(crate) fn config_check(file: &std::path::Path) -> Run {
    let out = Command::new(sealgate_bin())
        .args(["config", "check"])
        .arg(file)
        .env_remove("SEALGATE_CONFIG")
        .env_remove("SEALGATE_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run sealgate config check");
    Run::of(out)
}

fn config_check_text(text: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sealgate.toml");
    std::fs::write(&file, text).expect("write config");
    config_check(&file)
}

#[test]
fn config_check_accepts_a_valid_file() {
    let run = config_check_text("[server]\nhostname = \"relay.example.test\"\n");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains(": ok"), "{}", run.describe());
}

#[test]
fn config_check_names_a_misspelt_key() {
    let run = config_check_text("[smtp]\nmax_recipient = 5\n");
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("`max_recipient`"), "{}", run.describe());
    assert!(run.stderr.contains("unknown field"), "{}", run.describe());
}

#[test]
fn config_check_names_an_out_of_range_value() {
    let run = config_check_text("[smtp]\nmax_recipients = 0\n");
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(
        run.stderr
            .contains("smtp.max_recipients: must be at least 1"),
        "{}",
        run.describe()
    );
}

#[test]
fn config_check_names_the_missing_certificate_of_the_example_config() {
    let example = sealgate_tests::workspace_root().join("config/sealgate.example.toml");
    let run = config_check(&example);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.stderr.contains("tls.cert_file"), "{}", run.describe());
    assert!(run.stderr.contains("tls.key_file"), "{}", run.describe());
}
