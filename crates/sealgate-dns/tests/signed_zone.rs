//! The test kit's signed zones validate with hickory against an island-of-trust
//! anchor: the ground later DNSSEC (DANE) work stands on.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::Proof;
use sealgate_testkit::dns::TestDns;

const ZONE: &str = "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ 300 IN MX 10 mx
mx 300 IN A 127.0.0.2
";

#[tokio::test]
async fn signed_zone_answers_validate_as_secure() {
    let dns = TestDns::start_signed(&[("example.test.", ZONE)]).await;
    assert_eq!(dns.zone_keys().len(), 1);

    let mut udp = ConnectionConfig::udp();
    udp.port = dns.addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = dns.addr.port();
    let ns = NameServerConfig::new(dns.addr.ip(), true, vec![udp, tcp]);
    let cfg = ResolverConfig::from_name_servers(vec![ns]);
    let resolver = TokioResolver::builder_with_config(cfg, TokioRuntimeProvider::default())
        .with_trust_anchor(Arc::new(dns.trust_anchors()))
        .build()
        .unwrap();

    let lookup = resolver.mx_lookup("example.test.").await.unwrap();
    let mx: Vec<_> = lookup
        .answers()
        .iter()
        .filter(|r| r.record_type() == hickory_resolver::proto::rr::RecordType::MX)
        .collect();
    assert_eq!(mx.len(), 1);
    assert!(mx.iter().all(|r| r.proof == Proof::Secure), "{mx:?}");
}
