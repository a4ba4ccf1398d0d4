//! OPENPGPKEY and SMIMEA against real zones on the test DNS server, validated by
//! `HickoryResolver` from a trust-anchor file as the daemon does: only secure answers are
//! used.

use sealgate_dns::{DnsConfig, HickoryResolver};
use sealgate_encrypt::smime::TrustStore;
use sealgate_testkit::dns::{TestDns, TestZone};
use sealgate_testkit::smime::{EmailCert, EmailCertSpec, issue_email};
use sealgate_testkit::tls::TestCa;

use super::*;
use crate::keys::KeySource;
use crate::keys::dns::{openpgpkey_name, smimea_name};

/// Zone lines publishing `key` as the OPENPGPKEY of `local@origin`.
fn openpgpkey_line(local: &str, origin: &str, key: &[u8]) -> String {
    let name = openpgpkey_name(local, origin);
    let b64 = openssl::base64::encode_block(key);
    format!("{name}. 300 IN OPENPGPKEY {b64}\n")
}

/// A zone line publishing `cert` as an SMIMEA record `usage 0 0` of `local@origin`.
fn smimea_line(local: &str, origin: &str, usage: u8, cert: &EmailCert) -> String {
    let name = smimea_name(local, origin);
    format!(
        "{name}. 300 IN SMIMEA {usage} 0 0 {}\n",
        hex::encode(&cert.cert_der)
    )
}

fn zone(origin: &str, records: &str) -> String {
    format!(
        "@ 300 IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A 127.0.0.9
{records}"
    )
}

/// Signed example.test and unsigned other.test, both publishing `records` (built for their
/// origin), a discovery anchored at example.test (or at an impostor's key when `bogus`).
struct DnsLab {
    lab: Lab,
    _dns: TestDns,
    _impostor: Option<TestDns>,
    _dir: tempfile::TempDir,
}

async fn dns_lab(
    records: impl Fn(&str) -> String,
    trust: Option<TrustStore>,
    bogus: bool,
) -> DnsLab {
    let (example, other) = (
        zone("example.test", &records("example.test")),
        zone("other.test", &records("other.test")),
    );
    let dns = TestDns::start_zones(&[
        TestZone::signed("example.test.", &example),
        TestZone::unsigned("other.test.", &other),
    ])
    .await;
    let impostor = match bogus {
        true => Some(TestDns::start_signed(&[("example.test.", &example)]).await),
        false => None,
    };
    let dir = tempfile::tempdir().unwrap();
    let anchors = impostor.as_ref().unwrap_or(&dns);
    let resolver = HickoryResolver::new(&DnsConfig {
        nameservers: vec![dns.addr],
        timeout: Duration::from_secs(2),
        trust_anchor_file: Some(anchors.write_trust_anchor_file(dir.path())),
        ..DnsConfig::default()
    })
    .unwrap();
    let mut lab = Lab::with_trust(KeySettings::default(), trust.clone()).await;
    lab.discovery = Discovery::new(
        Arc::new(resolver),
        None,
        lab.store.clone(),
        probe_settings(),
    )
    .with_key_fetcher(KeySettings::default(), trust, lab.wkd.clone());
    DnsLab {
        lab,
        _dns: dns,
        _impostor: impostor,
        _dir: dir,
    }
}

#[tokio::test]
async fn an_openpgpkey_record_in_a_signed_zone_is_found() {
    let (key, fpr) = keys().good.clone();
    let lab = dns_lab(|o| openpgpkey_line("joe", o, &key), None, false).await;
    let got = lab.lab.pgp().await;
    assert_eq!(
        summary(&got.pgp),
        Some((fpr.clone(), "openpgpkey", "usable"))
    );
    assert_eq!(got.discovered.len(), 1);
    assert_eq!(got.discovered[0].source, KeySource::Openpgpkey);
}

#[tokio::test]
async fn an_openpgpkey_record_in_an_unsigned_zone_is_ignored() {
    let key = keys().good.0.clone();
    let lab = dns_lab(|o| openpgpkey_line("joe", o, &key), None, false).await;
    let got = lab
        .lab
        .discovery
        .recipient_keys("joe@other.test", PGP)
        .await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert!(
        notes(&got.pgp).contains("unsigned zone: OPENPGPKEY ignored"),
        "{}",
        notes(&got.pgp)
    );
    assert!(got.discovered.is_empty());
}

