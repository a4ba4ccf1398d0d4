//! Downgrade memory and TLS-RPT counts, on both backends.

use sealgate_store::{TlsRptFailure, TlsRptSession};
use sealgate_testkit::db::TestBackend;

use super::open;

// 2026-11-24T12:00:00Z and the next day.
const DAY1: i64 = 1_795_521_600_000_000;
const DAY2: i64 = DAY1 + 86_400_000_000;

async fn downgrade_memory_is_kept_per_domain_until_forgotten(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    assert_eq!(
        store
            .verified_domain("partner.example")
            .await
            .expect("read"),
        None
    );
    store
        .mark_verified_domain("Partner.Example", "dane")
        .await
        .expect("mark");
    let first = store
        .verified_domain("partner.example")
        .await
        .expect("read")
        .expect("remembered");
    assert_eq!(first.verified_via, "dane");
    store
        .mark_verified_domain("partner.example", "mta-sts")
        .await
        .expect("mark again");
    let second = store
        .verified_domain("PARTNER.example")
        .await
        .expect("read")
        .expect("still remembered");
    assert_eq!(second.verified_via, "mta-sts");
    assert_eq!(
        second.first_seen_at, first.first_seen_at,
        "first sighting kept"
    );
    assert!(second.last_seen_at >= first.last_seen_at);
    assert_eq!(
        store.verified_domain("other.example").await.expect("read"),
        None
    );
    assert!(
        store
            .forget_verified_domain("partner.example")
            .await
            .expect("forget")
    );
    assert!(
        !store
            .forget_verified_domain("partner.example")
            .await
            .expect("forget twice")
    );
    assert_eq!(
        store
            .verified_domain("partner.example")
            .await
            .expect("read"),
        None
    );
}

fn session(domain: &str, policy: &str, at: i64, failure: Option<(&str, &str)>) -> TlsRptSession {
    TlsRptSession {
        domain: domain.to_owned(),
        policy_type: policy.to_owned(),
        failure: failure.map(|(kind, detail)| TlsRptFailure {
            result_type: kind.to_owned(),
            mx_host: "mx.partner.example".into(),
            ip: "192.0.2.25".into(),
            detail: detail.to_owned(),
        }),
        at,
    }
}

async fn tls_rpt_counts_sessions_per_day_and_policy_with_failure_details(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let mismatch = Some(("tlsa-invalid", "no TLSA record matched"));
    store
        .tls_rpt_record(&[
            session("partner.example", "tlsa", DAY1, None),
            session("partner.example", "tlsa", DAY1 + 5, None),
            session("partner.example", "tlsa", DAY1 + 9, mismatch),
            session("partner.example", "tlsa", DAY1 + 12, mismatch),
            session(
                "partner.example",
                "sts",
                DAY2,
                Some(("starttls-not-supported", "no STARTTLS")),
            ),
            session("other.example", "no-policy-found", DAY1, None),
        ])
        .await
        .expect("record");
    let counts = store
        .tls_rpt_counts(Some("partner.example"))
        .await
        .expect("counts");
    let got: Vec<_> = counts
        .iter()
        .map(|c| {
            (
                c.day.as_str(),
                c.policy_type.as_str(),
                c.successes,
                c.failures,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("2026-11-24", "tlsa", 2, 2), ("2026-11-25", "sts", 0, 1)]
    );
    assert_eq!(store.tls_rpt_counts(None).await.expect("all").len(), 3);
    let failures = store
        .tls_rpt_failures(Some("partner.example"))
        .await
        .expect("failures");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].failure.result_type, "tlsa-invalid");
    assert_eq!(failures[0].count, 2);
    assert_eq!(failures[1].failure.result_type, "starttls-not-supported");
    assert_eq!(failures[1].count, 1);
    assert!(
        store
            .tls_rpt_failures(Some("other.example"))
            .await
            .expect("none")
            .is_empty()
    );
}

sealgate_testkit::on_each_backend!(multi_thread:
    downgrade_memory_is_kept_per_domain_until_forgotten,
    tls_rpt_counts_sessions_per_day_and_policy_with_failure_details,
);
