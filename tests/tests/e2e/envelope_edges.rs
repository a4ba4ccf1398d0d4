//! Envelope edges of RFC 5321 against the real daemon: `<Postmaster>` reaches the operator
//! address from any client without opening a relay (§4.5.1), a quoted local part with an
//! escaped quote reaches the next hop unchanged (§4.1.2), and a parameter given twice gets 501.

use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smtp_sink::SinkScript;

use crate::bad_input::{Relay, expect, finish_data, queue_id};
use crate::inspect::fresh_db;
use crate::lab::Lab;

/// The operator address of these tests.
const OPERATOR: &str = "ops@example.org";

#[test]
fn postmaster_reaches_the_operator_address_from_outside_without_opening_a_relay() {
    let relay = Relay::start(
        TestBackend::Sqlite,
        &format!("[relay]\nnetworks = [\"10.255.0.0/16\"]\n[smtp]\npostmaster = \"{OPERATOR}\"\n"),
    );
    let mut c = relay.session();
    expect(
        &mut c,
        "MAIL FROM:<someone@elsewhere.example>",
        250,
        "2.1.0",
    );
    expect(&mut c, "RCPT TO:<Postmaster>", 250, "2.1.5");
    // The relay's own host name: the same mailbox.
    expect(
        &mut c,
        "RCPT TO:<POSTMASTER@relay.example.test>",
        250,
        "2.1.5",
    );
    // Anything else is still relaying, refused to an outside client.
    expect(&mut c, "RCPT TO:<victim@example.org>", 554, "5.7.1");
    expect(&mut c, "RCPT TO:<postmaster@example.org>", 554, "5.7.1");
    expect(&mut c, &format!("RCPT TO:<{OPERATOR}>"), 554, "5.7.1");
    assert_eq!(c.cmd("DATA").code, 354, "{}", c.transcript());
    let reply = finish_data(
        &mut c,
        b"Subject: your relay\r\n\r\nHello postmaster.\r\n.\r\n",
    );
    let id = queue_id(&reply);
    expect(&mut c, "QUIT", 221, "2.0.0");

    assert_eq!(relay.db.message_count(), 1);
    assert_eq!(relay.db.addresses(&id), [OPERATOR]);
    let received = relay.db.received_events();
    assert_eq!(
        received[&id]["recipients"],
        serde_json::json!([OPERATOR]),
        "{received:?}"
    );
}

#[test]
fn postmaster_without_an_operator_address_gets_550_and_parameters_twice_get_501() {
    let relay = Relay::start(TestBackend::Sqlite, "");
    let mut c = relay.session();
    // RFC 5321 §4.2.2 / §4.1.1.11: a repeated parameter is a syntax error, not an unknown one.
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test> BODY=8BITMIME BODY=7BIT",
        501,
        "5.5.4",
    );
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test> SIZE=10 size=10",
        501,
        "5.5.4",
    );
    expect(
        &mut c,
        "MAIL FROM:<alice@clinic.example.test> BODY=8BITMIME",
        250,
        "2.1.0",
    );
    let reply = expect(&mut c, "RCPT TO:<postmaster>", 550, "5.1.1");
    assert!(
        reply.text().contains("No postmaster address"),
        "{}",
        reply.text()
    );
    // Unconfigured, postmaster@<hostname> is an ordinary address (the client may relay).
    expect(
        &mut c,
        "RCPT TO:<postmaster@relay.example.test>",
        250,
        "2.1.5",
    );
    expect(&mut c, "QUIT", 221, "2.0.0");
    assert_eq!(relay.db.message_count(), 0);
}

#[test]
fn a_quoted_local_part_with_an_escaped_quote_reaches_the_next_hop_unchanged() {
    let lab = Lab::new(&[("example.org", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")]);
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url);
    let mut c = sealgate_tests::RawSmtp::connect(daemon.addr("starttls"));
    expect(&mut c, "EHLO client.example.test", 250, "");
    expect(&mut c, "MAIL FROM:<\"q\\\"s\"@clinic.test>", 250, "2.1.0");
    // `@` inside quotes could be taken for routing by a later hop: still refused.
    expect(&mut c, "RCPT TO:<\"a@b\"@example.org>", 553, "5.1.3");
    expect(&mut c, "RCPT TO:<\"a\\\"b\"@example.org>", 250, "2.1.5");
    assert_eq!(c.cmd("DATA").code, 354, "{}", c.transcript());
    let reply = finish_data(
        &mut c,
        b"Subject: quoted\r\n\r\nTo a quoted mailbox.\r\n.\r\n",
    );
    queue_id(&reply);
    expect(&mut c, "QUIT", 221, "2.0.0");

    assert!(
        lab.rt.block_on(sink.wait_for(1, Duration::from_secs(30))),
        "the MX received nothing\n{}",
        daemon.output_report()
    );
    let got = sink.received().remove(0);
    assert_eq!(got.rcpts, ["\"a\\\"b\"@example.org"]);
    assert_eq!(got.mail_from, "\"q\\\"s\"@clinic.test");
    let commands = sink.commands();
    assert!(
        commands
            .iter()
            .any(|l| l == "RCPT TO:<\"a\\\"b\"@example.org>"),
        "{commands:?}"
    );
}
