//! Tests of the DANE probe: against real signed and unsigned zones on the test DNS server
//! (validated by `HickoryResolver` through a trust-anchor file, as the daemon does), and
//! the summary and concurrency rules on their own.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sealgate_dns::{
    BoxFuture, DnsConfig, HickoryResolver, MxRecords, OpenpgpkeyAnswer, SmimeaAnswer,
};
use sealgate_testkit::dns::{TestDns, TestZone};

use super::*;

const SHA256: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

/// example.test with MX hosts `mx` (TLSA given by `tlsa`, if any) and `mx2` (no TLSA).
fn zone(origin: &str, tlsa: &[&str]) -> String {
    let mut text = format!(
        "@ 300 IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A 127.0.0.9
@ 300 IN MX 10 mx
@ 300 IN MX 20 mx2
mx 300 IN A 127.0.0.2
mx2 300 IN A 127.0.0.3
_acme-challenge.mx2 300 IN TXT \"token\"
"
    );
    for record in tlsa {
        text.push_str(&format!("_25._tcp.mx 300 IN TLSA {record}\n"));
    }
    text
}

/// A trust-anchor file in the temp directory, removed when dropped.
struct AnchorFile(PathBuf);

impl AnchorFile {
    fn of(dns: &TestDns) -> Self {
        Self(dns.write_trust_anchor_file(&std::env::temp_dir()))
    }
}

impl Drop for AnchorFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A resolver asking `dns`, anchored at the zones `anchors` names.
fn resolver(dns: &TestDns, anchors: &AnchorFile) -> HickoryResolver {
    HickoryResolver::new(&DnsConfig {
        nameservers: vec![dns.addr],
        timeout: Duration::from_secs(2),
        trust_anchor_file: Some(anchors.0.clone()),
        ..DnsConfig::default()
    })
    .unwrap()
}

fn hosts(names: &[&str]) -> Vec<String> {
    names.iter().map(|h| (*h).to_owned()).collect()
}

async fn probe_signed(tlsa: &[&str]) -> DaneProbe {
    let text = zone("example.test.", tlsa);
    let dns = TestDns::start_signed(&[("example.test.", &text)]).await;
    let anchors = AnchorFile::of(&dns);
    let r = resolver(&dns, &anchors);
    probe(&r, "example.test", &hosts(&["mx.example.test"]), 25).await
}

#[tokio::test]
async fn a_dane_ee_record_in_a_signed_zone_is_usable() {
    let got = probe_signed(&[&format!("3 1 1 {SHA256}")]).await;
    let record = TlsaRecord {
        usage: 3,
        selector: 1,
        matching: 1,
        data: (1..=32).collect(),
    };
    assert!(got.route_secure);
    assert_eq!(
        got.host("mx.example.test"),
        Some(&HostDane::Usable {
            records: vec![record],
            ttl: 300
        })
    );
    assert_eq!(got.summary(), DaneStatus::Valid);
    assert_eq!(got.min_ttl(), Some(300));
}

#[tokio::test]
async fn a_signed_zone_without_tlsa_is_no_tlsa() {
    let got = probe_signed(&[]).await;
    assert!(got.route_secure);
    assert_eq!(got.host("mx.example.test"), Some(&HostDane::NoTlsa));
    assert_eq!(got.summary(), DaneStatus::SecureNoTlsa);
    assert_eq!(got.min_ttl(), None);
}

#[tokio::test]
async fn pkix_usages_only_are_unusable() {
    let got = probe_signed(&[
        &format!("0 1 1 {SHA256}"),
        &format!("1 0 1 {SHA256}"),
        // DANE-EE, but a SHA-256 digest of the wrong length can never match.
        "3 1 1 0102",
    ])
    .await;
    assert_eq!(got.host("mx.example.test"), Some(&HostDane::Unusable));
    assert_eq!(got.summary(), DaneStatus::Unusable);
}

#[tokio::test]
async fn only_the_usable_records_are_kept() {
    let got = probe_signed(&[&format!("1 1 1 {SHA256}"), &format!("2 0 1 {SHA256}")]).await;
    let Some(HostDane::Usable { records, .. }) = got.host("mx.example.test") else {
        panic!("{got:?}");
    };
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].usage, records[0].selector), (2, 0));
}

