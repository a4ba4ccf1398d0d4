//! The WKD method rules over canned answers: advanced first, direct only when the advanced
//! host is missing, a 404 is "no key", failures are failures.

use super::*;
use crate::keys::KeySource;

fn wkd_only() -> KeySettings {
    KeySettings {
        openpgpkey: false,
        ..KeySettings::default()
    }
}

const ADVANCED_HOST: &str = "openpgpkey.example.test";

#[tokio::test]
async fn a_key_from_the_advanced_method_is_found_and_reported_as_discovered() {
    let lab = Lab::new(wkd_only()).await;
    let (good, fpr) = keys().good.clone();
    lab.wkd.advanced(Answer::Body(good));
    let got = lab.pgp().await;
    assert_eq!(
        summary(&got.pgp),
        Some((fpr.clone(), "wkd-advanced", "usable"))
    );
    assert_eq!(got.discovered.len(), 1);
    let d = &got.discovered[0];
    assert_eq!(
        (d.address.as_str(), d.source, d.fingerprint.as_str()),
        (JOE, KeySource::WkdAdvanced, fpr.as_str())
    );
    assert!(d.validity.starts_with("usable: "), "{d:?}");
    assert_eq!(lab.wkd.asked(DOMAIN), 0, "the direct method was not asked");
    assert_eq!(lab.dns.lookups(), 0, "OPENPGPKEY is off");
    assert!(matches!(got.smime, KeyFinding::NotLooked));
}

#[tokio::test]
async fn a_missing_advanced_host_falls_back_to_the_direct_method() {
    let lab = Lab::new(wkd_only()).await;
    let (good, fpr) = keys().good.clone();
    lab.wkd.direct(Answer::Body(good));
    let got = lab.pgp().await;
    assert_eq!(summary(&got.pgp), Some((fpr, "wkd-direct", "usable")));
    assert_eq!(lab.wkd.asked(ADVANCED_HOST), 1);
    assert_eq!(lab.wkd.asked(DOMAIN), 1);
    assert!(
        notes(&got.pgp).contains("wkd-advanced: openpgpkey.example.test unreachable"),
        "{}",
        notes(&got.pgp)
    );
}

#[tokio::test]
async fn a_404_from_the_advanced_host_means_no_key_and_the_direct_method_is_not_asked() {
    let lab = Lab::new(wkd_only()).await;
    lab.wkd.advanced(Answer::Status(404));
    lab.wkd.direct(Answer::Body(keys().good.0.clone()));
    let got = lab.pgp().await;
    assert!(
        matches!(got.pgp, KeyFinding::Absent { .. }),
        "{:?}",
        got.pgp
    );
    assert_eq!(notes(&got.pgp), "wkd-advanced: no key published (404)");
    assert_eq!(lab.wkd.asked(DOMAIN), 0);
    assert!(got.discovered.is_empty());
}

#[tokio::test]
async fn server_failures_and_timeouts_are_not_retried_by_the_direct_method() {
    for answer in [Answer::Status(503), Answer::Timeout, Answer::Status(302)] {
        let lab = Lab::new(wkd_only()).await;
        lab.wkd.advanced(answer.clone());
        lab.wkd.direct(Answer::Body(keys().good.0.clone()));
        let got = lab.pgp().await;
        assert!(matches!(got.pgp, KeyFinding::Absent { .. }), "{answer:?}");
        assert!(
            notes(&got.pgp).starts_with("wkd-advanced: lookup failed: "),
            "{answer:?}: {}",
            notes(&got.pgp)
        );
        assert_eq!(lab.wkd.asked(DOMAIN), 0, "{answer:?}");
    }
}

#[tokio::test]
async fn a_domain_without_any_wkd_host_has_no_key() {
    let lab = Lab::new(wkd_only()).await;
    let got = lab.pgp().await;
    assert!(matches!(got.pgp, KeyFinding::Absent { .. }));
    assert!(
        notes(&got.pgp).contains("wkd-direct: example.test unreachable"),
        "{}",
        notes(&got.pgp)
    );
}

#[tokio::test]
async fn armored_keys_and_keyrings_are_accepted() {
    let lab = Lab::new(wkd_only()).await;
    let k = keys();
    let mut ring = k.stranger.0.clone();
    ring.extend_from_slice(&k.good.0);
    lab.wkd.advanced(Answer::Body(ring));
    let got = lab.pgp().await;
    assert_eq!(
        summary(&got.pgp).map(|s| s.0),
        Some(k.good.1.clone()),
        "the key naming joe is chosen from the keyring"
    );
    assert_eq!(got.discovered.len(), 2, "one record per candidate");
    assert!(notes(&got.pgp).contains("does not name joe@example.test"));

    let lab = Lab::new(wkd_only()).await;
    lab.wkd.advanced(Answer::Body(k.good_armored.clone()));
    let got = lab.pgp().await;
    assert_eq!(summary(&got.pgp).map(|s| s.0), Some(k.good.1.clone()));
}

#[tokio::test]
async fn an_answer_that_is_not_a_key_is_a_failure() {
    let lab = Lab::new(wkd_only()).await;
    lab.wkd
        .advanced(Answer::Body(b"<html>not found</html>".to_vec()));
    let got = lab.pgp().await;
    assert!(matches!(got.pgp, KeyFinding::Absent { .. }));
    assert!(
        notes(&got.pgp).starts_with("wkd-advanced: the answer is not an OpenPGP certificate"),
        "{}",
        notes(&got.pgp)
    );
}

#[tokio::test]
async fn disabled_methods_and_kinds_are_not_tried() {
    let off = KeySettings {
        wkd: false,
        openpgpkey: false,
        ..KeySettings::default()
    };
    let lab = Lab::new(off).await;
    lab.wkd.advanced(Answer::Body(keys().good.0.clone()));
    let got = lab.pgp().await;
    assert!(matches!(got.pgp, KeyFinding::Absent { .. }));
    assert_eq!(lab.wkd.requests() + lab.dns.lookups(), 0);

    let no_pgp = KeySettings {
        pgp: false,
        ..KeySettings::default()
    };
    let lab = Lab::new(no_pgp).await;
    let got = lab.pgp().await;
    assert!(matches!(got.pgp, KeyFinding::NotLooked));
    let got = lab.discovery.recipient_keys(JOE, KeyWant::default()).await;
    assert!(matches!(got.pgp, KeyFinding::NotLooked));
    assert!(matches!(got.smime, KeyFinding::NotLooked));
    assert_eq!(lab.wkd.requests() + lab.dns.lookups(), 0);
}

#[tokio::test]
async fn without_key_discovery_nothing_is_looked_for() {
    let lab = Lab::new(KeySettings::default()).await;
    let plain = Discovery::new(lab.dns.clone(), None, lab.store.clone(), probe_settings());
    let got = plain.recipient_keys(JOE, PGP).await;
    assert!(matches!(got.pgp, KeyFinding::NotLooked));
}

#[tokio::test]
async fn an_address_without_a_valid_domain_is_absent_without_lookups() {
    let lab = Lab::new(KeySettings::default()).await;
    for bad in [
        "joe",
        "@example.test",
        "joe@exa mple.test",
        "joe@evil.test/x?",
    ] {
        let got = lab.discovery.recipient_keys(bad, PGP).await;
        assert!(matches!(got.pgp, KeyFinding::Absent { .. }), "{bad}");
    }
    assert_eq!(lab.wkd.requests() + lab.dns.lookups(), 0);
}
