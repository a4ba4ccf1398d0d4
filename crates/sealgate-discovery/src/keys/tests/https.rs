//! WKD through the real HTTPS fetcher: a test HTTPS server with a test-CA certificate, a
//! real DNS server for the host addresses, the hickory resolver.

use sealgate_dns::{DnsConfig, HickoryResolver};
use sealgate_testkit::dns::TestDns;
use sealgate_testkit::https::{TestHttps, TestResponse};
use sealgate_testkit::tls::TestCa;

use super::*;
use crate::keys::MAX_WKD_BYTES;
use crate::keys::wkd::WkdUrl;
use crate::mta_sts::FetchConfig;

const ADVANCED_HOST: &str = "openpgpkey.example.test";

/// An HTTPS server certified for both WKD hosts, and a discovery resolving through a DNS
/// server that serves `records` for example.test (the domain itself on 127.0.0.1).
struct HttpsLab {
    https: TestHttps,
    lab: Lab,
    _dns: TestDns,
}

async fn https_lab(records: &str, cert_names: &[&str]) -> HttpsLab {
    let ca = TestCa::new();
    let https = TestHttps::start("127.0.0.1:0".parse().unwrap(), &ca, cert_names).await;
    let zone = format!("@ 60 IN SOA ns hostmaster 1 60 60 60 60\n@ 60 IN A 127.0.0.1\n{records}");
    let dns = TestDns::start(&[("example.test.", &zone)]).await;
    let resolver = HickoryResolver::new(&DnsConfig {
        nameservers: vec![dns.addr],
        timeout: Duration::from_secs(2),
        dnssec: false,
        ..DnsConfig::default()
    })
    .unwrap();
    let settings = KeySettings {
        openpgpkey: false,
        smimea: false,
        fetch: FetchConfig {
            https_port: https.addr().port(),
            timeout: Duration::from_secs(5),
            extra_roots: vec![ca.cert_der()],
            public_roots: false,
        },
        ..KeySettings::default()
    };
    let mut lab = Lab::new(settings.clone()).await;
    lab.discovery = Discovery::new(
        Arc::new(resolver),
        None,
        lab.store.clone(),
        probe_settings(),
    )
    .with_keys(settings, None)
    .unwrap();
    HttpsLab {
        https,
        lab,
        _dns: dns,
    }
}

/// Both hosts exist and are certified.
async fn standard() -> HttpsLab {
    https_lab("openpgpkey 60 IN A 127.0.0.1\n", &[ADVANCED_HOST, DOMAIN]).await
}

fn key_response(body: &[u8]) -> TestResponse {
    TestResponse::new(200, "application/octet-stream", body)
}

impl HttpsLab {
    fn serve_advanced(&self, response: TestResponse) {
        let url = WkdUrl::advanced("joe", DOMAIN);
        self.https.set_response(&url.host, &url.path, response);
    }

    fn serve_direct(&self, response: TestResponse) {
        let url = WkdUrl::direct("joe", DOMAIN);
        self.https.set_response(&url.host, &url.path, response);
    }
}

#[tokio::test]
async fn a_key_is_fetched_from_the_advanced_host_at_its_query_path() {
    let lab = standard().await;
    let (key, fpr) = keys().good.clone();
    lab.serve_advanced(key_response(&key));
    let got = lab.lab.pgp().await;
    assert_eq!(summary(&got.pgp), Some((fpr, "wkd-advanced", "usable")));
    assert_eq!(lab.https.requests_for(ADVANCED_HOST), 1);
    assert_eq!(lab.https.requests_for(DOMAIN), 0);
}

#[tokio::test]
async fn an_advanced_host_without_an_address_falls_back_to_the_direct_host() {
    let lab = https_lab("", &[ADVANCED_HOST, DOMAIN]).await;
    let (key, fpr) = keys().good.clone();
    lab.serve_advanced(key_response(&keys().expired.0));
    lab.serve_direct(key_response(&key));
    let got = lab.lab.pgp().await;
    assert_eq!(summary(&got.pgp), Some((fpr, "wkd-direct", "usable")));
    assert_eq!(lab.https.requests_for(ADVANCED_HOST), 0);
    assert_eq!(lab.https.requests_for(DOMAIN), 1);
}

#[tokio::test]
async fn an_advanced_host_refusing_connections_falls_back_to_the_direct_host() {
    // Nothing listens on 127.0.0.2 (the server is bound to 127.0.0.1).
    let lab = https_lab("openpgpkey 60 IN A 127.0.0.2\n", &[ADVANCED_HOST, DOMAIN]).await;
    let (key, fpr) = keys().good.clone();
    lab.serve_direct(key_response(&key));
    let got = lab.lab.pgp().await;
    assert_eq!(summary(&got.pgp), Some((fpr, "wkd-direct", "usable")));
    assert!(
        notes(&got.pgp).contains("openpgpkey.example.test unreachable"),
        "{}",
        notes(&got.pgp)
    );
}

#[tokio::test]
async fn a_404_from_the_advanced_host_is_no_key_and_the_direct_host_is_not_asked() {
    let lab = standard().await;
    lab.serve_direct(key_response(&keys().good.0));
    let got = lab.lab.pgp().await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert_eq!(lab.https.requests_for(ADVANCED_HOST), 1);
    assert_eq!(lab.https.requests_for(DOMAIN), 0);
}

#[tokio::test]
async fn an_oversized_answer_is_refused_with_or_without_a_length() {
    for content_length in [true, false] {
        let lab = standard().await;
        let mut body = keys().good.0.clone();
        body.resize(MAX_WKD_BYTES + 1, 0);
        let mut response = key_response(&body);
        response.content_length = content_length;
        lab.serve_advanced(response);
        let got = lab.lab.pgp().await;
        assert!(
            matches!(got.pgp, KeyFinding::Absent { .. }),
            "{:?}",
            got.pgp
        );
        assert!(
            notes(&got.pgp).contains(&format!("larger than {MAX_WKD_BYTES} bytes")),
            "{}",
            notes(&got.pgp)
        );
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let lab = standard().await;
    let direct = WkdUrl::direct("joe", DOMAIN);
    lab.serve_advanced(TestResponse::redirect(302, &direct.url()));
    lab.serve_direct(key_response(&keys().good.0));
    let got = lab.lab.pgp().await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert!(notes(&got.pgp).contains("redirects are not followed"));
    assert_eq!(lab.https.requests(), 1);
}

#[tokio::test]
async fn a_certificate_not_valid_for_the_advanced_host_is_a_failure_not_a_fallback() {
    let lab = https_lab("openpgpkey 60 IN A 127.0.0.1\n", &[DOMAIN]).await;
    lab.serve_direct(key_response(&keys().good.0));
    let got = lab.lab.pgp().await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert!(
        notes(&got.pgp).contains("certificate of openpgpkey.example.test is not valid"),
        "{}",
        notes(&got.pgp)
    );
    assert_eq!(lab.https.requests(), 0);
}
