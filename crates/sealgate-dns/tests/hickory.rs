//! `HickoryResolver` and `route` against a real DNS server on loopback.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sealgate_dns::{
    DnsConfig, DnsError, HickoryResolver, MxHost, MxRecords, Resolver, Route, Routing, route,
};
use sealgate_testkit::dns::TestDns;

const SOA: &str = "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60\n";

fn zone(body: &str) -> String {
    format!("{SOA}{body}")
}

async fn serve(body: &str) -> (TestDns, HickoryResolver) {
    let text = zone(body);
    let dns = TestDns::start(&[("example.test.", &text)]).await;
    let resolver = resolver_at(dns.addr, Duration::from_secs(2), 2);
    (dns, resolver)
}

fn resolver_at(addr: SocketAddr, timeout: Duration, attempts: usize) -> HickoryResolver {
    HickoryResolver::new(&DnsConfig {
        nameservers: vec![addr],
        timeout,
        attempts,
        ..DnsConfig::default()
    })
    .expect("resolver")
}

fn keep_order(_: &mut [Route]) {}

fn hosts(routing: Routing) -> Vec<(u16, String, bool)> {
    match routing {
        Routing::Hosts(routes) => routes
            .into_iter()
            .map(|r| (r.preference, r.host, r.implicit))
            .collect(),
        Routing::NullMx => panic!("expected hosts, got null MX"),
    }
}

#[tokio::test]
async fn mx_records_are_returned_in_preference_order() {
    let (_dns, r) = serve(
        "@ IN MX 20 MX2\n@ IN MX 10 mx1.example.test.\n@ IN MX 30 backup.other.test.\nmx1 IN A 127.0.0.2\n",
    )
    .await;
    let got = r.mx("example.test").await.unwrap();
    let want = MxRecords::Hosts(vec![
        MxHost::new(10, "mx1.example.test"),
        MxHost::new(20, "mx2.example.test"),
        MxHost::new(30, "backup.other.test"),
    ]);
    assert_eq!(got, want);

    let routing = route(&r, "example.test", keep_order).await.unwrap();
    let names: Vec<_> = hosts(routing).into_iter().map(|(_, h, _)| h).collect();
    assert_eq!(
        names,
        ["mx1.example.test", "mx2.example.test", "backup.other.test"]
    );
}

#[tokio::test]
async fn equal_preference_hosts_go_through_the_shuffle() {
    let (_dns, r) = serve("@ IN MX 10 a\n@ IN MX 10 b\n@ IN MX 5 first\n").await;
    let sorted = |run: &mut [Route]| run.sort_by(|x, y| y.host.cmp(&x.host));
    let routing = route(&r, "example.test", sorted).await.unwrap();
    let names: Vec<_> = hosts(routing).into_iter().map(|(_, h, _)| h).collect();
    assert_eq!(
        names,
        ["first.example.test", "b.example.test", "a.example.test"]
    );
}

#[tokio::test]
async fn a_domain_with_only_an_a_record_is_its_own_mx() {
    let (_dns, r) = serve("@ IN A 127.0.0.2\n").await;
    assert_eq!(r.mx("example.test").await.unwrap(), MxRecords::Implicit);
    let routing = route(&r, "example.test.", keep_order).await.unwrap();
    assert_eq!(hosts(routing), [(0, "example.test".to_owned(), true)]);
}

#[tokio::test]
async fn null_mx_means_no_delivery() {
    let (_dns, r) = serve("@ IN MX 0 .\n").await;
    assert_eq!(r.mx("example.test").await.unwrap(), MxRecords::NullMx);
    let routing = route(&r, "example.test", keep_order).await.unwrap();
    assert_eq!(routing, Routing::NullMx);
}

#[tokio::test]
async fn null_mx_next_to_a_real_mx_is_ignored() {
    let (_dns, r) = serve("@ IN MX 0 .\n@ IN MX 10 mx\n").await;
    let routing = route(&r, "example.test", keep_order).await.unwrap();
    assert_eq!(hosts(routing), [(10, "mx.example.test".to_owned(), false)]);
}

#[tokio::test]
async fn a_nonexistent_domain_is_a_permanent_error() {
    let (_dns, r) = serve("@ IN MX 10 mx\n").await;
    let err = route(&r, "nope.example.test", keep_order)
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::NxDomain { .. }), "{err:?}");
    assert!(err.is_permanent());
    let err = r.ips("nope.example.test").await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
}

#[tokio::test]
async fn a_zone_the_server_does_not_serve_is_a_transient_error() {
    let (_dns, r) = serve("@ IN MX 10 mx\n").await;
    // The test server refuses names outside its zones (REFUSED).
    let err = r.mx("elsewhere.org").await.unwrap_err();
    assert!(matches!(err, DnsError::ServerError { .. }), "{err:?}");
    assert!(!err.is_permanent(), "{err:?}");
}

#[tokio::test]
async fn a_host_with_a_and_aaaa_gives_both_addresses() {
    let (_dns, r) = serve("mx IN A 127.0.0.2\nmx IN AAAA ::1\nv6only IN AAAA ::2\n").await;
    let got = r.ips("mx.example.test").await.unwrap();
    let want: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "::1".parse().unwrap()];
    assert_eq!(got, want);
    let got = r.ips("v6only.example.test").await.unwrap();
    assert_eq!(got, vec!["::2".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn a_name_without_addresses_gives_an_empty_list() {
    let (_dns, r) = serve("@ IN MX 10 mx\nmx IN TXT \"no address here\"\n").await;
    assert_eq!(
        r.ips("mx.example.test").await.unwrap(),
        Vec::<IpAddr>::new()
    );
}

#[tokio::test]
async fn a_silent_server_gives_a_transient_error_in_bounded_time() {
    // Bound but never read: queries go unanswered.
    let silent = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let tcp = std::net::TcpListener::bind(silent.local_addr().unwrap()).ok();
    let r = resolver_at(silent.local_addr().unwrap(), Duration::from_millis(500), 1);
    let started = Instant::now();
    let err = r.mx("example.test").await.unwrap_err();
    assert!(matches!(err, DnsError::Timeout { .. }), "{err:?}");
    assert!(!err.is_permanent(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(tcp);
}

#[tokio::test]
async fn an_unused_port_gives_a_transient_error_in_bounded_time() {
    let port = {
        let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let r = resolver_at(addr, Duration::from_millis(500), 1);
    let started = Instant::now();
    let err = r.ips("mx.example.test").await.unwrap_err();
    assert!(!err.is_permanent(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_invalid_name_is_a_permanent_error() {
    let (_dns, r) = serve("@ IN MX 10 mx\n").await;
    let err = r.mx("bad..example.test").await.unwrap_err();
    assert!(matches!(err, DnsError::InvalidName { .. }), "{err:?}");
}
