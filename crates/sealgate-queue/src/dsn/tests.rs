use super::*;

fn sample(kind: DsnKind) -> Vec<u8> {
    let rcpts = [
        DsnRecipient {
            recipient: "jane@example.org".into(),
            diagnostic: "550 5.1.1 <jane@example.org>: no such user".into(),
            remote_mta: Some("mx1.example.org".into()),
        },
        DsnRecipient {
            recipient: "bob@example.net".into(),
            diagnostic: "connection refused\r\nInjected: yes".into(),
            remote_mta: None,
        },
    ];
    let t = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
    build_dsn(&DsnInput {
        kind,
        reporting_mta: "relay.clinic.example",
        queue_id: "0190-q",
        arrival: t,
        now: t,
        to: "ehr@clinic.example",
        recipients: &rcpts,
        original: b"From: ehr@clinic.example\r\nSubject: Lab results for MRN 1234567\r\n\r\nPatient has condition X\r\n",
        unique: "abc123",
    })
}

#[test]
fn status_comes_from_the_enhanced_code_or_the_reply_class() {
    assert_eq!(
        status_of("550 5.1.1 no such user", DsnKind::Failure),
        "5.1.1"
    );
    assert_eq!(status_of("554 no enhanced code", DsnKind::Failure), "5.0.0");
    assert_eq!(status_of("451 try later", DsnKind::Delay), "4.0.0");
    assert_eq!(status_of("connection timed out", DsnKind::Failure), "5.0.0");
    assert_eq!(status_of("connection timed out", DsnKind::Delay), "4.0.0");
}

#[test]
fn the_report_carries_headers_but_never_the_body() {
    let dsn = String::from_utf8(sample(DsnKind::Failure)).expect("utf-8");
    assert!(
        dsn.contains("Subject: Lab results for MRN 1234567"),
        "original headers are returned"
    );
    assert!(
        !dsn.contains("Patient has condition X"),
        "the body must not be returned"
    );
    assert!(
        !dsn.contains("\r\nInjected: yes"),
        "diagnostics cannot inject header lines"
    );
    assert!(
        !dsn.replace("\r\n", "").contains('\n') && !dsn.replace("\r\n", "").contains('\r'),
        "CRLF only"
    );
    assert!(dsn.contains("Auto-Submitted: auto-replied\r\n"));
}

/// Python's `email` package, written by others, must read it as a delivery-status report.
fn python_parses(dsn: &[u8], expect_action: &str) {
    let script = r#"
import email, sys, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
parts = list(m.iter_parts())
assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status", "text/rfc822-headers"], [p.get_content_type() for p in parts]
blocks = parts[1].get_payload()
per_msg, *per_rcpt = blocks
assert per_msg["Reporting-MTA"] == "dns; relay.clinic.example", per_msg["Reporting-MTA"]
got = [(b["Final-Recipient"], b["Action"], b["Status"]) for b in per_rcpt]
print(got)
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dsn)
        .expect("write");
    let out = child.wait_with_output().expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python could not parse the DSN: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = if expect_action == "failed" {
        "5.0.0"
    } else {
        "4.0.0"
    };
    let expected = format!(
        "[('rfc822; jane@example.org', '{expect_action}', '5.1.1'), ('rfc822; bob@example.net', '{expect_action}', '{status}')]"
    );
    assert_eq!(text.trim(), expected);
}

#[test]
fn python_email_reads_a_failure_report_per_recipient() {
    python_parses(&sample(DsnKind::Failure), "failed");
}

#[test]
fn python_email_reads_a_delay_report_per_recipient() {
    python_parses(&sample(DsnKind::Delay), "delayed");
}

#[test]
fn local_reasons_carry_their_own_status_and_diagnostic_type() {
    assert_eq!(
        status_of("5.6.7 message needs SMTPUTF8", DsnKind::Failure),
        "5.6.7"
    );
    assert_eq!(diagnostic_type("550 5.1.1 no such user"), "smtp");
    assert_eq!(
        diagnostic_type("5.6.7 message needs SMTPUTF8"),
        "X-Sealgate"
    );
}

#[test]
fn a_utf8_recipient_gets_the_rfc_6533_global_types() {
    let rcpts = [DsnRecipient {
        recipient: "jöe@example.test".into(),
        diagnostic: "5.6.7 message needs SMTPUTF8".into(),
        remote_mta: None,
    }];
    let t = DateTime::from_timestamp(0, 0).expect("time");
    let dsn = build_dsn(&DsnInput {
        kind: DsnKind::Failure,
        reporting_mta: "relay.example",
        queue_id: "q",
        arrival: t,
        now: t,
        to: "ehr@clinic.example",
        recipients: &rcpts,
        original: b"Subject: x\r\n\r\nbody\r\n",
        unique: "u",
    });
    let dsn = String::from_utf8(dsn).expect("utf-8");
    assert!(
        dsn.contains("Content-Type: message/global-delivery-status\r\n"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: utf-8; jöe@example.test\r\n"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.6.7\r\n"), "{dsn}");
    assert!(dsn.contains("Diagnostic-Code: X-Sealgate; 5.6.7"), "{dsn}");
    assert!(
        dsn.contains("Content-Type: message/global-headers\r\n"),
        "{dsn}"
    );
}
