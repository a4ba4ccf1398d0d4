//! Sender binding: which envelope senders and header `From:` addresses a client may use.
//!
//! One [`AllowedSenders`] belongs to each SMTP AUTH user, to each `[[relay.client]]` network,
//! and (issue #13) will belong to each tenant profile: the type knows nothing about who owns
//! it. A list of [`SenderRule`]s, each written as text:
//!
//! | text | permits |
//! |---|---|
//! | `ceo@clinic.example` | that address only |
//! | `@clinic.example` | every address at `clinic.example` (not its subdomains) |
//! | `@.clinic.example` | every address at a subdomain of `clinic.example` (not the domain itself) |
//! | `*` | any sender (unrestricted) |
//!
//! An empty list permits nothing. Domains compare case-insensitively (RFC 5321 §2.4). Local
//! parts compare after removing quoting (`"ceo"@x` is `ceo@x`, RFC 5321 §4.1.2) and ignoring
//! ASCII case: RFC 5321 §2.4 lets a host treat case as significant but says it SHOULD NOT rely
//! on that; no mail system we relay for gives `Ceo@` and `ceo@` to two people, so refusing a
//! case variant would break senders without protecting anyone. Non-ASCII letters compare
//! exactly (no Unicode case folding: `K` KELVIN SIGN is not `k`). No subaddress matching:
//! `alice@x` does not permit `alice+tag@x`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::address::EmailAddress;

/// One rule of a sender binding. Stored in canonical form: domains lowercase, local parts
/// unquoted and ASCII-lowercased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SenderRule {
    /// `*`: any sender.
    Any,
    /// `@domain`: any address at exactly this domain.
    Domain(String),
    /// `@.domain`: any address at a subdomain of this domain.
    Subdomains(String),
    /// `local@domain`: exactly this address.
    Address {
        /// Unquoted, ASCII-lowercased.
        local: String,
        /// Lowercased.
        domain: String,
    },
}

/// Why a text is not a sender rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a sender rule: write an address (ceo@clinic.example), @domain, @.domain (subdomains) or * (any sender)"
)]
pub struct SenderRuleError(pub String);

/// The senders a client may use: the union of its rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedSenders {
    rules: BTreeSet<SenderRule>,
}

/// Removes the quotes and backslash escapes of a quoted local part (RFC 5321 §4.1.2
/// Quoted-string); a dot-atom local part is returned as it is.
pub fn unquote_local(local: &str) -> String {
    let Some(inner) = local
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .filter(|_| local.len() >= 2)
    else {
        return local.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        })
        && !domain.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl SenderRule {
    /// True when this rule permits the address `local@domain` (`local` unquoted).
    pub fn permits(&self, local: &str, domain: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Domain(d) => domain.eq_ignore_ascii_case(d),
            Self::Subdomains(d) => {
                // At least one label, then a dot, then the domain itself.
                let cut = domain.len().saturating_sub(d.len());
                cut >= 2
                    && domain.as_bytes()[cut - 1] == b'.'
                    && domain
                        .get(cut..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(d))
            }
            Self::Address {
                local: l,
                domain: d,
            } => domain.eq_ignore_ascii_case(d) && local.eq_ignore_ascii_case(l),
        }
    }
}

impl FromStr for SenderRule {
    type Err = SenderRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SenderRuleError(s.to_owned());
        if s == "*" {
            return Ok(Self::Any);
        }
        if let Some(domain) = s.strip_prefix('@') {
            let (sub, domain) = match domain.strip_prefix('.') {
                Some(rest) => (true, rest),
                None => (false, domain),
            };
            if !valid_domain(domain) {
                return Err(bad());
            }
            let domain = domain.to_ascii_lowercase();
            return Ok(if sub {
                Self::Subdomains(domain)
            } else {
                Self::Domain(domain)
            });
        }
        let addr = EmailAddress::parse(s).map_err(|_| bad())?;
        if !valid_domain(addr.domain()) {
            return Err(bad());
        }
        let quoted = addr.local().starts_with('"');
        if !quoted && (needs_quotes(addr.local()) || addr.local() == "*") {
            return Err(bad());
        }
        let local = unquote_local(addr.local());
        if local.is_empty() {
            return Err(bad());
        }
        Ok(Self::Address {
            local: local.to_ascii_lowercase(),
            domain: addr.domain().to_owned(),
        })
    }
}

/// A local part needs quoting unless it is a dot-atom (RFC 5322 §3.2.3).
fn needs_quotes(local: &str) -> bool {
    let atext =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    local
        .split('.')
        .any(|part| part.is_empty() || !part.chars().all(atext))
}

impl fmt::Display for SenderRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Domain(d) => write!(f, "@{d}"),
            Self::Subdomains(d) => write!(f, "@.{d}"),
            Self::Address { local, domain } if needs_quotes(local) => {
                let escaped = local.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "\"{escaped}\"@{domain}")
            }
            Self::Address { local, domain } => write!(f, "{local}@{domain}"),
        }
    }
}

impl AllowedSenders {
    /// Permits nothing: a client with this binding cannot send.
    pub fn none() -> Self {
        Self::default()
    }

    /// Permits every sender (`*`).
    pub fn any() -> Self {
        Self::from_rules([SenderRule::Any])
    }

    /// A binding from rules (duplicates merge).
    pub fn from_rules<I: IntoIterator<Item = SenderRule>>(rules: I) -> Self {
        Self {
            rules: rules.into_iter().collect(),
        }
    }

