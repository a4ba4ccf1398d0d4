//! DKIM signing (RFC 6376) of what Sealgate sends, with rsa-sha256 and ed25519-sha256
//! (RFC 8463) keys, several per domain (dual signing, selectors for rotation); key generation
//! and the DNS record to publish; comparing a published record with a key. The signatures are
//! made by `mail-auth` (Stalwart's DKIM implementation) over aws-lc-rs.

use std::fmt;
use std::path::Path;

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// The header fields signed when present (RFC 6376 §5.4.1: those a verifier shows or acts
/// on). `From` is listed twice so a second `From:` added later breaks the signature.
pub(crate) const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
];

/// A DKIM signing algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// rsa-sha256 (RFC 6376), 2048-bit keys from `generate`.
    RsaSha256,
    /// ed25519-sha256 (RFC 8463).
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The configured and `a=` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa-sha256",
            Self::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The key record's `k=`.
    fn key_type(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa",
            Self::Ed25519Sha256 => "ed25519",
        }
    }
}

impl std::str::FromStr for DkimAlgorithm {
    type Err = DkimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rsa-sha256" => Ok(Self::RsaSha256),
            "ed25519-sha256" => Ok(Self::Ed25519Sha256),
            other => Err(DkimError::Algorithm(other.to_owned())),
        }
    }
}

/// What can go wrong with DKIM keys and records.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// Not an algorithm we sign with.
    #[error("unknown DKIM algorithm {0:?}: use rsa-sha256 or ed25519-sha256")]
    Algorithm(String),
    /// A key file could not be read or used.
    #[error("DKIM key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Key generation failed.
    #[error("generating a DKIM key: {0}")]
    Generate(String),
    /// Signing failed.
    #[error("DKIM signing for {domain} (selector {selector}): {reason}")]
    Sign {
        /// The signing domain.
        domain: String,
        /// The selector.
        selector: String,
        /// What went wrong.
        reason: String,
    },
}

enum Secret {
    Rsa(Box<DkimSigner<RsaKey<Sha256>, Done>>),
    Ed25519(Box<DkimSigner<Ed25519Key, Done>>),
}

fn signer<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    domain: &str,
    selector: &str,
) -> Box<DkimSigner<T, Done>> {
    Box::new(
        DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS.iter().copied()),
    )
}

/// One signing key: domain, selector, algorithm, the private key, and its public key as a DNS
/// record publishes it (`p=`).
pub struct DkimKey {
    domain: String,
    selector: String,
    algorithm: DkimAlgorithm,
    secret: Secret,
    public: Vec<u8>,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn key_error(source: &str, reason: impl fmt::Display) -> DkimError {
    DkimError::Key {
        path: source.to_owned(),
        reason: reason.to_string(),
    }
}

impl DkimKey {
    /// Reads a PEM private key (PKCS#8, or PKCS#1 for RSA) of `algorithm` from `path`.
    pub fn load(
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        path: &Path,
    ) -> Result<Self, DkimError> {
        let source = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| key_error(&source, e))?;
        Self::from_pem(domain, selector, algorithm, &pem, &source)
    }

    /// A PEM private key (PKCS#8, or PKCS#1 for RSA) of `algorithm`; `source` names where it
    /// came from in errors (a file, or the database).
    pub fn from_pem(
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        pem: &[u8],
        source: &str,
    ) -> Result<Self, DkimError> {
        let path = source;
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| key_error(path, e))?;
        let (secret, public) = match algorithm {
            DkimAlgorithm::RsaSha256 => {
                let (secret, spki) = rsa_key(&der, path)?;
                (Secret::Rsa(signer(secret, &domain, selector)), spki)
            }
            DkimAlgorithm::Ed25519Sha256 => {
                let PrivateKeyDer::Pkcs8(k) = &der else {
                    return Err(key_error(path, "an Ed25519 key must be PKCS#8"));
                };
                let secret = Ed25519Key::from_pkcs8_maybe_unchecked_der(k.secret_pkcs8_der())
                    .map_err(|e| key_error(path, format!("not a usable Ed25519 key: {e}")))?;
                let public = secret.public_key();
                (Secret::Ed25519(signer(secret, &domain, selector)), public)
            }
        };
        Ok(Self {
            domain,
            selector: selector.to_owned(),
            algorithm,
            secret,
            public,
        })
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// Where the record is published: `<selector>._domainkey.<domain>`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish for this key.
    pub fn record(&self) -> String {
        record_text(self.algorithm, &self.public)
    }

