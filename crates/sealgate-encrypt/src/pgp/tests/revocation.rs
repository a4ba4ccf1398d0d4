//! Revocations and expiry cases GnuPG's quick commands cannot make: sequoia builds them.

use std::time::{Duration, SystemTime};

use sealgate_testkit::gpg::GpgHome;
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto as _;
use openpgp::types::ReasonForRevocation;

use super::{now, public};
use crate::Problem;
use crate::pgp::{PgpCert, unix};

const DAY: Duration = Duration::from_secs(86_400);

/// A v4 certificate with two user ids and an encryption subkey, made ten days ago.
fn made_ten_days_ago() -> openpgp::Cert {
    CertBuilder::general_purpose(Some("Kept <kept@home.example>"))
        .add_userid("Dropped <dropped@home.example>")
        .set_creation_time(SystemTime::now() - 10 * DAY)
        .generate()
        .expect("generate")
        .0
}

fn primary_signer(cert: &openpgp::Cert) -> KeyPair {
    let key = cert.primary_key().key().clone().parts_into_secret();
    key.and_then(|k| k.into_keypair()).expect("primary keypair")
}

fn pgp(cert: &openpgp::Cert) -> PgpCert {
    PgpCert::from_bytes(&cert.to_vec().expect("serialize")).expect("parse")
}

/// `cert` revoked for `reason`, the revocation dated `at`.
fn revoked(cert: openpgp::Cert, reason: ReasonForRevocation, at: SystemTime) -> openpgp::Cert {
    let sig = CertRevocationBuilder::new()
        .set_reason_for_revocation(reason, b"see https://clinic.example/keys")
        .and_then(|b| b.set_signature_creation_time(at))
        .and_then(|b| b.build(&mut primary_signer(&cert), &cert, None))
        .expect("revocation");
    cert.insert_packets(sig).expect("insert").0
}

#[test]
fn soft_revocation_applies_from_its_date_and_hard_revocation_always() {
    let cert = made_ten_days_ago();
    let at = SystemTime::now() - 2 * DAY;
    let (before, after) = (unix(at) - 3_600, unix(at) + 3_600);

    let soft = pgp(&revoked(
        cert.clone(),
        ReasonForRevocation::KeySuperseded,
        at,
    ));
    assert!(soft.info(before).usable(), "{:?}", soft.info(before).status);
    let status = soft.info(after).status;
    assert!(
        matches!(&status, Err(Problem::Revoked(r)) if r.contains("superseded")),
        "{status:?}"
    );

    let hard = pgp(&revoked(cert, ReasonForRevocation::KeyCompromised, at));
    for t in [before, after] {
        let status = hard.info(t).status;
        let Err(Problem::Revoked(reason)) = &status else {
            panic!("hard revocation at {t}: {status:?}");
        };
        assert!(reason.contains("compromised"), "{reason}");
        assert!(
            reason.contains("(see https://clinic.example/keys)"),
            "{reason}"
        );
    }
}

#[test]
fn revoked_encryption_subkey_leaves_a_signing_only_cert() {
    let cert = made_ten_days_ago();
    let policy = StandardPolicy::new();
    let vc = cert.with_policy(&policy, None).expect("valid");
    let sub = vc
        .keys()
        .subkeys()
        .for_transport_encryption()
        .next()
        .expect("enc subkey");
    let sig = SubkeyRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::KeyRetired, b"")
        .and_then(|b| b.build(&mut primary_signer(&cert), &cert, sub.key(), None))
        .expect("subkey revocation");
    let cert = cert.clone().insert_packets(sig).expect("insert").0;
    let info = pgp(&cert).info(now());
    assert!(
        matches!(info.status, Err(Problem::SigningOnly(_))),
        "{:?}",
        info.status
    );
}

#[test]
fn revoked_user_id_is_not_among_the_emails() {
    let cert = made_ten_days_ago();
    let uid = cert
        .userids()
        .map(|u| u.userid().clone())
        .find(|u| u.value().starts_with(b"Dropped"))
        .expect("second user id");
    let sig = UserIDRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::UIDRetired, b"left")
        .and_then(|b| b.build(&mut primary_signer(&cert), &cert, &uid, None))
        .expect("user id revocation");
    assert_eq!(pgp(&cert).info(now()).emails.len(), 2, "precondition");
    let info = pgp(&cert.insert_packets(sig).expect("insert").0).info(now());
    assert_eq!(info.emails, ["kept@home.example"]);
    assert!(info.usable());
}

#[test]
fn expired_primary_key_makes_the_cert_expired_even_with_an_unexpiring_subkey() {
    let home = GpgHome::new();
    let made = format!("{}!", now() - 10 * 86_400);
    let out = home.run(
        &[
            "--faked-system-time",
            &made,
            "--quick-gen-key",
            "p@home.example",
            "ed25519",
            "cert,sign",
            "1d",
        ],
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    let fpr = home.fingerprint_of("p@home.example");
    let out = home.run(
        &[
            "--faked-system-time",
            &made,
            "--quick-add-key",
            &fpr,
            "cv25519",
            "encr",
            "never",
        ],
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    let cert = public(&home, &fpr);
    let policy = StandardPolicy::new();
    let sub_expiry = cert.cert().keys().subkeys().next().and_then(|k| {
        k.with_policy(&policy, cert.cert().primary_key().key().creation_time())
            .ok()
            .and_then(|k| k.key_expiration_time())
    });
    assert_eq!(sub_expiry, None, "precondition: the subkey never expires");

    let Err(Problem::Expired { at }) = cert.info(now()).status else {
        panic!("expected expired: {:?}", cert.info(now()).status);
    };
    assert_eq!(Some(at), cert.info(now()).expires);
    assert!((now() - at - 9 * 86_400).abs() < 3_600, "expired at {at}");
}

#[test]
fn expired_encryption_subkey_is_never_used_and_alone_makes_the_cert_expired() {
    let home = GpgHome::new();
    let made = format!("{}!", now() - 10 * 86_400);
    let generate = [
        "--quick-gen-key",
        "p@home.example",
        "ed25519",
        "cert,sign",
        "never",
    ];
    let out = home.run(
        &[&["--faked-system-time", &made][..], &generate[..]].concat(),
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    let fpr = home.fingerprint_of("p@home.example");
    let add = ["--quick-add-key", &fpr, "cv25519", "encr", "1d"];
    let out = home.run(
        &[&["--faked-system-time", &made][..], &add[..]].concat(),
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    let old = public(&home, &fpr);
    let old_sub = old.cert().keys().subkeys().next().expect("subkey");
    let old_sub = old_sub.key().fingerprint().to_hex();

    let Err(Problem::Expired { at }) = old.info(now()).status else {
        panic!("expected expired: {:?}", old.info(now()).status);
    };
    assert!((now() - at - 9 * 86_400).abs() < 3_600, "expired at {at}");
    assert_eq!(
        old.info(now()).expires,
        None,
        "the primary key does not expire"
    );

    let out = home.run(&["--quick-add-key", &fpr, "cv25519", "encr", "never"], None);
    assert!(out.ok, "{}", out.stderr);
    let renewed = public(&home, &fpr).info(now());
    let desc = renewed.status.expect("usable with the new subkey");
    assert!(
        !desc.contains(&old_sub),
        "the expired subkey is not used: {desc}"
    );
    assert_eq!(desc.matches("encryption subkey").count(), 1, "{desc}");
}
