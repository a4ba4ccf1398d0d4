//! The end-to-end encryption sections: `[pgp]` (OpenPGP, PGP/MIME) and `[smime]` (S/MIME).
//!
//! Only shapes are checked here; whether the key and certificate files named are there and
//! usable is checked by the binary, which reads them (this crate must not depend on
//! `sealgate-encrypt`).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::units::HumanDuration;
use crate::{Config, Problem};

/// `[pgp]`: recipients' OpenPGP keys and the PGP/MIME messages made with them (RFC 3156).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgpConfig {
    /// Look up and use recipients' OpenPGP keys (imported ones, and the lookups below).
    /// Default true.
    #[serde(default = "crate::default_true")]
    pub enabled: bool,
    /// Look keys up in the recipient domain's Web Key Directory. Default true.
    #[serde(default = "crate::default_true")]
    pub wkd: bool,
    /// Look keys up in DNS OPENPGPKEY records (RFC 7929). Only DNSSEC-validated answers count,
    /// so this needs `dns.dnssec`; without it these lookups are off. Default true.
    #[serde(default = "crate::default_true")]
    pub openpgpkey: bool,
    /// TCP port of Web Key Directory hosts. Default 443; another value is for labs.
    #[serde(default = "default_https_port")]
    pub wkd_https_port: u16,
    /// Timeout for one Web Key Directory fetch, connect to last byte. Default "10s".
    #[serde(default = "default_wkd_timeout")]
    pub wkd_timeout: HumanDuration,
    /// The outer Subject of PGP/MIME messages (the real one travels encrypted, RFC 9788);
    /// printable ASCII. Default "Encrypted message".
    #[serde(default = "default_subject")]
    pub subject: String,
    /// The organisation's OpenPGP secret key (an unencrypted transferable secret key, armored
    /// or binary). When set, every PGP/MIME message is signed with it. Default: none ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub signing_key: Option<PathBuf>,
    /// An OpenPGP certificate every PGP/MIME message is also encrypted to (an archive or
    /// escrow key). Default: none ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub archive_key: Option<PathBuf>,
}

/// The S/MIME content-encryption algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SmimeCipher {
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083, RFC 5084), as RFC 8551 §2.7 prefers.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// AES-256-CBC in EnvelopedData, for clients without AuthEnvelopedData.
    #[serde(rename = "aes-256-cbc")]
    Aes256Cbc,
}

/// `[smime]`: recipients' X.509 certificates and S/MIME 4.0 messages (RFC 8551).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmimeConfig {
    /// Look up and use recipients' S/MIME certificates. Default true.
    #[serde(default = "crate::default_true")]
    pub enabled: bool,
    /// Look certificates up in DNS SMIMEA records (RFC 8162). Only DNSSEC-validated answers
    /// count, so this needs `dns.dnssec`; without it these lookups are off. Default true.
    #[serde(default = "crate::default_true")]
    pub smimea: bool,
    /// A PEM file of the CA certificates recipients' certificates must chain to. Default:
    /// none (""), meaning the system's trust roots.
    #[serde(default, deserialize_with = "optional_path")]
    pub ca_file: Option<PathBuf>,
    /// Certificate revocation lists (PEM or DER) checked for recipients' certificates and
    /// their chains. Default: none.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// "aes-256-gcm" (default) or "aes-256-cbc".
    #[serde(default = "default_cipher")]
    pub cipher: SmimeCipher,
    /// Addresses ("bob@example.net") or domains ("example.net") whose mail clients cannot
    /// read AES-256-GCM: they get AES-256-CBC instead. Default: none.
    #[serde(default)]
    pub cbc_for: Vec<String>,
    /// The outer Subject of S/MIME messages (the real one travels encrypted, RFC 9788);
    /// printable ASCII. Default "Encrypted message".
    #[serde(default = "default_subject")]
    pub subject: String,
    /// The organisation's signing certificate (PEM, followed by any intermediates). With
    /// `signing_key`, every S/MIME message is signed before it is encrypted. Default: none ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub signing_cert: Option<PathBuf>,
    /// The private key of `signing_cert` (PEM, unencrypted). Default: none ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub signing_key: Option<PathBuf>,
}

