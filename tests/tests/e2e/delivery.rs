//! Delivery end to end: Python smtplib → Sealgate → real peers on loopback found through a real
//! DNS server — Postfix as a recipient domain's MX, and scripted SMTP sinks for the failure
//! cases — asserting on what arrived at the peers and on the audit trail.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::postfix::{PostfixMx, PostfixOpts};
use sealgate_testkit::smtp_sink::{SinkScript, Stall};
use sealgate_tests::{Daemon, py_send};
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db};
use crate::lab::{Lab, eventually, kinds_for};

const WAIT: Duration = Duration::from_secs(30);

fn inspect(d: &Daemon) -> Inspect {
    Inspect::new(d.db_url(), Some(&d.data_dir().join("seal.key")))
}

fn send_one(d: &Daemon, from: &str, to: &str) -> String {
    let sent = py_send(
        d.addr("starttls"),
        &["--from", from, "--to", to, "--size", "3000"],
    );
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

fn attempts(db: &Inspect, msg: &str) -> Vec<Value> {
    db.audit()
        .into_iter()
        .filter(|e| e.kind == "attempt" && e.message_id.as_deref() == Some(msg))
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect()
}

fn messages_reach_a_real_postfix_mx_unchanged_with_the_audit_trail(backend: TestBackend) {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let postfix = PostfixMx::start(PostfixOpts::new(
        SocketAddr::from(([127, 0, 0, 5], lab.port)),
        &["example.test"],
    ));
    let db = fresh_db(backend);
    let daemon = lab.daemon(&db.url);
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");

    let delivered = postfix.wait_for_messages(1, WAIT);
    let stored = inspect(&daemon).body(&id);
    let arrived = String::from_utf8_lossy(&delivered[0]).into_owned();
    // Postfix stores with LF line endings and prepends its own trace headers.
    let expected = stored.replace("\r\n", "\n");
    assert!(
        arrived.ends_with(&expected),
        "body changed in transit\narrived:\n{arrived}\nsent:\n{expected}"
    );
    assert!(
        arrived.contains("by relay.example.test (Sealgate) with ESMTP"),
        "{arrived}"
    );
    assert!(
        arrived.contains("Delivered-To: jane@example.test"),
        "{arrived}"
    );

    let db = inspect(&daemon);
    eventually(WAIT, "the delivered event", || {
        kinds_for(&db, &id, "jane@example.test")
            .last()
            .is_some_and(|k| k == "delivered")
    });
    assert_eq!(
        kinds_for(&db, &id, "jane@example.test"),
        ["received", "decision", "attempt", "delivered"]
    );
    let a = &attempts(&db, &id)[0];
    assert_eq!(
        (a["mx"].as_str(), a["ip"].as_str(), a["reply_code"].as_u64()),
        (Some("mx1.example.test"), Some("127.0.0.5"), Some(250)),
        "{a}"
    );
    assert_eq!(
        db.recipients(&id),
        [("jane@example.test".to_owned(), "delivered".to_owned())]
    );
}

on_both_backends!(messages_reach_a_real_postfix_mx_unchanged_with_the_audit_trail);

#[test]
fn an_unreachable_first_mx_fails_over_to_the_next_within_one_attempt() {
    let lab = Lab::new(&[(
        "example.test",
        "@ IN MX 10 mx1\n@ IN MX 20 mx2\nmx1 IN A 127.0.0.6\nmx2 IN A 127.0.0.7\n",
    )]);
    // Nothing listens on 127.0.0.6: connection refused.
    let mx2 = lab.sink([127, 0, 0, 7], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    assert!(
        lab.rt.block_on(mx2.wait_for(1, WAIT)),
        "mx2 received nothing\n{}",
        daemon.output_report()
    );
    let db = inspect(&daemon);
    eventually(WAIT, "delivered", || {
        kinds_for(&db, &id, "jane@example.test").contains(&"delivered".to_owned())
    });
    let a = attempts(&db, &id);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["mx"], "mx2.example.test");
    assert_eq!(mx2.received()[0].rcpts, ["jane@example.test"]);
}

#[test]
fn a_temporary_failure_is_retried_and_then_delivered() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let mx = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().data_replies(["451 4.3.0 try again later", "250 2.0.0 ok"]),
    );
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    let db = inspect(&daemon);
    eventually(WAIT, "delivery after a retry", || {
        kinds_for(&db, &id, "jane@example.test").contains(&"delivered".to_owned())
    });
    assert_eq!(
        kinds_for(&db, &id, "jane@example.test"),
        [
            "received",
            "decision",
            "attempt",
            "deferred",
            "decision",
            "attempt",
            "delivered"
        ]
    );
    let a = attempts(&db, &id);
    assert_eq!(
        (a[0]["outcome"].as_str(), a[0]["reply_code"].as_u64()),
        (Some("temporary"), Some(451))
    );
    assert_eq!(a[1]["outcome"], "delivered");
    assert_eq!(
        mx.received().last().map(|m| m.rcpts.clone()),
        Some(vec!["jane@example.test".to_owned()])
    );
    assert_eq!(db.recipients(&id)[0].1, "delivered");
}