#[tokio::test]
async fn the_same_records_in_an_unsigned_zone_are_insecure() {
    let tlsa = format!("3 1 1 {SHA256}");
    // An unsigned zone outside the island of trust (a lab anchored at example.test only).
    let (signed, unsigned) = (zone("example.test.", &[]), zone("other.test.", &[&tlsa]));
    let dns = TestDns::start_zones(&[
        TestZone::signed("example.test.", &signed),
        TestZone::unsigned("other.test.", &unsigned),
    ])
    .await;
    let anchors = AnchorFile::of(&dns);
    let r = resolver(&dns, &anchors);
    let got = probe(&r, "other.test", &hosts(&["mx.other.test"]), 25).await;
    assert!(!got.route_secure);
    assert_eq!(got.host("mx.other.test"), Some(&HostDane::Insecure));
    assert_eq!(got.summary(), DaneStatus::Insecure);

    // An unsigned zone delegated from an anchored parent: proven insecure (no DS).
    let parent = "@ 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A 127.0.0.9
other 300 IN NS ns.other
";
    let dns = TestDns::start_zones(&[
        TestZone::signed("test.", parent),
        TestZone::unsigned("other.test.", &unsigned),
    ])
    .await;
    let anchors = AnchorFile::of(&dns);
    let r = resolver(&dns, &anchors);
    let got = probe(&r, "other.test", &hosts(&["mx.other.test"]), 25).await;
    assert_eq!(got.host("mx.other.test"), Some(&HostDane::Insecure));
    assert_eq!(got.summary(), DaneStatus::Insecure);
}

#[tokio::test]
async fn a_zone_anchored_with_the_wrong_key_is_bogus() {
    let text = zone("example.test.", &[&format!("3 1 1 {SHA256}")]);
    let dns = TestDns::start_signed(&[("example.test.", &text)]).await;
    let impostor = TestDns::start_signed(&[("example.test.", &text)]).await;
    let anchors = AnchorFile::of(&impostor);
    let r = resolver(&dns, &anchors);
    let got = probe(
        &r,
        "example.test",
        &hosts(&["mx.example.test", "mx2.example.test"]),
        25,
    )
    .await;
    assert!(!got.route_secure);
    for host in ["mx.example.test", "mx2.example.test"] {
        assert!(
            matches!(got.host(host), Some(HostDane::Bogus { .. })),
            "{host}: {got:?}"
        );
    }
    assert_eq!(got.summary(), DaneStatus::Bogus);
}

/// The route is secure but one host's TLSA denial is incomplete (a stripped proof):
/// that host is bogus, never "no TLSA".
#[tokio::test]
async fn an_incomplete_tlsa_denial_makes_the_host_bogus() {
    let text = zone("example.test.", &[&format!("3 1 1 {SHA256}")]);
    let dns = TestDns::start_signed_with_incomplete_denials(&[("example.test.", &text)]).await;
    let anchors = AnchorFile::of(&dns);
    let r = resolver(&dns, &anchors);
    let got = probe(
        &r,
        "example.test",
        &hosts(&["mx.example.test", "mx2.example.test"]),
        25,
    )
    .await;
    assert!(got.route_secure);
    assert!(matches!(
        got.host("mx.example.test"),
        Some(HostDane::Usable { .. })
    ));
    assert!(
        matches!(got.host("mx2.example.test"), Some(HostDane::Bogus { .. })),
        "{got:?}"
    );
    assert_eq!(got.summary(), DaneStatus::Valid);
}

#[tokio::test]
async fn hosts_are_normalised_deduplicated_and_kept_in_order() {
    let text = zone("example.test.", &[&format!("3 1 1 {SHA256}")]);
    let dns = TestDns::start_signed(&[("example.test.", &text)]).await;
    let anchors = AnchorFile::of(&dns);
    let r = resolver(&dns, &anchors);
    let given = hosts(&["MX2.Example.Test.", "mx.example.test", "mx2.example.test"]);
    let got = probe(&r, "example.test", &given, 25).await;
    let names: Vec<&str> = got.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(names, ["mx2.example.test", "mx.example.test"]);
    assert_eq!(got.host("MX2.example.test."), Some(&HostDane::NoTlsa));
    assert!(matches!(
        got.host("mx.example.test"),
        Some(HostDane::Usable { .. })
    ));
    assert_eq!(got.host("mx3.example.test"), None);
}

#[tokio::test]
async fn a_silent_server_makes_the_hosts_failed_and_the_summary_unknown() {
    let silent = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let tcp = std::net::TcpListener::bind(silent.local_addr().unwrap()).ok();
    let text = zone("example.test.", &[]);
    let anchors_of = TestDns::start_signed(&[("example.test.", &text)]).await;
    let anchors = AnchorFile::of(&anchors_of);
    let r = HickoryResolver::new(&DnsConfig {
        nameservers: vec![silent.local_addr().unwrap()],
        timeout: Duration::from_millis(300),
        attempts: 1,
        trust_anchor_file: Some(anchors.0.clone()),
        ..DnsConfig::default()
    })
    .unwrap();
    let got = probe(&r, "example.test", &hosts(&["mx.example.test"]), 25).await;
    assert!(
        matches!(got.host("mx.example.test"), Some(HostDane::Failed { .. })),
        "{got:?}"
    );
    assert_eq!(got.summary(), DaneStatus::Unknown);
    drop(tcp);
}