/// Longest outer Subject accepted: one unfolded header line with room to spare
/// (RFC 5322 §2.1.1 asks for lines of at most 78 characters, and allows 998).
const MAX_SUBJECT: usize = 200;

fn default_https_port() -> u16 {
    443
}
fn default_wkd_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_subject() -> String {
    "Encrypted message".to_owned()
}
fn default_cipher() -> SmimeCipher {
    SmimeCipher::Aes256Gcm
}

/// A path where "" means none.
pub(crate) fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let p = PathBuf::deserialize(d)?;
    Ok((!p.as_os_str().is_empty()).then_some(p))
}

impl Config {
    /// Whether DNS OPENPGPKEY lookups run: `[pgp]` on, `openpgpkey` on and DNSSEC validated.
    pub fn openpgpkey_lookups(&self) -> bool {
        self.pgp.enabled && self.pgp.openpgpkey && self.dns.dnssec
    }

    /// Whether DNS SMIMEA lookups run: `[smime]` on, `smimea` on and DNSSEC validated.
    pub fn smimea_lookups(&self) -> bool {
        self.smime.enabled && self.smime.smimea && self.dns.dnssec
    }
}

/// The shape rules of `[pgp]` and `[smime]`, added to `problems`.
pub(crate) fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    let mut bad = |key: &str, msg: &str| problems.push(Problem::new(key.to_owned(), msg));
    if cfg.pgp.wkd_https_port == 0 {
        bad(
            "pgp.wkd_https_port",
            "must be a port number from 1 to 65535",
        );
    }
    if cfg.pgp.wkd_timeout.0.is_zero() {
        bad("pgp.wkd_timeout", "must be above 0");
    }
    for (key, subject) in [
        ("pgp.subject", &cfg.pgp.subject),
        ("smime.subject", &cfg.smime.subject),
    ] {
        if let Err(why) = check_subject(subject) {
            bad(key, &why);
        }
    }
    let s = &cfg.smime;
    if s.signing_cert.is_some() != s.signing_key.is_some() {
        bad(
            "smime.signing_key",
            "smime.signing_cert and smime.signing_key go together: set both or neither",
        );
    }
    for (i, p) in s.crl_files.iter().enumerate() {
        if p.as_os_str().is_empty() {
            bad(&format!("smime.crl_files[{i}]"), "must be a file path");
        }
    }
    for (i, entry) in s.cbc_for.iter().enumerate() {
        if let Err(why) = check_address_or_domain(entry) {
            bad(&format!("smime.cbc_for[{i}]"), &why);
        }
    }
}

/// An outer Subject: 1 to [`MAX_SUBJECT`] printable ASCII characters (no line breaks, so it
/// cannot add header fields, and no encoded words needed).
pub(crate) fn check_subject(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if let Some(c) = s.chars().find(|c| !matches!(c, ' '..='~')) {
        return Err(format!(
            "must be printable ASCII (found {c:?}): it is sent as is in the outer header"
        ));
    }
    if s.len() > MAX_SUBJECT {
        return Err(format!("must be at most {MAX_SUBJECT} characters"));
    }
    Ok(())
}

/// `local@domain` or `domain`: no spaces, one `@` at most, a domain with a dot.
fn check_address_or_domain(entry: &str) -> Result<(), String> {
    let domain = match entry.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.contains('@') => domain,
        Some(_) => return Err(format!("{entry:?} is not an address or a domain")),
        None => entry,
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    };
    if entry.chars().any(|c| c.is_whitespace() || c.is_control())
        || !domain.contains('.')
        || !domain.split('.').all(label_ok)
    {
        return Err(format!(
            "{entry:?} is not an address (bob@example.net) or a domain (example.net)"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "encryption_tests.rs"]
mod tests;
