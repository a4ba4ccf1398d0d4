//! DNSSEC-validated OPENPGPKEY (RFC 7929) and SMIMEA (RFC 8162) lookups of
//! `HickoryResolver` against the in-process test DNS server, anchored through
//! `DnsConfig::trust_anchor_file` as the daemon is. The record data is opaque here (the
//! key discovery in `sealgate-discovery` parses it), so short made-up blobs do.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

use std::path::Path;
use std::time::Duration;

use sealgate_dns::{
    DnsConfig, HickoryResolver, OpenpgpkeyAnswer, Resolver, Secured, SmimeaAnswer, SmimeaRecord,
};
use sealgate_testkit::dns::{TestDns, TestZone};
use tempfile::TempDir;

/// The owner-name label of `joe` (RFC 7929 §3: SHA-256 of the local part, 28 octets, hex).
const JOE: &str = "6a7d8abf3c7d4a7e0e6d8c1f0a4c2b7d9e1f3a5b7c9d0e2f4a6b8c0d";
/// Another local part's label, with no records.
const NOBODY: &str = "0000000000000000000000000000000000000000000000000000000a";

/// The two key blobs published for `joe` (base64 in the zone).
const KEY_1: &[u8] = b"first transferable public key";
const KEY_2: &[u8] = b"second";
const KEY_1_B64: &str = "Zmlyc3QgdHJhbnNmZXJhYmxlIHB1YmxpYyBrZXk=";
const KEY_2_B64: &str = "c2Vjb25k";

/// A mail domain publishing two OPENPGPKEY records and two SMIMEA records for `joe`.
fn zone(origin: &str) -> String {
    format!(
        "@ 300 IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A 127.0.0.9
{JOE}._openpgpkey 600 IN OPENPGPKEY {KEY_1_B64}
{JOE}._openpgpkey 600 IN OPENPGPKEY {KEY_2_B64}
{JOE}._smimecert 120 IN SMIMEA 3 0 0 308201
{JOE}._smimecert 120 IN SMIMEA 1 1 1 0102
www 300 IN A 127.0.0.5
"
    )
}

fn resolver(dns: &TestDns, anchors_of: &TestDns, dir: &Path, dnssec: bool) -> HickoryResolver {
    HickoryResolver::new(&DnsConfig {
        nameservers: vec![dns.addr],
        timeout: Duration::from_secs(2),
        dnssec,
        trust_anchor_file: Some(anchors_of.write_trust_anchor_file(dir)),
        ..DnsConfig::default()
    })
    .unwrap()
}

/// A signed example.test and an unsigned other.test on one server, and a resolver
/// anchored at example.test only.
async fn lab() -> (TestDns, HickoryResolver, TempDir) {
    let (example, other) = (zone("example.test."), zone("other.test."));
    let dns = TestDns::start_zones(&[
        TestZone::signed("example.test.", &example),
        TestZone::unsigned("other.test.", &other),
    ])
    .await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&dns, &dns, dir.path(), true);
    (dns, r, dir)
}

fn openpgpkey_name(label: &str, domain: &str) -> String {
    format!("{label}._openpgpkey.{domain}")
}

fn smimea_name(label: &str, domain: &str) -> String {
    format!("{label}._smimecert.{domain}")
}

fn sorted(answer: OpenpgpkeyAnswer) -> OpenpgpkeyAnswer {
    match answer {
        Secured::Secure { mut records, ttl } => {
            records.sort();
            Secured::Secure { records, ttl }
        }
        other => other,
    }
}

fn by_usage(answer: SmimeaAnswer) -> SmimeaAnswer {
    match answer {
        Secured::Secure { mut records, ttl } => {
            records.sort_by_key(|r| r.usage);
            Secured::Secure { records, ttl }
        }
        other => other,
    }
}

#[tokio::test]
async fn openpgpkey_records_in_a_signed_zone_are_secure_with_their_key_bytes() {
    let (_dns, r, _dir) = lab().await;
    let got = r
        .openpgpkey(&openpgpkey_name(JOE, "example.test"))
        .await
        .unwrap();
    let want = Secured::Secure {
        records: vec![KEY_2.to_vec(), KEY_1.to_vec()],
        ttl: 600,
    };
    assert_eq!(sorted(got), sorted(want));
    // A trailing dot and upper case name the same records.
    let name = openpgpkey_name(JOE, "EXAMPLE.test.");
    let again = r.openpgpkey(&name).await.unwrap();
    assert!(matches!(again, Secured::Secure { .. }), "{again:?}");
}

