//! DNSSEC-validated lookups (`tlsa`, `secure_route`) and `txt` of `HickoryResolver`
//! against the in-process test DNS server, anchored through `DnsConfig::trust_anchor_file`
//! as the daemon is.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sealgate_dns::{DnsConfig, DnsError, HickoryResolver, Resolver, TlsaAnswer, TlsaRecord};
use sealgate_testkit::dns::{TestDns, TestZone};
use tempfile::TempDir;

const DIGEST: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

/// A mail domain: MX `mx` with a DANE-EE record, MX `mx2` and hosts `mx3`, `mx4`
/// without TLSA, and names around them that make the NSEC chain interesting.
fn example_zone() -> String {
    format!(
        "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ 300 IN NS ns
@ 300 IN MX 10 mx
@ 300 IN MX 20 mx2
ns 300 IN A 127.0.0.9
mx 300 IN A 127.0.0.2
_25._tcp.mx 300 IN TLSA 3 1 1 {DIGEST}
mx2 300 IN A 127.0.0.3
mx2 300 IN AAAA ::3
_acme-challenge.mx2 300 IN TXT \"token\"
mx3 300 IN A 127.0.0.4
_25._tcp.mx3 300 IN TXT \"not a tlsa record\"
mx4 300 IN A 127.0.0.7
www 300 IN A 127.0.0.5
"
    )
}

fn other_zone() -> String {
    format!(
        "@ 300 IN SOA ns.other.test. hostmaster.other.test. 1 3600 600 86400 60
@ 300 IN MX 10 mx
mx 300 IN A 127.0.0.6
_25._tcp.mx 300 IN TLSA 3 1 1 {DIGEST}
"
    )
}

fn dane_ee() -> TlsaRecord {
    TlsaRecord {
        usage: 3,
        selector: 1,
        matching: 1,
        data: (1..=32).collect(),
    }
}

fn config(dns: &TestDns, anchors: Option<PathBuf>) -> DnsConfig {
    DnsConfig {
        nameservers: vec![dns.addr],
        timeout: Duration::from_secs(2),
        trust_anchor_file: anchors,
        ..DnsConfig::default()
    }
}

/// A resolver at `dns`, trusting the anchors `anchors_of` publishes (through the file).
fn resolver(dns: &TestDns, anchors_of: &TestDns, dir: &Path) -> HickoryResolver {
    let file = anchors_of.write_trust_anchor_file(dir);
    HickoryResolver::new(&config(dns, Some(file))).unwrap()
}

/// A signed example.test and an unsigned other.test on one server, and a resolver
/// anchored at example.test only.
async fn signed_example() -> (TestDns, HickoryResolver, TempDir) {
    let (example, other) = (example_zone(), other_zone());
    let dns = TestDns::start_zones(&[
        TestZone::signed("example.test.", &example),
        TestZone::unsigned("other.test.", &other),
    ])
    .await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&dns, &dns, dir.path());
    (dns, r, dir)
}

#[tokio::test]
async fn a_tlsa_record_in_a_signed_zone_is_secure() {
    let (_dns, r, _dir) = signed_example().await;
    let got = r.tlsa("mx.example.test", 25).await.unwrap();
    assert_eq!(
        got,
        TlsaAnswer::Secure {
            records: vec![dane_ee()],
            ttl: 300
        }
    );
    // A trailing dot and upper case name the same host.
    let again = r.tlsa("MX.Example.Test.", 25).await.unwrap();
    assert!(matches!(again, TlsaAnswer::Secure { .. }), "{again:?}");
}

/// The common DANE case: a signed domain whose MX host publishes no TLSA. The TLSA
/// name is two labels below an existing host, so the proof needs the NSEC covering the
/// wildcard at the host as well as the one covering the name (RFC 4035 §3.1.3.2).
#[tokio::test]
async fn a_signed_mx_without_tlsa_is_a_secure_denial() {
    let (_dns, r, _dir) = signed_example().await;
    for host in [
        // NXDOMAIN two levels below an existing host; the covering NSEC is the host's.
        "mx4.example.test",
        // The same, but the host has a child sorting before `_tcp`, so two NSECs.
        "mx2.example.test",
        // NODATA: the TLSA name exists with another type.
        "mx3.example.test",
        // The zone apex as host (implicit MX).
        "example.test",
        // The last name of the NSEC chain (its NSEC wraps to the apex).
        "www.example.test",
        // A host that does not exist: the closest encloser is the apex.
        "nope.example.test",
    ] {
        for attempt in ["first", "cached"] {
            let got = r.tlsa(host, 25).await;
            assert!(
                matches!(got, Ok(TlsaAnswer::SecureNone)),
                "{host} ({attempt}): {got:?}"
            );
        }
    }
    // Another port at a host with a TLSA record for port 25 only.
    let got = r.tlsa("mx.example.test", 465).await.unwrap();
    assert_eq!(got, TlsaAnswer::SecureNone);
}

