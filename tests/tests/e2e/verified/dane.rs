//! DANE (RFC 7672): TLSA records in a DNSSEC-signed zone authenticate the MX; a mismatch or a
//! stripped STARTTLS sends nothing; TLSA records in an unsigned zone are ignored.

use sealgate_testkit::db::TestBackend;

use super::*;
use crate::inspect::fresh_db;
use crate::lab::{der_sha256, spki_sha256};

/// One message to a DANE domain whose TLSA record `tlsa` matches the sink's certificate:
/// delivered over a DANE-verified session, with the decision, attempt, TLS-RPT success and
/// downgrade memory to show for it.
fn delivered_with_dane(
    backend: TestBackend,
    tlsa: impl FnOnce(&SecureLabBuilder, &Issued) -> String,
) {
    let (lab, cert) = dane_lab(tlsa);
    let sink = lab.tls_sink(MX_IP, &cert);
    let db = fresh_db(backend);
    let daemon = lab.daemon(&db.url, "");
    let id = send(&daemon, RCPT, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "the DANE peer received nothing\n{}",
        daemon.output_report()
    );
    let got = &sink.received()[0];
    assert!(got.tls, "delivered in the clear");
    assert_eq!(got.rcpts, [RCPT]);

    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    assert_eq!(
        kinds_for(&db, &id, RCPT),
        ["received", "decision", "attempt", "delivered"]
    );
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "required", "{decision}");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    assert_eq!(decision["chain"][0], "tls-verified", "{decision}");
    assert!(mentions(&decision, "evidence", "dane: valid"), "{decision}");
    assert!(lines(&decision, "alerts").is_empty(), "{decision}");
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["method"], "tls-verified", "{attempt}");
    assert_eq!(attempt["verification"], "dane", "{attempt}");
    assert_eq!(
        attempt["peer_cert_sha256"].as_str(),
        Some(der_sha256(cert.chain_der()[0].as_ref()).as_str()),
        "{attempt}"
    );
    assert_eq!(
        db.recipients(&id),
        [(RCPT.to_owned(), "delivered".to_owned())]
    );

    let tables = SecurityTables::new(daemon.db_url());
    assert_eq!(
        tables
            .verified_domain("example.test")
            .map(|v| v.verified_via),
        Some("dane".to_owned()),
        "a verified delivery is remembered (downgrade memory)"
    );
    let counts = tables.rpt_counts("example.test");
    assert!(
        counts
            .iter()
            .any(|c| c.policy_type == "tlsa" && c.successes == 1 && c.failures == 0),
        "{counts:?}"
    );
}

fn a_dane_ee_record_matching_the_peer_key_gets_the_message_delivered(backend: TestBackend) {
    delivered_with_dane(backend, |_, cert| format!("3 1 1 {}", spki_sha256(cert)));
}

on_both_backends!(a_dane_ee_record_matching_the_peer_key_gets_the_message_delivered);

#[test]
fn a_dane_ta_record_for_the_issuing_ca_gets_the_message_delivered() {
    delivered_with_dane(TestBackend::Sqlite, |b, _| {
        format!("2 0 1 {}", der_sha256(b.ca().cert_der().as_ref()))
    });
}

fn a_tlsa_record_for_another_key_sends_nothing_and_defers_as_tlsa_invalid(backend: TestBackend) {
    let (lab, cert) = dane_lab(|b, _| format!("3 1 1 {}", spki_sha256(&b.issue(&[MX]))));
    let sink = lab.tls_sink(MX_IP, &cert);
    let db = fresh_db(backend);
    let daemon = lab.daemon(&db.url, "");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");

    assert!(sink.connections() >= 1, "the MX was never tried");
    assert_nothing_sent(&sink);
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    verification_refused(&db, &id, "tlsa-invalid");
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "failed", "{attempt}");
    assert_eq!(db.recipients(&id)[0].1, "deferred");

    assert_rpt_failure(&daemon, "tlsa", "tlsa-invalid");
}

on_both_backends!(a_tlsa_record_for_another_key_sends_nothing_and_defers_as_tlsa_invalid);