#[tokio::test]
async fn smimea_records_in_a_signed_zone_are_secure_with_their_fields() {
    let (_dns, r, _dir) = lab().await;
    let got = r.smimea(&smimea_name(JOE, "example.test")).await.unwrap();
    let want = Secured::Secure {
        records: vec![
            SmimeaRecord {
                usage: 1,
                selector: 1,
                matching: 1,
                data: vec![1, 2],
            },
            SmimeaRecord {
                usage: 3,
                selector: 0,
                matching: 0,
                data: vec![0x30, 0x82, 0x01],
            },
        ],
        ttl: 120,
    };
    assert_eq!(by_usage(got), want);
}

#[tokio::test]
async fn a_signed_zone_without_the_records_is_a_secure_denial() {
    let (_dns, r, _dir) = lab().await;
    // NXDOMAIN below an existing `_openpgpkey` / `_smimecert` node.
    let got = r.openpgpkey(&openpgpkey_name(NOBODY, "example.test")).await;
    assert!(matches!(got, Ok(Secured::SecureNone)), "{got:?}");
    let got = r.smimea(&smimea_name(NOBODY, "example.test")).await;
    assert!(matches!(got, Ok(Secured::SecureNone)), "{got:?}");
    // NODATA: the name exists with the other type.
    let got = r.smimea(&openpgpkey_name(JOE, "example.test")).await;
    assert!(matches!(got, Ok(Secured::SecureNone)), "{got:?}");
    let got = r.openpgpkey(&smimea_name(JOE, "example.test")).await;
    assert!(matches!(got, Ok(Secured::SecureNone)), "{got:?}");
    // A domain without any key publication.
    let got = r
        .openpgpkey(&openpgpkey_name(JOE, "www.example.test"))
        .await;
    assert!(matches!(got, Ok(Secured::SecureNone)), "{got:?}");
}

#[tokio::test]
async fn records_in_an_unsigned_zone_are_insecure() {
    let (_dns, r, _dir) = lab().await;
    let got = r
        .openpgpkey(&openpgpkey_name(JOE, "other.test"))
        .await
        .unwrap();
    assert_eq!(got, Secured::Insecure);
    let got = r.smimea(&smimea_name(JOE, "other.test")).await.unwrap();
    assert_eq!(got, Secured::Insecure);
    let got = r
        .openpgpkey(&openpgpkey_name(NOBODY, "other.test"))
        .await
        .unwrap();
    assert_eq!(got, Secured::Insecure);
}

/// The zone is signed, but with another key than the one anchored: an attacker's records.
#[tokio::test]
async fn records_signed_with_a_key_other_than_the_anchor_are_bogus() {
    let example = zone("example.test.");
    let dns = TestDns::start_signed(&[("example.test.", &example)]).await;
    let impostor = TestDns::start_signed(&[("example.test.", &example)]).await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&dns, &impostor, dir.path(), true);
    let got = r
        .openpgpkey(&openpgpkey_name(JOE, "example.test"))
        .await
        .unwrap();
    assert!(matches!(got, Secured::Bogus { .. }), "{got:?}");
    let got = r.smimea(&smimea_name(JOE, "example.test")).await.unwrap();
    assert!(matches!(got, Secured::Bogus { .. }), "{got:?}");
}

/// An anchored zone answering without signatures: a downgrade attempt.
#[tokio::test]
async fn an_anchored_zone_served_unsigned_is_bogus() {
    let example = zone("example.test.");
    let signed = TestDns::start_signed(&[("example.test.", &example)]).await;
    let unsigned = TestDns::start(&[("example.test.", &example)]).await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&unsigned, &signed, dir.path(), true);
    let got = r
        .openpgpkey(&openpgpkey_name(JOE, "example.test"))
        .await
        .unwrap();
    assert!(matches!(got, Secured::Bogus { .. }), "{got:?}");
    let got = r
        .smimea(&smimea_name(NOBODY, "example.test"))
        .await
        .unwrap();
    assert!(matches!(got, Secured::Bogus { .. }), "{got:?}");
}

#[tokio::test]
async fn with_dnssec_off_published_keys_are_insecure() {
    let (dns, _r, dir) = lab().await;
    let r = resolver(&dns, &dns, dir.path(), false);
    let got = r
        .openpgpkey(&openpgpkey_name(JOE, "example.test"))
        .await
        .unwrap();
    assert_eq!(got, Secured::Insecure);
    let got = r.smimea(&smimea_name(JOE, "example.test")).await.unwrap();
    assert_eq!(got, Secured::Insecure);
}
