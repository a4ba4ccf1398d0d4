//! Hostile and malformed SMTP input against the real daemon over TCP, on SQLite and on
//! PostgreSQL: smuggling (CVE-2023-51764 class), over-long lines, oversize messages, too many
//! recipients, relay and re-routing attempts, and the database going away while the relay runs.
//!
//! Every refusal is checked where an operator would look: the reply on the wire, the message
//! rows and the audit log, which must hold nothing for a refused message.
//!
//! [`Relay`] (a daemon on a fresh database plus a read handle on that database) is also used by
//! the `audit_cli` tests.

use std::time::Duration;

use sealgate_store::Store;
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_tests::{Daemon, DaemonOpts, RawSmtp, Reply, Transcript};

use crate::inspect::{Inspect, chain, fresh_db, runtime};

/// A `sealgate serve` on a fresh database, with a store handle to read what it committed.
/// Fields drop in order: the daemon is killed before its database goes away.
pub(crate) struct Relay {
    pub(crate) daemon: Daemon,
    pub(crate) db: Inspect,
    pub(crate) test_db: TestDb,
}

impl Relay {
    /// Starts the daemon on a fresh database of `backend`, with `extra_toml` merged into its
    /// config, and opens a read handle once its migrations ran.
    pub(crate) fn start(backend: TestBackend, extra_toml: &str) -> Relay {
        let test_db = fresh_db(backend);
        let daemon = Daemon::start(DaemonOpts {
            extra_toml: extra_toml.to_owned(),
            ..DaemonOpts::with_db(test_db.url.clone())
        });
        let db = Inspect::new(&test_db.url, None);
        Relay {
            daemon,
            db,
            test_db,
        }
    }

    /// A raw session on the first listener, greeted with EHLO.
    pub(crate) fn session(&self) -> RawSmtp {
        let mut c = RawSmtp::connect(self.daemon.addr("starttls"));
        let ehlo = c.cmd("EHLO client.example.test");
        assert_eq!(ehlo.code, 250, "EHLO\n{}", c.transcript());
        c
    }
}

/// Asserts `reply` has this code and enhanced status code (RFC 3463).
pub(crate) fn assert_reply(reply: &Reply, code: u16, enhanced: &str, what: &str, t: &Transcript) {
    assert_eq!(reply.code, code, "{what}: {}\n{t}", reply.text());
    assert!(
        reply.text().starts_with(enhanced),
        "{what}: expected {code} {enhanced}, got {code} {}\n{t}",
        reply.text()
    );
}

/// Sends a command and asserts its reply.
pub(crate) fn expect(c: &mut RawSmtp, line: &str, code: u16, enhanced: &str) -> Reply {
    let reply = c.cmd(line);
    assert_reply(&reply, code, enhanced, line, c.transcript());
    reply
}

/// MAIL, RCPT for each recipient, DATA: all must succeed (the server is then reading data).
fn begin_data(c: &mut RawSmtp, rcpts: &[&str]) {
    expect(c, "MAIL FROM:<alice@clinic.example.test>", 250, "2.1.0");
    for r in rcpts {
        expect(c, &format!("RCPT TO:<{r}>"), 250, "2.1.5");
    }
    let reply = c.cmd("DATA");
    assert_eq!(reply.code, 354, "DATA\n{}", c.transcript());
}

/// Sends `data` (already ending in CRLF "." CRLF) and returns the reply to it.
pub(crate) fn finish_data(c: &mut RawSmtp, data: &[u8]) -> Reply {
    c.send(data);
    c.reply()
        .unwrap_or_else(|| panic!("no reply after the data\n{}", c.transcript()))
}

