//! What a message proved when it arrived, and ARC sealing (RFC 8617) of what Sealgate sends
//! on.
//!
//! At arrival, [`Inbound::verify`] checks the message's DKIM signatures (RFC 6376) and ARC
//! chain, as the client sent it, before Sealgate changes anything; the result is written
//! into the stored message as an `Authentication-Results` field (RFC 8601) under Sealgate's
//! host name (one a client sent under that name is removed first, RFC 8601 §5). At delivery,
//! after every change (a trigger header removed, the subject tag, the tenant's secret
//! header, Bcc), [`ArcSealer::seal`] adds an ARC set: `ARC-Authentication-Results` carries
//! what was recorded at arrival, `ARC-Message-Signature` signs the message as it leaves and
//! `ARC-Seal` the chain, so a receiver that trusts Sealgate sees the original
//! authentication although Sealgate's changes broke the sender's signature.
//!
//! Verification and signing are `mail-auth`'s (the `arc` feature).

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use mail_auth::arc::{ArcError, ArcSealer as Sealer, Set};
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::{Header, HeaderWriter as _};
use mail_auth::dkim::Done;
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult,
    MessageAuthenticator,
};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

use crate::dkim::DkimError;

/// The name of the field that records the arrival.
pub const RESULTS_FIELD: &str = "Authentication-Results";

/// Verifies arriving messages with the configured DNS servers.
pub struct Inbound {
    authenticator: MessageAuthenticator,
    authserv_id: String,
    timeout: Duration,
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("authserv_id", &self.authserv_id)
            .finish_non_exhaustive()
    }
}

/// What an arriving message proved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Arrival {
    /// The domains (`d=`, lowercase) of its DKIM signatures that verified.
    pub dkim_pass: Vec<String>,
    /// It carried DKIM signatures or an ARC chain.
    pub signed: bool,
    /// The `Authentication-Results` value: `authserv-id; dkim=… header.d=…; arc=…`, on one
    /// line.
    pub results: String,
}

impl Arrival {
    /// The field to put in front of the stored message.
    pub fn field(&self) -> String {
        format!("{RESULTS_FIELD}: {}\r\n", self.results)
    }

    /// Whether a passing signature's domain is `domain` or a parent of it (relaxed alignment,
    /// RFC 7489 §3.1.1, without the public suffix list: the parent must have two labels or
    /// more).
    pub fn dkim_aligned(&self, domain: &str) -> Option<&str> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.dkim_pass
            .iter()
            .find(|d| **d == domain || (d.contains('.') && domain.ends_with(&format!(".{d}"))))
            .map(String::as_str)
    }
}

impl Inbound {
    /// A verifier asking `resolver` (the relay's own, so its servers and cache), writing
    /// results under `authserv_id` (the relay's host name); each check gives up after
    /// `timeout`.
    pub fn new(resolver: TokioResolver, authserv_id: &str, timeout: Duration) -> Self {
        Self {
            authenticator: MessageAuthenticator(resolver),
            authserv_id: authserv_id.to_ascii_lowercase(),
            timeout,
        }
    }

    /// The host name results are recorded under.
    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }

    /// Checks `message` (as the client sent it) from `client`. DNS failures and timeouts are
    /// `temperror`: the message is not refused for them here, only not credited.
    pub async fn verify(&self, message: &[u8], client: IpAddr) -> Arrival {
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            return Arrival {
                results: format!("{}; dkim=permerror (unparsable header)", self.authserv_id),
                ..Arrival::default()
            };
        };
        let signed = !parsed.dkim_headers.is_empty() || !parsed.ams_headers.is_empty();
        let dkim = match tokio::time::timeout(self.timeout, self.authenticator.verify_dkim(&parsed))
            .await
        {
            Ok(d) => d,
            Err(_) => vec![DkimOutput::temp_err(timed_out())],
        };
        let arc = match tokio::time::timeout(self.timeout, self.authenticator.verify_arc(&parsed))
            .await
        {
            Ok(a) => a,
            Err(_) => ArcOutput::default().with_result(DkimResult::TempError(timed_out())),
        };
        let from = parsed.from.first().map(String::as_str).unwrap_or_default();
        let mut text = AuthenticationResults::new(&self.authserv_id)
            .with_dkim_results(&dkim, from)
            .with_arc_result(&arc, client)
            .to_string();
        if dkim.is_empty() {
            // RFC 8601 §2.7.1: "none" when the message was not signed.
            text = text.replacen(';', "; dkim=none;", 1);
        }
        let dkim_pass = dkim
            .iter()
            .filter(|d| *d.result() == DkimResult::Pass)
            .filter_map(|d| d.signature().map(|s| s.d.to_ascii_lowercase()))
            .collect();
        Arrival {
            dkim_pass,
            signed,
            results: one_line(&text),
        }
    }
}

