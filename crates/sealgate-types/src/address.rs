//! Envelope addresses.
//!
//! The SMTP grammar (RFC 5321 §4.1.2) is parsed by `sealgate-smtp-proto`; this type only holds
//! an address that passed it, and keeps the invariants every later stage relies on: a non-empty
//! local part and domain, no whitespace or control characters, and a lowercase domain.

use std::fmt;

/// `local-part@domain`, as used in the envelope.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct EmailAddress {
    local: String,
    domain: String,
}

/// Why a string is not an envelope address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// No `@`, or an empty side.
    #[error("address {0:?} is not of the form local@domain")]
    Shape(String),
    /// Whitespace, control characters or other bytes no address may carry.
    #[error("address {0:?} contains a forbidden character")]
    Forbidden(String),
}

fn forbidden(c: char) -> bool {
    c.is_control() || c.is_whitespace() || c == '<' || c == '>'
}

impl EmailAddress {
    /// Builds an address from its two parts; the domain is lowercased.
    pub fn new(local: &str, domain: &str) -> Result<Self, AddressError> {
        let whole = format!("{local}@{domain}");
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::Shape(whole));
        }
        // A quoted local part (RFC 5321 §4.1.2 Quoted-string) may hold spaces, never controls.
        let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
        let local_bad = if quoted {
            local.chars().any(char::is_control)
        } else {
            local.chars().any(forbidden)
        };
        if domain.contains('@') || local_bad || domain.chars().any(forbidden) {
            return Err(AddressError::Forbidden(whole));
        }
        Ok(Self {
            local: local.to_owned(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// Splits `local@domain` at the last `@`.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| AddressError::Shape(s.to_owned()))?;
        Self::new(local, domain)
    }

    /// The local part, exactly as given.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lowercased.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lowercased_and_local_part_kept() {
        let a = EmailAddress::parse("Jane.Doe@Clinic.EXAMPLE").expect("valid");
        assert_eq!(a.local(), "Jane.Doe");
        assert_eq!(a.domain(), "clinic.example");
        assert_eq!(a.to_string(), "Jane.Doe@clinic.example");
    }

    #[test]
    fn addresses_with_controls_or_missing_parts_are_refused() {
        assert!(EmailAddress::parse("\"john doe\"@x.example").is_ok());
        for bad in [
            "\"a\r\"@x.example",
            "nobody",
            "@x.example",
            "a@",
            "a b@x.example",
            "a@x\r\n.example",
            "<a@b>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