/// hickory-server's own NXDOMAIN proof for `_25._tcp.mx2.example.test.` lacks the
/// wildcard NSEC; the validator must call that bogus, never a secure denial (an
/// attacker stripping that NSEC must not be able to switch DANE off).
#[tokio::test]
async fn an_incomplete_denial_is_bogus_not_a_secure_denial() {
    let zone = example_zone();
    let dns = TestDns::start_signed_with_incomplete_denials(&[("example.test.", &zone)]).await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&dns, &dns, dir.path());
    let got = r.tlsa("mx2.example.test", 25).await.unwrap();
    assert!(matches!(got, TlsaAnswer::Bogus { .. }), "{got:?}");
    let got = r.tlsa("nope.example.test", 25).await.unwrap();
    assert!(matches!(got, TlsaAnswer::Bogus { .. }), "{got:?}");
    // Complete proofs from the same server still validate.
    let got = r.tlsa("mx.example.test", 465).await.unwrap();
    assert_eq!(got, TlsaAnswer::SecureNone);
}

#[tokio::test]
async fn tlsa_records_in_an_unsigned_zone_outside_the_anchors_are_insecure() {
    let (_dns, r, _dir) = signed_example().await;
    let got = r.tlsa("mx.other.test", 25).await.unwrap();
    assert_eq!(got, TlsaAnswer::Insecure);
    let got = r.tlsa("nope.other.test", 25).await.unwrap();
    assert_eq!(got, TlsaAnswer::Insecure);
}

/// The Internet's case in miniature: only the parent `test.` is anchored; a signed
/// child validates through its DS record, and an unsigned child is proven insecure by
/// the parent's NSEC at the delegation (no DS).
#[tokio::test]
async fn children_of_an_anchored_parent_are_secure_through_ds_or_proven_insecure() {
    let parent = "@ 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A 127.0.0.9
example 300 IN NS ns.example
other 300 IN NS ns.other
";
    let (example, other) = (example_zone(), other_zone());
    let other = format!("{other}@ 300 IN NS ns\nns 300 IN A 127.0.0.9\n");
    let dns = TestDns::start_zones(&[
        TestZone::signed("test.", parent),
        TestZone::signed("example.test.", &example),
        TestZone::unsigned("other.test.", &other),
    ])
    .await;
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("test-anchor.keys");
    std::fs::write(&file, dns.zone_keys()[0].trust_anchor_line()).unwrap();
    let r = HickoryResolver::new(&config(&dns, Some(file))).unwrap();

    let got = r.tlsa("mx.example.test", 25).await.unwrap();
    assert!(matches!(got, TlsaAnswer::Secure { .. }), "{got:?}");
    assert_eq!(
        r.tlsa("mx2.example.test", 25).await.unwrap(),
        TlsaAnswer::SecureNone
    );
    assert!(
        r.secure_route("example.test", "mx.example.test")
            .await
            .unwrap()
    );

    assert_eq!(
        r.tlsa("mx.other.test", 25).await.unwrap(),
        TlsaAnswer::Insecure
    );
    assert_eq!(
        r.tlsa("nope.other.test", 25).await.unwrap(),
        TlsaAnswer::Insecure
    );
    assert!(!r.secure_route("other.test", "mx.other.test").await.unwrap());
}

