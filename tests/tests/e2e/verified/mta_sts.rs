//! MTA-STS (RFC 8461): a policy fetched over HTTPS from the lab's policy server decides how the
//! MX must authenticate; `enforce` sends nothing to a peer that fails, `testing` only reports,
//! and a cached `enforce` policy outlives a blocked refresh.

use sealgate_testkit::db::TestBackend;

use super::*;
use crate::inspect::fresh_db;

const POLICY_HOST: &str = "mta-sts.example.test";
const POLICY_IP: [u8; 4] = [127, 0, 0, 10];

/// An unsigned example.test (no DANE) announcing MTA-STS policy `id`, its policy host on the
/// lab's HTTPS server, and a sink certificate for `cert_names`.
fn sts_builder(id: &str, cert_names: &[&str]) -> (SecureLabBuilder, Issued) {
    let b = SecureLab::builder();
    let cert = b.issue(cert_names);
    let zone = format!(
        "@ IN MX 10 mx\nmx IN A 127.0.0.5\nmta-sts IN A 127.0.0.10\n\
         _mta-sts IN TXT \"v=STSv1; id={id}\"\n"
    );
    let b = b
        .unsigned("example.test", &zone)
        .https(POLICY_IP, &[POLICY_HOST]);
    (b, cert)
}

/// [`sts_builder`] started, serving a policy in `mode` with the one `mx` pattern.
fn sts_lab(mode: &str, mx: &str, cert_names: &[&str]) -> (SecureLab, Issued) {
    let (b, cert) = sts_builder("20250101", cert_names);
    let lab = b.start();
    lab.https().set_mta_sts_policy(
        "example.test",
        &format!("version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n"),
    );
    (lab, cert)
}

#[test]
fn an_mta_sts_enforce_domain_gets_the_message_over_webpki_verified_tls() {
    let (lab, cert) = sts_lab("enforce", MX, &[MX]);
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite("");
    let id = send(&daemon, RCPT, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "nothing delivered\n{}",
        daemon.output_report()
    );
    assert!(sink.received()[0].tls);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    assert!(
        mentions(&decision, "evidence", "mta-sts: enforce"),
        "{decision}"
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "mta-sts", "{attempt}");
    assert!(lab.https().requests_for(POLICY_HOST) >= 1);
    let tables = SecurityTables::new(daemon.db_url());
    assert_eq!(
        tables
            .verified_domain("example.test")
            .map(|v| v.verified_via),
        Some("mta-sts".to_owned())
    );
    let counts = tables.rpt_counts("example.test");
    assert!(
        counts
            .iter()
            .any(|c| c.policy_type == "sts" && c.successes == 1 && c.failures == 0),
        "{counts:?}"
    );
}

#[test]
fn an_mta_sts_enforce_peer_with_a_certificate_for_another_name_gets_nothing() {
    let (lab, cert) = sts_lab("enforce", MX, &["other.example.test"]);
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite("");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    assert!(sink.connections() >= 1, "the MX was never tried");
    assert_nothing_sent(&sink);
    verification_refused(&db, &id, "certificate-host-mismatch");
    assert_rpt_failure(&daemon, "sts", "certificate-host-mismatch");
}

#[test]
fn an_mx_outside_the_mta_sts_enforce_patterns_is_never_contacted() {
    let (lab, cert) = sts_lab("enforce", "mail.elsewhere.test", &[MX]);
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon_on_sqlite("");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    verification_refused(&db, &id, "not among the MTA-STS policy's mx patterns");
    assert_eq!(sink.connections(), 0, "{:?}", sink.commands());
    assert_eq!(db.recipients(&id)[0].1, "deferred");
}

