//! Mapping handshake errors to RFC 8460 §4.3 result types.

use std::io;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

use super::*;
use crate::verify::error::RejectionKind;

/// Wraps an I/O error the way the SMTP client wraps a failed handshake.
#[derive(Debug, thiserror::Error)]
#[error("tls handshake failed")]
struct Wrapped(#[source] io::Error);

fn rejection(kind: RejectionKind) -> rustls::Error {
    Rejection::new(kind, format!("detail for {kind:?}")).into()
}

#[test]
fn our_rejections_are_found_inside_io_and_wrapper_errors() {
    for kind in [
        RejectionKind::TlsaInvalid,
        RejectionKind::HostMismatch,
        RejectionKind::Expired,
        RejectionKind::NotTrusted,
        RejectionKind::ValidationFailure,
    ] {
        let wrapped = Wrapped(io::Error::new(io::ErrorKind::InvalidData, rejection(kind)));
        assert_eq!(
            classify_failure(&wrapped),
            Some((kind.result_type(), format!("detail for {kind:?}")))
        );
    }
    assert_eq!(RejectionKind::TlsaInvalid.result_type(), "tlsa-invalid");
}

#[test]
fn rustls_certificate_errors_map_to_their_result_types() {
    let cases: Vec<(CertificateError, &str)> = vec![
        (
            CertificateError::NotValidForName,
            "certificate-host-mismatch",
        ),
        (CertificateError::Expired, "certificate-expired"),
        (CertificateError::UnknownIssuer, "certificate-not-trusted"),
        (CertificateError::BadSignature, "validation-failure"),
        (CertificateError::Revoked, "validation-failure"),
        (
            CertificateError::Other(OtherError(Arc::new(io::Error::other("foreign")))),
            "validation-failure",
        ),
    ];
    for (cert_error, expected) in cases {
        let error = rustls::Error::InvalidCertificate(cert_error);
        let io = io::Error::new(io::ErrorKind::InvalidData, error);
        let (kind, detail) = classify_failure(&io).expect("a tls error");
        assert_eq!(kind, expected, "{detail}");
        assert!(detail.starts_with("invalid peer certificate"), "{detail}");
    }
}

#[test]
fn other_tls_errors_are_validation_failures() {
    let error = rustls::Error::General("handshake went wrong".into());
    assert_eq!(
        classify_failure(&error).map(|(kind, _)| kind),
        Some("validation-failure")
    );
}

#[test]
fn errors_without_a_tls_error_are_not_classified() {
    let plain = io::Error::new(io::ErrorKind::TimedOut, "timed out");
    assert_eq!(classify_failure(&plain), None);
    assert_eq!(classify_failure(&Wrapped(plain)), None);
    let bare = io::Error::from(io::ErrorKind::ConnectionReset);
    assert_eq!(classify_failure(&bare), None);
}