fn timed_out() -> mail_auth::Error {
    mail_auth::Error::Dns(mail_auth::DnsError::Resolver("timed out".to_owned()))
}

/// `text` unfolded, runs of white space made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a header field (`name: value`, possibly folded) is an `Authentication-Results`
/// field recorded under `authserv_id`: at arrival, one a client sent is a forgery and is
/// removed (RFC 8601 §5).
pub fn is_results_of(field: &[u8], authserv_id: &str) -> bool {
    let text = String::from_utf8_lossy(field);
    let Some((name, value)) = text.split_once(':') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case(RESULTS_FIELD)
        && authserv_id_of(value.as_bytes()).eq_ignore_ascii_case(authserv_id)
}

/// The authserv-id an `Authentication-Results` value begins with (its first word, before `;`).
fn authserv_id_of(value: &[u8]) -> String {
    let value = String::from_utf8_lossy(value);
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Seals with one RSA key (RFC 8617 §4.1: rsa-sha256).
pub struct ArcSealer {
    sealer: Sealer<RsaKey<Sha256>, Done>,
    domain: String,
    selector: String,
    authserv_id: String,
}

impl fmt::Debug for ArcSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArcSealer")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

/// What sealing did, for the decision's evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sealed {
    /// A set was added: `i=` and `cv=`.
    Added {
        /// The instance.
        instance: u32,
        /// The chain validation recorded (`none`, `pass`).
        cv: &'static str,
    },
    /// Nothing to attest: the message was not signed when it arrived, or its arrival was not
    /// recorded (queued before sealing was on).
    NotNeeded(&'static str),
    /// The chain it arrived with had failed: RFC 8617 §5.1.2 — no set is added to it.
    ChainFailed,
}

impl fmt::Display for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sealed::Added { instance, cv } => write!(f, "arc: sealed i={instance} cv={cv}"),
            Sealed::NotNeeded(why) => write!(f, "arc: not sealed ({why})"),
            Sealed::ChainFailed => write!(
                f,
                "arc: not sealed (the ARC chain had failed on arrival, RFC 8617 §5.1.2)"
            ),
        }
    }
}

