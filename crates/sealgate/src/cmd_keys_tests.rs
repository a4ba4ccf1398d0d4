//! The pure parts of `sealgate keys`: recognising files, finding secret keys, choosing
//! addresses. The commands themselves are tested end to end (`tests/tests/e2e/keys_cli.rs`).

use sealgate_encrypt::Problem;

use super::*;

fn info(emails: &[&str], status: Result<String, Problem>) -> KeyInfo {
    KeyInfo {
        kind: KeyKind::Pgp,
        fingerprint: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        expires: None,
        status,
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn files_are_recognised_by_armor_pem_label_or_first_byte() {
    let armored = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n";
    assert_eq!(sniff(armored), Some(KeyKind::Pgp));
    let pem = b"subject=CN = bob\n-----BEGIN CERTIFICATE-----\nMIIB...\n";
    assert_eq!(sniff(pem), Some(KeyKind::Smime));
    assert_eq!(sniff(&[0x30, 0x82, 0x01, 0x0a]), Some(KeyKind::Smime));
    assert_eq!(sniff(&[0x99, 0x00, 0x33]), Some(KeyKind::Pgp));
    assert_eq!(sniff(&[0xc6, 0x33]), Some(KeyKind::Pgp));
    assert_eq!(sniff(b"hello"), None);
    assert_eq!(sniff(b""), None);
}

#[test]
fn pem_private_keys_count_as_secret_key_material() {
    assert!(holds_secret_keys(b"-----BEGIN PRIVATE KEY-----\nMIG..."));
    assert!(holds_secret_keys(b"-----BEGIN EC PRIVATE KEY-----\nMHc..."));
    assert!(!holds_secret_keys(b"-----BEGIN CERTIFICATE-----\nMII..."));
    // A DER certificate is not OpenPGP.
    assert!(!holds_secret_keys(&[0x30, 0x82, 0x01, 0x0a]));
}

#[test]
fn without_addresses_every_bound_address_is_stored() {
    let i = info(&["bob@example.net", "b@example.net"], Ok("ok".into()));
    assert_eq!(
        addresses_for(&i, &[]),
        Ok(strings(&["bob@example.net", "b@example.net"]))
    );
}

#[test]
fn requested_addresses_restrict_to_those_the_key_binds() {
    let i = info(&["bob@example.net", "b@example.net"], Ok("ok".into()));
    let asked = strings(&["b@example.net", "carol@example.net"]);
    assert_eq!(addresses_for(&i, &asked), Ok(strings(&["b@example.net"])));
    let err = addresses_for(&i, &strings(&["carol@example.net"])).unwrap_err();
    assert!(err.contains("binds none of carol@example.net"), "{err}");
}

#[test]
fn unusable_or_unbound_keys_are_refused_with_the_problem() {
    let expired = info(&["bob@example.net"], Err(Problem::Expired { at: 0 }));
    let err = addresses_for(&expired, &[]).unwrap_err();
    assert!(err.starts_with("expired at 1970-01-01"), "{err}");
    let nobody = info(&[], Ok("ok".into()));
    assert_eq!(
        addresses_for(&nobody, &[]),
        Err("binds no email address".to_owned())
    );
}

#[test]
fn typed_addresses_and_fingerprints_are_normalised() {
    assert_eq!(
        requested_addresses(&strings(&[" Bob@Example.NET "])).unwrap(),
        ["bob@example.net"]
    );
    assert!(requested_addresses(&strings(&["example.net"])).is_err());
    assert!(requested_addresses(&strings(&["a b@example.net"])).is_err());
    assert_eq!(
        normalize_fingerprint("0x0123 4567 89AB CDEF  0123 4567 89AB CDEF 0123 4567"),
        "0123456789ABCDEF0123456789ABCDEF01234567"
    );
}
