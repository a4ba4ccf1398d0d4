//! Which key is chosen: usable keys before unusable ones, the store before the network, the
//! one expiring last; unusable keys reported with their problem; validity judged at every
//! call.

use sealgate_dns::Secured;

use super::*;

const DAY: i64 = 24 * 3600;

#[tokio::test]
async fn expired_revoked_and_signing_only_keys_are_found_with_their_problem() {
    let k = keys();
    for ((key, fpr), class) in [
        (&k.expired, "expired"),
        (&k.revoked, "revoked"),
        (&k.signing_only, "signing-only"),
    ] {
        let lab = Lab::new(KeySettings::default()).await;
        lab.wkd.advanced(Answer::Body(key.clone()));
        let got = lab.pgp().await;
        assert_eq!(
            summary(&got.pgp),
            Some((fpr.clone(), "wkd-advanced", class)),
            "{}",
            notes(&got.pgp)
        );
        assert!(got.pgp.usable().is_none());
        assert!(
            got.discovered[0].validity.starts_with("unusable: "),
            "{:?}",
            got.discovered
        );
    }
}

#[tokio::test]
async fn an_unusable_key_is_never_preferred_over_a_usable_one() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    // WKD offers an expired and a revoked key; OPENPGPKEY a usable one.
    let mut ring = k.expired.0.clone();
    ring.extend_from_slice(&k.revoked.0);
    lab.wkd.advanced(Answer::Body(ring));
    lab.dns.openpgpkey(Secured::Secure {
        records: vec![k.good.0.clone()],
        ttl: 300,
    });
    let got = lab.pgp().await;
    assert_eq!(
        summary(&got.pgp),
        Some((k.good.1.clone(), "openpgpkey", "usable"))
    );
    assert_eq!(got.discovered.len(), 3);
}

#[tokio::test]
async fn among_usable_keys_the_one_expiring_last_wins() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    lab.wkd.advanced(Answer::Body(k.sooner.0.clone()));
    lab.dns.openpgpkey(Secured::Secure {
        records: vec![k.later.0.clone()],
        ttl: 300,
    });
    let got = lab.pgp().await;
    assert_eq!(summary(&got.pgp).map(|s| s.0), Some(k.later.1.clone()));
}

#[tokio::test]
async fn a_usable_stored_key_wins_and_the_network_is_not_asked() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    lab.store_key("pgp", &k.sooner.0, &k.sooner.1).await;
    lab.wkd.advanced(Answer::Body(k.later.0.clone()));
    let got = lab.pgp().await;
    assert_eq!(
        summary(&got.pgp),
        Some((k.sooner.1.clone(), "store", "usable"))
    );
    assert!(got.discovered.is_empty(), "the store is no discovery");
    assert_eq!(lab.wkd.requests() + lab.dns.lookups(), 0);
}

#[tokio::test]
async fn an_unusable_stored_key_sends_discovery_to_the_network() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    lab.store_key("pgp", &k.expired.0, &k.expired.1).await;
    lab.wkd.advanced(Answer::Status(404));
    let got = lab.pgp().await;
    assert_eq!(
        summary(&got.pgp),
        Some((k.expired.1.clone(), "store", "expired")),
        "nothing better on the network: the stored key, with its problem"
    );
    assert_eq!(lab.wkd.requests(), 1);
    assert_eq!(lab.dns.lookups(), 1);

    let lab = Lab::new(KeySettings::default()).await;
    lab.store_key("pgp", &k.expired.0, &k.expired.1).await;
    lab.wkd.advanced(Answer::Body(k.good.0.clone()));
    let got = lab.pgp().await;
    assert_eq!(
        summary(&got.pgp),
        Some((k.good.1.clone(), "wkd-advanced", "usable"))
    );
}