impl ArcSealer {
    /// Reads the RSA key (PEM, PKCS#8 or PKCS#1, 2048 bits or more) at `path`; sets are
    /// signed as `domain`/`selector` and attest results recorded under `authserv_id`.
    pub fn load(
        domain: &str,
        selector: &str,
        path: &Path,
        authserv_id: &str,
    ) -> Result<Self, DkimError> {
        let source = path.display().to_string();
        let key_error = |reason: String| DkimError::Key {
            path: source.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| key_error(e.to_string()))?;
        let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| key_error(e.to_string()))?;
        // ARC seals with RSA (RFC 8617 §4.1), loaded as DKIM's RSA keys are.
        let (key, _) = crate::dkim::rsa_key(&der, &source)?;
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let sealer = Sealer::from_key(key)
            .domain(domain.clone())
            .selector(selector.to_owned())
            .headers(
                // What DKIM signs, and Sealgate's own DKIM signature above them.
                crate::dkim::SIGNED_HEADERS
                    .iter()
                    .copied()
                    .chain(["DKIM-Signature"]),
            );
        Ok(Self {
            sealer,
            domain,
            selector: selector.to_owned(),
            authserv_id: authserv_id.to_ascii_lowercase(),
        })
    }

    /// The signing domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The ARC set to put in front of `message` (as it leaves, with the arrival's
    /// `Authentication-Results` in it), and what was done.
    pub fn seal(&self, message: &[u8]) -> Result<(String, Sealed), DkimError> {
        let fail = |reason: String| DkimError::Sign {
            domain: self.domain.clone(),
            selector: self.selector.clone(),
            reason,
        };
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            return Err(fail("the message header cannot be parsed".into()));
        };
        let Some(recorded) = self.recorded(&parsed) else {
            return Ok((
                String::new(),
                Sealed::NotNeeded("no arrival results recorded"),
            ));
        };
        if parsed.dkim_headers.is_empty() && parsed.ams_headers.is_empty() {
            return Ok((String::new(), Sealed::NotNeeded("it arrived unsigned")));
        }
        // The chain as it arrived: its sets, and the verdict recorded then.
        let verdict = arc_verdict(&recorded);
        if matches!(verdict, DkimResult::Fail(_)) {
            return Ok((String::new(), Sealed::ChainFailed));
        }
        let mut chain = ArcOutput::default().with_result(verdict);
        for ((seal, signature), results) in parsed
            .as_headers
            .iter()
            .zip(&parsed.ams_headers)
            .zip(&parsed.aar_headers)
        {
            chain = chain.with_set(Set {
                signature: Header {
                    name: signature.name,
                    value: signature.value,
                    header: &signature.header,
                },
                seal: Header {
                    name: seal.name,
                    value: seal.value,
                    header: &seal.header,
                },
                results: Header {
                    name: results.name,
                    value: results.value,
                    header: &results.header,
                },
            });
        }
        if !chain.can_be_sealed() {
            return Ok((String::new(), Sealed::ChainFailed));
        }
        let instance = u32::try_from(chain.sets().len() + 1).unwrap_or(u32::MAX);
        let cv = if chain.sets().is_empty() {
            "none"
        } else {
            "pass"
        };
        // mail-auth writes its results builder's host name first and verbatim: the results
        // recorded at arrival (authserv-id included, on one line) are passed as that text,
        // since mail-auth builds results only from its own verifier's outputs of this process.
        let results = AuthenticationResults::new(&recorded);
        let set = self
            .sealer
            .seal(&parsed, &results, &chain)
            .map_err(|e| fail(e.to_string()))?;
        Ok((set.to_header(), Sealed::Added { instance, cv }))
    }

    /// The results recorded at arrival under our name (the first such field: ours is on top).
    fn recorded(&self, parsed: &AuthenticatedMessage<'_>) -> Option<String> {
        parsed
            .headers
            .iter()
            .filter(|(name, _)| {
                name.trim_ascii()
                    .eq_ignore_ascii_case(RESULTS_FIELD.as_bytes())
            })
            .find(|(_, value)| authserv_id_of(value).eq_ignore_ascii_case(&self.authserv_id))
            .map(|(_, value)| one_line(&String::from_utf8_lossy(value)))
    }
}

/// The `arc=` verdict of recorded results.
fn arc_verdict(recorded: &str) -> DkimResult {
    let verdict = recorded
        .split(';')
        .map(str::trim)
        .find_map(|r| r.strip_prefix("arc="))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("none");
    match verdict {
        "pass" => DkimResult::Pass,
        "fail" => DkimResult::Fail(mail_auth::Error::Arc(ArcError::BrokenChain)),
        _ => DkimResult::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_results_under_our_name_count_as_ours_however_folded() {
        let ours = |f: &str| is_results_of(f.as_bytes(), "relay.example");
        assert!(ours("Authentication-Results: relay.example; dkim=pass\r\n"));
        assert!(ours(
            "authentication-results :\r\n\tRELAY.example ; dkim=pass\r\n"
        ));
        assert!(ours("Authentication-Results: relay.example 1; none\r\n"));
        assert!(!ours(
            "Authentication-Results: mx.other.example; dkim=pass\r\n"
        ));
        assert!(!ours(
            "Authentication-Results: relay.example.evil; dkim=pass\r\n"
        ));
        assert!(!ours(
            "X-Authentication-Results: relay.example; dkim=pass\r\n"
        ));
    }

    #[test]
    fn alignment_is_the_domain_or_a_parent_of_two_labels_or_more() {
        let a = Arrival {
            dkim_pass: vec!["clinic.example".to_owned(), "example".to_owned()],
            ..Arrival::default()
        };
        assert_eq!(a.dkim_aligned("Clinic.Example."), Some("clinic.example"));
        assert_eq!(
            a.dkim_aligned("mail.clinic.example"),
            Some("clinic.example")
        );
        assert_eq!(a.dkim_aligned("otherclinic.example"), None);
        assert_eq!(
            a.dkim_aligned("evil.example"),
            None,
            "a one-label parent is no alignment"
        );
    }

    #[test]
    fn the_recorded_arc_verdict_is_read_back() {
        assert_eq!(
            arc_verdict("h; dkim=pass header.d=a.b; arc=pass smtp.remote-ip=1.2.3.4"),
            DkimResult::Pass
        );
        assert_eq!(arc_verdict("h; dkim=pass; arc=none"), DkimResult::None);
        assert!(matches!(arc_verdict("h; arc=fail"), DkimResult::Fail(_)));
        assert_eq!(arc_verdict("h; dkim=none"), DkimResult::None);
    }
}