/// The queue id from "250 2.0.0 Ok: queued as ID".
pub(crate) fn queue_id(reply: &Reply) -> String {
    let text = reply.text();
    text.split_once("queued as ")
        .map(|(_, id)| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no queue id in {text:?}"))
}

/// Sends one well-formed message and returns its queue id.
fn send_good_message(relay: &Relay, rcpts: &[&str]) -> String {
    let mut c = relay.session();
    begin_data(&mut c, rcpts);
    let reply = finish_data(&mut c, b"Subject: fine\r\n\r\nA normal message.\r\n.\r\n");
    assert_reply(
        &reply,
        250,
        "2.0.0",
        "end of a good message",
        c.transcript(),
    );
    queue_id(&reply)
}

fn assert_nothing_stored(relay: &Relay, what: &str) {
    assert_eq!(
        relay.db.message_count(),
        0,
        "{what}: a message row was written"
    );
    let audit = relay.db.audit();
    assert!(
        audit.is_empty(),
        "{what}: audit rows were written: {audit:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// SMTP smuggling

/// What a smuggler puts after the fake end of data: a whole second transaction.
const SMUGGLED: &[u8] = b"MAIL FROM:<ceo@clinic.example.test>\r\n\
RCPT TO:<victim@example.org>\r\n\
DATA\r\n\
From: <ceo@clinic.example.test>\r\n\
Subject: smuggled\r\n\
\r\n\
Please wire the money.\r\n\
.\r\n";

/// The first message's data, each ending in a sequence some server might take for the end.
const SMUGGLING_VARIANTS: &[(&str, &[u8])] = &[
    ("<LF>.<LF>", b"Subject: first\r\n\r\nfirst message\n.\n"),
    ("<CR>.<CR>", b"Subject: first\r\n\r\nfirst message\r.\r"),
    (
        "<LF>.<CR><LF>",
        b"Subject: first\r\n\r\nfirst message\n.\r\n",
    ),
    (
        "<CR><LF>.<LF>",
        b"Subject: first\r\n\r\nfirst message\r\n.\n",
    ),
    (
        "<CR><LF>.<CR>",
        b"Subject: first\r\n\r\nfirst message\r\n.\r",
    ),
    (
        "bare LF in the headers",
        b"From: <alice@clinic.example.test>\nSubject: first\r\n\r\nfirst message\r\n.\r\n",
    ),
];

fn smuggled_messages_are_refused_and_nothing_is_stored(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    for (name, first) in SMUGGLING_VARIANTS {
        let mut c = relay.session();
        begin_data(&mut c, &["bob@example.org"]);
        c.send(&[*first, SMUGGLED].concat());
        let closed = c.wait_closed(Duration::from_secs(10));
        let t = c.into_transcript();
        let codes = t.codes();
        let after_data: Vec<&Reply> = t
            .replies()
            .into_iter()
            .skip_while(|r| r.code != 354)
            .skip(1)
            .collect();
        assert!(closed, "{name}: the server must close the connection\n{t}");
        assert!(
            after_data.iter().all(|r| r.code != 250),
            "{name}: a 250 after DATA means a message was accepted ({codes:?})\n{t}"
        );
        let first_reply = after_data
            .first()
            .unwrap_or_else(|| panic!("{name}: no reply to the data\n{t}"));
        assert_reply(first_reply, 550, "5.5.2", name, &t);
        assert_nothing_stored(&relay, name);
    }

    let id = send_good_message(&relay, &["bob@example.org"]);
    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(relay.db.addresses(&id), ["bob@example.org"]);
    assert_eq!(relay.db.audit().len(), 1);
}

on_both_backends!(smuggled_messages_are_refused_and_nothing_is_stored);

// ---------------------------------------------------------------------------------------------
// Line and size limits

fn over_long_lines_are_refused_and_the_session_stays_usable(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    let mut c = relay.session();

    // RFC 5322 §2.1.1: at most 998 octets plus CRLF. The refusal comes after the end of data.
    begin_data(&mut c, &["bob@example.org"]);
    let long_line = "x".repeat(1001);
    let data = format!("Subject: long\r\n\r\n{long_line}\r\n.\r\n");
    let reply = finish_data(&mut c, data.as_bytes());
    assert_reply(&reply, 550, "5.6.0", "1001-octet data line", c.transcript());
    assert_nothing_stored(&relay, "1001-octet data line");

    // The session is still in step: a 998-octet line (1000 with CRLF) is accepted.
    begin_data(&mut c, &["bob@example.org"]);
    let longest = "y".repeat(998);
    let data = format!("Subject: longest\r\n\r\n{longest}\r\n.\r\n");
    let reply = finish_data(&mut c, data.as_bytes());
    assert_reply(&reply, 250, "2.0.0", "998-octet data line", c.transcript());
    assert_eq!(relay.db.message_count(), 1);

    // RFC 5321 §4.5.3.1.4: command lines are limited too.
    let long_noop = format!("NOOP {}", "z".repeat(1100));
    expect(&mut c, &long_noop, 500, "5.5.2");
    expect(&mut c, "NOOP", 250, "2.0.0");

    // A line longer than any command the server will buffer is answered at once, dropped up
    // to its CRLF, and the session goes on.
    let huge = format!("NOOP {}", "z".repeat(20_000));
    c.send_line(&huge);
    let reply = c
        .reply()
        .unwrap_or_else(|| panic!("no reply to a 20000-octet line\n{}", c.transcript()));
    assert_reply(
        &reply,
        500,
        "5.5.2",
        "20000-octet command line",
        c.transcript(),
    );
    expect(&mut c, "NOOP", 250, "2.0.0");
    expect(&mut c, "QUIT", 221, "2.0.0");
    assert!(c.wait_closed(Duration::from_secs(10)), "{}", c.transcript());
    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(relay.db.audit().len(), 1);
}

on_both_backends!(over_long_lines_are_refused_and_the_session_stays_usable);

/// `n` bytes of message: a header, then 70-octet lines.
fn message_of_size(n: usize) -> Vec<u8> {
    let mut data = b"Subject: big\r\n\r\n".to_vec();
    let line = format!("{}\r\n", "b".repeat(68));
    while data.len() + line.len() <= n {
        data.extend_from_slice(line.as_bytes());
    }
    data.extend(std::iter::repeat_n(b'c', n - data.len()));
    data
}

fn oversize_messages_get_552_at_mail_and_after_data(backend: TestBackend) {
    let relay = Relay::start(backend, "[smtp]\nmax_message_size = \"4KiB\"\n");
    let mut c = relay.session();

    // RFC 1870 §6.3: a declared size over the limit is refused at MAIL.
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test> SIZE=5000",
        552,
        "5.3.4",
    );

    // Undeclared, the refusal comes after the end of data.
    begin_data(&mut c, &["bob@example.org"]);
    let mut data = message_of_size(5000);
    data.extend_from_slice(b"\r\n.\r\n");
    let reply = finish_data(&mut c, &data);
    assert_reply(&reply, 552, "5.3.4", "5000-byte message", c.transcript());
    assert_nothing_stored(&relay, "oversize messages");

    // Under the limit the same session is accepted.
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test> SIZE=3000",
        250,
        "2.1.0",
    );
    expect(&mut c, "RCPT TO:<bob@example.org>", 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354, "{}", c.transcript());
    let mut data = message_of_size(3000);
    data.extend_from_slice(b"\r\n.\r\n");
    let reply = finish_data(&mut c, &data);
    assert_reply(&reply, 250, "2.0.0", "3000-byte message", c.transcript());
    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(relay.db.audit().len(), 1);
}

on_both_backends!(oversize_messages_get_552_at_mail_and_after_data);

fn fourth_recipient_gets_452_and_three_are_queued(backend: TestBackend) {
    let relay = Relay::start(backend, "[smtp]\nmax_recipients = 3\n");
    let mut c = relay.session();
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test>",
        250,
        "2.1.0",
    );
    for r in ["r1@example.org", "r2@example.org", "r3@example.org"] {
        expect(&mut c, &format!("RCPT TO:<{r}>"), 250, "2.1.5");
    }
    // RFC 5321 §4.5.3.1.10: 452, and the client sends the rest in another transaction.
    expect(&mut c, "RCPT TO:<r4@example.org>", 452, "4.5.3");
    assert_eq!(c.cmd("DATA").code, 354, "{}", c.transcript());
    let reply = finish_data(&mut c, b"Subject: three\r\n\r\nFor three.\r\n.\r\n");
    assert_reply(&reply, 250, "2.0.0", "message to three", c.transcript());
    let id = queue_id(&reply);

    assert_eq!(relay.db.message_count(), 1);
    let three = ["r1@example.org", "r2@example.org", "r3@example.org"];
    assert_eq!(relay.db.addresses(&id), three);
    let audit = relay.db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    let data: serde_json::Value = serde_json::from_str(&audit[0].data).expect("audit data is JSON");
    assert_eq!(data["recipients"], serde_json::json!(three), "{data}");
}

