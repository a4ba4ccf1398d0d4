//! Server-certificate verifiers for verified TLS on outbound SMTP.
//!
//! [`Verifiers::client_config`] builds the rustls `ClientConfig` that the SMTP client uses with
//! `TlsPolicy::Required`, for one of three ways the peer must prove itself ([`PeerAuth`]):
//! DANE (RFC 7672), WebPKI as MTA-STS demands (RFC 8461 §4.2), or operator pins. Every verifier
//! checks the handshake signatures with the aws-lc-rs provider's algorithms, so a peer must hold
//! the key of the certificate it presents. [`Verifiers::opportunistic_config`] is the one
//! config that authenticates nothing (RFC 7435), for mail whose policy needs no protection.
//!
//! A refused certificate fails the handshake with a rustls error; [`classify_failure`] turns
//! that error (however deeply the client wrapped it) into the RFC 8460 §4.3 result type and a
//! detail line naming what was expected and what was presented.

mod dane;
mod der;
mod error;
mod opportunistic;
mod pin;
mod webpki;

#[cfg(test)]
mod tests;

use std::error::Error as StdError;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sealgate_dns::TlsaRecord;

pub(crate) use error::{Rejection, VerifyError};

/// How the peer must prove itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAuth {
    /// DANE (RFC 7672, RFC 6698/7671): the DNSSEC-validated TLSA records of this MX host (records
    /// unusable for SMTP are ignored, RFC 7672 §3.1.3), and the reference identifiers for DANE-TA
    /// name checks (RFC 7672 §3.2.2: the MX host name, and the recipient domain).
    Dane {
        /// The TLSA RRset of `_25._tcp.<mx host>`.
        records: Vec<TlsaRecord>,
        /// Names one of which a DANE-TA-verified certificate must carry.
        names: Vec<String>,
    },
    /// WebPKI (MTA-STS enforce, RFC 8461 §4.2): a chain to the configured roots, valid now, whose
    /// certificate names the MX host (the server name passed at connect).
    WebPki,
    /// Operator pins: the SHA-256 (hex) of the leaf certificate's DER or of its
    /// SubjectPublicKeyInfo; any of them matching is enough.
    Pinned {
        /// The pins, lowercase hex (uppercase and `:` separators are tolerated).
        sha256: Vec<String>,
    },
}

/// The trusted roots and the crypto provider, from which per-connection configs are made.
#[derive(Debug)]
pub struct Verifiers {
    provider: Arc<CryptoProvider>,
    webpki: Arc<dyn ServerCertVerifier>,
    /// TLS 1.3 and 1.2 with the WebPKI verifier; cloned and given the right verifier per call.
    base: rustls::ClientConfig,
}

impl Verifiers {
    /// `public_roots`: include the Mozilla root set (webpki-roots); `extra_roots`: extra trusted
    /// CAs (private PKI, lab CA). With neither, WebPKI verification refuses every peer.
    pub fn new(
        public_roots: bool,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Self, VerifyError> {
        let mut roots = RootCertStore::empty();
        if public_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (index, cert) in extra_roots.iter().enumerate() {
            roots
                .add(cert.clone())
                .map_err(|source| VerifyError::BadRoot { index, source })?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = webpki::verifier(Arc::new(roots), provider.clone());
        let base = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(VerifyError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(webpki.clone())
            .with_no_client_auth();
        Ok(Self {
            provider,
            webpki,
            base,
        })
    }

    /// Reads every certificate of a PEM file (for `extra_roots`); the error names the file.
    pub fn load_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, VerifyError> {
        let bytes = std::fs::read(path).map_err(|source| VerifyError::ReadCaFile {
            path: path.to_owned(),
            source,
        })?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| VerifyError::PemCaFile {
                path: path.to_owned(),
                source,
            })?;
        if certs.is_empty() {
            return Err(VerifyError::EmptyCaFile {
                path: path.to_owned(),
            });
        }
        Ok(certs)
    }

    /// The client config for one connection that must authenticate its peer by `auth`.
    pub fn client_config(&self, auth: &PeerAuth) -> Arc<rustls::ClientConfig> {
        let mut config = self.base.clone();
        config
            .dangerous()
            .set_certificate_verifier(self.verifier(auth));
        // A resumed session skips certificate verification, so sessions must never be shared
        // with configs that verify differently (the clone would share the base's cache).
        config.resumption = Resumption::default();
        Arc::new(config)
    }

    /// The client config for opportunistic STARTTLS: any certificate, handshake signatures
    /// still checked. Only for recipients whose policy does not require protection.
    pub fn opportunistic_config(&self) -> Arc<rustls::ClientConfig> {
        let mut config = self.base.clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(opportunistic::Unauthenticated {
                signatures: self.signatures(),
            }));
        config.resumption = Resumption::default();
        Arc::new(config)
    }

    fn signatures(&self) -> Signatures {
        Signatures {
            provider: self.provider.clone(),
        }
    }

    pub(crate) fn verifier(&self, auth: &PeerAuth) -> Arc<dyn ServerCertVerifier> {
        let signatures = self.signatures();
        match auth {
            PeerAuth::Dane { records, names } => {
                Arc::new(dane::DaneVerifier::new(records, names, signatures))
            }
            PeerAuth::WebPki => self.webpki.clone(),
            PeerAuth::Pinned { sha256 } => Arc::new(pin::PinVerifier::new(sha256, signatures)),
        }
    }
}

/// RFC 8460 §4.3 result type and a detail line for a failed verified-TLS handshake, from the
/// rustls error the handshake produced. Walks `source()` chains and looks inside `io::Error`s
/// (tokio-rustls wraps the rustls error in one). `None` when the chain holds no TLS error.
pub(crate) fn classify_failure(err: &(dyn StdError + 'static)) -> Option<(&'static str, String)> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(rejection) = current.downcast_ref::<Rejection>() {
            return Some((rejection.kind.result_type(), rejection.detail.clone()));
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(classify_rustls(tls));
        }
        // io::Error::source() skips the wrapped error itself, so unwrap it explicitly.
        next = match current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    None
}

fn classify_rustls(error: &rustls::Error) -> (&'static str, String) {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = error
        && let Some(rejection) = inner.downcast_ref::<Rejection>()
    {
        return (rejection.kind.result_type(), rejection.detail.clone());
    }
    let detail = match error {
        // Only TLS 1.2 and 1.3 are offered: a peer that speaks nothing newer refuses us.
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
        | rustls::Error::PeerIncompatible(_) => {
            format!("{error}: the peer does not speak TLS 1.2 or later, the oldest version used")
        }
        _ => error.to_string(),
    };
    (error::kind_of(error).result_type(), detail)
}

/// How a server name reads in a detail line.
fn display_name(name: &ServerName<'_>) -> String {
    name.to_str().into_owned()
}

/// The handshake-signature half of a verifier: the peer must hold the certificate's key.
#[derive(Debug, Clone)]
struct Signatures {
    provider: Arc<CryptoProvider>,
}

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Implements the signature methods of `ServerCertVerifier` by delegating to a `signatures`
/// field of type [`Signatures`].
macro_rules! delegate_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.signatures.tls12(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.signatures.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.signatures.schemes()
        }
    };
}
use delegate_signatures;
