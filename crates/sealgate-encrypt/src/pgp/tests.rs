//! Certificates and signers, with GnuPG 2.2 making the keys.

use sealgate_testkit::gpg::{GpgHome, KeySpec};
use sequoia_openpgp::serialize::SerializeInto as _;

use super::*;
use crate::{KeyKind, Problem};

mod encrypt;
mod revocation;

/// The current time in Unix seconds.
fn now() -> i64 {
    unix(std::time::SystemTime::now())
}

/// The public key `fpr` from `home`, parsed from binary.
fn public(home: &GpgHome, fpr: &str) -> PgpCert {
    PgpCert::from_bytes(&home.export_public(fpr, false)).expect("parse gpg public key")
}

/// A passphrase-protected v4 key made by sequoia, as an armored TSK.
fn protected_secret_key() -> Vec<u8> {
    let (cert, _) = CertBuilder::general_purpose(Some("locked@org.example"))
        .set_password(Some("secret".into()))
        .generate()
        .expect("generate");
    cert.as_tsk().armored().to_vec().expect("serialize")
}

#[test]
fn parse_all_reads_armored_binary_and_a_two_cert_keyring() {
    let home = GpgHome::new();
    let a = home.gen_key("a@example.org", KeySpec::Default);
    let b = home.gen_key("b@example.org", KeySpec::Default);

    let armored = home.export_public(&a, true);
    assert!(armored.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let from_armor = PgpCert::parse_all(&armored).expect("armored");
    assert_eq!(from_armor.len(), 1);
    assert_eq!(from_armor[0].fingerprint(), a);

    let from_binary = PgpCert::from_bytes(&home.export_public(&b, false)).expect("binary");
    assert_eq!(from_binary.fingerprint(), b);

    for armored in [true, false] {
        let ring = home.run(
            &[if armored { "--armor" } else { "--no-armor" }, "--export"],
            None,
        );
        assert!(ring.ok, "{}", ring.stderr);
        let fprs: Vec<String> = PgpCert::parse_all(&ring.plaintext)
            .expect("keyring")
            .iter()
            .map(PgpCert::fingerprint)
            .collect();
        assert_eq!(fprs.len(), 2, "armored {armored}");
        assert!(fprs.contains(&a) && fprs.contains(&b), "{fprs:?}");
    }
    // Two armored files pasted one after the other.
    let mut pasted = home.export_public(&a, true);
    pasted.extend_from_slice(&home.export_public(&b, true));
    let fprs: Vec<String> = PgpCert::parse_all(&pasted)
        .expect("two armor blocks")
        .iter()
        .map(PgpCert::fingerprint)
        .collect();
    assert_eq!(fprs, [a, b]);
}

#[test]
fn fingerprint_is_forty_uppercase_hex_digits_and_to_bytes_round_trips() {
    let home = GpgHome::new();
    let fpr = home.gen_key("c@example.org", KeySpec::Default);
    let cert = public(&home, &fpr);
    let f = cert.fingerprint();
    assert_eq!(f.len(), 40);
    assert!(
        f.bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)),
        "{f}"
    );
    let again = PgpCert::from_bytes(&cert.to_bytes()).expect("reparse");
    assert_eq!(again.fingerprint(), f);
    assert_eq!(again.to_bytes(), cert.to_bytes());
}

#[test]
fn secret_key_input_yields_public_only_output() {
    let home = GpgHome::new();
    let fpr = home.gen_key("d@example.org", KeySpec::Default);
    let secret = home.export_secret(&fpr);
    let raw = sequoia_openpgp::Cert::from_bytes(&secret).expect("sequoia reads the TSK");
    assert!(raw.is_tsk(), "precondition: the export holds secrets");

    let cert = PgpCert::from_bytes(&secret).expect("parse secret key as certificate");
    assert!(!cert.cert().is_tsk());
    let stored = sequoia_openpgp::Cert::from_bytes(&cert.to_bytes()).expect("reparse");
    assert!(
        !stored.is_tsk(),
        "to_bytes must not carry secret key material"
    );
    assert_eq!(stored.fingerprint().to_hex(), fpr);
}

#[test]
fn holds_secret_tells_a_secret_key_export_from_a_public_one() {
    let home = GpgHome::new();
    let fpr = home.gen_key("e@example.org", KeySpec::Default);
    assert!(PgpCert::holds_secret(&home.export_secret(&fpr)));
    assert!(!PgpCert::holds_secret(&home.export_public(&fpr, true)));
    assert!(!PgpCert::holds_secret(&home.export_public(&fpr, false)));
    assert!(!PgpCert::holds_secret(b"not openpgp"));
}

#[test]
fn from_bytes_refuses_a_keyring_empty_input_and_garbage() {
    let home = GpgHome::new();
    home.gen_key("e@example.org", KeySpec::SigningOnly);
    home.gen_key("f@example.org", KeySpec::SigningOnly);
    let ring = home.run(&["--export"], None).plaintext;
    assert!(matches!(
        PgpCert::from_bytes(&ring),
        Err(EncryptError::Malformed(_))
    ));
    assert!(matches!(
        PgpCert::parse_all(b""),
        Err(EncryptError::Malformed(_))
    ));
    assert!(matches!(
        PgpCert::parse_all(b"not a key at all\r\n"),
        Err(EncryptError::Malformed(_))
    ));
}

