//! DANE decisions (RFC 7672 §3.1).

use sealgate_testkit::tls::TestCa;

use super::*;

const SELECTORS: [u8; 2] = [0, 1];
const MATCHING_TYPES: [u8; 3] = [0, 1, 2];

#[test]
fn dane_ee_matches_the_leaf_by_every_selector_and_matching_type() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    for selector in SELECTORS {
        for matching in MATCHING_TYPES {
            let auth = dane(vec![tlsa(3, selector, matching, &chain[0])], &[MX]);
            assert_eq!(
                verify(&verifiers(), &auth, &chain, MX, UnixTime::now()),
                Ok(()),
                "3 {selector} {matching}"
            );
        }
    }
}

#[test]
fn dane_ta_matches_the_ca_in_the_chain_by_every_selector_and_matching_type() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    for selector in SELECTORS {
        for matching in MATCHING_TYPES {
            let auth = dane(vec![tlsa(2, selector, matching, &chain[1])], &[MX]);
            assert_eq!(
                verify(&verifiers(), &auth, &chain, MX, UnixTime::now()),
                Ok(()),
                "2 {selector} {matching}"
            );
        }
    }
}

#[test]
fn a_wrong_digest_is_refused_as_tlsa_invalid_for_every_combination() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    for (usage, cert) in [(3, &chain[0]), (2, &chain[1])] {
        for selector in SELECTORS {
            for matching in MATCHING_TYPES {
                let mut record = tlsa(usage, selector, matching, cert);
                let last = record.data.len() - 1;
                record.data[last] ^= 0x01;
                let auth = dane(vec![record], &[MX]);
                let (kind, detail) = verify(&verifiers(), &auth, &chain, MX, UnixTime::now())
                    .expect_err("a changed byte must not match");
                assert_eq!(kind, "tlsa-invalid", "{usage} {selector} {matching}");
                assert!(
                    detail.starts_with(&format!(
                        "DANE: no TLSA record of {MX} matched the presented chain (records: {usage} {selector} {matching} "
                    )),
                    "{detail}"
                );
            }
        }
    }
}

#[test]
fn truncated_association_data_does_not_match() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let mut record = tlsa(3, 1, 1, &chain[0]);
    record.data.truncate(16);
    let (kind, _) = verify(
        &verifiers(),
        &dane(vec![record], &[MX]),
        &chain,
        MX,
        UnixTime::now(),
    )
    .expect_err("half a digest is no match");
    assert_eq!(kind, "tlsa-invalid");
}

#[test]
fn any_matching_record_of_several_is_enough() {
    let ca = TestCa::new();
    let chain = ca.issue(&[MX]).chain_der();
    let stranger = TestCa::named("Stranger CA").issue(&[MX]).chain_der();
    let records = vec![
        tlsa(3, 1, 1, &stranger[0]),
        tlsa(2, 0, 2, &stranger[1]),
        tlsa(3, 0, 1, &chain[0]),
    ];
    assert_eq!(
        verify(
            &verifiers(),
            &dane(records, &[MX]),
            &chain,
            MX,
            UnixTime::now()
        ),
        Ok(())
    );
}

#[test]
fn dane_ee_ignores_names_and_validity_dates() {
    let chain = TestCa::new().issue(&["other.example.test"]).chain_der();
    let auth = dane(vec![tlsa(3, 1, 1, &chain[0])], &["nobody.example.test"]);
    for now in [UnixTime::now(), far_future(), long_ago()] {
        assert_eq!(verify(&verifiers(), &auth, &chain, MX, now), Ok(()));
    }
}

#[test]
fn dane_ee_needs_only_the_leaf() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(3, 0, 1, &chain[0])], &[]);
    assert_eq!(
        verify(&verifiers(), &auth, &chain[..1], MX, UnixTime::now()),
        Ok(())
    );
}

#[test]
fn a_dane_ee_record_of_the_ca_certificate_does_not_match() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(3, 0, 1, &chain[1])], &[MX]);
    let (kind, _) = verify(&verifiers(), &auth, &chain, MX, UnixTime::now())
        .expect_err("DANE-EE matches the leaf only");
    assert_eq!(kind, "tlsa-invalid");
}