    /// Whether a published TXT record (its strings joined) holds this key.
    pub fn matches_record(&self, txt: &str) -> Result<(), String> {
        let tags = parse_tags(txt);
        let get = |k: &str| tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("v").is_some_and(|v| v != "DKIM1") {
            return Err("v= is not DKIM1".into());
        }
        let k = get("k").unwrap_or("rsa");
        if k != self.algorithm.key_type() {
            return Err(format!(
                "k={k}, but the key is {}",
                self.algorithm.key_type()
            ));
        }
        let p = get("p").ok_or("no p= tag")?;
        if p.is_empty() {
            return Err("p= is empty: the key is revoked".into());
        }
        let published = B64
            .decode(p.split_whitespace().collect::<String>())
            .map_err(|_| "p= is not base64")?;
        if published == self.public || self.is_pkcs1_of_spki(&published) {
            Ok(())
        } else {
            Err("p= is another key".into())
        }
    }

    /// An RSA record may publish the bare RSAPublicKey instead of SubjectPublicKeyInfo: the
    /// former is the tail of the latter.
    fn is_pkcs1_of_spki(&self, published: &[u8]) -> bool {
        self.algorithm == DkimAlgorithm::RsaSha256
            && published.len() > 64
            && self.public.ends_with(published)
    }

    fn sign(&self, message: &[u8]) -> Result<String, DkimError> {
        let fail = |e: mail_auth::Error| DkimError::Sign {
            domain: self.domain.clone(),
            selector: self.selector.clone(),
            reason: e.to_string(),
        };
        let signature = match &self.secret {
            Secret::Rsa(s) => s.sign(message),
            Secret::Ed25519(s) => s.sign(message),
        }
        .map_err(fail)?;
        Ok(signature.to_header())
    }
}

/// The associated data a stored key is sealed under: it binds the sealed key to its domain and
/// selector, so a row's key cannot be moved to another row.
pub fn sealing_context(domain: &str, selector: &str) -> Vec<u8> {
    format!(
        "dkim-key\0{}\0{selector}",
        domain.trim_end_matches('.').to_ascii_lowercase()
    )
    .into_bytes()
}

/// An RSA signing key (PKCS#8 or PKCS#1, 2048 bits or more) and its SubjectPublicKeyInfo;
/// `source` names it in errors. DKIM's and ARC's RSA keys load the same way.
pub(crate) fn rsa_key(
    der: &PrivateKeyDer<'_>,
    source: &str,
) -> Result<(RsaKey<Sha256>, Vec<u8>), DkimError> {
    let pair = match der {
        PrivateKeyDer::Pkcs8(k) => aws_lc_rs::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => aws_lc_rs::rsa::KeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(key_error(source, "not an RSA private key")),
    }
    .map_err(|e| key_error(source, format!("not a usable RSA key: {e}")))?;
    if pair.public_modulus_len() < 256 {
        return Err(key_error(source, "RSA keys must have at least 2048 bits"));
    }
    let spki =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der<'static>>::as_der(
            pair.public_key(),
        )
        .map_err(|e| key_error(source, e))?;
    let secret =
        RsaKey::<Sha256>::from_key_der(der.clone_key()).map_err(|e| key_error(source, e))?;
    Ok((secret, spki.as_ref().to_vec()))
}

fn record_text(algorithm: DkimAlgorithm, public: &[u8]) -> String {
    format!(
        "v=DKIM1; k={}; p={}",
        algorithm.key_type(),
        B64.encode(public)
    )
}

fn parse_tags(txt: &str) -> Vec<(String, String)> {
    txt.split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A new key of `algorithm` as PKCS#8 PEM, and the TXT record that publishes it.
pub fn generate(algorithm: DkimAlgorithm) -> Result<(String, String), DkimError> {
    let fail = |e: &dyn fmt::Display| DkimError::Generate(e.to_string());
    let (pkcs8, public) = match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| fail(&e))?;
            let pkcs8 =
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(
                    &pair,
                )
                .map_err(|e| fail(&e))?;
            let spki = aws_lc_rs::encoding::AsDer::<
                aws_lc_rs::encoding::PublicKeyX509Der<'static>,
            >::as_der(pair.public_key())
            .map_err(|e| fail(&e))?;
            (pkcs8.as_ref().to_vec(), spki.as_ref().to_vec())
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let pkcs8 = Ed25519Key::generate_pkcs8().map_err(|e| fail(&e))?;
            let key = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| fail(&e))?;
            (pkcs8, key.public_key())
        }
    };
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8);
    let body = B64.encode(der.secret_pkcs8_der());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok((pem, record_text(algorithm, &public)))
}

/// What signing one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimOutcome {
    /// Signed as `domain` with these selectors.
    Signed {
        /// `d=`.
        domain: String,
        /// Each signature's `s=`.
        selectors: Vec<String>,
    },
    /// Not signed: no key for the author's domain (or no `From:` to take one from).
    Unsigned(String),
}

impl fmt::Display for DkimOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signed { domain, selectors } => {
                write!(f, "dkim: signed d={domain} s={}", selectors.join(","))
            }
            Self::Unsigned(why) => write!(f, "dkim: unsigned ({why})"),
        }
    }
}

