//! WebPKI verification as MTA-STS requires (RFC 8461 §4.2): a chain to a trusted root, valid
//! now, for the MX host name. rustls's own verifier does the work; this module only covers the
//! case of no roots at all, which must refuse every peer rather than fail to build.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::{Rejection, RejectionKind};
use super::{Signatures, display_name};

/// The WebPKI verifier over `roots`; with no roots, one that refuses every certificate.
pub(super) fn verifier(
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    match WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build() {
        Ok(verifier) => verifier,
        // The only error possible without CRLs: no root anchors.
        Err(_) => Arc::new(NoRoots {
            signatures: Signatures { provider },
        }),
    }
}

/// Neither the public roots nor extra roots are configured.
#[derive(Debug)]
struct NoRoots {
    signatures: Signatures,
}

impl ServerCertVerifier for NoRoots {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(Rejection::new(
            RejectionKind::NotTrusted,
            format!(
                "WebPKI: no trusted roots are configured, so the certificate of {} cannot be trusted",
                display_name(server_name)
            ),
        )
        .into())
    }

    super::delegate_signatures!();
}
