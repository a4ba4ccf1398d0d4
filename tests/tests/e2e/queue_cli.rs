//! The operator's queue commands against a running relay — `queue list`, `show`, `retry` and
//! `bounce` — asserting on what they print and on the rows and audit events they leave; and the
//! SMTPUTF8 rule in delivery (RFC 6531 §3.4): a message that needs it, to a peer that does not
//! offer it, bounces with a DSN that says so, instead of being sent in a form the peer refuses.

use std::net::SocketAddr;
use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smtp_sink::{SinkOptions, SinkScript, SmtpSink};
use sealgate_tests::{CliRun as Run, Daemon, DaemonOpts, RawSmtp, py_send};
use sealgate_types::RecipientState;
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db};
use crate::lab::{Lab, eventually, kinds_for};

const WAIT: Duration = Duration::from_secs(30);
/// Who runs the commands: `sealgate` names the operator from `SUDO_USER` first.
const OPERATOR: &str = "queue-e2e-operator";
/// A line of every body `send.py --size N` pads; it must never show in `queue show` or a DSN.
const BODY_TEXT: &str = "The quick brown fox";
const SENDER: &str = "ehr@clinic.test";

/// `sealgate queue ARGS...` with the daemon's config.
fn queue(d: &Daemon, args: &[&str]) -> Run {
    let mut all = vec!["queue"];
    all.extend_from_slice(args);
    Run::of(d.cli(all))
}

/// `queue ARGS...`, which must exit 0.
pub(crate) fn queue_ok(d: &Daemon, args: &[&str]) -> Run {
    let run = queue(d, args);
    assert_eq!(run.code, Some(0), "queue {args:?}\n{}", run.describe());
    run
}

/// A relay that accepts but does not deliver (the harness default): messages stay waiting.
fn holding_relay(db_url: &str) -> Daemon {
    Daemon::start(DaemonOpts {
        env: vec![("SUDO_USER".to_owned(), OPERATOR.to_owned())],
        ..DaemonOpts::with_db(db_url)
    })
}

/// One message from `from` to `to`, padded so its body holds [`BODY_TEXT`]; returns its id.
fn send(d: &Daemon, from: &str, to: &[&str]) -> String {
    let mut args = vec!["--from", from, "--size", "2000"];
    for rcpt in to {
        args.extend(["--to", rcpt]);
    }
    let sent = py_send(d.addr("starttls"), &args);
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

/// (message id, recipient) of every queued recipient.
fn queued(db: &Inspect) -> Vec<(String, String)> {
    db.recipients_in(Some(RecipientState::Queued))
        .into_iter()
        .map(|r| (r.message_id, r.rcpt))
        .collect()
}

/// The (id, state, recipient) columns of `queue list` lines.
fn listed(run: &Run) -> Vec<(String, String, String)> {
    run.lines()
        .iter()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert!(cols.len() >= 5, "short line {line:?}\n{}", run.describe());
            (cols[0].to_owned(), cols[1].to_owned(), cols[4].to_owned())
        })
        .collect()
}

