//! Keys nobody imported: found through WKD (advanced method) on a lab HTTPS server, DNS
//! OPENPGPKEY and SMIMEA in a DNSSEC-signed zone; each discovery audited. Expired, revoked and
//! signing-only keys are found, audited as unusable, and never used.

use sealgate_testkit::gpg::{GpgHome, KeySpec};
use sealgate_testkit::https::TestResponse;
use sealgate_testkit::smime::{EmailCertSpec, Validity, cms_decrypt, issue_email};
use sha2::Digest as _;

use super::*;
use crate::inspect::fresh_db;

/// The WKD hash of `address`'s local part, as GnuPG computes it (`--with-wkd-hash`).
fn wkd_hash(gpg: &GpgHome, address: &str) -> String {
    let out = gpg.run(&["--with-wkd-hash", "--list-keys", address], None);
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    out.stdout
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_suffix(&format!("@{domain}")))
        .find(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| panic!("no WKD hash for {address} in {}", out.stdout))
        .to_owned()
}

/// Publishes `gpg`'s key for `address` on the lab WKD server (advanced method).
fn publish_wkd(lab: &SecureLab, gpg: &GpgHome, fpr: &str, address: &str) {
    // The advanced method's URL, with the local part as `l` (the server matches the query).
    let local = address.split('@').next().unwrap_or_default();
    let path = format!(
        "/.well-known/openpgpkey/example.test/hu/{}?l={local}",
        wkd_hash(gpg, address)
    );
    lab.https().set_response(
        "openpgpkey.example.test",
        &path,
        TestResponse::new(
            200,
            "application/octet-stream",
            gpg.export_public(fpr, false),
        ),
    );
}

/// The owner-name label of RFC 7929 / RFC 8162: SHA-256 of the local part, 28 octets, hex.
fn dane_label(local: &str) -> String {
    hex::encode(&sha2::Sha256::digest(local.as_bytes())[..28])
}

/// The data of every `key_discovered` event about `address` (its recipient column).
fn discoveries(db: &Inspect, address: &str) -> Vec<Value> {
    db.audit()
        .into_iter()
        .filter(|e| e.kind == "key_discovered" && e.recipient.as_deref() == Some(address))
        .map(|e| serde_json::from_str(&e.data).expect("audit data is JSON"))
        .collect()
}

/// The first `key_discovered` event for `address`, once there is one.
fn discovered(db: &Inspect, address: &str) -> Value {
    eventually(
        WAIT,
        &format!("a key_discovered event for {address}"),
        || !discoveries(db, address).is_empty(),
    );
    discoveries(db, address).remove(0)
}

#[test]
fn a_key_published_by_wkd_is_discovered_audited_and_used() {
    let lab = lab("");
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let jane = GpgHome::new();
    let fpr = jane.gen_key(RCPT, KeySpec::Default);
    publish_wkd(&lab, &jane, &fpr, RCPT);
    let db = fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url, "");

    let id = send(&daemon, dir.path(), RCPT);
    let got = received(&lab, &sink, &daemon);
    assert_nothing_leaks(&got);
    let opened = jane.decrypt(&got.data);
    assert!(opened.ok, "gpg could not decrypt: {}", opened.stderr);
    assert_original_inside(&opened.plaintext);

    let db = inspect(&daemon);
    let found = discovered(&db, RCPT);
    assert_eq!(found["source"], "wkd-advanced", "{found}");
    assert_eq!(found["kind"], "pgp", "{found}");
    assert_eq!(found["fingerprint"], fpr.as_str(), "{found}");
    assert!(
        found["validity"]
            .as_str()
            .unwrap_or_default()
            .starts_with("usable"),
        "{found}"
    );
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "pgp", "{decision}");
    assert!(
        mentions(
            &decision,
            "evidence",
            &format!("pgp: key {fpr} from wkd-advanced")
        ),
        "{decision}"
    );
    assert!(lab.https().requests_for("openpgpkey.example.test") >= 1);
}

