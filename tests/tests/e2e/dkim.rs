//! DKIM signing checked by dkimpy, with the public keys served by the lab's DNS server: keys
//! made by `sealgate dkim keygen` (rsa-sha256 and ed25519-sha256 for one domain: dual
//! signing), a delivered message and a DSN signed, a domain without a key sent unsigned with
//! the decision saying so, and `sealgate dkim check` comparing DNS with the keys.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::{Daemon, py_send, sealgate_bin};
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db};
use crate::lab::{Lab, eventually};
use crate::trail::first;

const WAIT: Duration = Duration::from_secs(30);

/// `sealgate dkim keygen`: the key file and the TXT record's text (between its quotes).
pub(crate) fn keygen(
    dir: &Path,
    domain: &str,
    selector: &str,
    algorithm: &str,
) -> (String, String) {
    let out = dir.join(format!("{selector}.pem"));
    let run = Command::new(sealgate_bin())
        .args([
            "dkim",
            "keygen",
            domain,
            "--selector",
            selector,
            "--algorithm",
            algorithm,
            "--out",
        ])
        .arg(&out)
        .current_dir(dir)
        .env_remove("SEALGATE_CONFIG")
        .output()
        .expect("run sealgate dkim keygen");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{selector}._domainkey.{domain}. IN TXT ")))
        .unwrap_or_else(|| panic!("no record in:\n{stdout}"));
    let record = line
        .split_once('"')
        .expect("quoted")
        .1
        .trim_end_matches('"')
        .to_owned();
    assert!(
        stdout.contains(&format!("key_file = \"{}\"", out.display())),
        "{stdout}"
    );
    (out.display().to_string(), record)
}

/// A zone line publishing `record` at `name`, in strings of at most 255 characters.
pub(crate) fn txt(name: &str, record: &str) -> String {
    let strings: Vec<String> = record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{name} IN TXT {}\n", strings.join(" "))
}

pub(crate) fn dkim_key(domain: &str, selector: &str, algorithm: &str, file: &str) -> String {
    format!(
        "[[dkim.key]]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nalgorithm = \"{algorithm}\"\nkey_file = \"{file}\"\n"
    )
}

/// dkimpy's verdict on `message`, keys looked up at `dns`.
pub(crate) fn dkimpy(dns: std::net::SocketAddr, message: &[u8]) -> (bool, Vec<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).expect("write message");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/dkim_verify.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args(["--dns", &dns.to_string()])
        .arg(&file)
        .output()
        .expect("run dkim_verify.py (Debian package python3-dkim)");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let sigs = report["signatures"].as_array().cloned().unwrap_or_default();
    (out.status.success(), sigs)
}

pub(crate) fn evidence_mentions(decision: &Value, text: &str) -> bool {
    decision["evidence"]
        .as_array()
        .is_some_and(|e| e.iter().any(|v| v.as_str() == Some(text)))
}

