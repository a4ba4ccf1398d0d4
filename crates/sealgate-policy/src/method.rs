//! The delivery methods a decision chooses between, and the protection level.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;

/// How one recipient's copy travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// STARTTLS with a verified peer: DANE (RFC 7672), MTA-STS enforce (RFC 8461) or an
    /// operator-pinned certificate.
    TlsVerified,
    /// STARTTLS when offered, plaintext otherwise. Only ever chosen when protection is not
    /// required.
    TlsOpportunistic,
    /// STARTTLS with TLS 1.2 or later and a certificate that validates under the WebPKI (or
    /// `delivery.ca_file`) for the MX host name (Postfix's `verify` level). It protects against
    /// a passive attacker and against an active one who does not control the domain's DNS
    /// (the MX host name itself is not authenticated, as it is by DANE or MTA-STS).
    TlsAuthenticated,
    /// OpenPGP-encrypted PGP/MIME (RFC 3156) to the recipient's key.
    Pgp,
    /// S/MIME enveloped data (RFC 8551) to the recipient's certificate.
    Smime,
    /// A sealed copy held on the portal; the recipient gets a notice without content.
    Portal,
}

impl Method {
    /// Every method, in the default preference order with `tls-opportunistic` second.
    pub const ALL: [Method; 6] = [
        Method::TlsVerified,
        Method::TlsOpportunistic,
        Method::Pgp,
        Method::Smime,
        Method::TlsAuthenticated,
        Method::Portal,
    ];

    /// The configuration and audit spelling (`tls-verified`, `pgp`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::TlsVerified => "tls-verified",
            Method::TlsOpportunistic => "tls-opportunistic",
            Method::TlsAuthenticated => "tls-authenticated",
            Method::Pgp => "pgp",
            Method::Smime => "smime",
            Method::Portal => "portal",
        }
    }

    /// Whether the method can satisfy protection level `required` at all: every method but
    /// `tls-opportunistic`. Which of them do is the operator's `[policy] protecting`.
    pub fn protects(self) -> bool {
        self != Method::TlsOpportunistic
    }

    /// Whether the method protects the message only on its way to the recipient's server
    /// (`tls-verified`, `tls-authenticated`, `tls-opportunistic`), not up to the recipient.
    pub fn transport_only(self) -> bool {
        matches!(
            self,
            Method::TlsVerified | Method::TlsAuthenticated | Method::TlsOpportunistic
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = PolicyError;

    /// Parses the spelling of [`Method::as_str`], ignoring ASCII case and surrounding space.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| PolicyError::UnknownMethod(s.to_owned()))
    }
}

/// Whether a message to a recipient must be protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Protection required: only methods that protect against an active attacker, ending with
    /// the portal. Never plaintext.
    #[default]
    Required,
    /// No protection required: opportunistic TLS is allowed.
    None,
}

impl Level {
    /// The configuration and audit spelling (`required`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Required => "required",
            Level::None => "none",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "required" => Ok(Level::Required),
            "none" => Ok(Level::None),
            _ => Err(PolicyError::UnknownLevel(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_round_trips_through_its_spelling() {
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>().ok(), Some(m));
            let json = serde_json::to_string(&m).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
    }

    #[test]
    fn method_parsing_ignores_case_and_space_but_rejects_unknown_names() {
        assert_eq!(" PGP ".parse::<Method>().ok(), Some(Method::Pgp));
        assert!("plaintext".parse::<Method>().is_err());
    }

    #[test]
    fn level_defaults_to_required() {
        assert_eq!(Level::default(), Level::Required);
        assert_eq!("None".parse::<Level>().ok(), Some(Level::None));
        assert!("maybe".parse::<Level>().is_err());
    }
}