#[test]
fn info_of_a_default_gpg_key_is_ok_with_its_lowercased_address() {
    let home = GpgHome::new();
    let fpr = home.gen_key("Alice Example <Alice@Example.ORG>", KeySpec::Default);
    let info = public(&home, &fpr).info(now());
    assert_eq!(info.kind, KeyKind::Pgp);
    assert_eq!(info.fingerprint, fpr);
    assert_eq!(info.emails, ["alice@example.org"]);
    assert!(info.binds("ALICE@example.org"));
    assert_eq!(info.expires, None);
    let desc = info.status.expect("usable");
    assert!(desc.starts_with("encryption subkey "), "{desc}");
    assert!(desc.ends_with(" (ECDH cv25519)"), "{desc}");
    assert!(
        !desc.contains(&fpr),
        "names the subkey, not the primary: {desc}"
    );
}

#[test]
fn info_of_an_rsa_3072_gpg_key_is_ok() {
    let home = GpgHome::new();
    let fpr = home.gen_key("rsa@example.org", KeySpec::Rsa3072);
    let info = public(&home, &fpr).info(now());
    let desc = info.status.expect("usable");
    assert!(desc.ends_with("(RSA 3072)"), "{desc}");
    assert_eq!(info.emails, ["rsa@example.org"]);
}

#[test]
fn info_of_a_signing_only_gpg_key_is_signing_only() {
    let home = GpgHome::new();
    let fpr = home.gen_key("sign@example.org", KeySpec::SigningOnly);
    let info = public(&home, &fpr).info(now());
    assert!(
        matches!(info.status, Err(Problem::SigningOnly(_))),
        "{:?}",
        info.status
    );
    assert!(!info.usable());
    assert_eq!(info.emails, ["sign@example.org"]);
}

#[test]
fn info_of_an_expired_gpg_key_is_expired_at_its_expiry() {
    let home = GpgHome::new();
    let fpr = home.gen_key("old@example.org", KeySpec::Expired);
    let cert = public(&home, &fpr);
    let info = cert.info(now());
    let Err(Problem::Expired { at }) = info.status else {
        panic!("expected expired, got {:?}", info.status);
    };
    // Made ten days ago with a one-day expiry.
    assert!((now() - at - 9 * 86_400).abs() < 3_600, "expired at {at}");
    assert_eq!(info.expires, Some(at));
    // Before it expired, it was usable.
    assert!(
        cert.info(at - 3_600).usable(),
        "{:?}",
        cert.info(at - 3_600).status
    );
}

#[test]
fn info_of_a_revoked_gpg_key_is_revoked() {
    let home = GpgHome::new();
    let fpr = home.gen_key("gone@example.org", KeySpec::Revoked);
    let info = public(&home, &fpr).info(now());
    assert!(
        matches!(info.status, Err(Problem::Revoked(_))),
        "{:?}",
        info.status
    );
    assert_eq!(info.status.as_ref().map_err(Problem::class), Err("revoked"));
}

#[test]
fn info_before_the_key_was_made_is_not_yet_valid() {
    let home = GpgHome::new();
    let fpr = home.gen_key("new@example.org", KeySpec::Default);
    let cert = public(&home, &fpr);
    let created = unix(cert.cert().primary_key().key().creation_time());
    let info = cert.info(created - 86_400);
    assert_eq!(info.status, Err(Problem::NotYetValid { from: created }));
}

#[test]
fn signer_from_an_exported_gpg_secret_key_is_accepted() {
    let home = GpgHome::new();
    let fpr = home.gen_key("org@example.org", KeySpec::Default);
    let signer = PgpSigner::from_bytes(&home.export_secret(&fpr)).expect("signer");
    assert_eq!(signer.fingerprint(), fpr);
    assert!(
        !format!("{signer:?}").contains("Unencrypted"),
        "Debug shows no secrets"
    );
    let public = signer.public_cert().expect("public part");
    assert!(!public.cert().is_tsk());
}

#[test]
fn signer_refuses_a_public_key_a_protected_key_and_an_expired_key() {
    let home = GpgHome::new();
    let fpr = home.gen_key("pub@example.org", KeySpec::Default);
    let expired = home.gen_key("exp@example.org", KeySpec::Expired);
    for (what, data) in [
        ("public key", home.export_public(&fpr, true)),
        ("protected key", protected_secret_key()),
        ("expired key", home.export_secret(&expired)),
        ("garbage", b"garbage".to_vec()),
    ] {
        let r = PgpSigner::from_bytes(&data);
        assert!(matches!(r, Err(EncryptError::OrgKey(_))), "{what}: {r:?}");
    }
    let public = PgpSigner::from_bytes(&home.export_public(&fpr, false));
    assert!(
        format!("{public:?}").contains("no secret key material"),
        "{public:?}"
    );
    let locked = PgpSigner::from_bytes(&protected_secret_key());
    assert!(
        format!("{locked:?}").contains("passphrase-protected"),
        "{locked:?}"
    );
}
