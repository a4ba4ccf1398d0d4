//! The shortest path through the relay: start, accept one message, stop.

use sealgate_tests::{Daemon, DaemonOpts, py_send};

#[test]
fn smtplib_message_is_queued_on_sqlite_and_sigterm_exits_zero() {
    let mut daemon = Daemon::start(DaemonOpts::default());

    let sent = py_send(
        daemon.addr("starttls"),
        &[
            "--from",
            "alice@clinic.example.test",
            "--to",
            "bob@example.org",
        ],
    );

    sent.assert_all_queued();
    assert_eq!(sent.results.len(), 1, "{}", sent.describe());
    let reply = &sent.results[0];
    assert_eq!(reply["code"], 250, "{}", sent.describe());
    let text = reply["text"].as_str().unwrap_or_default();
    assert!(text.contains("queued as"), "{text}");
    assert!(!sent.queue_ids()[0].is_empty(), "{}", sent.describe());

    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        daemon.output_report()
    );
}