/// With the portal on, a recipient whose verified TLS fails at connect time does not wait: it
/// falls to the next method of its chain, the portal, at once. Its notice is PHI-free but
/// carries the link, so it too is never sent to an MX that failed DANE: the MX gets nothing.
#[test]
fn a_tlsa_mismatch_at_connect_time_puts_the_message_on_the_portal() {
    let (lab, cert) = dane_lab(|b, _| format!("3 1 1 {}", spki_sha256(&b.issue(&[MX]))));
    let sink = lab.tls_sink(MX_IP, &cert);
    let db = fresh_db(TestBackend::Sqlite);
    let listen = sealgate_testkit::postfix::free_addr(std::net::Ipv4Addr::LOCALHOST);
    let portal = format!(
        "[portal]\nenabled = true\nlisten = \"{listen}\"\npublic_url = \"https://portal.clinic.test\"\n"
    );
    let daemon = lab.daemon_with(&db.url, "", &portal);
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    assert_eq!(
        kinds_for(&db, &id, RCPT),
        [
            "received",
            "decision",
            "alert",
            "attempt",
            "portal_notice",
            "attempt",
            "delivered"
        ]
    );
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    let tries = crate::trail::events(&db, &id, "attempt");
    assert_eq!(tries[0]["method"], "tls-verified", "{}", tries[0]);
    assert_eq!(tries[0]["verification"], "failed", "{}", tries[0]);
    assert!(
        tries[0]["reply"]
            .as_str()
            .is_some_and(|r| r.contains("tlsa-invalid") && r.contains("falls to the portal")),
        "{}",
        tries[0]
    );
    assert_eq!(tries[1]["method"], "portal", "{}", tries[1]);
    assert_nothing_sent(&sink);
}

/// example.test unsigned (outside the lab's anchor) with a TLSA record that matches nothing.
fn unsigned_lab_with_a_wrong_tlsa() -> (SecureLab, Issued) {
    let b = SecureLab::builder();
    let cert = b.issue(&[MX]);
    let wrong = spki_sha256(&b.issue(&[MX]));
    let zone = format!(
        "@ IN MX 10 mx\nmx IN A 127.0.0.5\n_{}._tcp.mx IN TLSA 3 1 1 {wrong}\n",
        b.port()
    );
    (b.unsigned("example.test", &zone).start(), cert)
}

#[test]
fn a_tlsa_record_in_an_unsigned_zone_is_ignored_when_the_domain_needs_no_protection() {
    let (lab, cert) = unsigned_lab_with_a_wrong_tlsa();
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon =
        lab.daemon_on_sqlite("[[policy.domains]]\nkey = \"example.test\"\nlevel = \"none\"\n");
    let id = send(&daemon, RCPT, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "nothing delivered\n{}",
        daemon.output_report()
    );
    assert!(
        sink.received()[0].tls,
        "opportunistic TLS was offered and not used"
    );
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "none", "{decision}");
    assert_eq!(decision["method"], "tls-opportunistic", "{decision}");
    assert!(
        mentions(&decision, "evidence", "dane: insecure"),
        "{decision}"
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "none (opportunistic)", "{attempt}");
}

#[test]
fn a_tlsa_record_in_an_unsigned_zone_gives_no_verified_tls_so_protected_mail_waits() {
    let (lab, cert) = unsigned_lab_with_a_wrong_tlsa();
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite(crate::lab::WITHOUT_AUTHENTICATED);
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "required", "{decision}");
    let chain = lines(&decision, "chain");
    assert!(
        !chain.iter().any(|m| m.starts_with("tls-")),
        "no TLS method without verification: {decision}"
    );
    assert!(
        mentions(&decision, "evidence", "dane: insecure"),
        "{decision}"
    );
    let deferred = first(&db, &id, "deferred");
    assert!(
        deferred["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not available yet")),
        "{deferred}"
    );
    assert_eq!(sink.connections(), 0, "the MX must not even be contacted");
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

#[test]
fn a_stripped_starttls_on_a_dane_domain_sends_nothing_in_clear_and_raises_an_alert() {
    let (lab, _cert) = dane_lab(|_, cert| format!("3 1 1 {}", spki_sha256(cert)));
    // The attacker's view: the same host, answering without STARTTLS.
    let sink = lab.sink_with(MX_IP, |_| {});
    let daemon = lab.daemon_on_sqlite("");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");

    assert!(sink.connections() >= 1, "the MX was never tried");
    assert_nothing_sent(&sink);
    verification_refused(&db, &id, "starttls-not-supported");
    let alert = first(&db, &id, "alert");
    assert_eq!(alert["domain"], "example.test", "{alert}");
    assert!(
        alert["alert"]
            .as_str()
            .is_some_and(|a| a.contains("possible attack")),
        "{alert}"
    );
    assert_rpt_failure(&daemon, "tlsa", "starttls-not-supported");
}

/// A signed example.test whose MX has only a PKIX-EE (usage 1) TLSA record for its key:
/// DNSSEC-secure, and unusable for SMTP (RFC 7672 §3.1.3), so TLS to it is mandatory but
/// unauthenticated (RFC 7672 §2.2). The certificate is the one a TLS sink would present.
fn unusable_tlsa_lab() -> (SecureLab, Issued) {
    dane_lab(|_, cert| format!("1 1 1 {}", spki_sha256(cert)))
}