    /// Parses every text as a rule; the first bad one is the error.
    pub fn parse_list<I, S>(texts: I) -> Result<Self, SenderRuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        texts
            .into_iter()
            .map(|t| t.as_ref().parse())
            .collect::<Result<BTreeSet<_>, _>>()
            .map(|rules| Self { rules })
    }

    /// The rules, in a stable order (`*` first, then domains, subdomains, addresses by local
    /// part).
    pub fn rules(&self) -> impl Iterator<Item = &SenderRule> {
        self.rules.iter()
    }

    /// The rules as text, in [`rules`](Self::rules) order.
    pub fn texts(&self) -> Vec<String> {
        self.rules.iter().map(ToString::to_string).collect()
    }

    /// True when `*` is among the rules.
    pub fn is_unrestricted(&self) -> bool {
        self.rules.contains(&SenderRule::Any)
    }

    /// True when no rule is set: nothing is permitted.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds a rule; false when it was there already.
    pub fn insert(&mut self, rule: SenderRule) -> bool {
        self.rules.insert(rule)
    }

    /// Removes a rule; false when it was not there.
    pub fn remove(&mut self, rule: &SenderRule) -> bool {
        self.rules.remove(rule)
    }

    /// True when some rule permits `local@domain`, `local` unquoted (as a header parser
    /// yields it).
    pub fn permits(&self, local: &str, domain: &str) -> bool {
        self.rules.iter().any(|r| r.permits(local, domain))
    }

    /// True when some rule permits the envelope address `addr` (quoted or not).
    pub fn permits_address(&self, addr: &EmailAddress) -> bool {
        self.permits(&unquote_local(addr.local()), addr.domain())
    }
}

impl fmt::Display for AllowedSenders {
    /// The rules separated by spaces; `(none)` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&self.texts().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn senders(rules: &[&str]) -> AllowedSenders {
        AllowedSenders::parse_list(rules).expect("rules")
    }

    fn permits(s: &AllowedSenders, addr: &str) -> bool {
        s.permits_address(&EmailAddress::parse(addr).expect("address"))
    }

    #[test]
    fn an_exact_address_permits_only_itself_in_any_case_and_quoting() {
        let s = senders(&["Alice@Clinic.Example"]);
        for ok in [
            "alice@clinic.example",
            "ALICE@CLINIC.EXAMPLE",
            "\"alice\"@clinic.example",
        ] {
            assert!(permits(&s, ok), "{ok}");
        }
        for refused in [
            "ceo@clinic.example",
            "alice@other.example",
            "alice@sub.clinic.example",
            "alice+tag@clinic.example",
            "alicex@clinic.example",
            "alice@clinic.example.evil",
        ] {
            assert!(!permits(&s, refused), "{refused}");
        }
    }

    #[test]
    fn a_domain_rule_permits_the_domain_and_a_subdomain_rule_only_below_it() {
        let domain = senders(&["@clinic.example"]);
        assert!(permits(&domain, "anyone@CLINIC.example"));
        assert!(!permits(&domain, "a@sub.clinic.example"));
        assert!(!permits(&domain, "a@evilclinic.example"));
        let below = senders(&["@.clinic.example"]);
        assert!(permits(&below, "a@sub.clinic.example"));
        assert!(permits(&below, "a@x.y.Clinic.Example"));
        assert!(!permits(&below, "a@clinic.example"));
        assert!(!permits(&below, "a@evilclinic.example"));
        assert!(!permits(&below, "a@.clinic.example.org"));
    }

    #[test]
    fn any_permits_everything_and_an_empty_binding_nothing() {
        assert!(permits(&AllowedSenders::any(), "ceo@anywhere.example"));
        assert!(AllowedSenders::any().is_unrestricted());
        assert!(!permits(&AllowedSenders::none(), "alice@clinic.example"));
        assert_eq!(AllowedSenders::none().to_string(), "(none)");
    }

    #[test]
    fn non_ascii_letters_are_compared_exactly() {
        let s = senders(&["kelvin@x.example"]);
        assert!(
            !s.permits("\u{212A}elvin", "x.example"),
            "KELVIN SIGN is not k"
        );
        let s = senders(&["jöe@x.example"]);
        assert!(s.permits("jöe", "x.example"));
        assert!(!s.permits("JÖE", "x.example"));
    }

    #[test]
    fn rules_are_canonical_sorted_and_deduplicated() {
        let s = senders(&[
            "bob@X.example",
            "@.Sub.example",
            "BOB@x.example",
            "@clinic.example",
            "*",
            "\"john doe\"@x.example",
            "\"plain\"@x.example",
        ]);
        assert_eq!(
            s.texts(),
            [
                "*",
                "@clinic.example",
                "@.sub.example",
                "bob@x.example",
                "\"john doe\"@x.example",
                "plain@x.example",
            ]
        );
        let again = AllowedSenders::parse_list(s.texts()).expect("round trip");
        assert_eq!(again, s);
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "",
            "@",
            "@.",
            "@..x",
            "@x..example",
            "@-x.example",
            "nobody",
            "@x y.example",
            "a@",
            "a@[192.0.2.1]",
            "**",
            "*@x.example",
            "\"\"@x.example",
            "a@x.example,b@y.example",
        ] {
            assert!(bad.parse::<SenderRule>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_binding_can_be_changed_rule_by_rule() {
        let mut s = AllowedSenders::any();
        assert!(s.insert("@clinic.example".parse().expect("rule")));
        assert!(!s.insert("@CLINIC.example".parse().expect("rule")));
        assert!(s.remove(&SenderRule::Any));
        assert!(!s.remove(&SenderRule::Any));
        assert_eq!(s.to_string(), "@clinic.example");
        assert!(!permits(&s, "ceo@other.example"));
    }
}
