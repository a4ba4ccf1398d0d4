//! Operator pins.

use sealgate_testkit::tls::TestCa;

use super::*;

fn pinned(pins: &[String]) -> PeerAuth {
    PeerAuth::Pinned {
        sha256: pins.to_vec(),
    }
}

#[test]
fn a_pin_of_the_leaf_certificate_matches() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let pin = hex::encode(Sha256::digest(&chain[0]));
    assert_eq!(
        verify(&verifiers(), &pinned(&[pin]), &chain, MX, UnixTime::now()),
        Ok(())
    );
}

#[test]
fn a_pin_of_the_leaf_public_key_matches_in_any_hex_spelling() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let pin = hex::encode(Sha256::digest(spki(&chain[0])));
    let colons = pin
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    for pin in [pin, colons] {
        assert_eq!(
            verify(
                &verifiers(),
                &pinned(std::slice::from_ref(&pin)),
                &chain,
                MX,
                UnixTime::now()
            ),
            Ok(()),
            "{pin}"
        );
    }
}

#[test]
fn pins_ignore_names_dates_and_the_chain() {
    let chain = TestCa::new().issue(&["other.example.test"]).chain_der();
    let pins = ["00".repeat(32), hex::encode(Sha256::digest(&chain[0]))];
    for now in [far_future(), long_ago()] {
        assert_eq!(
            verify(&verifiers(), &pinned(&pins), &chain[..1], MX, now),
            Ok(())
        );
    }
}

#[test]
fn a_pin_mismatch_is_a_validation_failure_naming_the_presented_digests() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let pins = [
        hex::encode(Sha256::digest(&chain[1])),
        hex::encode(Sha256::digest(spki(&chain[1]))),
    ];
    let (kind, detail) = verify(&verifiers(), &pinned(&pins), &chain, MX, UnixTime::now())
        .expect_err("pins of the CA do not pin the leaf");
    assert_eq!(kind, "validation-failure");
    let leaf_pin = hex::encode(Sha256::digest(&chain[0]));
    assert!(detail.contains(&leaf_pin), "{detail}");
    assert!(detail.contains(MX), "{detail}");
    assert!(
        detail.ends_with("matches none of the 2 configured pins"),
        "{detail}"
    );
}

#[test]
fn no_pins_refuse_every_certificate() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let (kind, _) = verify(&verifiers(), &pinned(&[]), &chain, MX, UnixTime::now())
        .expect_err("nothing is pinned");
    assert_eq!(kind, "validation-failure");
}
