//! `MtaSts::lookup` and `refresh_expiring` against the real lab (DNS, HTTPS, SQLite).

use std::time::Duration;

use sealgate_testkit::https::TestResponse;
use sealgate_types::time::now_micros;

use super::*;
use crate::error::{DiscoveryError, FetchError, PolicyError, StsRecordError};
use crate::mta_sts::{StsLookup, StsMode, StsPolicy, StsState, WELL_KNOWN_PATH};

const DAY_MICROS: i64 = 86_400_000_000;

/// The error of a `Failed` or `CachedAfterFailure` lookup.
fn error_of(lookup: &StsLookup) -> &DiscoveryError {
    match &lookup.state {
        StsState::Failed { error } | StsState::CachedAfterFailure { error } => error,
        other => panic!("expected a failure, got {other:?}: {lookup:?}"),
    }
}

fn fetch_error_of(lookup: &StsLookup) -> &FetchError {
    match error_of(lookup) {
        DiscoveryError::PolicyFetch { source, .. } => source,
        other => panic!("expected a fetch failure, got {other:?}"),
    }
}

/// Stores `text` as the unexpired cached policy of `example.test` for TXT id `id`.
async fn seed_cache(lab: &Lab, text: &str, id: &str) -> StsPolicy {
    let policy = StsPolicy::parse(text, id, now_micros()).unwrap();
    lab.store
        .mta_sts_put(&policy.to_row(DOMAIN, text))
        .await
        .unwrap();
    policy
}

/// Moves the cached policy's fetch time back by its `max_age`: it has just expired.
async fn expire_cache(lab: &Lab) {
    let mut row = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    let age = row.max_age * 1_000_000;
    row.fetched_at = now_micros() - age;
    row.expires_at = row.fetched_at + age;
    lab.store.mta_sts_put(&row).await.unwrap();
}

#[tokio::test]
async fn fresh_policy_is_fetched_validated_and_stored() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let before = now_micros();

    let got = lab.sts.lookup("Example.TEST.").await;

    assert!(matches!(got.state, StsState::Fresh), "{got:?}");
    let policy = got.policy.unwrap();
    assert_eq!(policy.id, "1");
    assert_eq!(policy.mode, StsMode::Enforce);
    assert_eq!(policy.mx, ["mx.example.test"]);
    assert_eq!(policy.max_age, 86_400);
    assert!(policy.fetched_at >= before && policy.fetched_at <= now_micros());
    assert_eq!(policy.expires_at, policy.fetched_at + DAY_MICROS);
    assert!(policy.mx_matches("MX.example.test."));
    let row = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    assert_eq!(row, policy.to_row(DOMAIN, ENFORCE));
    assert_eq!(lab.https.requests_for(HOST), 1);
    assert_eq!(lab.dns.txt_lookups(), 1);
}

#[tokio::test]
async fn same_id_is_served_from_the_cache_without_a_request() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let first = lab.sts.lookup(DOMAIN).await.policy.unwrap();

    let again = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(again.state, StsState::Cached), "{again:?}");
    assert_eq!(again.policy.as_ref(), Some(&first));

    // A restarted relay (or another node) finds the policy in the store.
    let restarted = lab.discovery(Duration::from_secs(300)).lookup(DOMAIN).await;
    assert!(matches!(restarted.state, StsState::Cached), "{restarted:?}");
    assert_eq!(restarted.policy, Some(first));

    assert_eq!(lab.https.requests(), 1, "only the first lookup fetched");
    assert_eq!(lab.dns.txt_lookups(), 3, "every lookup checks the TXT id");
}

#[tokio::test]
async fn changed_id_refetches_and_replaces_the_policy() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    assert!(matches!(
        lab.sts.lookup(DOMAIN).await.state,
        StsState::Fresh
    ));

    lab.dns.set_zone(&sts_zone("2")).await;
    lab.https.set_mta_sts_policy(DOMAIN, TESTING);
    let got = lab.sts.lookup(DOMAIN).await;

    assert!(matches!(got.state, StsState::Fresh), "{got:?}");
    let policy = got.policy.unwrap();
    assert_eq!((policy.id.as_str(), policy.mode), ("2", StsMode::Testing));
    assert!(policy.mx_matches("anything.example.test"));
    let row = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    assert_eq!((row.policy_id.as_str(), row.body.as_str()), ("2", TESTING));
    assert_eq!(lab.https.requests_for(HOST), 2);
}