on_both_backends!(fourth_recipient_gets_452_and_three_are_queued);

// ---------------------------------------------------------------------------------------------
// Relay control and re-routing addresses

/// Recipients that try to relay or to re-route behind a later hop.
const RELAY_ATTEMPTS: &[&str] = &[
    "<victim@example.org>",
    "<user%other@example.org>",
    "<@a.example:b@c.example>",
    "<\"user@other\"@example.org>",
];

fn outside_clients_cannot_relay_to_any_address(backend: TestBackend) {
    let relay = Relay::start(backend, "[relay]\nnetworks = [\"10.255.0.0/16\"]\n");
    let mut c = relay.session();
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test>",
        250,
        "2.1.0",
    );
    for rcpt in RELAY_ATTEMPTS {
        expect(&mut c, &format!("RCPT TO:{rcpt}"), 554, "5.7.1");
    }
    // RFC 2920 §3.1: DATA after recipients that all failed.
    let reply = c.cmd("DATA");
    assert!(
        reply.code >= 500,
        "DATA must be refused\n{}",
        c.transcript()
    );
    assert_nothing_stored(&relay, "relay attempts from outside");
}

on_both_backends!(outside_clients_cannot_relay_to_any_address);

fn rerouting_addresses_get_553_even_from_inside(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    let mut c = relay.session();
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test>",
        250,
        "2.1.0",
    );
    for (rcpt, enhanced) in [
        ("<user%other@example.org>", "5.1.3"),
        ("<user!other@example.org>", "5.1.3"),
        ("<@a.example:b@c.example>", "5.1.3"),
        ("<\"user@other\"@example.org>", "5.1.3"),
        ("<user@[192.0.2.1]>", "5.1.2"),
    ] {
        expect(&mut c, &format!("RCPT TO:{rcpt}"), 553, enhanced);
    }
    expect(&mut c, "RCPT TO:<bob@example.org>", 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354, "{}", c.transcript());
    let reply = finish_data(&mut c, b"Subject: one\r\n\r\nOnly Bob.\r\n.\r\n");
    assert_reply(&reply, 250, "2.0.0", "message to bob", c.transcript());
    let id = queue_id(&reply);

    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(relay.db.addresses(&id), ["bob@example.org"]);
    assert_eq!(relay.db.audit().len(), 1);
}