#[tokio::test]
async fn the_store_is_read_on_every_call() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    let got = lab.pgp().await;
    assert!(matches!(got.pgp, KeyFinding::Absent { .. }));
    // Imported after a negative network answer was cached: used at once.
    lab.store_key("pgp", &k.good.0, &k.good.1).await;
    let got = lab.pgp().await;
    assert_eq!(summary(&got.pgp).map(|s| s.1), Some("store"));
}

#[tokio::test]
async fn validity_is_judged_at_every_call_not_when_the_key_was_fetched() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    lab.wkd.advanced(Answer::Body(k.sooner.0.clone()));
    let got = lab.pgp().await;
    assert_eq!(summary(&got.pgp).map(|s| s.2), Some("usable"));
    // Three days on (the cached answer is reused): the key has expired since.
    let later = now() + 3 * DAY;
    let got = lab.discovery.recipient_keys_at(JOE, PGP, later).await;
    assert_eq!(
        summary(&got.pgp),
        Some((k.sooner.1.clone(), "wkd-advanced", "expired"))
    );
    assert!(got.discovered.is_empty(), "a cache hit is no discovery");
    assert_eq!(lab.wkd.requests(), 1);
}

#[tokio::test]
async fn a_key_for_another_address_is_never_chosen() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    lab.wkd.advanced(Answer::Body(k.stranger.0.clone()));
    let got = lab.pgp().await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert_eq!(got.discovered.len(), 1);
    assert_eq!(
        got.discovered[0].validity,
        "unusable: does not name joe@example.test"
    );
    // The same for a stored key filed under joe by mistake.
    let lab = Lab::new(KeySettings::default()).await;
    lab.store_key("pgp", &k.stranger.0, &k.stranger.1).await;
    let got = lab.pgp().await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
}

#[tokio::test]
async fn an_unreadable_stored_key_is_a_note_not_a_failure() {
    let k = keys();
    let lab = Lab::new(KeySettings::default()).await;
    lab.store_key("pgp", b"garbage", "0000").await;
    lab.wkd.advanced(Answer::Body(k.good.0.clone()));
    let got = lab.pgp().await;
    assert_eq!(summary(&got.pgp).map(|s| s.1), Some("wkd-advanced"));
    assert!(
        notes(&got.pgp).contains("store: pgp key 0000 unreadable"),
        "{}",
        notes(&got.pgp)
    );
}

#[tokio::test]
async fn a_stored_certificate_must_chain_to_the_trust_roots() {
    use sealgate_encrypt::smime::{SmimeCert, TrustStore};
    use sealgate_testkit::smime::{EmailCertSpec, issue_email};
    use sealgate_testkit::tls::TestCa;

    let ca = TestCa::new();
    let cert = issue_email(&ca, JOE, EmailCertSpec::default());
    let fpr = SmimeCert::from_der(&cert.cert_der).unwrap().fingerprint();
    let trusted = TrustStore::new(Some(ca.cert_pem.as_bytes()), &[]).unwrap();
    let lab = Lab::with_trust(KeySettings::default(), Some(trusted)).await;
    lab.store_key("smime", &cert.cert_der, &fpr).await;
    let got = lab.discovery.recipient_keys(JOE, SMIME).await;
    assert_eq!(summary(&got.smime), Some((fpr.clone(), "store", "usable")));
    assert_eq!(lab.dns.lookups(), 0, "SMIMEA not asked");

    let stranger = TestCa::named("Another CA");
    let other = TrustStore::new(Some(stranger.cert_pem.as_bytes()), &[]).unwrap();
    let lab = Lab::with_trust(KeySettings::default(), Some(other)).await;
    lab.store_key("smime", &cert.cert_der, &fpr).await;
    let got = lab.discovery.recipient_keys(JOE, SMIME).await;
    assert_eq!(summary(&got.smime), Some((fpr, "store", "invalid")));
    assert_eq!(
        lab.dns.lookups(),
        1,
        "an untrusted stored certificate sends it to SMIMEA"
    );
}