#[test]
fn dane_ta_accepts_the_recipient_domain_as_reference_identifier() {
    let chain = TestCa::new().issue(&["example.test"]).chain_der();
    for names in [&[MX, "example.test"][..], &[MX, "EXAMPLE.Test."][..]] {
        let auth = dane(vec![tlsa(2, 1, 1, &chain[1])], names);
        assert_eq!(
            verify(&verifiers(), &auth, &chain, MX, UnixTime::now()),
            Ok(()),
            "{names:?}"
        );
    }
}

#[test]
fn dane_ta_with_a_name_the_certificate_lacks_is_a_host_mismatch() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(2, 1, 1, &chain[1])], &["other.example.test"]);
    let (kind, detail) = verify(&verifiers(), &auth, &chain, MX, UnixTime::now())
        .expect_err("the name check must fail");
    assert_eq!(kind, "certificate-host-mismatch");
    assert!(
        detail.contains("names none of [other.example.test]"),
        "{detail}"
    );
    assert!(detail.contains(&format!("presents [{MX}]")), "{detail}");
}

#[test]
fn dane_ta_without_any_reference_identifier_is_a_host_mismatch() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(2, 0, 1, &chain[1])], &[]);
    let (kind, _) =
        verify(&verifiers(), &auth, &chain, MX, UnixTime::now()).expect_err("no name can match");
    assert_eq!(kind, "certificate-host-mismatch");
}

#[test]
fn dane_ta_checks_validity_dates() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(2, 0, 1, &chain[1])], &[MX]);
    let (kind, detail) =
        verify(&verifiers(), &auth, &chain, MX, far_future()).expect_err("expired leaf");
    assert_eq!(kind, "certificate-expired", "{detail}");
    let (kind, detail) =
        verify(&verifiers(), &auth, &chain, MX, long_ago()).expect_err("not yet valid");
    assert_eq!(kind, "validation-failure", "{detail}");
}

#[test]
fn dane_ta_needs_the_anchor_in_the_presented_chain() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(2, 0, 1, &chain[1])], &[MX]);
    let (kind, detail) = verify(&verifiers(), &auth, &chain[..1], MX, UnixTime::now())
        .expect_err("the server omitted the trust anchor");
    assert_eq!(kind, "tlsa-invalid");
    assert!(detail.contains("(records: 2 0 1 "), "{detail}");
}

#[test]
fn dane_ta_anchor_that_did_not_issue_the_leaf_is_refused() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let stranger = TestCa::named("Stranger CA").cert_der();
    let presented = vec![chain[0].clone(), stranger.clone()];
    let auth = dane(vec![tlsa(2, 1, 2, &stranger)], &[MX]);
    let (kind, detail) = verify(&verifiers(), &auth, &presented, MX, UnixTime::now())
        .expect_err("the leaf does not chain to the matched anchor");
    assert_eq!(kind, "tlsa-invalid");
    assert!(
        detail.contains("does not verify to the DANE-TA trust anchor of TLSA 2 1 2 "),
        "{detail}"
    );
}

#[test]
fn records_unusable_for_smtp_are_ignored_even_when_they_would_match() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let mut unknown_matching = tlsa(3, 0, 1, &chain[0]);
    unknown_matching.matching = 3;
    let records = vec![
        tlsa(1, 0, 1, &chain[0]),
        tlsa(0, 0, 1, &chain[1]),
        unknown_matching,
    ];
    let (kind, detail) = verify(
        &verifiers(),
        &dane(records, &[MX]),
        &chain,
        MX,
        UnixTime::now(),
    )
    .expect_err("PKIX usages are unusable for SMTP (RFC 7672 §3.1.3)");
    assert_eq!(kind, "tlsa-invalid");
    assert!(
        detail.starts_with(&format!(
            "DANE: no TLSA record usable for SMTP of {MX} matched"
        )),
        "{detail}"
    );
}

#[test]
fn a_dane_ta_record_matching_only_the_leaf_of_a_ca_issued_chain_is_refused() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let auth = dane(vec![tlsa(2, 0, 1, &chain[0])], &[MX]);
    let (kind, _) = verify(&verifiers(), &auth, &chain, MX, UnixTime::now())
        .expect_err("a CA-issued leaf is not its own trust anchor");
    assert_eq!(kind, "tlsa-invalid");
}
