//! Trust roots and revocation lists, and the chain check against them (RFC 5280 §6, with
//! CRLs per RFC 5280 §6.3).
//!
//! OpenSSL builds and verifies the chain at the given time. Revocation is checked here,
//! after the chain is known, because the safe `openssl` API cannot hand CRLs to an
//! `X509Store`: every certificate of the chain below the root is looked up in each CRL
//! that names its issuer and carries a valid signature of the issuer's key.

use std::sync::Arc;

use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{
    CrlStatus, ReasonCode, X509, X509Crl, X509ExtendedKeyUsage, X509PurposeId, X509Ref,
    X509RevokedRef, X509StoreContext,
};

use super::recipient::KeyAlg;
use super::{name_text, unix_time};
use crate::{EncryptError, Problem, fmt_time};

/// Trust roots and revocation lists for recipient certificates.
#[derive(Clone)]
pub struct TrustStore {
    /// The trusted certificates (roots, and any intermediates configured with them).
    roots: Arc<[X509]>,
    /// Revocation lists, checked for the chain certificates they cover.
    crls: Arc<[X509Crl]>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

impl TrustStore {
    /// Roots from `ca_pem` (a PEM bundle), or the system's default roots when `None`; with
    /// CRLs (PEM or DER each), which are then checked for every certificate of the chain
    /// they cover.
    ///
    /// The system roots are those of OpenSSL's default certificate file (honouring
    /// `SSL_CERT_FILE`), read once here.
    pub fn new(ca_pem: Option<&[u8]>, crls: &[Vec<u8>]) -> Result<TrustStore, EncryptError> {
        let roots = match ca_pem {
            Some(pem) => X509::stack_from_pem(pem)
                .map_err(|e| EncryptError::Malformed(format!("trust roots: {e}")))?,
            None => system_roots()?,
        };
        if roots.is_empty() {
            return Err(EncryptError::Malformed(
                "trust roots: no certificate".to_owned(),
            ));
        }
        let crls = crls
            .iter()
            .map(|data| parse_crl(data))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustStore {
            roots: roots.into(),
            crls: crls.into(),
        })
    }

    /// Checks that `cert` chains to a root at `now` for S/MIME and that no CRL revokes a
    /// certificate of that chain.
    pub(crate) fn check(&self, cert: &X509Ref, alg: KeyAlg, now: i64) -> Result<(), Problem> {
        let chain = self.verified_chain(cert, alg, now)?;
        check_chain_usage(&chain)?;
        for pair in chain.windows(2) {
            self.check_revocation(&pair[0], &pair[1], now)?;
        }
        Ok(())
    }

    /// The chain OpenSSL builds from `cert` to a root (leaf first), verified at `now`.
    fn verified_chain(&self, cert: &X509Ref, alg: KeyAlg, now: i64) -> Result<Vec<X509>, Problem> {
        let untrusted = |e: openssl::error::ErrorStack| Problem::Untrusted(format!("{e}"));
        let store = self.store(alg, now).map_err(untrusted)?;
        let intermediates = Stack::new().map_err(untrusted)?;
        let mut ctx = X509StoreContext::new().map_err(untrusted)?;
        let (verified, reason, chain) = ctx
            .init(&store, cert, &intermediates, |ctx| {
                let verified = ctx.verify_cert()?;
                let chain: Vec<X509> = ctx
                    .chain()
                    .map(|c| c.iter().map(ToOwned::to_owned).collect())
                    .unwrap_or_default();
                Ok((verified, ctx.error().error_string(), chain))
            })
            .map_err(untrusted)?;
        if verified {
            Ok(chain)
        } else {
            Err(Problem::Untrusted(reason.to_owned()))
        }
    }