#[tokio::test]
async fn blocked_refresh_keeps_the_cached_enforce_policy_until_it_expires() {
    let lab = Lab::start(&sts_zone("1"), &[HOST], Duration::ZERO).await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let original = lab.sts.lookup(DOMAIN).await.policy.unwrap();

    // The id changes but the policy server is blocked: the enforce policy stays.
    lab.dns.set_zone(&sts_zone("2")).await;
    lab.https.block(HOST);
    let got = lab.sts.lookup(DOMAIN).await;
    assert!(
        matches!(got.state, StsState::CachedAfterFailure { .. }),
        "{got:?}"
    );
    assert_eq!(got.policy.as_ref(), Some(&original));
    assert!(
        matches!(fetch_error_of(&got), FetchError::Request { .. }),
        "{got:?}"
    );
    assert_eq!(
        error_of(&got).tls_rpt_result_type(),
        Some("sts-policy-fetch-error")
    );
    assert_eq!(
        lab.https.requests_for(HOST),
        2,
        "the blocked request arrived"
    );

    // The TXT record is stripped too: still the cached policy (RFC 8461 §5.1).
    lab.dns.set_zone(&zone("mta-sts 60 IN A 127.0.0.1\n")).await;
    let got = lab.sts.lookup(DOMAIN).await;
    assert_eq!(got.policy.as_ref(), Some(&original));
    assert!(
        matches!(
            error_of(&got),
            DiscoveryError::NoStsRecord {
                source: StsRecordError::Missing,
                ..
            }
        ),
        "{got:?}"
    );

    // max_age after the fetch the policy expires, and nothing is left.
    let row = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    assert_eq!(row.expires_at, row.fetched_at + DAY_MICROS);
    expire_cache(&lab).await;
    let got = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(got.state, StsState::NoPolicy), "{got:?}");
    assert!(got.policy.is_none());
    lab.dns.set_zone(&sts_zone("2")).await;
    let got = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(got.state, StsState::Failed { .. }), "{got:?}");
    assert!(got.policy.is_none());
}

/// A policy saying both `testing` and `enforce`: invalid, whichever comes first.
const CONFLICTING: &str =
    "version: STSv1\nmode: testing\nmode: enforce\nmx: *.example.test\nmax_age: 604800\n";

#[tokio::test]
async fn a_policy_written_in_capitals_is_fetched_and_applied_as_enforce() {
    let lab = Lab::standard().await;
    let text = "Version: STSv1\r\nMode: Enforce\r\nMX: MX.example.test\r\nMax_Age: 86400\r\n";
    lab.https.set_mta_sts_policy(DOMAIN, text);

    let got = lab.sts.lookup(DOMAIN).await;

    assert!(matches!(got.state, StsState::Fresh), "{got:?}");
    let policy = got.policy.unwrap();
    assert_eq!(policy.mode, StsMode::Enforce);
    assert_eq!(policy.mx, ["mx.example.test"]);
    let row = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    assert_eq!((row.mode.as_str(), row.body.as_str()), ("enforce", text));
    assert_eq!(StsPolicy::from_row(&row), Some(policy));
}

