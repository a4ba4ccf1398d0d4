//! S/MIME: X.509 certificates (parse, validate against trust roots and CRLs) and S/MIME 4.0
//! enveloped messages (RFC 8551).
//!
//! The CMS structures are built here with a small DER encoder (module `der`) because the safe
//! `openssl` API cannot choose RSAES-OAEP for key transport; OpenSSL supplies only the
//! primitives (AES-GCM, AES-CBC, RSA-OAEP, ECDH, AES key wrap) and the detached signature.
//! What the recipient receives:
//!
//! - content: AES-256-GCM in AuthEnvelopedData (RFC 5083, 5084) by default, AES-256-CBC in
//!   EnvelopedData (RFC 5652 §6, RFC 3565) when configured;
//! - key management: RSAES-OAEP with SHA-256 (RFC 8551 §2.7.1, RFC 4055) for RSA keys,
//!   ephemeral-static ECDH with the X9.63 SHA-256 KDF and AES-256 key wrap (RFC 5753) for
//!   EC keys;
//! - optionally signed first (RFC 8551 §3.5.3, `multipart/signed`), then enveloped.

mod cert;
mod cms;
mod der;
mod oid;
mod recipient;
mod sign;
mod trust;

#[cfg(test)]
mod tests;

pub use cert::SmimeCert;
pub use sign::SmimeSigner;
pub use trust::TrustStore;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509NameRef;

use crate::{EncryptError, Encrypted, mime};
use recipient::KeyAlg;

/// The content-encryption algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentCipher {
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083, 5084).
    #[default]
    Aes256Gcm,
    /// AES-256-CBC in EnvelopedData, for recipients whose clients lack AuthEnvelopedData.
    Aes256Cbc,
}

impl ContentCipher {
    /// The `smime-type` parameter (RFC 8551 §3.2.2).
    fn smime_type(self) -> &'static str {
        match self {
            ContentCipher::Aes256Gcm => "authEnveloped-data",
            ContentCipher::Aes256Cbc => "enveloped-data",
        }
    }

    /// The algorithm and structure, for [`Encrypted::used`].
    fn used(self) -> &'static str {
        match self {
            ContentCipher::Aes256Gcm => "AES-256-GCM AuthEnvelopedData",
            ContentCipher::Aes256Cbc => "AES-256-CBC EnvelopedData",
        }
    }
}

/// How S/MIME messages are made.
#[derive(Clone, Debug, Default)]
pub struct SmimeSettings {
    /// The outer Subject.
    pub subject: String,
    /// Signs the inner entity (before encrypting) with this, if set.
    pub signer: Option<SmimeSigner>,
}

/// `message` as S/MIME enveloped to `recipient` with `cipher`.
///
/// The payload is the protected inner entity ([`mime::inner_entity`]), wrapped in a
/// `multipart/signed` entity first when `settings` has a signer. The recipient's
/// validity is the caller's concern ([`SmimeCert::info`]); only a key type this crate
/// cannot encrypt to is refused here (`Unusable`).
pub fn encrypt(
    message: &[u8],
    recipient: &SmimeCert,
    cipher: ContentCipher,
    settings: &SmimeSettings,
) -> Result<Encrypted, EncryptError> {
    let fingerprint = recipient.fingerprint();
    let alg = KeyAlg::of(recipient.x509()).map_err(|problem| EncryptError::Unusable {
        fingerprint: fingerprint.clone(),
        problem,
    })?;
    let mut used = vec![format!(
        "recipient certificate {fingerprint} ({})",
        recipient.names()
    )];
    used.push(alg.used());
    used.push(cipher.used().to_owned());
    // RFC 8551 §3.1.1: the entity is canonical (CRLF) before signing and enveloping;
    // `inner_entity` and `signed_entity` produce CRLF line ends.
    let mut payload = mime::inner_entity(message, &settings.subject)?;
    if let Some(signer) = &settings.signer {
        payload = signer.signed_entity(&payload)?;
        used.push(format!("signed by {}", signer.fingerprint()));
    }
    let der = cms::envelop(&payload, recipient, alg, cipher)?;
    let mut out = mime::outer_header(message, &settings.subject)?;
    // RFC 8551 §3.2.2 and §3.4: application/pkcs7-mime with the smime-type parameter and
    // the .p7m file name.
    out.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={}; name=\"smime.p7m\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n",
            cipher.smime_type()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&mime::base64_lines(&der));
    Ok(Encrypted { message: out, used })
}

/// `t` in Unix seconds.
fn unix_time(t: &Asn1TimeRef) -> Result<i64, openssl::error::ErrorStack> {
    let diff = Asn1Time::from_unix(0)?.diff(t)?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// A distinguished name on one line for messages and the audit: `CN=…, O=…` in the order
/// written.
fn name_text(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_owned());
            format!("{key}={value}")
        })
        .collect();
    if parts.is_empty() {
        "(empty name)".to_owned()
    } else {
        parts.join(", ")
    }
}