    /// A store of the roots that verifies at `now` for the S/MIME purpose.
    ///
    /// OpenSSL's `smimeencrypt` purpose demands keyEncipherment in the leaf's key usage,
    /// which EC certificates rightly lack (they carry keyAgreement, RFC 5480 §3); for them
    /// the purpose is left open and the leaf's usages are checked by the caller, the CA
    /// certificates' by [`check_chain_usage`].
    fn store(&self, alg: KeyAlg, now: i64) -> Result<X509Store, openssl::error::ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        for root in self.roots.iter() {
            builder.add_cert(root.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        param.set_time(now);
        param.set_purpose(match alg {
            KeyAlg::Rsa { .. } => X509PurposeId::SMIME_ENCRYPT,
            KeyAlg::Ec(_) => X509PurposeId::ANY,
        })?;
        builder.set_param(&param)?;
        Ok(builder.build())
    }

    /// Whether a CRL covering `cert` (issued by `issuer`) revokes it, or every covering
    /// CRL is out of date at `now`.
    fn check_revocation(&self, cert: &X509, issuer: &X509, now: i64) -> Result<(), Problem> {
        let Ok(issuer_key) = issuer.public_key() else {
            return Ok(());
        };
        let mut current = false;
        let mut stale_since = None;
        // RFC 5280 §6.3.3: a CRL applies when its issuer is the certificate's issuer and its
        // signature verifies with the issuer's key.
        let covering = self.crls.iter().filter(|crl| {
            same_name(crl.issuer_name(), cert.issuer_name())
                && crl.verify(&issuer_key).unwrap_or(false)
        });
        for crl in covering {
            if let CrlStatus::Revoked(entry) = crl.get_by_cert(cert) {
                return Err(Problem::Revoked(revocation_text(cert, entry)));
            }
            match crl.next_update().map(unix_time) {
                Some(Ok(next)) if next < now => stale_since = Some(next),
                _ => current = true,
            }
        }
        match stale_since {
            Some(at) if !current => Err(Problem::Untrusted(format!(
                "the revocation list of {} is out of date since {}",
                name_text(cert.issuer_name()),
                fmt_time(at)
            ))),
            _ => Ok(()),
        }
    }
}

/// The roots of OpenSSL's default paths.
fn system_roots() -> Result<Vec<X509>, EncryptError> {
    let mut builder = X509StoreBuilder::new()?;
    builder.set_default_paths()?;
    Ok(builder
        .build()
        .all_certificates()
        .iter()
        .map(ToOwned::to_owned)
        .collect())
}

fn parse_crl(data: &[u8]) -> Result<X509Crl, EncryptError> {
    let parsed = if data.trim_ascii_start().starts_with(b"-----BEGIN") {
        X509Crl::from_pem(data)
    } else {
        X509Crl::from_der(data)
    };
    parsed.map_err(|e| EncryptError::Malformed(format!("revocation list: {e}")))
}

/// RFC 8550 §4.4 and RFC 5280 §4.2.1.12: a CA certificate that restricts its extended key
/// usage must allow emailProtection for the chain to serve S/MIME.
fn check_chain_usage(chain: &[X509]) -> Result<(), Problem> {
    let allowed = X509ExtendedKeyUsage::SMIME | X509ExtendedKeyUsage::ANYEKU;
    for ca in chain.iter().skip(1) {
        if ca
            .extended_key_usage()
            .is_some_and(|eku| !eku.intersects(allowed))
        {
            return Err(Problem::Untrusted(format!(
                "CA {} does not allow email protection",
                name_text(ca.subject_name())
            )));
        }
    }
    Ok(())
}

fn same_name(a: &openssl::x509::X509NameRef, b: &openssl::x509::X509NameRef) -> bool {
    a.try_cmp(b).is_ok_and(|o| o.is_eq())
}

/// "serial … revoked by … at … (reason)".
fn revocation_text(cert: &X509Ref, entry: &X509RevokedRef) -> String {
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_lowercase()))
        .unwrap_or_else(|_| "?".to_owned());
    let when = unix_time(entry.revocation_date()).map_or_else(|_| "?".to_owned(), fmt_time);
    let reason = match entry.extension::<ReasonCode>() {
        Ok(Some((_, code))) => reason_name(code.get_i64().unwrap_or(0)),
        _ => "unspecified",
    };
    format!(
        "serial {serial} revoked by {} at {when} ({reason})",
        name_text(cert.issuer_name())
    )
}

/// CRLReason names (RFC 5280 §5.3.1).
fn reason_name(code: i64) -> &'static str {
    match code {
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unspecified",
    }
}