#[tokio::test]
async fn a_policy_with_conflicting_modes_never_replaces_a_cached_enforce_policy() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let original = lab.sts.lookup(DOMAIN).await.policy.unwrap();

    // The domain publishes a new id whose policy says both testing and enforce.
    lab.dns.set_zone(&sts_zone("2")).await;
    lab.https.set_mta_sts_policy(DOMAIN, CONFLICTING);
    let got = lab.sts.lookup(DOMAIN).await;

    assert!(
        matches!(got.state, StsState::CachedAfterFailure { .. }),
        "{got:?}"
    );
    assert_eq!(got.policy.as_ref(), Some(&original));
    assert!(
        matches!(
            error_of(&got),
            DiscoveryError::PolicyInvalid {
                source: PolicyError::Conflict { field: "mode", .. },
                ..
            }
        ),
        "{got:?}"
    );
    let why = "policy for id 2 not used: the mta-sts policy of example.test is invalid: \
               field \"mode\" appears twice with different values: \"testing\" on line 2, \
               \"enforce\" on line 3";
    assert!(got.notes.iter().any(|n| n == why), "{:?}", got.notes);
    assert!(
        got.notes
            .iter()
            .any(|n| n.starts_with("cached id 1 kept (enforce, until it expires")),
        "{:?}",
        got.notes
    );

    // The proactive refresher does not replace it either.
    let two_days = Duration::from_secs(2 * 86_400);
    assert_eq!(lab.sts.refresh_expiring(two_days).await, 0);
    let row = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    assert_eq!(
        (row.policy_id.as_str(), row.mode.as_str()),
        ("1", "enforce")
    );
    assert_eq!(lab.https.requests_for(HOST), 3);
}

/// How a tampered policy is served, and what the lookup must report.
struct Tamper {
    name: &'static str,
    serve: fn(&Lab),
    check: fn(&DiscoveryError) -> bool,
    tls_rpt: &'static str,
}

fn fetch_failed(e: &DiscoveryError, f: fn(&FetchError) -> bool) -> bool {
    matches!(e, DiscoveryError::PolicyFetch { source, .. } if f(source))
}

const TAMPERS: &[Tamper] = &[
    Tamper {
        name: "policy without mx",
        serve: |lab| {
            lab.https
                .set_mta_sts_policy(DOMAIN, "version: STSv1\nmode: enforce\nmax_age: 86400\n")
        },
        check: |e| {
            matches!(
                e,
                DiscoveryError::PolicyInvalid {
                    source: PolicyError::Missing { field: "mx" },
                    ..
                }
            )
        },
        tls_rpt: "sts-policy-invalid",
    },
    Tamper {
        name: "conflicting mode lines",
        serve: |lab| lab.https.set_mta_sts_policy(DOMAIN, CONFLICTING),
        check: |e| {
            matches!(
                e,
                DiscoveryError::PolicyInvalid {
                    source: PolicyError::Conflict { field: "mode", .. },
                    ..
                }
            )
        },
        tls_rpt: "sts-policy-invalid",
    },
    Tamper {
        name: "html instead of text/plain",
        serve: |lab| {
            lab.https
                .set(HOST, WELL_KNOWN_PATH, 200, "text/html", ENFORCE)
        },
        check: |e| {
            fetch_failed(
                e,
                |f| matches!(f, FetchError::ContentType { found: Some(t) } if t == "text/html"),
            )
        },
        tls_rpt: "sts-policy-invalid",
    },
    Tamper {
        name: "redirect",
        serve: |lab| {
            let to = TestResponse::redirect(302, "https://mta-sts.example.test/elsewhere.txt");
            lab.https.set_response(HOST, WELL_KNOWN_PATH, to);
            lab.https
                .set(HOST, "/elsewhere.txt", 200, "text/plain", TESTING);
        },
        check: |e| {
            fetch_failed(e, |f| {
                matches!(f, FetchError::Redirect { status: 302, location: Some(l) }
                    if l == "https://mta-sts.example.test/elsewhere.txt")
            })
        },
        tls_rpt: "sts-policy-fetch-error",
    },
    Tamper {
        name: "oversize",
        serve: |lab| {
            let huge = format!("{ENFORCE}{}", "x: y\n".repeat(20_000));
            lab.https
                .set(HOST, WELL_KNOWN_PATH, 200, "text/plain", huge);
        },
        check: |e| fetch_failed(e, |f| matches!(f, FetchError::TooLarge { limit: 65_536 })),
        tls_rpt: "sts-policy-fetch-error",
    },
    Tamper {
        name: "not found",
        serve: |_| {},
        check: |e| fetch_failed(e, |f| matches!(f, FetchError::Status { status: 404 })),
        tls_rpt: "sts-policy-fetch-error",
    },
];