/// An anchored zone answering without signatures: a downgrade attempt.
#[tokio::test]
async fn an_anchored_zone_served_unsigned_is_bogus() {
    let zone = example_zone();
    let signed = TestDns::start_signed(&[("example.test.", &zone)]).await;
    let unsigned = TestDns::start(&[("example.test.", &zone)]).await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&unsigned, &signed, dir.path());
    for host in ["mx.example.test", "mx2.example.test"] {
        let got = r.tlsa(host, 25).await.unwrap();
        assert!(matches!(got, TlsaAnswer::Bogus { .. }), "{host}: {got:?}");
    }
    let err = r
        .secure_route("example.test", "mx.example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DnsError::DnssecBogus {
                record_type: "MX",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn a_zone_anchored_with_another_key_is_bogus() {
    let zone = example_zone();
    let dns = TestDns::start_signed(&[("example.test.", &zone)]).await;
    let impostor = TestDns::start_signed(&[("example.test.", &zone)]).await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&dns, &impostor, dir.path());
    for host in ["mx.example.test", "mx2.example.test"] {
        let got = r.tlsa(host, 25).await.unwrap();
        assert!(matches!(got, TlsaAnswer::Bogus { .. }), "{host}: {got:?}");
    }
    let err = r
        .secure_route("example.test", "mx.example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DnsError::DnssecBogus {
                record_type: "MX",
                ..
            }
        ),
        "{err:?}"
    );
    // Routing does not validate and still works.
    assert_eq!(r.ips("mx.example.test").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_secure_route_needs_the_mx_and_the_host_addresses_signed() {
    let (_dns, r, _dir) = signed_example().await;
    assert!(
        r.secure_route("example.test", "mx.example.test")
            .await
            .unwrap()
    );
    // A and AAAA both signed.
    assert!(
        r.secure_route("example.test.", "MX2.example.test.")
            .await
            .unwrap()
    );
    // A signed MX pointing into an unsigned zone.
    assert!(
        !r.secure_route("example.test", "mx.other.test")
            .await
            .unwrap()
    );
    // An unsigned domain.
    assert!(!r.secure_route("other.test", "mx.other.test").await.unwrap());
    // A signed host without addresses is no route.
    assert!(
        !r.secure_route("example.test", "nope.example.test")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_signed_domain_without_mx_is_a_secure_route_through_its_addresses() {
    let zone = "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ 300 IN A 127.0.0.2
";
    let dns = TestDns::start_signed(&[("example.test.", zone)]).await;
    let dir = TempDir::new().unwrap();
    let r = resolver(&dns, &dns, dir.path());
    assert!(
        r.secure_route("example.test", "example.test")
            .await
            .unwrap()
    );
    let err = r
        .secure_route("nope.example.test", "example.test")
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NxDomain { .. }), "{err:?}");
}

#[tokio::test]
async fn with_dnssec_off_everything_is_insecure() {
    let (dns, _r, _dir) = signed_example().await;
    let r = HickoryResolver::new(&DnsConfig {
        dnssec: false,
        ..config(&dns, None)
    })
    .unwrap();
    assert_eq!(
        r.tlsa("mx.example.test", 25).await.unwrap(),
        TlsaAnswer::Insecure
    );
    assert!(
        !r.secure_route("example.test", "mx.example.test")
            .await
            .unwrap()
    );
    assert_eq!(r.ips("mx.example.test").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_silent_server_makes_tlsa_a_transient_error_in_bounded_time() {
    let silent = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let tcp = std::net::TcpListener::bind(addr).ok();
    let zone = example_zone();
    let anchors_of = TestDns::start_signed(&[("example.test.", &zone)]).await;
    let dir = TempDir::new().unwrap();
    let r = HickoryResolver::new(&DnsConfig {
        nameservers: vec![addr],
        timeout: Duration::from_millis(500),
        attempts: 1,
        trust_anchor_file: Some(anchors_of.write_trust_anchor_file(dir.path())),
        ..DnsConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let err = r.tlsa("mx.example.test", 25).await.unwrap_err();
    assert!(!err.is_permanent(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(tcp);
}

#[tokio::test]
async fn a_bad_trust_anchor_file_is_a_configuration_error_naming_it() {
    let dns = TestDns::start(&[("other.test.", &other_zone())]).await;
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("broken.keys");
    std::fs::write(&file, "; lab\nexample.test. IN DNSKEY 257 3 13 !!!\n").unwrap();
    let err = HickoryResolver::new(&config(&dns, Some(file.clone()))).unwrap_err();
    match &err {
        DnsError::TrustAnchor { path, reason } => {
            assert_eq!(path, &file);
            assert!(reason.starts_with("line 2: "), "{reason}");
        }
        other => panic!("expected a trust anchor error, got {other:?}"),
    }
    assert!(err.to_string().contains("broken.keys"), "{err}");

    let missing = dir.path().join("missing.keys");
    let err = HickoryResolver::new(&config(&dns, Some(missing))).unwrap_err();
    assert!(matches!(err, DnsError::TrustAnchor { .. }), "{err:?}");
    // With DNSSEC off the file is not read.
    let off = DnsConfig {
        dnssec: false,
        ..config(&dns, Some(dir.path().join("missing.keys")))
    };
    assert!(HickoryResolver::new(&off).is_ok());
}

#[tokio::test]
async fn txt_joins_each_records_strings() {
    let zone = "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
_mta-sts 300 IN TXT \"v=STSv1; \" \"id=20240101\"
multi 300 IN TXT \"one\"
multi 300 IN TXT \"two\"
mx 300 IN A 127.0.0.2
";
    let dns = TestDns::start(&[("example.test.", zone)]).await;
    let r = HickoryResolver::new(&config(&dns, None)).unwrap();
    let got = r.txt("_mta-sts.example.test").await.unwrap();
    assert_eq!(got, ["v=STSv1; id=20240101"]);
    let mut got = r.txt("multi.example.test.").await.unwrap();
    got.sort();
    assert_eq!(got, ["one", "two"]);
    assert_eq!(
        r.txt("mx.example.test").await.unwrap(),
        Vec::<String>::new()
    );
    let err = r.txt("_mta-sts.nope.example.test").await.unwrap_err();
    assert!(matches!(err, DnsError::NxDomain { .. }), "{err:?}");
}
