//! Routes (`[[delivery.route]]`): a routed domain's mail goes to the operator's next hop
//! instead of its MX hosts, and only under the route's TLS requirement — a pinned
//! certificate, DANE of the hop's own name, or opportunistic for a smarthost — still under
//! per-recipient decisions. A hop that cannot prove itself as its route demands gets
//! nothing, not even a message whose decision would allow plain text.

use std::net::SocketAddr;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::postfix::{PostfixMx, PostfixOpts};
use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::DaemonOpts;

use super::*;
use crate::inspect::fresh_db;
use crate::lab::spki_sha256;

/// Where the partner's gateway listens; the partner domain's MX points elsewhere.
const GATEWAY_IP: [u8; 4] = [127, 0, 0, 7];

/// A route table (TOML) of one route.
fn route(name: &str, domains: &str, hosts: &str, tls: &str, more: &str) -> String {
    format!(
        "[[delivery.route]]\nname = \"{name}\"\ndomains = [{domains}]\nhosts = [{hosts}]\n\
         tls = \"{tls}\"\n{more}"
    )
}

fn daemon_with(lab: &SecureLab, db_url: &str, policy: &str, routes: &str) -> Daemon {
    Daemon::start(DaemonOpts {
        extra_toml: lab.config_with(policy, routes),
        ..DaemonOpts::with_db(db_url)
    })
}

#[test]
fn a_route_to_a_postfix_peer_with_a_pinned_certificate_delivers_protected_mail() {
    // partner.test's MX is a host where nothing listens: only the route can deliver.
    let b = SecureLab::builder();
    let gateway = b.issue(&["gw.partner.test"]);
    let lab = b
        .unsigned("partner.test", "@ IN MX 10 mx\nmx IN A 127.0.0.66\n")
        .start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = gateway.write_to(dir.path(), "gw");
    let mut opts = PostfixOpts::new(SocketAddr::from((GATEWAY_IP, lab.port)), &["partner.test"]);
    opts.tls = Some((cert, key));
    let postfix = PostfixMx::start(opts);
    let db = fresh_db(TestBackend::Postgres);
    // The default policy: protection required. The partner has neither DANE nor MTA-STS;
    // the route's pin is what verifies its gateway.
    let pin = spki_sha256(&gateway);
    let routes = route(
        "partner",
        "\"partner.test\"",
        "\"[127.0.0.7]\"",
        "pinned",
        &format!("pins = [\"{pin}\"]\n"),
    );
    let daemon = daemon_with(&lab, &db.url, "", &routes);
    let rcpt = "jane@partner.test";
    let id = send(&daemon, rcpt, &[]);
    let arrived = postfix.wait_for_messages(1, WAIT);
    let text = String::from_utf8_lossy(&arrived[0]).into_owned();
    assert!(text.contains("(Postfix) with ESMTPS"), "{text}");

    let db = inspect(&daemon);
    wait_for(&db, &id, rcpt, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "required", "{decision}");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    let hop = format!("route: partner (pinned TLS to [127.0.0.7]:{})", lab.port);
    assert!(mentions(&decision, "evidence", &hop), "{decision}");
    assert!(
        !mentions(&decision, "evidence", "dane:"),
        "the MX was not probed: {decision}"
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "pinned", "{attempt}");
    assert_eq!(attempt["ip"], "127.0.0.7", "{attempt}");

    // `sealgate check` shows the same route and how its host is verified.
    let out = daemon.cli(["check", rcpt]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("method:    tls-verified"), "{shown}");
    assert!(
        shown.contains(&format!(
            "mx:        [127.0.0.7]:{}: pinned (route partner)",
            lab.port
        )),
        "{shown}"
    );
}