/// The audit line every decision about such a domain carries.
const DANE_UNUSABLE: &str = "dane: unusable (DNSSEC-secure TLSA, none usable: STARTTLS mandatory";

/// The `deferred` reason of a recipient held back because the MX did not give the TLS that
/// unusable TLSA records make mandatory.
fn assert_deferred_for_mandatory_tls(db: &Inspect, id: &str) {
    let deferred = first(db, id, "deferred");
    let reason = deferred["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(
            "4.7.5 TLS is mandatory for mx.example.test (RFC 7672 §2.2: DNSSEC-secure TLSA \
             records, none usable); nothing was sent: "
        ),
        "{deferred}"
    );
}

#[test]
fn unusable_tlsa_records_make_tls_mandatory_so_an_mx_without_starttls_gets_nothing() {
    let (lab, _cert) = unusable_tlsa_lab();
    let sink = lab.sink_with(MX_IP, |_| {});
    let daemon =
        lab.daemon_on_sqlite("[[policy.domains]]\nkey = \"example.test\"\nlevel = \"none\"\n");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");

    assert!(sink.connections() >= 1, "the MX was never tried");
    assert_nothing_sent(&sink);
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "none", "{decision}");
    assert_eq!(decision["method"], "tls-opportunistic", "{decision}");
    assert!(mentions(&decision, "evidence", DANE_UNUSABLE), "{decision}");
    assert_deferred_for_mandatory_tls(&db, &id);
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

/// Over STARTTLS with any certificate the message goes out (TLS is all RFC 7672 asks of such
/// an MX), but the session is not verified: it is audited as unauthenticated, not remembered
/// as verified, and mail that requires protection does not take it.
#[test]
fn unusable_tlsa_records_allow_unauthenticated_tls_that_never_counts_as_verified() {
    let (lab, cert) = unusable_tlsa_lab();
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite(&format!(
        "{}[[policy.addresses]]\nkey = \"jane@example.test\"\nlevel = \"none\"\n",
        crate::lab::WITHOUT_AUTHENTICATED
    ));
    let id = send(&daemon, RCPT, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "nothing delivered\n{}",
        daemon.output_report()
    );
    assert!(sink.received()[0].tls, "delivered in the clear");
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-opportunistic", "{decision}");
    assert!(mentions(&decision, "evidence", DANE_UNUSABLE), "{decision}");
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "none (opportunistic)", "{attempt}");
    let tables = SecurityTables::new(daemon.db_url());
    assert!(
        tables.verified_domain("example.test").is_none(),
        "an unauthenticated session is no verified-TLS sighting"
    );

    // Protection required (the default for joe): no TLS method at all, the message waits.
    let joe = "joe@example.test";
    let id = send(&daemon, joe, &[]);
    wait_for(&db, &id, joe, "deferred");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "required", "{decision}");
    assert!(
        !lines(&decision, "chain")
            .iter()
            .any(|m| m.starts_with("tls-")),
        "{decision}"
    );
    assert!(
        mentions(
            &decision,
            "evidence",
            "skip tls-verified: no DANE (dane unusable)"
        ),
        "{decision}"
    );
    assert_eq!(sink.received().len(), 1, "joe's message went out");
}

/// The issue this guards against: the message itself goes to the portal (no verified TLS),
/// and its notice — PHI-free, so decided for opportunistic TLS — must still not be sent in
/// the clear to an MX whose TLSA records make TLS mandatory.
#[test]
fn a_portal_notice_to_a_domain_with_unusable_tlsa_is_never_sent_in_the_clear() {
    let (lab, _cert) = unusable_tlsa_lab();
    let sink = lab.sink_with(MX_IP, |_| {});
    let db = fresh_db(TestBackend::Sqlite);
    let listen = sealgate_testkit::postfix::free_addr(std::net::Ipv4Addr::LOCALHOST);
    let portal = format!(
        "[portal]\nenabled = true\nlisten = \"{listen}\"\npublic_url = \"https://portal.clinic.test\"\n"
    );
    let daemon = lab.daemon_with(&db.url, "", &portal);
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let notice = first(&db, &id, "portal_notice");
    let notice_id = notice["notice_id"].as_str().unwrap_or_default().to_owned();

    wait_for(&db, &notice_id, RCPT, "deferred");
    let decision = first(&db, &notice_id, "decision");
    assert_eq!(decision["level_source"], "phi-free", "{decision}");
    assert_eq!(decision["method"], "tls-opportunistic", "{decision}");
    assert!(mentions(&decision, "evidence", DANE_UNUSABLE), "{decision}");
    assert_deferred_for_mandatory_tls(&db, &notice_id);
    assert!(sink.connections() >= 1, "the MX was never tried");
    assert_nothing_sent(&sink);
}