#[test]
fn sent_mail_and_dsns_carry_dkim_signatures_dkimpy_verifies() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (rsa_file, rsa) = keygen(keys.path(), "clinic.test", "rsa2026", "rsa-sha256");
    let (ed_file, ed) = keygen(keys.path(), "clinic.test", "ed2026", "ed25519-sha256");
    let (dsn_file, dsn) = keygen(keys.path(), "relay.example.test", "r1", "rsa-sha256");
    let lab = Lab::new(&[
        ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n"),
        (
            "clinic.test",
            &format!(
                "@ IN MX 10 mx1\nmx1 IN A 127.0.0.6\n{}{}",
                txt("rsa2026._domainkey", &rsa),
                txt("ed2026._domainkey", &ed)
            ),
        ),
        ("relay.example.test", &txt("r1._domainkey", &dsn)),
    ]);
    let far = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().reject_rcpt("nobody@example.test", "550 5.1.1 no such user"),
    );
    let clinic = lab.sink([127, 0, 0, 6], SinkScript::default());
    let store = fresh_db(TestBackend::Sqlite);
    let extra = format!(
        "{}{}{}",
        dkim_key("clinic.test", "rsa2026", "rsa-sha256", &rsa_file),
        dkim_key("clinic.test", "ed2026", "ed25519-sha256", &ed_file),
        dkim_key("relay.example.test", "r1", "rsa-sha256", &dsn_file),
    );
    let daemon = lab.daemon_with(&store.url, "1s", &extra);
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));

    // A message from the clinic: two signatures, both valid.
    let signed = send(&daemon, "ehr@clinic.test", "jane@example.test");
    eventually(WAIT, "the signed message at the far side", || {
        !far.received().is_empty()
    });
    let arrived = far.received()[0].data.clone();
    let (ok, sigs) = dkimpy(lab.dns.addr, &arrived);
    assert!(
        ok,
        "dkimpy: {sigs:?}\n{}",
        String::from_utf8_lossy(&arrived)
    );
    let algorithms: Vec<&str> = sigs.iter().filter_map(|s| s["a"].as_str()).collect();
    assert_eq!(algorithms, ["rsa-sha256", "ed25519-sha256"], "{sigs:?}");
    assert!(sigs.iter().all(|s| s["d"] == "clinic.test"), "{sigs:?}");
    let decision = first(&db, &signed, "decision");
    assert!(
        evidence_mentions(&decision, "dkim: signed d=clinic.test s=rsa2026,ed2026"),
        "{decision}"
    );
    // The oracle is real: a changed body fails.
    let mut tampered = arrived.clone();
    let at = tampered.len() - 4;
    tampered[at] ^= 0x01;
    assert!(
        !dkimpy(lab.dns.addr, &tampered).0,
        "a changed body still verified"
    );

    // A domain without a key: unsigned, and the decision says so.
    let unsigned = send(&daemon, "billing@other.test", "jane@example.test");
    eventually(WAIT, "the unsigned message", || far.received().len() >= 2);
    let plain = far.received()[1].data.clone();
    assert!(!String::from_utf8_lossy(&plain).contains("DKIM-Signature"));
    let decision = first(&db, &unsigned, "decision");
    assert!(
        evidence_mentions(&decision, "dkim: unsigned (no key for other.test)"),
        "{decision}"
    );

    // A DSN (from MAILER-DAEMON@relay.example.test) to the clinic: signed by the relay's key.
    send(&daemon, "ehr@clinic.test", "nobody@example.test");
    eventually(WAIT, "the DSN at the clinic", || {
        !clinic.received().is_empty()
    });
    let dsn_msg = clinic.received()[0].data.clone();
    let (ok, sigs) = dkimpy(lab.dns.addr, &dsn_msg);
    assert!(
        ok,
        "dkimpy on the DSN: {sigs:?}\n{}",
        String::from_utf8_lossy(&dsn_msg)
    );
    assert_eq!(sigs[0]["d"], "relay.example.test");

    // `sealgate dkim check` compares what DNS publishes with the keys.
    let check = daemon.cli(["dkim", "check", "clinic.test"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(said.matches("ok ").count(), 2, "{said}");
}

fn send(daemon: &Daemon, from: &str, to: &str) -> String {
    let sent = py_send(daemon.addr("starttls"), &["--from", from, "--to", to]);
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

#[test]
fn dkim_check_names_a_key_dns_does_not_publish() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (file, _) = keygen(keys.path(), "clinic.test", "new", "ed25519-sha256");
    let (_, other) = keygen(keys.path(), "clinic.test", "old", "ed25519-sha256");
    // DNS publishes another key under the selector.
    let lab = Lab::new(&[("clinic.test", &txt("new._domainkey", &other))]);
    let store = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(
        &store.url,
        "1s",
        &dkim_key("clinic.test", "new", "ed25519-sha256", &file),
    );
    let check = daemon.cli(["dkim", "check", "clinic.test"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(
        said.contains("PROBLEM  new._domainkey.clinic.test (ed25519-sha256): p= is another key"),
        "{said}"
    );
    assert!(
        said.contains("publish: new._domainkey.clinic.test. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{said}"
    );
}

/// The record `sealgate dkim keygen --store` printed (between its quotes).
fn printed_record(out: &std::process::Output, name: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}. IN TXT ")))
        .unwrap_or_else(|| panic!("no record in:\n{stdout}"));
    line.split_once('"')
        .expect("quoted")
        .1
        .trim_end_matches('"')
        .to_owned()
}

#[test]
fn a_key_stored_in_the_database_signs_after_a_reload_and_stops_when_removed() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let far = lab.sink([127, 0, 0, 5], SinkScript::default());
    let store = fresh_db(TestBackend::Postgres);
    let daemon = lab.daemon_with(&store.url, "1s", "");
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));

    // Stored, not in a file: the database holds it sealed, and the audit log says who.
    let made = daemon.cli([
        "dkim",
        "keygen",
        "clinic.test",
        "--selector",
        "db2026",
        "--algorithm",
        "ed25519-sha256",
        "--store",
    ]);
    let record = printed_record(&made, "db2026._domainkey.clinic.test");
    let again = daemon.cli([
        "dkim",
        "keygen",
        "clinic.test",
        "--selector",
        "db2026",
        "--store",
    ]);
    assert!(!again.status.success(), "a second key under one selector");
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("already has a stored key under selector db2026"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let listed = daemon.cli(["dkim", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["clinic.test", "db2026", "ed25519-sha256", "database"]),
        "{listed}"
    );
    let added: Vec<Value> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "dkim_key_added")
        .map(|e| serde_json::from_str(&e.data).expect("audit data is JSON"))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0]["selector"], "db2026");
    // The private key is not in the database in the clear.
    let raw = std::process::Command::new("psql")
        .arg(daemon.db_url())
        .args([
            "-At",
            "-c",
            "SELECT encode(key_sealed, 'escape') FROM dkim_keys",
        ])
        .output()
        .expect("psql");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert!(!String::from_utf8_lossy(&raw.stdout).contains("PRIVATE KEY"));

    // A reload picks the key up; the next message is signed with it.
    daemon.signal("HUP");
    daemon.wait_for_log(WAIT, |v| {
        v.pointer("/fields/message")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            == Some("configuration reloaded")
    });
    let signed = send(&daemon, "ehr@clinic.test", "jane@example.test");
    eventually(WAIT, "the signed message", || !far.received().is_empty());
    let arrived = far.received()[0].data.clone();
    // dkimpy looks the key up at a DNS server that publishes the printed record.
    let published = Lab::new(&[("clinic.test", &txt("db2026._domainkey", &record))]);
    let (ok, sigs) = dkimpy(published.dns.addr, &arrived);
    assert!(
        ok,
        "dkimpy: {sigs:?}\n{}",
        String::from_utf8_lossy(&arrived)
    );
    assert_eq!(sigs[0]["s"], "db2026");
    let decision = first(&db, &signed, "decision");
    assert!(
        evidence_mentions(&decision, "dkim: signed d=clinic.test s=db2026"),
        "{decision}"
    );
    let check = daemon.cli(["dkim", "check", "clinic.test"]);
    assert_eq!(check.status.code(), Some(1), "lab DNS does not publish it");
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("PROBLEM  db2026._domainkey.clinic.test"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Removed and reloaded: no longer signed, and the decision says so.
    let removed = daemon.cli(["dkim", "remove", "clinic.test", "--selector", "db2026"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    daemon.signal("HUP");
    eventually(WAIT, "the second reload", || {
        daemon
            .log_events()
            .iter()
            .filter(|v| {
                v.pointer("/fields/message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    == Some("configuration reloaded")
            })
            .count()
            >= 2
    });
    let unsigned = send(&daemon, "ehr@clinic.test", "jane@example.test");
    eventually(WAIT, "the unsigned message", || far.received().len() >= 2);
    assert!(!String::from_utf8_lossy(&far.received()[1].data).contains("DKIM-Signature"));
    // No key is left at all, so signing is off, as with no key configured: no dkim line.
    let decision = first(&db, &unsigned, "decision");
    assert!(
        !decision["evidence"].as_array().is_some_and(|e| e
            .iter()
            .any(|v| v.as_str().is_some_and(|t| t.starts_with("dkim:")))),
        "{decision}"
    );
    let gone = daemon.cli(["dkim", "remove", "clinic.test", "--selector", "db2026"]);
    assert_eq!(gone.status.code(), Some(1));
}