#[tokio::test]
async fn tampered_policies_are_refused_and_the_cached_policy_kept() {
    for tamper in TAMPERS {
        let lab = Lab::start(&sts_zone("2"), &[HOST], Duration::ZERO).await;
        (tamper.serve)(&lab);
        let cached = seed_cache(&lab, ENFORCE, "1").await;

        let got = lab.sts.lookup(DOMAIN).await;
        assert!(
            matches!(got.state, StsState::CachedAfterFailure { .. }),
            "{}: {got:?}",
            tamper.name
        );
        assert_eq!(got.policy.as_ref(), Some(&cached), "{}", tamper.name);
        assert!((tamper.check)(error_of(&got)), "{}: {got:?}", tamper.name);
        assert_eq!(
            error_of(&got).tls_rpt_result_type(),
            Some(tamper.tls_rpt),
            "{}",
            tamper.name
        );
        let stored = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
        assert_eq!(
            stored.policy_id, "1",
            "{}: the cache is untouched",
            tamper.name
        );

        expire_cache(&lab).await;
        let got = lab.sts.lookup(DOMAIN).await;
        assert!(
            matches!(got.state, StsState::Failed { .. }),
            "{}: {got:?}",
            tamper.name
        );
        assert!(got.policy.is_none());
        assert!((tamper.check)(error_of(&got)), "{}: {got:?}", tamper.name);
    }
}

#[tokio::test]
async fn certificate_for_another_name_is_refused_before_any_request() {
    let lab = Lab::start(&sts_zone("2"), &["www.example.test"], Duration::ZERO).await;
    lab.https.set_mta_sts_policy(DOMAIN, TESTING);
    let cached = seed_cache(&lab, ENFORCE, "1").await;

    let got = lab.sts.lookup(DOMAIN).await;
    assert_eq!(got.policy, Some(cached));
    assert!(
        matches!(fetch_error_of(&got), FetchError::Certificate { host, .. } if host == HOST),
        "{got:?}"
    );
    assert_eq!(
        error_of(&got).tls_rpt_result_type(),
        Some("sts-webpki-invalid")
    );
    let detail = error_of(&got).detail();
    assert!(
        detail.starts_with(
            "fetching the mta-sts policy of example.test failed: \
             certificate of mta-sts.example.test is not valid for it"
        ),
        "{detail}"
    );

    expire_cache(&lab).await;
    let got = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(got.state, StsState::Failed { .. }), "{got:?}");
    assert_eq!(
        lab.https.requests(),
        0,
        "no request on an unverified connection"
    );
}

#[tokio::test]
async fn no_sts_record_is_remembered_for_the_negative_ttl() {
    let no_txt = zone("mta-sts 60 IN A 127.0.0.1\n");
    let lab = Lab::start(&no_txt, &[HOST], Duration::from_secs(300)).await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);

    let first = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(first.state, StsState::NoPolicy), "{first:?}");
    assert_eq!(lab.dns.txt_lookups(), 1);

    let second = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(second.state, StsState::NoPolicy), "{second:?}");
    assert!(
        second.notes.iter().any(|n| n.contains("negative cache")),
        "{second:?}"
    );
    assert_eq!(
        lab.dns.txt_lookups(),
        1,
        "no DNS query within the negative ttl"
    );
    assert_eq!(lab.https.requests(), 0);

    // Without negative caching every lookup asks again.
    let uncached = lab.discovery(Duration::ZERO);
    uncached.lookup(DOMAIN).await;
    uncached.lookup(DOMAIN).await;
    assert_eq!(lab.dns.txt_lookups(), 3);
}

#[tokio::test]
async fn failed_fetch_without_a_cache_is_remembered_too() {
    let lab = Lab::standard().await;
    let first = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(
        fetch_error_of(&first),
        FetchError::Status { status: 404 }
    ));
    let second = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(
        fetch_error_of(&second),
        FetchError::Status { status: 404 }
    ));
    assert_eq!(lab.https.requests(), 1);
    assert_eq!(lab.dns.txt_lookups(), 1);
}

