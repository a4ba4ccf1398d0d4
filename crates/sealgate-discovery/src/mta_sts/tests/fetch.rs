//! `HttpsFetcher` against the real lab: pinning, WebPKI, status, media type, size, time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealgate_testkit::https::TestResponse;
use sealgate_testkit::tls::TestCa;

use super::*;
use crate::error::FetchError;
use crate::mta_sts::{MAX_POLICY_BYTES, PolicyFetcher, WELL_KNOWN_PATH};

fn fetcher(lab: &Lab) -> HttpsFetcher {
    HttpsFetcher::new(lab.fetch_config(), lab.dns.clone()).unwrap()
}

#[tokio::test]
async fn fetch_connects_to_the_address_our_resolver_gave_on_the_configured_port() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let body = fetcher(&lab).fetch("EXAMPLE.test.").await.unwrap();
    assert_eq!(body, ENFORCE);
    assert_eq!(lab.dns.ip_lookups(), 1);
    assert_eq!(lab.https.requests_for(HOST), 1);
}

#[tokio::test]
async fn media_type_parameters_and_case_are_accepted_other_types_refused() {
    let lab = Lab::standard().await;
    let fetcher = fetcher(&lab);
    for accepted in [
        "text/plain; charset=utf-8",
        "Text/Plain",
        "text/plain ;format=flowed",
    ] {
        lab.https.set(HOST, WELL_KNOWN_PATH, 200, accepted, ENFORCE);
        assert_eq!(fetcher.fetch(DOMAIN).await.unwrap(), ENFORCE, "{accepted}");
    }
    for refused in [
        "text/html",
        "application/octet-stream",
        "text/plainx",
        "text",
    ] {
        lab.https.set(HOST, WELL_KNOWN_PATH, 200, refused, ENFORCE);
        let err = fetcher.fetch(DOMAIN).await.unwrap_err();
        assert!(
            matches!(&err, FetchError::ContentType { found: Some(f) } if f == refused),
            "{refused}: {err:?}"
        );
    }
    let mut untyped = TestResponse::new(200, "text/plain", ENFORCE);
    untyped.content_type = None;
    lab.https.set_response(HOST, WELL_KNOWN_PATH, untyped);
    let err = fetcher.fetch(DOMAIN).await.unwrap_err();
    assert!(
        matches!(err, FetchError::ContentType { found: None }),
        "{err:?}"
    );
}

#[tokio::test]
async fn body_at_the_limit_is_accepted_and_one_byte_more_refused_with_or_without_length() {
    let lab = Lab::standard().await;
    let fetcher = fetcher(&lab);
    for content_length in [true, false] {
        for (size, fits) in [(MAX_POLICY_BYTES, true), (MAX_POLICY_BYTES + 1, false)] {
            let mut response = TestResponse::new(200, "text/plain", vec![b'a'; size]);
            response.content_length = content_length;
            lab.https.set_response(HOST, WELL_KNOWN_PATH, response);
            let got = fetcher.fetch(DOMAIN).await;
            if fits {
                assert_eq!(got.unwrap().len(), size);
            } else {
                assert!(
                    matches!(
                        got,
                        Err(FetchError::TooLarge {
                            limit: MAX_POLICY_BYTES
                        })
                    ),
                    "length header {content_length}: {got:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn redirect_is_reported_and_not_followed() {
    let lab = Lab::standard().await;
    let redirect = TestResponse::redirect(301, "/moved.txt");
    lab.https.set_response(HOST, WELL_KNOWN_PATH, redirect);
    lab.https
        .set(HOST, "/moved.txt", 200, "text/plain", ENFORCE);
    let err = fetcher(&lab).fetch(DOMAIN).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Redirect { status: 301, location: Some(l) } if l == "/moved.txt"),
        "{err:?}"
    );
    assert_eq!(lab.https.requests(), 1, "the redirect target was not asked");
}

#[tokio::test]
async fn other_statuses_and_non_utf8_bodies_are_refused() {
    let lab = Lab::standard().await;
    let fetcher = fetcher(&lab);
    for status in [201, 403, 500] {
        lab.https
            .set(HOST, WELL_KNOWN_PATH, status, "text/plain", ENFORCE);
        let err = fetcher.fetch(DOMAIN).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: s } if s == status),
            "{err:?}"
        );
    }
    lab.https.set(
        HOST,
        WELL_KNOWN_PATH,
        200,
        "text/plain",
        vec![0xff, 0xfe, b'a'],
    );
    let err = fetcher.fetch(DOMAIN).await.unwrap_err();
    assert!(matches!(err, FetchError::NotUtf8), "{err:?}");
}

#[tokio::test]
async fn certificate_from_an_untrusted_ca_is_refused() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let config = FetchConfig {
        extra_roots: vec![TestCa::named("Somebody Else CA").cert_der()],
        ..lab.fetch_config()
    };
    let fetcher = HttpsFetcher::new(config, lab.dns.clone()).unwrap();
    let err = fetcher.fetch(DOMAIN).await.unwrap_err();
    assert!(matches!(err, FetchError::Certificate { .. }), "{err:?}");
    assert_eq!(lab.https.requests(), 0);

    // The public roots alone do not trust the test CA either.
    let config = FetchConfig {
        extra_roots: Vec::new(),
        public_roots: true,
        ..lab.fetch_config()
    };
    let fetcher = HttpsFetcher::new(config, lab.dns.clone()).unwrap();
    let err = fetcher.fetch(DOMAIN).await.unwrap_err();
    assert!(matches!(err, FetchError::Certificate { .. }), "{err:?}");
}

#[tokio::test]
async fn unresponsive_server_times_out() {
    let lab = Lab::standard().await;
    // Accepts connections and never says anything.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let config = FetchConfig {
        https_port: port,
        timeout: Duration::from_millis(300),
        ..lab.fetch_config()
    };
    let fetcher = HttpsFetcher::new(config, lab.dns.clone()).unwrap();
    let started = Instant::now();
    let err = fetcher.fetch(DOMAIN).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Timeout { host, after } if host == HOST && *after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    holder.abort();
}

#[tokio::test]
async fn policy_host_without_an_address_is_reported() {
    let lab = Lab::start(
        &zone("_mta-sts 60 IN TXT \"v=STSv1; id=1\"\n"),
        &[HOST],
        Duration::ZERO,
    )
    .await;
    let err = fetcher(&lab).fetch(DOMAIN).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Resolve { host, source } if host == HOST && source.is_permanent()),
        "{err:?}"
    );

    lab.dns
        .set_zone(&zone("mta-sts 60 IN TXT \"not an address\"\n"))
        .await;
    let err = fetcher(&lab).fetch(DOMAIN).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::NoAddress { host } if host == HOST),
        "{err:?}"
    );
    assert_eq!(lab.https.requests(), 0);
}

#[tokio::test]
async fn invalid_domain_is_refused_before_any_lookup() {
    let lab = Lab::standard().await;
    let fetcher: Arc<dyn PolicyFetcher> = Arc::new(fetcher(&lab));
    let err = fetcher.fetch("evil.test/x?").await.unwrap_err();
    assert!(matches!(err, FetchError::InvalidDomain { .. }), "{err:?}");
    assert_eq!(lab.dns.ip_lookups(), 0);
}