/// `mode: Enforce` is the enforce mode (read in any case): even for a domain that needs no
/// protection, an MX outside the policy's patterns gets nothing, as with `mode: enforce`.
#[test]
fn an_mta_sts_policy_saying_enforce_in_capitals_is_enforced() {
    let (lab, cert) = sts_lab("Enforce", "mail.elsewhere.test", &[MX]);
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon =
        lab.daemon_on_sqlite("[[policy.domains]]\nkey = \"example.test\"\nlevel = \"none\"\n");
    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    assert!(
        mentions(&decision, "evidence", "mta-sts: enforce"),
        "{decision}"
    );
    verification_refused(&db, &id, "not among the MTA-STS policy's mx patterns");
    assert_eq!(sink.connections(), 0, "{:?}", sink.commands());
}

#[test]
fn an_mta_sts_testing_failure_is_reported_and_delivery_goes_on_when_no_protection_is_required() {
    let (lab, cert) = sts_lab("testing", MX, &["other.example.test"]);
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon =
        lab.daemon_on_sqlite("[[policy.domains]]\nkey = \"example.test\"\nlevel = \"none\"\n");
    let id = send(&daemon, RCPT, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "nothing delivered\n{}",
        daemon.output_report()
    );
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-opportunistic", "{decision}");
    assert!(
        mentions(&decision, "evidence", "mta-sts: testing"),
        "{decision}"
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "none (opportunistic)", "{attempt}");
    assert_rpt_failure(&daemon, "sts", "certificate-host-mismatch");
}

/// First lab: enforce policy id 1 fetched and the message delivered (the policy is now cached
/// in the store). Second lab on the same database: the TXT record announces id 2, the policy
/// host is blocked (later it serves an invalid policy, then one with two modes), and the MX
/// presents a certificate for another name. The cached enforce policy must still apply:
/// `sealgate check` shows it, and the message is not sent.
#[test]
fn a_cached_mta_sts_enforce_policy_outlives_a_blocked_refresh() {
    let db = fresh_db(TestBackend::Sqlite);
    {
        let (lab, cert) = sts_lab("enforce", MX, &[MX]);
        let sink = lab.tls_sink(MX_IP, &cert);
        let daemon = lab.daemon(&db.url, "");
        send(&daemon, RCPT, &[]);
        assert!(
            lab.rt.block_on(sink.wait_for(1, WAIT)),
            "the first message was not delivered\n{}",
            daemon.output_report()
        );
    }
    let (b, cert) = sts_builder("20250202", &["other.example.test"]);
    let lab = b.start();
    lab.https().block(POLICY_HOST);
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon(&db.url, "");

    let check_keeps_the_cached_policy = |case: &str| {
        let before = lab.https().requests_for(POLICY_HOST);
        let run = sealgate_tests::CliRun::of(daemon.cli(["check", RCPT, "--json"]));
        assert_eq!(run.code, Some(0), "{case}: {}", run.describe());
        let report: Value = serde_json::from_str(&run.stdout).expect("check --json prints JSON");
        let decision = &report["decision"];
        assert_eq!(decision["chain"][0], "tls-verified", "{case}: {report}");
        assert!(
            mentions(decision, "evidence", "mta-sts: enforce"),
            "{case}: {report}"
        );
        assert!(
            mentions(decision, "evidence", "cached id 20250101 kept"),
            "{case}: {report}"
        );
        assert!(
            lab.https().requests_for(POLICY_HOST) > before,
            "{case}: the policy for the new id was never asked for"
        );
    };
    check_keeps_the_cached_policy("policy host blocked");
    lab.https().unblock(POLICY_HOST);
    lab.https().set_mta_sts_policy(
        "example.test",
        "version: STSv1\nmode: none-of-your-business\n",
    );
    check_keeps_the_cached_policy("invalid policy served");
    // Two modes: which the domain meant is unknown, so the cached enforce policy stays.
    lab.https().set_mta_sts_policy(
        "example.test",
        "version: STSv1\nmode: testing\nmode: enforce\nmx: *.example.test\nmax_age: 86400\n",
    );
    check_keeps_the_cached_policy("policy with conflicting modes served");

    let id = send(&daemon, RCPT, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    assert_nothing_sent(&sink);
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    verification_refused(&db, &id, "certificate-host-mismatch");
}