#[tokio::test]
async fn several_sts_records_mean_no_policy_and_say_why() {
    let two = zone("_mta-sts 60 IN TXT \"v=STSv1; id=1\"\n_mta-sts 60 IN TXT \"v=STSv1; id=2\"\n");
    let lab = Lab::start(&two, &[HOST], Duration::from_secs(300)).await;
    let got = lab.sts.lookup(DOMAIN).await;
    assert!(matches!(got.state, StsState::NoPolicy), "{got:?}");
    assert!(
        got.notes.iter().any(|n| n.contains("2 v=STSv1 records")),
        "{got:?}"
    );
    assert_eq!(lab.https.requests(), 0);
}

#[tokio::test]
async fn dns_failure_uses_the_cache_or_fails_and_is_not_remembered() {
    // The lab's DNS serves only example.test: other names are refused (a transient failure).
    let lab = Lab::standard().await;
    let got = lab.sts.lookup("other.test").await;
    assert!(
        matches!(error_of(&got), DiscoveryError::Dns(e) if !e.is_permanent()),
        "{got:?}"
    );
    lab.sts.lookup("other.test").await;
    assert_eq!(lab.dns.txt_lookups(), 2, "a dns failure is not cached");

    let text = ENFORCE;
    let policy = StsPolicy::parse(text, "9", now_micros()).unwrap();
    lab.store
        .mta_sts_put(&policy.to_row("other.test", text))
        .await
        .unwrap();
    let got = lab.sts.lookup("other.test").await;
    assert!(
        matches!(got.state, StsState::CachedAfterFailure { .. }),
        "{got:?}"
    );
    assert_eq!(got.policy, Some(policy));
}

#[tokio::test]
async fn unreadable_store_fails_rather_than_claiming_no_policy() {
    let no_txt = zone("mta-sts 60 IN A 127.0.0.1\n");
    let lab = Lab::start(&no_txt, &[HOST], Duration::from_secs(300)).await;
    lab.store.close().await;
    for _ in 0..2 {
        let got = lab.sts.lookup(DOMAIN).await;
        assert!(
            matches!(error_of(&got), DiscoveryError::Store(_)),
            "{got:?}"
        );
    }
    assert_eq!(lab.dns.txt_lookups(), 0);
}

#[tokio::test]
async fn invalid_domain_is_refused_without_any_lookup() {
    let lab = Lab::standard().await;
    for bad in ["", "evil.test/x?", "a b.test", "a..test"] {
        let got = lab.sts.lookup(bad).await;
        assert!(
            matches!(error_of(&got), DiscoveryError::InvalidDomain { .. }),
            "{bad:?}: {got:?}"
        );
    }
    assert_eq!(lab.dns.txt_lookups(), 0);
}

#[tokio::test]
async fn refresh_renews_policies_expiring_soon_and_keeps_them_on_failure() {
    let lab = Lab::standard().await;
    lab.https.set_mta_sts_policy(DOMAIN, ENFORCE);
    let first = lab.sts.lookup(DOMAIN).await.policy.unwrap();

    assert_eq!(lab.sts.refresh_expiring(Duration::from_secs(3600)).await, 0);
    assert_eq!(lab.https.requests(), 1, "nothing expires within the hour");

    lab.https.set_mta_sts_policy(DOMAIN, TESTING);
    let two_days = Duration::from_secs(2 * 86_400);
    assert_eq!(lab.sts.refresh_expiring(two_days).await, 1);
    let renewed = lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap();
    assert_eq!(
        (renewed.mode.as_str(), renewed.policy_id.as_str()),
        ("testing", "1")
    );
    assert!(renewed.fetched_at >= first.fetched_at);
    assert_eq!(renewed.expires_at, renewed.fetched_at + 7 * DAY_MICROS);

    lab.https.block(HOST);
    let month = Duration::from_secs(30 * 86_400);
    assert_eq!(lab.sts.refresh_expiring(month).await, 0);
    assert_eq!(
        lab.store.mta_sts_get(DOMAIN).await.unwrap().unwrap(),
        renewed,
        "a failed refresh keeps the old policy"
    );
    assert_eq!(lab.https.requests(), 3);

    // An expired policy is not revived by the refresher.
    lab.https.unblock(HOST);
    expire_cache(&lab).await;
    assert_eq!(lab.sts.refresh_expiring(month).await, 0);
    assert_eq!(lab.https.requests(), 3);
}