#[test]
fn a_route_whose_tls_requirement_fails_never_sends_in_the_clear() {
    let b = SecureLab::builder();
    let gateway = b.issue(&["gw.partner.test"]);
    let other = b.issue(&["gw.partner.test"]);
    let lab = b.start();
    // One hop offers no STARTTLS; the other presents a certificate the pin does not match.
    let plain = lab.sink_with([127, 0, 0, 8], |_| {});
    let wrong_key = lab.tls_sink([127, 0, 0, 9], &other);
    let pin = spki_sha256(&gateway);
    let routes = format!(
        "{}{}",
        route(
            "no-starttls",
            "\"plain.test\"",
            "\"[127.0.0.8]\"",
            "pinned",
            &format!("pins = [\"{pin}\"]\n"),
        ),
        route(
            "wrong-key",
            "\".pinned.test\"",
            "\"[127.0.0.9]\"",
            "pinned",
            &format!("pins = [\"{pin}\"]\n"),
        ),
    );
    // Protection not required. plain.test's recipient is decided for verified TLS (the
    // route's pin offers it); lab.pinned.test's is forced to opportunistic TLS, yet the
    // route's pin is the floor of every session on it.
    let policy = "default_level = \"none\"\n[[policy.domains]]\nkey = \"lab.pinned.test\"\n\
                  method = \"tls-opportunistic\"\n";
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = daemon_with(&lab, &db.url, policy, &routes);
    let first_id = send(&daemon, "a@plain.test", &[]);
    let second_id = send(&daemon, "b@lab.pinned.test", &[]);
    let db = inspect(&daemon);
    wait_for(&db, &first_id, "a@plain.test", "deferred");
    wait_for(&db, &second_id, "b@lab.pinned.test", "deferred");
    for (id, rcpt, method, name, ip, kind) in [
        (
            &first_id,
            "a@plain.test",
            "tls-verified",
            "no-starttls",
            "127.0.0.8",
            "starttls-not-supported",
        ),
        (
            &second_id,
            "b@lab.pinned.test",
            "tls-opportunistic",
            "wrong-key",
            "127.0.0.9",
            "certificate",
        ),
    ] {
        let decision = first(&db, id, "decision");
        assert_eq!(decision["method"], method, "{decision}");
        let deferred = first(&db, id, "deferred");
        let reason = deferred["reason"].as_str().unwrap_or_default();
        let head = format!(
            "4.7.5 route {name}: pinned TLS to [{ip}]:{} impossible: {ip} [{ip}:{}] (pinned): ",
            lab.port, lab.port
        );
        assert!(reason.starts_with(&head), "{rcpt}: {deferred}");
        assert!(reason.contains(kind), "{rcpt}: {deferred}");
    }
    assert_nothing_sent(&plain);
    assert_nothing_sent(&wrong_key);
}

#[test]
fn a_dane_route_verifies_its_gateway_by_the_gateways_own_tlsa_records() {
    // hospital.test is in no zone at all; the route's gateway is in a signed one.
    let b = SecureLab::builder();
    let gateway = b.issue(&["gw.lab-partner.test"]);
    let zone = format!(
        "gw IN A 127.0.0.10\n_{}._tcp.gw IN TLSA 3 1 1 {}\n",
        b.port(),
        spki_sha256(&gateway)
    );
    let lab = b.signed("lab-partner.test", &zone).start();
    let sink = lab.tls_sink([127, 0, 0, 10], &gateway);
    let routes = route(
        "hospital",
        "\"hospital.test\"",
        "\"gw.lab-partner.test\"",
        "dane",
        "",
    );
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = daemon_with(&lab, &db.url, "", &routes);
    let rcpt = "dr.who@hospital.test";
    let id = send(&daemon, rcpt, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "the gateway received nothing\n{}",
        daemon.output_report()
    );
    assert!(sink.received()[0].tls, "delivered in the clear");
    let db = inspect(&daemon);
    wait_for(&db, &id, rcpt, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    assert!(
        mentions(&decision, "evidence", "route gives verified tls: yes"),
        "{decision}"
    );
    assert_eq!(first(&db, &id, "attempt")["verification"], "dane");
}

#[test]
fn a_smarthost_carries_every_other_domain_and_a_reload_moves_it() {
    let lab = SecureLab::builder().start();
    let first_hop = lab.sink_with([127, 0, 0, 11], |o| o.script = SinkScript::default());
    let second_hop = lab.sink_with([127, 0, 0, 12], |o| o.script = SinkScript::default());
    let smarthost = |ip: &str| {
        route(
            "perimeter",
            "\"*\"",
            &format!("\"[{ip}]\""),
            "opportunistic",
            "",
        )
    };
    let db = fresh_db(TestBackend::Sqlite);
    let policy = "default_level = \"none\"";
    let daemon = daemon_with(&lab, &db.url, policy, &smarthost("127.0.0.11"));
    // nowhere.test has no DNS at all: the smarthost needs no MX lookup.
    let before = send(&daemon, "a@nowhere.test", &[]);
    let db = inspect(&daemon);
    wait_for(&db, &before, "a@nowhere.test", "delivered");
    assert_eq!(first_hop.received().len(), 1);

    let config = daemon.config_path().to_owned();
    let text = std::fs::read_to_string(&config).expect("config");
    let moved = text.replace("[127.0.0.11]", "[127.0.0.12]");
    assert_ne!(text, moved);
    std::fs::write(&config, moved).expect("write config");
    daemon.signal("HUP");
    daemon.wait_for_log(WAIT, |v| {
        v.pointer("/fields/message")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            == Some("configuration reloaded")
    });
    let after = send(&daemon, "b@nowhere.test", &[]);
    wait_for(&db, &after, "b@nowhere.test", "delivered");
    assert_eq!(
        first_hop.received().len(),
        1,
        "the old hop got the second message"
    );
    assert_eq!(second_hop.received().len(), 1);
    // Protection was not required and the smarthost verifies nothing: the decision says why
    // verified TLS was not on offer.
    let decision = first(&db, &after, "decision");
    assert!(
        mentions(
            &decision,
            "evidence",
            "route gives verified tls: no (tls = \"opportunistic\": no verified TLS)"
        ),
        "{decision}"
    );
}