fn probe_of(route_secure: bool, states: Vec<HostDane>) -> DaneProbe {
    DaneProbe {
        route_secure,
        hosts: states
            .into_iter()
            .enumerate()
            .map(|(i, state)| HostTlsa {
                host: format!("mx{i}.example.test"),
                state,
            })
            .collect(),
    }
}

fn usable_state(ttl: u32) -> HostDane {
    HostDane::Usable {
        records: vec![TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0; 32],
        }],
        ttl,
    }
}

fn bogus() -> HostDane {
    HostDane::Bogus {
        reason: "test".into(),
    }
}

fn failed() -> HostDane {
    HostDane::Failed {
        reason: "test".into(),
    }
}

#[test]
fn the_summary_follows_its_documented_order() {
    use DaneStatus::*;
    use HostDane::{Insecure as Ins, NoTlsa, Unusable};
    let cases: Vec<(bool, Vec<HostDane>, DaneStatus)> = vec![
        (true, vec![usable_state(60), bogus(), failed()], Valid),
        (false, vec![Ins, usable_state(60)], Valid),
        (false, vec![bogus(), bogus()], Bogus),
        (true, vec![NoTlsa, Unusable], DaneStatus::Unusable),
        (true, vec![Unusable, Unusable], DaneStatus::Unusable),
        (true, vec![NoTlsa, NoTlsa], SecureNoTlsa),
        (true, vec![Unusable, failed()], Unknown),
        (false, vec![NoTlsa], Insecure),
        (true, vec![NoTlsa, failed()], Unknown),
        (true, vec![bogus(), failed()], Unknown),
        (true, vec![NoTlsa, Ins], Insecure),
        (true, vec![NoTlsa, bogus()], Insecure),
        (false, vec![Ins, bogus()], Insecure),
        (false, vec![], Insecure),
        (true, vec![], Insecure),
    ];
    for (route_secure, states, want) in cases {
        let p = probe_of(route_secure, states.clone());
        assert_eq!(p.summary(), want, "route_secure={route_secure} {states:?}");
    }
}

#[test]
fn min_ttl_is_the_smallest_usable_ttl() {
    let p = probe_of(
        true,
        vec![usable_state(300), HostDane::NoTlsa, usable_state(60)],
    );
    assert_eq!(p.min_ttl(), Some(60));
}

/// Answers `secure_route` after a delay, counting how many calls run at once.
#[derive(Debug, Default)]
struct SlowResolver {
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Resolver for SlowResolver {
    fn mx<'a>(&'a self, d: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>> {
        Box::pin(async move { Err(timeout(d)) })
    }
    fn ips<'a>(&'a self, h: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move { Err(timeout(h)) })
    }
    fn tlsa<'a>(&'a self, _: &'a str, _: u16) -> BoxFuture<'a, Result<TlsaAnswer, DnsError>> {
        Box::pin(async { Ok(TlsaAnswer::SecureNone) })
    }
    fn secure_route<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<bool, DnsError>> {
        Box::pin(async {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(true)
        })
    }
    fn txt<'a>(&'a self, n: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        Box::pin(async move { Err(timeout(n)) })
    }
    fn openpgpkey<'a>(&'a self, n: &'a str) -> BoxFuture<'a, Result<OpenpgpkeyAnswer, DnsError>> {
        Box::pin(async move { Err(timeout(n)) })
    }
    fn smimea<'a>(&'a self, n: &'a str) -> BoxFuture<'a, Result<SmimeaAnswer, DnsError>> {
        Box::pin(async move { Err(timeout(n)) })
    }
}

fn timeout(name: &str) -> DnsError {
    DnsError::Timeout {
        name: name.to_owned(),
        record_type: "A",
    }
}

#[tokio::test(start_paused = true)]
async fn hosts_are_probed_concurrently_but_bounded() {
    let r = SlowResolver::default();
    let many: Vec<String> = (0..10).map(|i| format!("mx{i}.example.test")).collect();
    let started = tokio::time::Instant::now();
    let got = probe(&r, "example.test", &many, 25).await;
    assert_eq!(got.hosts.len(), 10);
    assert!(got.hosts.iter().all(|h| h.state == HostDane::NoTlsa));
    let names: Vec<&str> = got.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(names, many.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.most.load(Ordering::SeqCst), MAX_CONCURRENT_HOSTS);
    // Ten 100 ms probes four at a time: three rounds, not ten.
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}