/// Every configured key, chosen by the author's domain.
#[derive(Debug, Default)]
pub struct DkimKeys {
    keys: Vec<DkimKey>,
}

impl DkimKeys {
    /// A signer with `keys`.
    pub fn new(keys: Vec<DkimKey>) -> Self {
        Self { keys }
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key.
    pub fn keys(&self) -> &[DkimKey] {
        &self.keys
    }

    /// The keys of the closest configured domain at or above `domain` (relaxed DMARC
    /// alignment: a key for clinic.example signs mail from mail.clinic.example).
    fn keys_for(&self, domain: &str) -> Vec<&DkimKey> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut at = domain.as_str();
        loop {
            let found: Vec<&DkimKey> = self.keys.iter().filter(|k| k.domain == at).collect();
            if !found.is_empty() {
                return found;
            }
            match at.split_once('.') {
                Some((_, parent)) if parent.contains('.') => at = parent,
                _ => return Vec::new(),
            }
        }
    }

    /// The DKIM-Signature fields for `message` (one per key of its author's domain, taken
    /// from `from`, the value of its `From:` field), to be put in front of it, and what was
    /// done.
    pub fn sign(
        &self,
        from: Option<&str>,
        message: &[u8],
    ) -> Result<(String, DkimOutcome), DkimError> {
        let Some(domain) = from.and_then(author_domain) else {
            return Ok((
                String::new(),
                DkimOutcome::Unsigned("no From: address".into()),
            ));
        };
        let keys = self.keys_for(&domain);
        if keys.is_empty() {
            return Ok((
                String::new(),
                DkimOutcome::Unsigned(format!("no key for {domain}")),
            ));
        }
        let mut headers = String::new();
        for k in &keys {
            headers.push_str(&k.sign(message)?);
        }
        Ok((
            headers,
            DkimOutcome::Signed {
                domain: keys[0].domain.clone(),
                selectors: keys.iter().map(|k| k.selector.clone()).collect(),
            },
        ))
    }
}

/// The domain of the first address of a `From:` field's value (the address inside `<>` when
/// there is a display name).
fn author_domain(from: &str) -> Option<String> {
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.split(',').next().unwrap_or_default().trim(),
    };
    let (_, domain) = addr.rsplit_once('@')?;
    let domain = domain.trim().to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        dir: &Path,
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
    ) -> (DkimKey, String) {
        let (pem, record) = generate(algorithm).expect("generate");
        let path = dir.join(format!("{selector}.pem"));
        std::fs::write(&path, pem).expect("write");
        (
            DkimKey::load(domain, selector, algorithm, &path).expect("load"),
            record,
        )
    }

    #[test]
    fn a_generated_key_matches_its_record_and_no_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        for algorithm in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
            let (k, record) = key(dir.path(), "Clinic.Example.", "s1", algorithm);
            assert_eq!(k.record(), record);
            assert_eq!(k.record_name(), "s1._domainkey.clinic.example");
            assert_eq!(k.matches_record(&record), Ok(()));
            let (_, other) = key(dir.path(), "clinic.example", "s2", algorithm);
            assert_eq!(k.matches_record(&other), Err("p= is another key".into()));
            assert!(k.matches_record("v=DKIM1; p=").is_err(), "a revoked key");
        }
    }

    #[test]
    fn the_authors_domain_or_its_closest_parent_with_keys_signs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rsa, _) = key(dir.path(), "clinic.example", "r", DkimAlgorithm::RsaSha256);
        let (ed, _) = key(
            dir.path(),
            "clinic.example",
            "e",
            DkimAlgorithm::Ed25519Sha256,
        );
        let keys = DkimKeys::new(vec![rsa, ed]);
        let msg = |from: &str| format!("From: {from}\r\nSubject: s\r\n\r\nbody\r\n");
        let sign = |from: &str| keys.sign(Some(from), msg(from).as_bytes()).expect("sign");
        let (headers, how) = sign("\"Dr. A\" <a@mail.Clinic.example>");
        assert_eq!(
            how,
            DkimOutcome::Signed {
                domain: "clinic.example".into(),
                selectors: vec!["r".into(), "e".into()]
            }
        );
        assert_eq!(headers.matches("DKIM-Signature:").count(), 2, "{headers}");
        assert!(headers.contains("a=rsa-sha256") && headers.contains("a=ed25519-sha256"));
        let (headers, how) = sign("b@example.org");
        assert!(headers.is_empty());
        assert_eq!(how.to_string(), "dkim: unsigned (no key for example.org)");
        let (_, how) = keys
            .sign(None, b"Subject: s\r\n\r\nbody\r\n")
            .expect("sign");
        assert_eq!(how.to_string(), "dkim: unsigned (no From: address)");
    }
}