#[test]
fn a_key_published_as_openpgpkey_in_a_signed_zone_is_discovered_and_used() {
    let jane = GpgHome::new();
    let fpr = jane.gen_key(RCPT, KeySpec::Default);
    let record = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(jane.export_public(&fpr, false))
    };
    let lab = lab(&format!(
        "{}._openpgpkey IN OPENPGPKEY {record}\n",
        dane_label("jane")
    ));
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url, "");

    let id = send(&daemon, dir.path(), RCPT);
    let got = received(&lab, &sink, &daemon);
    let opened = jane.decrypt(&got.data);
    assert!(opened.ok, "gpg could not decrypt: {}", opened.stderr);
    assert_original_inside(&opened.plaintext);

    let db = inspect(&daemon);
    let found = discovered(&db, RCPT);
    assert_eq!(found["source"], "openpgpkey", "{found}");
    assert_eq!(found["fingerprint"], fpr.as_str(), "{found}");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "pgp", "{decision}");
}

#[test]
fn a_certificate_published_as_smimea_in_a_signed_zone_is_discovered_and_used() {
    let ca = sealgate_testkit::tls::TestCa::named("Some Other CA");
    // DANE-EE (usage 3): DNSSEC vouches for the certificate; no chain to our roots needed.
    let jane = issue_email(&ca, RCPT, EmailCertSpec::default());
    let lab = lab(&format!(
        "{}._smimecert IN SMIMEA 3 0 0 {}\n",
        dane_label("jane"),
        hex::encode(&jane.cert_der)
    ));
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url, "");

    let id = send(&daemon, dir.path(), RCPT);
    let got = received(&lab, &sink, &daemon);
    assert_nothing_leaks(&got);
    let inner = cms_decrypt(&got.data, &jane.cert_pem, &jane.key_pem)
        .unwrap_or_else(|e| panic!("openssl cms -decrypt failed: {e}"));
    assert_original_inside(&inner);

    let db = inspect(&daemon);
    let found = discovered(&db, RCPT);
    assert_eq!(found["source"], "smimea", "{found}");
    assert_eq!(found["kind"], "smime", "{found}");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "smime", "{decision}");
}

#[test]
fn expired_revoked_and_signing_only_keys_are_never_used_and_the_audit_says_why() {
    let keys = GpgHome::new();
    let amy = keys.gen_key("amy@example.test", KeySpec::Expired);
    let bob = keys.gen_key("bob@example.test", KeySpec::Revoked);
    let cat = keys.gen_key("cat@example.test", KeySpec::SigningOnly);
    let ca = sealgate_testkit::tls::TestCa::named("Some Other CA");
    let dan = issue_email(
        &ca,
        "dan@example.test",
        EmailCertSpec {
            validity: Validity::Expired,
            ..Default::default()
        },
    );
    let lab = lab(&format!(
        "{}._smimecert IN SMIMEA 3 0 0 {}\n",
        dane_label("dan"),
        hex::encode(&dan.cert_der)
    ));
    for (fpr, address) in [
        (&amy, "amy@example.test"),
        (&bob, "bob@example.test"),
        (&cat, "cat@example.test"),
    ] {
        publish_wkd(&lab, &keys, fpr, address);
    }
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon(&db.url, crate::lab::WITHOUT_AUTHENTICATED);
    let id = send(&daemon, dir.path(), "amy@example.test");

    let db = inspect(&daemon);
    let cases = [
        ("amy@example.test", "pgp", "expired"),
        ("bob@example.test", "pgp", "revoked"),
        ("cat@example.test", "pgp", "no encryption-capable key"),
        ("dan@example.test", "smime", "expired"),
    ];
    // One message per recipient after the first (the send helper takes one recipient).
    let mut ids = vec![(id, cases[0])];
    for case in &cases[1..] {
        ids.push((send(&daemon, dir.path(), case.0), *case));
    }
    for (id, (address, kind, why)) in &ids {
        wait_for(&db, id, address, "deferred");
        let found = discoveries(&db, address)
            .into_iter()
            .find(|e| e["kind"] == *kind)
            .unwrap_or_else(|| panic!("no {kind} discovery for {address}"));
        let validity = found["validity"].as_str().unwrap_or_default();
        assert!(
            validity.starts_with("unusable") && validity.contains(why),
            "{address}: {found}"
        );
        let decision = first(&db, id, "decision");
        assert_eq!(decision["method"], "portal", "{address}: {decision}");
        assert!(
            mentions(&decision, "evidence", &format!("{kind}: key "))
                && mentions(&decision, "evidence", why),
            "{address}: {decision}"
        );
    }
    assert!(
        sink.received().is_empty(),
        "something was sent with an unusable key: {:?}",
        sink.received()
    );
}