/// Python's `email` package reads a DSN and returns (Action, Status, Final-Recipient) per recipient.
fn parse_dsn(raw: &[u8]) -> String {
    let script = r#"
import email, sys, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
status = [p for p in m.iter_parts() if p.get_content_type() == "message/delivery-status"][0]
for b in status.get_payload()[1:]:
    print(b["Action"], b["Status"], b["Final-Recipient"])
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
        .write_all(raw)
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "not a delivery-status report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn bounce_lab(extra_zone: &str) -> Lab {
    Lab::new(&[
        (
            "example.test",
            &format!("@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n{extra_zone}"),
        ),
        ("clinic.test", "@ IN MX 10 mx\nmx IN A 127.0.0.6\n"),
        ("nullmx.test", "@ IN MX 0 .\n"),
    ])
}

#[test]
fn a_permanent_failure_bounces_with_a_dsn_the_sender_can_parse() {
    let lab = bounce_lab("");
    let _mx = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().reject_rcpt(
            "nobody@example.test",
            "550 5.1.1 <nobody@example.test>: no such user",
        ),
    );
    let clinic = lab.sink([127, 0, 0, 6], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_one(&daemon, "ehr@clinic.test", "nobody@example.test");
    assert!(
        lab.rt.block_on(clinic.wait_for(1, WAIT)),
        "no DSN arrived\n{}",
        daemon.output_report()
    );
    let dsn = &clinic.received()[0];
    assert_eq!(
        (dsn.mail_from.as_str(), dsn.rcpts.clone()),
        ("", vec!["ehr@clinic.test".to_owned()]),
        "DSNs go from the null sender"
    );
    assert_eq!(
        parse_dsn(&dsn.data),
        "failed 5.1.1 rfc822; nobody@example.test"
    );
    assert!(
        !String::from_utf8_lossy(&dsn.data).contains("The quick brown fox"),
        "a DSN must not carry the body"
    );
    let db = inspect(&daemon);
    assert_eq!(
        kinds_for(&db, &id, "nobody@example.test"),
        ["received", "decision", "attempt", "bounced"]
    );
}

#[test]
fn a_null_mx_domain_bounces_at_once_without_a_connection() {
    let lab = bounce_lab("");
    let clinic = lab.sink([127, 0, 0, 6], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_one(&daemon, "ehr@clinic.test", "anyone@nullmx.test");
    assert!(
        lab.rt.block_on(clinic.wait_for(1, WAIT)),
        "no DSN arrived\n{}",
        daemon.output_report()
    );
    assert_eq!(
        parse_dsn(&clinic.received()[0].data),
        "failed 5.1.10 rfc822; anyone@nullmx.test"
    );
    let db = inspect(&daemon);
    assert_eq!(
        kinds_for(&db, &id, "anyone@nullmx.test"),
        ["received", "attempt", "bounced"]
    );
    let a = &attempts(&db, &id)[0];
    assert!(
        a["reply"].as_str().unwrap_or_default().contains("null MX"),
        "{a}"
    );
    assert!(
        a.get("ip").is_none(),
        "no connection is made to a null-MX domain: {a}"
    );
}

#[test]
fn a_peer_that_never_greets_is_a_read_timeout_and_a_deferral() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let _mx = lab.sink([127, 0, 0, 5], SinkScript::default().stall(Stall::Greeting));
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_retrying(&db.url, "1h");
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    let db = inspect(&daemon);
    eventually(WAIT, "a deferral", || {
        kinds_for(&db, &id, "jane@example.test").contains(&"deferred".to_owned())
    });
    let a = &attempts(&db, &id)[0];
    let reply = a["reply"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(reply.contains("greeting") && reply.contains("time"), "{a}");
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

#[test]
fn a_host_that_never_accepts_the_connection_is_a_connect_timeout_and_a_deferral() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.8\n")]);
    // A listener whose accept queue is full: further SYNs are dropped, so connect() hangs.
    let blocker = BacklogFull::start(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 8), lab.port)));
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_retrying(&db.url, "1h");
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    let db = inspect(&daemon);
    eventually(WAIT, "a deferral", || {
        kinds_for(&db, &id, "jane@example.test").contains(&"deferred".to_owned())
    });
    let a = &attempts(&db, &id)[0];
    let reply = a["reply"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(reply.contains("connect") && reply.contains("time"), "{a}");
    drop(blocker);
}

/// A Python listener with a zero backlog whose accept queue is already full.
struct BacklogFull(std::process::Child);

