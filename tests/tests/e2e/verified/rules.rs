//! The policy around verified TLS: headers that cannot lower protection, content triggers
//! stripped before sending, the downgrade memory across daemons, and `sealgate check`.

use sealgate_testkit::db::TestBackend;

use super::*;
use crate::inspect::fresh_db;
use crate::lab::spki_sha256;

#[test]
fn a_tls_required_no_header_does_not_release_protected_mail_to_an_unverified_domain() {
    let b = SecureLab::builder();
    let cert = b.issue(&[MX]);
    let lab = b
        .unsigned("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
        .start();
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite(crate::lab::WITHOUT_AUTHENTICATED);
    let id = send(&daemon, RCPT, &["--header", "TLS-Required: No"]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "required", "{decision}");
    assert!(
        mentions(&decision, "evidence", "TLS-Required: No ignored"),
        "{decision}"
    );
    assert!(
        !lines(&decision, "chain")
            .iter()
            .any(|m| m.starts_with("tls-")),
        "{decision}"
    );
    assert_eq!(sink.connections(), 0, "{:?}", sink.commands());
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

#[test]
fn a_subject_tag_and_the_security_header_are_removed_before_the_message_leaves() {
    let (lab, cert) = dane_lab(|_, cert| format!("3 1 1 {}", spki_sha256(cert)));
    let sink = lab.tls_sink(MX_IP, &cert);
    let policy = "default_level = \"none\"\n[policy.content]\nsubject_tags = [\"[secure]\"]\n\
                  header = \"X-Sealgate-Security\"\n";
    let daemon = lab.daemon_on_sqlite(policy);
    let id = send(
        &daemon,
        RCPT,
        &[
            "--subject",
            "[secure] Lab results",
            "--header",
            "X-Sealgate-Security: required",
        ],
    );
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "nothing delivered\n{}",
        daemon.output_report()
    );
    let arrived = String::from_utf8_lossy(&sink.received()[0].data).into_owned();
    let db = inspect(&daemon);
    // The queued copy keeps both; only the copy on the wire loses them.
    let stored = db.body(&id);
    assert!(
        stored.contains("\r\nSubject: [secure] Lab results #0\r\n")
            && stored.contains("\r\nX-Sealgate-Security: required\r\n"),
        "{stored}"
    );
    let expected = stored
        .replace("\r\nX-Sealgate-Security: required\r\n", "\r\n")
        .replace(
            "Subject: [secure] Lab results #0",
            "Subject: Lab results #0",
        );
    assert_eq!(arrived, expected, "only the tag and the header may change");

    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(
        (
            &decision["level"],
            &decision["level_source"],
            &decision["method"]
        ),
        (
            &Value::from("required"),
            &Value::from("content trigger"),
            &Value::from("tls-verified")
        ),
        "{decision}"
    );
    assert!(mentions(&decision, "evidence", "subject tag"), "{decision}");
    assert_eq!(first(&db, &id, "attempt")["verification"], "dane");
}

/// First lab: example.test is DANE-signed and a message is delivered (downgrade memory
/// written). Second lab on the same database: example.test is unsigned, without TLSA.
#[test]
fn a_domain_that_loses_dane_after_a_verified_delivery_raises_a_downgrade_alert_and_gets_nothing() {
    let db = fresh_db(TestBackend::Sqlite);
    delivered_once_over_dane(&db.url);
    let (lab, sink) = lab_after_dane_is_gone();
    let daemon = lab.daemon(&db.url, "");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");

    let decision = first(&db, &id, "decision");
    assert!(
        mentions(&decision, "alerts", "downgrade: example.test"),
        "{decision}"
    );
    assert!(
        mentions(&decision, "evidence", "verified tls seen before: yes"),
        "{decision}"
    );
    assert!(
        !lines(&decision, "chain")
            .iter()
            .any(|m| m.starts_with("tls-")),
        "{decision}"
    );
    let alert = first(&db, &id, "alert");
    assert_eq!(alert["domain"], "example.test", "{alert}");
    assert!(
        alert["alert"]
            .as_str()
            .is_some_and(|a| a.starts_with("downgrade:")),
        "{alert}"
    );
    assert_eq!(sink.connections(), 0, "{:?}", sink.commands());
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

#[test]
fn sealgate_check_explains_the_decision_for_a_dane_domain_and_sends_nothing() {
    let (lab, cert) = dane_lab(|_, cert| format!("3 1 1 {}", spki_sha256(cert)));
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite("");
    let check = |args: &[&str]| {
        let mut all = vec!["check", RCPT];
        all.extend_from_slice(args);
        let run = sealgate_tests::CliRun::of(daemon.cli(all));
        assert_eq!(run.code, Some(0), "{}", run.describe());
        run
    };

    let run = check(&["--json"]);
    let report: Value = serde_json::from_str(&run.stdout).expect("check --json prints JSON");
    assert_eq!(report["address"], RCPT, "{report}");
    assert_eq!(report["route_error"], Value::Null, "{report}");
    assert_eq!(report["decision"]["level"], "required", "{report}");
    assert_eq!(report["decision"]["chain"][0], "tls-verified", "{report}");
    assert!(
        mentions(&report["decision"], "evidence", "dane: valid"),
        "{report}"
    );
    assert_eq!(
        report["hosts"],
        serde_json::json!([[MX, "dane (1 usable TLSA records)"]]),
        "{report}"
    );

    let text = check(&[]).stdout;
    assert!(text.contains("method:    tls-verified\n"), "{text}");
    assert!(
        text.contains("mx:        mx.example.test: dane (1 usable TLSA records)\n"),
        "{text}"
    );

    let run = check(&["--header", "X-Sealgate-Security: portal", "--json"]);
    let report: Value = serde_json::from_str(&run.stdout).expect("check --json prints JSON");
    assert_eq!(report["decision"]["chain"][0], "portal", "{report}");
    assert!(
        mentions(&report["decision"], "evidence", "forces portal"),
        "{report}"
    );

    assert_eq!(sink.connections(), 0, "check must not contact the MX");
    assert_eq!(inspect(&daemon).message_count(), 0);
}
