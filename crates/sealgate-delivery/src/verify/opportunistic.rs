//! Opportunistic TLS (RFC 7435): STARTTLS whenever offered, encrypting even when the
//! certificate cannot be authenticated, because the alternative is plaintext. Only ever used
//! where the policy says protection is not required. The certificate is trusted for nothing;
//! the attempt records its SHA-256 so operators can see what answered.

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::Signatures;

/// Accepts any certificate but still checks that the peer holds its key (the handshake
/// signatures), so the session is encrypted to whoever presented it.
#[derive(Debug)]
pub(super) struct Unauthenticated {
    pub(super) signatures: Signatures,
}

impl ServerCertVerifier for Unauthenticated {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    super::delegate_signatures!();
}