/// The words of each line between `recipients:` and `audit:` in `queue show`.
fn shown_recipients(run: &Run) -> Vec<Vec<&str>> {
    run.stdout
        .lines()
        .skip_while(|l| *l != "recipients:")
        .skip(1)
        .take_while(|l| *l != "audit:")
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn triple(id: &str, state: &str, rcpt: &str) -> (String, String, String) {
    (id.to_owned(), state.to_owned(), rcpt.to_owned())
}

fn states(rcpts: &[(&str, &str)]) -> Vec<(String, String)> {
    rcpts
        .iter()
        .map(|(r, s)| ((*r).to_owned(), (*s).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// list and show

fn list_and_show_report_waiting_recipients_without_the_content(backend: TestBackend) {
    let db = fresh_db(backend);
    let relay = holding_relay(&db.url);
    let first = send(&relay, SENDER, &["jane@example.test", "joe@example.test"]);
    let second = send(&relay, SENDER, &["ann@example.test"]);

    let all = queue_ok(&relay, &["list"]);
    assert_eq!(
        listed(&all),
        [
            triple(&first, "queued", "jane@example.test"),
            triple(&first, "queued", "joe@example.test"),
            triple(&second, "queued", "ann@example.test"),
        ],
        "{}",
        all.describe()
    );
    assert!(
        all.lines().iter().all(|l| l.contains(" attempts=0 ")),
        "{}",
        all.describe()
    );
    let delivered = queue_ok(&relay, &["list", "--state", "delivered"]);
    assert_eq!(
        delivered.lines(),
        Vec::<&str>::new(),
        "{}",
        delivered.describe()
    );
    let oldest = queue_ok(&relay, &["list", "--state", "queued", "-n", "1"]);
    assert_eq!(
        listed(&oldest),
        [triple(&first, "queued", "jane@example.test")]
    );
    let bad = queue(&relay, &["list", "--state", "lost"]);
    assert_ne!(bad.code, Some(0), "{}", bad.describe());
    assert!(bad.stderr.contains("--state"), "{}", bad.describe());

    let show = queue_ok(&relay, &["show", &first]);
    let out = &show.stdout;
    for expected in [
        format!("message   {first}"),
        format!("sender    <{SENDER}>"),
    ] {
        assert!(
            out.contains(&expected),
            "no {expected:?}\n{}",
            show.describe()
        );
    }
    assert_eq!(
        shown_recipients(&show),
        [
            ["queued", "attempts=0", "jane@example.test"],
            ["queued", "attempts=0", "joe@example.test"],
        ],
        "{}",
        show.describe()
    );
    let received: Vec<&str> = show
        .lines()
        .into_iter()
        .filter(|l| l.contains(" received ") && l.contains(&format!("msg={first}")))
        .collect();
    assert_eq!(received.len(), 1, "{}", show.describe());
    assert!(
        !out.contains(&second) && !out.contains("ann@example.test"),
        "another message's rows leaked into show\n{}",
        show.describe()
    );
    assert!(
        !out.contains(BODY_TEXT) && !out.contains("Test message 0"),
        "queue show must never print the content\n{}",
        show.describe()
    );

    let missing = queue(&relay, &["show", "0190aaaa-0000-7000-8000-000000000000"]);
    assert_eq!(missing.code, Some(1), "{}", missing.describe());
    assert!(
        missing.stderr.contains("no message"),
        "{}",
        missing.describe()
    );
}

on_both_backends!(list_and_show_report_waiting_recipients_without_the_content);

// ---------------------------------------------------------------------------------------------
// retry

#[test]
fn queue_retry_makes_a_deferred_recipient_due_now() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let mx = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().data_replies(["451 4.3.0 later", "250 2.0.0 ok"]),
    );
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_retrying(&db.url, "1h");
    let id = send(&daemon, SENDER, &["jane@example.test"]);
    let rows = Inspect::new(daemon.db_url(), None);
    eventually(WAIT, "the first attempt to be deferred", || {
        rows.recipients(&id) == states(&[("jane@example.test", "deferred")])
    });
    let waiting = queue_ok(&daemon, &["list", "--state", "deferred"]);
    assert_eq!(
        listed(&waiting),
        [triple(&id, "deferred", "jane@example.test")]
    );
    assert!(
        waiting.stdout.contains("451 4.3.0 later"),
        "{}",
        waiting.describe()
    );

    let retry = queue_ok(&daemon, &["retry", &id]);
    assert!(
        retry
            .stdout
            .contains(&format!("{id} jane@example.test: due now")),
        "{}",
        retry.describe()
    );
    // The deferral asked for an hour; only the operator's retry can make this quick.
    eventually(
        Duration::from_secs(10),
        "delivery after queue retry",
        || rows.recipients(&id) == states(&[("jane@example.test", "delivered")]),
    );
    assert_eq!(
        kinds_for(&rows, &id, "jane@example.test"),
        [
            "received",
            "decision",
            "attempt",
            "deferred",
            "retry_requested",
            "decision",
            "attempt",
            "delivered"
        ]
    );
    let requested = rows
        .audit()
        .into_iter()
        .find(|e| e.kind == "retry_requested")
        .expect("retry_requested event");
    let data: Value = serde_json::from_str(&requested.data).expect("json");
    assert!(
        data["operator"].as_str().is_some_and(|o| !o.is_empty()),
        "retry_requested names who asked: {data}"
    );
    assert_eq!(mx.received().len(), 1, "one accepted delivery");

    let again = queue(&daemon, &["retry", &id]);
    assert_eq!(again.code, Some(1), "{}", again.describe());
    assert!(
        again.stderr.contains("no waiting recipients"),
        "{}",
        again.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// bounce

/// The `DSN <id> queued to <sender>` line of `queue bounce`.
fn dsn_id(run: &Run) -> String {
    let line = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with("DSN "))
        .unwrap_or_else(|| panic!("no DSN line\n{}", run.describe()))
        .to_owned();
    assert!(line.ends_with(&format!("queued to <{SENDER}>")), "{line}");
    line.split_whitespace().nth(1).expect("DSN id").to_owned()
}

fn queue_bounce_gives_up_with_a_dsn_from_the_null_sender(backend: TestBackend) {
    let db = fresh_db(backend);
    let relay = holding_relay(&db.url);
    let id = send(&relay, SENDER, &["jane@example.test", "joe@example.test"]);
    let rows = Inspect::new(relay.db_url(), Some(&relay.data_dir().join("seal.key")));
    let more = Inspect::new(relay.db_url(), None);
    assert_eq!(rows.message_count(), 1);

    let bounce = queue_ok(&relay, &["bounce", &id]);
    for rcpt in ["jane@example.test", "joe@example.test"] {
        let line = format!("{id} {rcpt}: bounced");
        assert!(bounce.stdout.contains(&line), "{}", bounce.describe());
    }
    assert_eq!(
        rows.recipients(&id),
        states(&[
            ("jane@example.test", "bounced"),
            ("joe@example.test", "bounced")
        ])
    );
    let bounced: Vec<(String, Value)> = rows
        .audit()
        .into_iter()
        .filter(|e| e.kind == "bounced" && e.message_id.as_deref() == Some(id.as_str()))
        .map(|e| {
            let data = serde_json::from_str(&e.data).expect("json");
            (e.recipient.unwrap_or_default(), data)
        })
        .collect();
    let who: Vec<&str> = bounced.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(who, ["jane@example.test", "joe@example.test"]);
    for (rcpt, data) in &bounced {
        let reason = data["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(OPERATOR), "{rcpt}: {data}");
    }

    let dsn = dsn_id(&bounce);
    assert_eq!(rows.message_count(), 2, "the DSN is queued");
    assert_eq!(
        more.message(&dsn).sender,
        "",
        "DSNs go from the null sender"
    );
    assert_eq!(rows.recipients(&dsn), states(&[(SENDER, "queued")]));
    assert_eq!(queued(&more), [(dsn.clone(), SENDER.to_owned())]);
    let report = rows.body(&dsn);
    for rcpt in ["jane@example.test", "joe@example.test"] {
        let field = format!("Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\n");
        assert!(report.contains(&field), "no {field:?} in\n{report}");
    }
    assert!(!report.contains(BODY_TEXT), "a DSN must not carry the body");
    let show = queue_ok(&relay, &["show", &dsn]);
    assert!(show.stdout.contains("sender    <>"), "{}", show.describe());

    let again = queue(&relay, &["bounce", &id]);
    assert_eq!(again.code, Some(1), "{}", again.describe());
    assert!(
        again.stderr.contains("no waiting recipients"),
        "{}",
        again.describe()
    );
    assert_eq!(rows.message_count(), 2, "no second DSN");
}

on_both_backends!(queue_bounce_gives_up_with_a_dsn_from_the_null_sender);

#[test]
fn queue_bounce_of_a_null_sender_message_queues_no_dsn() {
    let db = fresh_db(TestBackend::Sqlite);
    let relay = holding_relay(&db.url);
    let id = send(&relay, "", &["jane@example.test"]);
    let rows = Inspect::new(relay.db_url(), None);
    assert_eq!(Inspect::new(relay.db_url(), None).message(&id).sender, "");

    let bounce = queue_ok(&relay, &["bounce", &id]);
    assert!(
        bounce.stdout.contains("null sender: no DSN"),
        "{}",
        bounce.describe()
    );
    assert!(
        bounce
            .stdout
            .contains(&format!("{id} jane@example.test: bounced")),
        "{}",
        bounce.describe()
    );
    assert_eq!(
        rows.recipients(&id),
        states(&[("jane@example.test", "bounced")])
    );
    assert_eq!(
        kinds_for(&rows, &id, "jane@example.test"),
        ["received", "bounced"]
    );
    assert_eq!(rows.message_count(), 1, "no bounce of a bounce");
}

// ---------------------------------------------------------------------------------------------
// SMTPUTF8 in delivery

/// example.test's MX on 127.0.0.5 and the sender's domain clinic.test's MX on 127.0.0.6.
fn utf8_lab() -> Lab {
    Lab::new(&[
        ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n"),
        ("clinic.test", "@ IN MX 10 mx\nmx IN A 127.0.0.6\n"),
    ])
}

/// A plain sink on `ip` of the lab's port that offers SMTPUTF8 or not.
fn sink_offering_smtputf8(lab: &Lab, ip: [u8; 4], smtputf8: bool) -> SmtpSink {
    let mut opts = SinkOptions::new(SocketAddr::from((ip, lab.port)));
    opts.smtputf8 = smtputf8;
    lab.rt.block_on(SmtpSink::start(opts)).expect("start sink")
}

const UTF8_RCPT: &str = "jöe@example.test";

/// Sends one message to [`UTF8_RCPT`] with MAIL ... SMTPUTF8 (smtplib's sendmail in send.py
/// has no way to ask for it); returns the queue id.
fn send_utf8(d: &Daemon) -> String {
    let mut c = RawSmtp::connect(d.addr("starttls"));
    let ehlo = c.cmd("EHLO client.example.test");
    assert!(
        ehlo.lines.iter().any(|l| l == "SMTPUTF8"),
        "{}",
        c.transcript()
    );
    let steps = [
        (format!("MAIL FROM:<{SENDER}> SMTPUTF8"), 250),
        (format!("RCPT TO:<{UTF8_RCPT}>"), 250),
        ("DATA".to_owned(), 354),
    ];
    for (line, code) in &steps {
        let reply = c.cmd(line);
        assert_eq!(reply.code, *code, "{line}\n{}", c.transcript());
    }
    let message = format!(
        "From: <{SENDER}>\r\nTo: <{UTF8_RCPT}>\r\nSubject: Befund\r\n\
         Message-ID: <utf8.1@clinic.test>\r\n\r\nHallo J\u{f6}e.\r\n.\r\n"
    );
    c.send(message.as_bytes());
    let done = c
        .reply()
        .unwrap_or_else(|| panic!("no reply after DATA\n{}", c.transcript()));
    assert_eq!(done.code, 250, "{}", c.transcript());
    c.cmd("QUIT");
    done.text()
        .split("queued as ")
        .nth(1)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no queue id in {:?}", done.text()))
}

#[test]
fn a_utf8_address_to_a_peer_without_smtputf8_bounces_with_a_dsn_saying_so() {
    let lab = utf8_lab();
    let mx = sink_offering_smtputf8(&lab, [127, 0, 0, 5], false);
    let clinic = lab.sink([127, 0, 0, 6], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_utf8(&daemon);

    assert!(
        lab.rt.block_on(clinic.wait_for(1, WAIT)),
        "no DSN arrived\n{}",
        daemon.output_report()
    );
    assert!(mx.connections() > 0, "the MX was never asked");
    assert_eq!(
        mx.received(),
        [],
        "nothing may reach a peer without SMTPUTF8"
    );
    assert!(
        !mx.commands().iter().any(|c| c.starts_with("MAIL")),
        "the transaction must not even start: {:?}",
        mx.commands()
    );
    let rows = Inspect::new(daemon.db_url(), None);
    eventually(WAIT, "the bounce to be recorded", || {
        kinds_for(&rows, &id, UTF8_RCPT).last().map(String::as_str) == Some("bounced")
    });
    assert_eq!(
        kinds_for(&rows, &id, UTF8_RCPT),
        ["received", "decision", "attempt", "bounced"]
    );
    assert_eq!(rows.recipients(&id), states(&[(UTF8_RCPT, "bounced")]));

    let dsn = &clinic.received()[0];
    assert_eq!(
        (dsn.mail_from.as_str(), dsn.rcpts.clone()),
        ("", vec![SENDER.to_owned()]),
        "DSNs go from the null sender"
    );
    let text = String::from_utf8_lossy(&dsn.data);
    let diagnostic = text
        .lines()
        .find(|l| l.starts_with("Diagnostic-Code:"))
        .unwrap_or_else(|| panic!("no Diagnostic-Code in the DSN\n{text}"));
    assert!(
        diagnostic.to_ascii_uppercase().contains("SMTPUTF8"),
        "the DSN must say why: {diagnostic}\n{text}"
    );
    assert!(text.contains("Action: failed"), "{text}");
    assert!(!text.contains("Hallo J"), "a DSN must not carry the body");
    assert_eq!(mx.violations(), Vec::<String>::new());
}

#[test]
fn a_utf8_address_to_a_peer_with_smtputf8_arrives_intact() {
    let lab = utf8_lab();
    let mx = sink_offering_smtputf8(&lab, [127, 0, 0, 5], true);
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let id = send_utf8(&daemon);

    assert!(
        lab.rt.block_on(mx.wait_for(1, WAIT)),
        "nothing arrived\n{}",
        daemon.output_report()
    );
    let got = &mx.received()[0];
    assert_eq!(got.rcpts, [UTF8_RCPT], "the address is sent as UTF-8");
    assert_eq!(got.mail_from, SENDER);
    assert!(
        got.mail_params.iter().any(|p| p == "SMTPUTF8"),
        "MAIL asks for SMTPUTF8: {:?}",
        got.mail_params
    );
    let data = String::from_utf8(got.data.clone()).expect("UTF-8 message");
    assert!(data.contains(&format!("To: <{UTF8_RCPT}>\r\n")), "{data}");
    assert!(data.contains("Hallo J\u{f6}e."), "{data}");
    let rows = Inspect::new(daemon.db_url(), None);
    eventually(WAIT, "the delivered event", || {
        kinds_for(&rows, &id, UTF8_RCPT).last().map(String::as_str) == Some("delivered")
    });
    assert_eq!(rows.recipients(&id), states(&[(UTF8_RCPT, "delivered")]));
    assert_eq!(mx.violations(), Vec::<String>::new());
}