on_both_backends!(rerouting_addresses_get_553_even_from_inside);

// ---------------------------------------------------------------------------------------------
// The database going away

/// Runs `sql` on the cluster's admin database (not the relay's).
fn admin(sql: &str) {
    let rt = runtime();
    rt.block_on(async {
        let store = Store::connect(&TestDb::admin_url(), 1, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("connect as admin: {}", chain(&e)));
        store
            .execute_raw(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", chain(&e)));
        store.close().await;
    });
}

/// The database name at the end of a PostgreSQL URL.
fn database_name(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// PostgreSQL only: SQLite has no server that can go away (no fake is written for it).
#[test]
fn database_outage_gets_451_and_the_relay_recovers_without_restart_on_postgres() {
    let mut relay = Relay::start(
        TestBackend::Postgres,
        "[database]\nacquire_timeout = \"2s\"\n",
    );
    let first = send_good_message(&relay, &["bob@example.org", "carol@example.org"]);

    let name = database_name(&relay.test_db.url).to_owned();
    admin(&format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    ));
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));

    let mut c = relay.session();
    begin_data(&mut c, &["dave@example.org"]);
    let reply = finish_data(
        &mut c,
        b"Subject: during\r\n\r\nDuring the outage.\r\n.\r\n",
    );
    // Allow connections again before asserting, so a failure leaves a usable database.
    admin(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"));
    assert_reply(
        &reply,
        451,
        "4.3.0",
        "message during the outage",
        c.transcript(),
    );
    expect(&mut c, "QUIT", 221, "2.0.0");

    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(
        relay.db.addresses(&first),
        ["bob@example.org", "carol@example.org"]
    );
    let audit = relay.db.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].message_id.as_deref(), Some(first.as_str()));
    let verify = relay.daemon.cli(["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "audit verify: {stdout}");
    assert!(stdout.contains("audit log ok: 1 events"), "{stdout}");

    let second = send_good_message(&relay, &["dave@example.org"]);
    assert_ne!(first, second);
    assert_eq!(relay.db.message_count(), 2);
    assert_eq!(relay.db.addresses(&second), ["dave@example.org"]);
    assert!(relay.daemon.is_running(), "the daemon must not have exited");
}

// ---------------------------------------------------------------------------------------------
// NUL before a dot line

/// `CRLF NUL "." CRLF` is no end of data here, but a next hop that drops NULs would read one
/// and then a second message: the whole message is refused after the real end of data
/// (`550 5.6.0`), nothing is stored, and the session is still in step.
fn a_nul_before_a_dot_line_is_refused_and_the_session_stays_in_step(backend: TestBackend) {
    let relay = Relay::start(backend, "");
    let mut c = relay.session();
    begin_data(&mut c, &["bob@example.org"]);
    let data = [
        &b"Subject: first\r\n\r\nfirst message\r\n\x00.\r\n"[..],
        SMUGGLED,
    ]
    .concat();
    let reply = finish_data(&mut c, &data);
    assert_reply(
        &reply,
        550,
        "5.6.0",
        "NUL before a dot line",
        c.transcript(),
    );
    assert!(reply.text().contains("NUL"), "{}", reply.text());
    assert_nothing_stored(&relay, "NUL before a dot line");

    begin_data(&mut c, &["bob@example.org"]);
    let reply = finish_data(&mut c, b"Subject: fine\r\n\r\nA normal message.\r\n.\r\n");
    assert_reply(&reply, 250, "2.0.0", "the next message", c.transcript());
    let id = queue_id(&reply);
    expect(&mut c, "QUIT", 221, "2.0.0");
    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(relay.db.addresses(&id), ["bob@example.org"]);
    assert_eq!(relay.db.audit().len(), 1);
}

on_both_backends!(a_nul_before_a_dot_line_is_refused_and_the_session_stays_in_step);