impl BacklogFull {
    fn start(addr: SocketAddr) -> Self {
        let script = format!(
            "import socket, sys, time\ns = socket.socket(); s.bind(('{ip}', {port})); s.listen(0)\n\
             held = []\nfor _ in range(4):\n    c = socket.socket(); c.setblocking(False)\n    \
             try: c.connect(('{ip}', {port}))\n    except BlockingIOError: pass\n    held.append(c)\n\
             time.sleep(0.5)\nprint('ready', flush=True)\ntime.sleep(120)\n",
            ip = addr.ip(),
            port = addr.port()
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready");
        assert_eq!(line.trim(), "ready");
        Self(child)
    }
}

impl Drop for BacklogFull {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_long_delay_warns_the_sender_once_while_retries_go_on() {
    let lab = bounce_lab("");
    let mx = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().reject_rcpt("jane@example.test", "450 4.2.1 mailbox busy"),
    );
    let clinic = lab.sink([127, 0, 0, 6], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(&db.url, "1s", "delay_warning = \"1s\"\n");
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    assert!(
        lab.rt.block_on(clinic.wait_for(1, WAIT)),
        "no delay notice arrived\n{}",
        daemon.output_report()
    );
    assert_eq!(
        parse_dsn(&clinic.received()[0].data),
        "delayed 4.2.1 rfc822; jane@example.test"
    );
    // Retries continue, and no second notice comes.
    let db = inspect(&daemon);
    eventually(WAIT, "three attempts", || attempts(&db, &id).len() >= 3);
    assert_eq!(clinic.received().len(), 1, "the sender is warned once");
    let rcpts = mx
        .commands()
        .iter()
        .filter(|c| c.starts_with("RCPT TO:<jane@example.test>"))
        .count();
    assert!(rcpts >= 3, "each retry reached the MX: {:?}", mx.commands());
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

#[test]
fn starttls_is_used_whenever_the_mx_offers_it_and_the_attempt_records_the_certificate() {
    use sha2::Digest;
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let ca = sealgate_testkit::tls::TestCa::new();
    let issued = ca.issue(&["mx1.example.test"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = issued.write_to(dir.path(), "mx1");
    let mut opts = PostfixOpts::new(
        SocketAddr::from(([127, 0, 0, 5], lab.port)),
        &["example.test"],
    );
    opts.tls = Some((cert, key));
    let postfix = PostfixMx::start(opts);
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    let delivered = postfix.wait_for_messages(1, WAIT);
    let arrived = String::from_utf8_lossy(&delivered[0]).into_owned();
    // Postfix's own Received line says the hop was encrypted.
    assert!(
        arrived.contains("by mx.example.test (Postfix) with ESMTPS"),
        "{arrived}"
    );
    let db = inspect(&daemon);
    eventually(WAIT, "delivered", || {
        kinds_for(&db, &id, "jane@example.test").contains(&"delivered".to_owned())
    });
    let a = &attempts(&db, &id)[0];
    assert_eq!(a["tls_version"], "TLSv1.3", "{a}");
    assert!(
        a["cipher"]
            .as_str()
            .is_some_and(|c| c.starts_with("TLS13_")),
        "{a}"
    );
    let leaf = hex::encode(sha2::Sha256::digest(issued.chain_der()[0].as_ref()));
    assert_eq!(
        a["peer_cert_sha256"].as_str(),
        Some(leaf.as_str()),
        "the certificate Postfix presented"
    );
}

#[test]
fn consecutive_messages_to_one_domain_reuse_connections() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let mx = lab.sink([127, 0, 0, 5], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    for i in 0..30 {
        // One at a time, each in its own claim batch.
        let to = format!("patient{i}@example.test");
        py_send(daemon.addr("starttls"), &["--to", &to]).assert_all_queued();
        let n = i + 1;
        assert!(
            lab.rt.block_on(mx.wait_for(n, WAIT)),
            "message {n} not delivered"
        );
    }
    // At most the per-domain limit of connections, plus one whenever an idle one expired.
    assert!(
        mx.connections() <= 10,
        "{} connections for 30 messages",
        mx.connections()
    );
}

/// `sealgate queue show ID` as text.
fn show(d: &Daemon, id: &str) -> String {
    crate::queue_cli::queue_ok(d, &["show", id]).stdout
}

#[test]
fn a_peer_that_never_answers_the_data_leaves_a_visible_send_then_a_deferral() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let _mx = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().stall(Stall::AfterData),
    );
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_retrying(&db.url, "1h");
    let id = send_one(&daemon, "ehr@clinic.test", "jane@example.test");
    // While the peer holds the data unanswered (the lab's data timeout is 3 s), the operator
    // sees who holds the recipient and that its data is out, outcome unknown.
    let mut text = String::new();
    eventually(WAIT, "the send shown in flight", || {
        text = show(&daemon, &id);
        text.contains("being sent by")
    });
    assert!(text.contains("held by "), "{text}");
    assert!(text.contains("(outcome not recorded yet)"), "{text}");
    let db = inspect(&daemon);
    eventually(WAIT, "a deferral", || {
        kinds_for(&db, &id, "jane@example.test").contains(&"deferred".to_owned())
    });
    let a = &attempts(&db, &id)[0];
    let reply = a["reply"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(
        reply.contains("end of data") && reply.contains("time"),
        "{a}"
    );
    let text = show(&daemon, &id);
    assert!(
        !text.contains("being sent by") && !text.contains("held by"),
        "{text}"
    );
}
