//! Errors of the verifiers: building them ([`VerifyError`]) and refusing a peer ([`Rejection`]).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

/// Building the verifiers failed (configuration time; never reaches the queue).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A CA file could not be read.
    #[error("cannot read ca file {path}")]
    ReadCaFile {
        /// The file.
        path: PathBuf,
        /// The file-system error.
        #[source]
        source: io::Error,
    },
    /// A CA file holds a malformed PEM section.
    #[error("malformed pem in ca file {path}")]
    PemCaFile {
        /// The file.
        path: PathBuf,
        /// What the PEM parser reported.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A CA file holds no certificate at all.
    #[error("no certificate in ca file {path}")]
    EmptyCaFile {
        /// The file.
        path: PathBuf,
    },
    /// An extra root is not a usable trust anchor (not X.509 v3 DER, say).
    #[error("extra root certificate #{index} is not a usable trust anchor")]
    BadRoot {
        /// Its position in the `extra_roots` list, from 0.
        index: usize,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
    /// The crypto provider refused TLS 1.2 and 1.3.
    #[error("tls configuration refused")]
    Config(#[source] rustls::Error),
}

/// Which RFC 8460 §4.3 result type a refused peer certificate reports as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// No usable TLSA record matched, or the chain does not lead to the matched DANE-TA anchor.
    TlsaInvalid,
    /// The certificate does not carry a required name.
    HostMismatch,
    /// The certificate (or one of its chain) has expired.
    Expired,
    /// No trust anchor could be established.
    NotTrusted,
    /// Any other refusal, an operator pin mismatch included.
    ValidationFailure,
}

impl RejectionKind {
    /// The `result-type` string of RFC 8460 §4.3.
    pub fn result_type(self) -> &'static str {
        match self {
            Self::TlsaInvalid => "tlsa-invalid",
            Self::HostMismatch => "certificate-host-mismatch",
            Self::Expired => "certificate-expired",
            Self::NotTrusted => "certificate-not-trusted",
            Self::ValidationFailure => "validation-failure",
        }
    }
}

/// Why one of our verifiers refused the peer's certificate; travels inside the rustls error
/// as `InvalidCertificate(Other(..))` so [`super::classify_failure`] can find it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Rejection {
    /// The report category.
    pub kind: RejectionKind,
    /// One line for the audit event and the TLS report: what was expected, what was presented.
    pub detail: String,
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind, detail: String) -> Self {
        Self { kind, detail }
    }
}

impl From<Rejection> for rustls::Error {
    fn from(rejection: Rejection) -> Self {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(rejection))))
    }
}

/// The report category of a rustls certificate error (from rustls's own verifier, or from a
/// chain check inside ours).
pub(crate) fn kind_of(error: &rustls::Error) -> RejectionKind {
    let rustls::Error::InvalidCertificate(cert) = error else {
        return RejectionKind::ValidationFailure;
    };
    match cert {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            RejectionKind::HostMismatch
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            RejectionKind::Expired
        }
        CertificateError::UnknownIssuer => RejectionKind::NotTrusted,
        CertificateError::Other(OtherError(inner)) => inner
            .downcast_ref::<Rejection>()
            .map_or(RejectionKind::ValidationFailure, |r| r.kind),
        _ => RejectionKind::ValidationFailure,
    }
}
