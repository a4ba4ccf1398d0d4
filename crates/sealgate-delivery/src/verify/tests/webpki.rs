//! WebPKI (MTA-STS) decisions and building the verifiers.

use sealgate_testkit::tls::TestCa;

use super::*;

#[test]
fn webpki_with_the_test_ca_as_extra_root_accepts_the_mx_name() {
    let ca = TestCa::new();
    let chain = ca.issue(&[MX]).chain_der();
    let verifiers = Verifiers::new(false, &[ca.cert_der()]).expect("verifiers");
    assert_eq!(
        verify(&verifiers, &PeerAuth::WebPki, &chain, MX, UnixTime::now()),
        Ok(())
    );
}

#[test]
fn webpki_refuses_a_name_the_certificate_lacks_as_host_mismatch() {
    let ca = TestCa::new();
    let chain = ca.issue(&[MX]).chain_der();
    let verifiers = Verifiers::new(true, &[ca.cert_der()]).expect("verifiers");
    let (kind, detail) = verify(
        &verifiers,
        &PeerAuth::WebPki,
        &chain,
        "mx2.example.test",
        UnixTime::now(),
    )
    .expect_err("wrong name");
    assert_eq!(kind, "certificate-host-mismatch");
    assert!(detail.contains("mx2.example.test"), "{detail}");
}

#[test]
fn webpki_without_the_extra_root_does_not_trust_the_test_ca() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let other = TestCa::named("Other CA");
    for verifiers in [
        Verifiers::new(true, &[]).expect("public roots"),
        Verifiers::new(true, &[other.cert_der()]).expect("another private root"),
    ] {
        let (kind, _) = verify(&verifiers, &PeerAuth::WebPki, &chain, MX, UnixTime::now())
            .expect_err("unknown issuer");
        assert_eq!(kind, "certificate-not-trusted");
    }
}

#[test]
fn webpki_without_any_root_refuses_every_peer_as_not_trusted() {
    let chain = TestCa::new().issue(&[MX]).chain_der();
    let (kind, detail) =
        verify(&verifiers(), &PeerAuth::WebPki, &chain, MX, UnixTime::now()).expect_err("no roots");
    assert_eq!(kind, "certificate-not-trusted");
    assert!(detail.contains("no trusted roots"), "{detail}");
}

#[test]
fn webpki_refuses_an_expired_certificate() {
    let ca = TestCa::new();
    let chain = ca.issue(&[MX]).chain_der();
    let verifiers = Verifiers::new(false, &[ca.cert_der()]).expect("verifiers");
    let (kind, _) =
        verify(&verifiers, &PeerAuth::WebPki, &chain, MX, far_future()).expect_err("expired");
    assert_eq!(kind, "certificate-expired");
}

#[test]
fn load_pem_file_reads_every_certificate_of_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let issued = ca.issue(&[MX]);
    let (chain_path, _) = issued.write_to(dir.path(), "mx");
    assert_eq!(
        Verifiers::load_pem_file(&chain_path).expect("load chain"),
        issued.chain_der()
    );
    let ca_path = ca.write_to(dir.path());
    assert_eq!(
        Verifiers::load_pem_file(&ca_path).expect("load ca"),
        vec![ca.cert_der()]
    );
}

#[test]
fn load_pem_file_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let err = Verifiers::load_pem_file(&missing).expect_err("missing file");
    assert!(matches!(err, VerifyError::ReadCaFile { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no pem here\n").expect("write");
    let err = Verifiers::load_pem_file(&empty).expect_err("no certificate");
    assert!(matches!(err, VerifyError::EmptyCaFile { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.pem"), "{err}");

    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let err = Verifiers::load_pem_file(&broken).expect_err("bad base64");
    assert!(matches!(err, VerifyError::PemCaFile { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.pem"), "{err}");
}

#[test]
fn an_extra_root_that_is_not_a_certificate_is_refused_by_position() {
    let ca = TestCa::new();
    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let err = Verifiers::new(false, &[ca.cert_der(), junk]).expect_err("junk root");
    assert!(
        matches!(err, VerifyError::BadRoot { index: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn client_configs_send_sni_and_use_the_aws_lc_rs_provider() {
    let config = verifiers().client_config(&PeerAuth::WebPki);
    assert!(
        config.enable_sni,
        "RFC 7672 §8.1: SNI names the TLSA base domain"
    );
    let aws = rustls::crypto::aws_lc_rs::default_provider();
    let ours: Vec<_> = config
        .crypto_provider()
        .cipher_suites
        .iter()
        .map(|s| s.suite())
        .collect();
    let theirs: Vec<_> = aws.cipher_suites.iter().map(|s| s.suite()).collect();
    assert_eq!(ours, theirs);
}
