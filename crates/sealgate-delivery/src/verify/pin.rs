//! Operator pins: the peer's leaf certificate, or its public key, is known in advance.
//!
//! A pin is the SHA-256 of the leaf's DER or of its SubjectPublicKeyInfo. A matching pin
//! replaces every other check (chain, names, dates): the operator vouched for this exact key.

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::error::{Rejection, RejectionKind};
use super::{Signatures, der, display_name};

/// Verifies against a set of SHA-256 pins.
#[derive(Debug)]
pub(super) struct PinVerifier {
    /// Lowercase hex without separators.
    pins: Vec<String>,
    signatures: Signatures,
}

impl PinVerifier {
    pub(super) fn new(pins: &[String], signatures: Signatures) -> Self {
        let pins = pins
            .iter()
            .map(|pin| {
                pin.trim()
                    .chars()
                    .filter(|c| *c != ':')
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .collect();
        Self { pins, signatures }
    }

    fn check(&self, leaf: &CertificateDer<'_>, host: &str) -> Result<(), Rejection> {
        let cert_pin = hex::encode(Sha256::digest(leaf));
        let spki_pin = der::subject_public_key_info(leaf)
            .ok()
            .map(|spki| hex::encode(Sha256::digest(spki)));
        let matches = |pin: &String| *pin == cert_pin || spki_pin.as_ref() == Some(pin);
        if self.pins.iter().any(matches) {
            return Ok(());
        }
        let spki = spki_pin.as_deref().unwrap_or("unreadable");
        Err(Rejection::new(
            RejectionKind::ValidationFailure,
            format!(
                "pin: the certificate of {host} (sha256 {cert_pin}, spki sha256 {spki}) matches none of the {} configured pins",
                self.pins.len()
            ),
        ))
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, &display_name(server_name))?;
        Ok(ServerCertVerified::assertion())
    }

    super::delegate_signatures!();
}