#[tokio::test]
async fn records_that_fail_validation_are_never_used() {
    let key = keys().good.0.clone();
    let cert = issue_email(&TestCa::new(), JOE, EmailCertSpec::default());
    let records = |o: &str| openpgpkey_line("joe", o, &key) + &smimea_line("joe", o, 3, &cert);
    let lab = dns_lab(records, None, true).await;
    let got = lab
        .lab
        .discovery
        .recipient_keys(
            JOE,
            KeyWant {
                pgp: true,
                smime: true,
            },
        )
        .await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert!(
        matches!(got.smime, KeyFinding::Absent { .. }),
        "{:?}",
        got.smime
    );
    assert!(
        notes(&got.pgp).contains("openpgpkey: dnssec validation failed"),
        "{}",
        notes(&got.pgp)
    );
    assert!(
        notes(&got.smime).contains("smimea: dnssec validation failed"),
        "{}",
        notes(&got.smime)
    );
}

#[tokio::test]
async fn a_dane_ee_smimea_certificate_is_usable_without_a_chain() {
    // Issued by a CA nobody trusts: DNSSEC authenticates it (RFC 8162, usage 3).
    let cert = issue_email(&TestCa::named("Unknown CA"), JOE, EmailCertSpec::default());
    let lab = dns_lab(|o| smimea_line("joe", o, 3, &cert), None, false).await;
    let got = lab.lab.discovery.recipient_keys(JOE, SMIME).await;
    let fpr = sealgate_encrypt::smime::SmimeCert::from_der(&cert.cert_der)
        .unwrap()
        .fingerprint();
    assert_eq!(summary(&got.smime), Some((fpr, "smimea", "usable")));
    assert_eq!(got.discovered[0].source, KeySource::Smimea { usage: 3 });
    assert!(matches!(got.pgp, KeyFinding::NotLooked));
}

#[tokio::test]
async fn a_pkix_ee_smimea_certificate_must_chain_to_the_trust_roots() {
    let ca = TestCa::new();
    let cert = issue_email(&ca, JOE, EmailCertSpec::default());
    let records = |o: &str| smimea_line("joe", o, 1, &cert);
    let trusted = TrustStore::new(Some(ca.cert_pem.as_bytes()), &[]).unwrap();
    let lab = dns_lab(records, Some(trusted), false).await;
    let got = lab.lab.discovery.recipient_keys(JOE, SMIME).await;
    assert_eq!(
        summary(&got.smime).map(|s| (s.1, s.2)),
        Some(("smimea", "usable"))
    );

    let stranger = TestCa::named("Another CA");
    let other = TrustStore::new(Some(stranger.cert_pem.as_bytes()), &[]).unwrap();
    for trust in [Some(other), None] {
        let lab = dns_lab(records, trust, false).await;
        let got = lab.lab.discovery.recipient_keys(JOE, SMIME).await;
        assert_eq!(
            summary(&got.smime).map(|s| (s.1, s.2)),
            Some(("smimea", "invalid")),
            "{:?}",
            got.smime
        );
        match &got.smime {
            KeyFinding::Found { info, .. } => assert!(
                matches!(info.status, Err(sealgate_encrypt::Problem::Untrusted(_))),
                "{info:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn smimea_records_that_name_no_end_entity_certificate_are_skipped() {
    let cert = issue_email(&TestCa::new(), JOE, EmailCertSpec::default());
    let lab = dns_lab(|o| smimea_line("joe", o, 2, &cert), None, false).await;
    let got = lab.lab.discovery.recipient_keys(JOE, SMIME).await;
    assert!(
        matches!(got.smime, KeyFinding::Absent { .. }),
        "{:?}",
        got.smime
    );
    assert_eq!(
        notes(&got.smime),
        "smimea: a record 2 0 0 names no certificate to encrypt to: skipped"
    );
}

#[tokio::test]
async fn an_expired_smimea_certificate_is_found_with_its_problem() {
    let spec = EmailCertSpec {
        validity: sealgate_testkit::smime::Validity::Expired,
        ..EmailCertSpec::default()
    };
    let cert = issue_email(&TestCa::new(), JOE, spec);
    let lab = dns_lab(|o| smimea_line("joe", o, 3, &cert), None, false).await;
    let got = lab.lab.discovery.recipient_keys(JOE, SMIME).await;
    assert_eq!(summary(&got.smime).map(|s| s.2), Some("expired"));
}
