//! Rules: the operator's policy configuration (serde, `deny_unknown_fields`).
//!
//! Precedence, for both the level and a forced method, highest first:
//! **address override > domain override > content trigger > org default**.
//! Within content triggers, anything that asks for protection (a subject tag, a DLP match,
//! `X-Sealgate-Security: required` or a method name) wins over `X-Sealgate-Security: none`;
//! `none` only lowers the level when no other content trigger fired and no override sets the
//! level. A `TLS-Required: No` header (RFC 8689 §5) never lowers anything.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::method::{Level, Method};

/// The operator's rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Level when no override or content trigger says otherwise. Default: `required`.
    pub default_level: Level,
    /// Methods to try, most preferred first. The portal is always appended when missing and
    /// anything after it is dropped (the portal always works).
    /// Default: `["tls-verified", "pgp", "smime", "tls-authenticated", "portal"]`.
    pub preference: Vec<Method>,
    /// The methods that satisfy protection level `required`; a method left out is skipped for
    /// such recipients (the portal always satisfies it, `tls-opportunistic` never does).
    /// Default: `["tls-verified", "pgp", "smime", "tls-authenticated", "portal"]`.
    pub protecting: Vec<Method>,
    /// Whether `tls-authenticated` may serve a domain that shows verified TLS (DANE or
    /// MTA-STS enforce) or once did (downgrade memory): as the fallback when verified TLS
    /// fails, and when the domain's DANE or MTA-STS has gone. Default `false`: such a domain is
    /// never downgraded to authenticated TLS; the alert is raised and the recipient goes to
    /// the next end-to-end method or the portal.
    pub authenticated_after_verified: bool,
    /// Per-domain overrides, keyed by domain (matched ASCII case-insensitively).
    pub domains: Vec<Override>,
    /// Per-address overrides, keyed by address (matched ASCII case-insensitively).
    pub addresses: Vec<Override>,
    /// Content triggers.
    pub content: ContentTriggers,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            default_level: Level::Required,
            preference: default_preference(),
            protecting: default_preference(),
            authenticated_after_verified: false,
            domains: Vec::new(),
            addresses: Vec::new(),
            content: ContentTriggers::default(),
        }
    }
}

/// The default method preference order; also the default set of methods that satisfy
/// protection level `required` (`[policy] protecting`).
pub fn default_preference() -> Vec<Method> {
    vec![
        Method::TlsVerified,
        Method::Pgp,
        Method::Smime,
        Method::TlsAuthenticated,
        Method::Portal,
    ]
}

impl Rules {
    /// The override for `domain`, if any.
    pub fn domain_override(&self, domain: &str) -> Option<&Override> {
        let domain = domain.trim_end_matches('.');
        self.domains
            .iter()
            .find(|o| o.key.trim_end_matches('.').eq_ignore_ascii_case(domain))
    }

    /// The override for `address`, if any.
    pub fn address_override(&self, address: &str) -> Option<&Override> {
        let address = address.trim().trim_end_matches('.');
        self.addresses
            .iter()
            .find(|o| o.key.trim_end_matches('.').eq_ignore_ascii_case(address))
    }

    /// Whether `method` satisfies protection level `required` under these rules.
    pub fn satisfies_required(&self, method: Method) -> bool {
        method == Method::Portal || (method.protects() && self.protecting.contains(&method))
    }

    /// Every problem serde cannot see, collected rather than stopping at the first: domain
    /// keys holding `@`, address keys without one, and keys listed twice (the first would
    /// silently win); `tls-opportunistic` or no portal in `protecting`; and an order that puts
    /// `tls-authenticated` before `tls-verified` (authenticated TLS is never preferred to
    /// verified TLS).
    pub fn validate(&self) -> Vec<PolicyError> {
        let mut errors = Vec::new();
        if self.protecting.contains(&Method::TlsOpportunistic) {
            errors.push(PolicyError::Protecting(
                "tls-opportunistic never satisfies protection level required",
            ));
        }
        if !self.protecting.contains(&Method::Portal) {
            errors.push(PolicyError::Protecting(
                "the portal must be listed: it closes every chain and always satisfies protection level required",
            ));
        }
        if authenticated_before_verified(&self.preference) {
            errors.push(PolicyError::AuthenticatedFirst {
                rule: "preference".to_owned(),
            });
        }
        if let Some(chain) = &self.content.chain {
            if !names_each_once(chain) {
                errors.push(PolicyError::BadContentChain);
            }
            if authenticated_before_verified(chain) {
                errors.push(PolicyError::AuthenticatedFirst {
                    rule: "content chain".to_owned(),
                });
            }
        }
        for (kind, list, wants_at) in [
            ("domain", &self.domains, false),
            ("address", &self.addresses, true),
        ] {
            let mut seen: Vec<String> = Vec::new();
            for o in list {
                let key = o.key.trim_end_matches('.').to_ascii_lowercase();
                if key.is_empty() || key.contains('@') != wants_at {
                    errors.push(PolicyError::BadOverrideKey {
                        kind,
                        key: o.key.clone(),
                    });
                } else if seen.contains(&key) {
                    errors.push(PolicyError::DuplicateOverride {
                        kind,
                        key: o.key.clone(),
                    });
                }
                seen.push(key);
                if o.chain
                    .as_deref()
                    .is_some_and(authenticated_before_verified)
                    || (o.method == Some(Method::TlsAuthenticated)
                        && o.chain
                            .as_deref()
                            .is_some_and(|c| c.contains(&Method::TlsVerified)))
                {
                    errors.push(PolicyError::AuthenticatedFirst {
                        rule: format!("{kind} override {:?}", o.key),
                    });
                }
                if o.chain.as_deref().is_some_and(|c| !names_each_once(c)) {
                    errors.push(PolicyError::BadChain {
                        kind,
                        key: o.key.clone(),
                    });
                }
            }
        }
        errors
    }

    /// Each override's chain before availability is known, as `sealgate config check` shows
    /// it: `(rule, methods in order, why)` — what [`crate::decide`] starts from for that
    /// rule's recipients at level `required` (at level `none`, `tls-opportunistic` may also
    /// be placed after `tls-verified`). Methods unavailable at delivery time are then skipped.
    pub fn effective_chains(&self) -> Vec<(String, Vec<Method>, &'static str)> {
        let shown = |(mut order, why): (Vec<Method>, Order)| {
            if order.last() != Some(&Method::Portal) {
                order.push(Method::Portal);
            }
            (order, why.describe())
        };
        let (order, why) = shown(candidate_order(None, false, None, &self.preference));
        let mut out = vec![("org default".to_owned(), order, why)];
        if let Some(chain) = &self.content.chain {
            let (order, why) = shown(candidate_order(None, false, Some(chain), &self.preference));
            out.push(("content triggers".to_owned(), order, why));
        }
        for (kind, list) in [("domain", &self.domains), ("address", &self.addresses)] {
            for o in list {
                let (order, why) = shown(candidate_order(
                    o.method,
                    true,
                    o.chain.as_deref(),
                    &self.preference,
                ));
                out.push((format!("{kind} {}", o.key), order, why));
            }
        }
        out
    }
}

/// Whether `chain` names at least one method, each once.
fn names_each_once(chain: &[Method]) -> bool {
    let mut unique = chain.to_vec();
    unique.sort();
    unique.dedup();
    !chain.is_empty() && unique.len() == chain.len()
}

/// Whether `order` names `tls-authenticated` before `tls-verified`.
fn authenticated_before_verified(order: &[Method]) -> bool {
    let at = |m| order.iter().position(|x| *x == m);
    matches!((at(Method::TlsAuthenticated), at(Method::TlsVerified)), (Some(a), Some(v)) if a < v)
}

/// Where a recipient's order of methods comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// The org's `preference` (opportunistic TLS may be placed in it automatically).
    Preference,
    /// The matching rule's own `chain`.
    OwnChain,
    /// The org's preference without its transport-only methods: an operator's rule forced
    /// an end-to-end method.
    EndToEndOnly,
}

impl Order {
    /// The evidence and `config check` wording.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Order::Preference => "the preference",
            Order::OwnChain => "the rule's own chain",
            Order::EndToEndOnly => "forced end-to-end method: no transport-only method follows it",
        }
    }
}

/// The methods to consider in order: the forced method first, then the rule's own chain or
/// the org's preference, up to the portal (nothing after it; the caller appends it when
/// missing). When the forced method is an operator's rule (`by_rule`, an override's
/// `method`) and an end-to-end one, and the rule gives no chain, no transport-only method
/// follows it. A method asked for by the message's security header is the sending system's
/// preference, not the operator's "end-to-end only": the org's preference follows it.
pub(crate) fn candidate_order(
    forced: Option<Method>,
    by_rule: bool,
    own_chain: Option<&[Method]>,
    preference: &[Method],
) -> (Vec<Method>, Order) {
    let end_to_end_only =
        by_rule && own_chain.is_none() && forced.is_some_and(|m| !m.transport_only());
    let (rest, why) = match own_chain {
        Some(chain) => (chain, Order::OwnChain),
        None if end_to_end_only => (preference, Order::EndToEndOnly),
        None => (preference, Order::Preference),
    };
    let mut order: Vec<Method> = Vec::new();
    for m in forced.into_iter().chain(rest.iter().copied()) {
        if order.contains(&m) || (end_to_end_only && m.transport_only()) {
            continue;
        }
        order.push(m);
        if m == Method::Portal {
            break;
        }
    }
    (order, why)
}

/// An override for one domain or one address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The domain (`partner.example`) or address (`alice@partner.example`) it applies to.
    pub key: String,
    /// Sets the level, beating lower-precedence rules. Absent: no opinion.
    #[serde(default)]
    pub level: Option<Level>,
    /// Forces this method first in the chain (when available). Absent: no opinion. A forced
    /// end-to-end method (`pgp`, `smime`) without a `chain` is never followed by a
    /// transport-only one: when it cannot be used the recipient goes to the other end-to-end
    /// methods of the preference, then the portal (held while the portal is off).
    #[serde(default)]
    pub method: Option<Method>,
    /// The fallback chain for this rule's recipients, most preferred first, in place of the
    /// org's `preference` (an address rule's beats a domain rule's). The portal is appended
    /// when missing; `tls-opportunistic` is only ever used when protection is not required,
    /// and is not added when absent. Absent: the org's preference.
    #[serde(default)]
    pub chain: Option<Vec<Method>>,
    /// Certificate fingerprints (SHA-256, hex) pinned for the recipient domain's MX: with a
    /// pin, `tls-verified` is available without DANE or MTA-STS.
    #[serde(default)]
    pub pins: Vec<String>,
}

/// Triggers that look at the message itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentTriggers {
    /// Subject tags (matched ASCII case-insensitively) that make protection required; the tag
    /// is removed before sending. Default: `["[secure]"]`.
    pub subject_tags: Vec<String>,
    /// The header a sending system uses to ask for a level or method
    /// (`required|none|portal|pgp|smime|tls-verified|tls-authenticated`); removed before
    /// sending.
    /// Default: `X-Sealgate-Security`.
    pub header: String,
    /// DLP patterns over the body sample; a match makes protection required.
    /// Default: US SSN.
    pub dlp: Vec<DlpPattern>,
    /// The fallback chain for a message whose protection a content trigger required (a
    /// subject tag, a DLP match, the security header asking for protection), in place of the
    /// org's `preference`, unless an address or domain rule gives its own. The portal is
    /// appended when missing. Absent: the preference.
    pub chain: Option<Vec<Method>>,
}

impl Default for ContentTriggers {
    fn default() -> Self {
        Self {
            subject_tags: vec!["[secure]".to_owned()],
            header: "X-Sealgate-Security".to_owned(),
            dlp: vec![DlpPattern::us_ssn()],
            chain: None,
        }
    }
}

/// A named regular expression over the body sample.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawPattern", into = "RawPattern")]
pub struct DlpPattern {
    name: String,
    regex: Regex,
}

/// The configuration shape of a [`DlpPattern`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    /// Name shown in the decision evidence (never the matched text).
    name: String,
    /// Regular expression (Rust `regex` syntax).
    pattern: String,
}

impl TryFrom<RawPattern> for DlpPattern {
    type Error = PolicyError;

    fn try_from(raw: RawPattern) -> Result<Self, Self::Error> {
        DlpPattern::new(&raw.name, &raw.pattern)
    }
}

impl From<DlpPattern> for RawPattern {
    fn from(p: DlpPattern) -> Self {
        RawPattern {
            name: p.name,
            pattern: p.regex.as_str().to_owned(),
        }
    }
}

impl fmt::Debug for DlpPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DlpPattern")
            .field("name", &self.name)
            .field("pattern", &self.regex.as_str())
            .finish()
    }
}

impl DlpPattern {
    /// Compiles a named pattern.
    pub fn new(name: &str, pattern: &str) -> Result<Self, PolicyError> {
        let regex = Regex::new(pattern).map_err(|source| PolicyError::Pattern {
            name: name.to_owned(),
            source,
        })?;
        Ok(Self {
            name: name.to_owned(),
            regex,
        })
    }

    /// US Social Security number, `123-45-6789`.
    pub fn us_ssn() -> Self {
        Self::known("us-ssn", r"\b\d{3}-\d{2}-\d{4}\b")
    }

    /// A medical record number written as `MRN` followed by 6 to 10 digits (`MRN: 00123456`).
    pub fn mrn() -> Self {
        Self::known("mrn", r"(?i)\bMRN[:#\s]*\d{6,10}\b")
    }

    fn known(name: &str, pattern: &str) -> Self {
        // Constant patterns, compiled in the tests below.
        let regex = Regex::new(pattern).expect("built-in DLP pattern compiles");
        Self {
            name: name.to_owned(),
            regex,
        }
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the text matches.
    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_default_to_protection_required_and_the_standard_preference() {
        let rules = Rules::default();
        assert_eq!(rules.default_level, Level::Required);
        assert_eq!(rules.preference, default_preference());
        assert_eq!(rules.content.header, "X-Sealgate-Security");
        assert_eq!(rules.content.subject_tags, vec!["[secure]".to_owned()]);
    }

    #[test]
    fn rules_parse_from_toml_with_overrides_and_patterns() {
        let text = r#"
            default_level = "none"
            preference = ["pgp", "tls-verified", "portal"]
            [[domains]]
            key = "gmail.com"
            method = "portal"
            [[domains]]
            key = "partner.example"
            method = "tls-verified"
            pins = ["ab12"]
            [[addresses]]
            key = "ceo@partner.example"
            level = "required"
            [content]
            dlp = [{ name = "mrn", pattern = 'MRN\d+' }]
        "#;
        let rules: Rules = toml::from_str(text).unwrap();
        assert_eq!(rules.default_level, Level::None);
        assert_eq!(
            rules
                .domain_override("Partner.Example.")
                .map(|o| o.pins.clone()),
            Some(vec!["ab12".to_owned()])
        );
        assert_eq!(
            rules
                .address_override("CEO@partner.example")
                .and_then(|o| o.level),
            Some(Level::Required)
        );
        assert_eq!(rules.content.dlp.len(), 1);
        assert!(rules.content.dlp[0].matches("see MRN12345"));
    }

    #[test]
    fn unknown_fields_and_bad_patterns_are_rejected() {
        assert!(toml::from_str::<Rules>("defaul_level = \"none\"").is_err());
        let bad = "[content]\ndlp = [{ name = \"x\", pattern = \"(\" }]";
        assert!(toml::from_str::<Rules>(bad).is_err());
        assert!(DlpPattern::new("x", "(").is_err());
    }

    #[test]
    fn validation_collects_every_bad_or_duplicate_override_key() {
        let ov = |key: &str| Override {
            key: key.to_owned(),
            ..Override::default()
        };
        let rules = Rules {
            domains: vec![ov("a.example"), ov("A.example."), ov("x@a.example")],
            addresses: vec![ov("a.example"), ov("bob@a.example")],
            ..Rules::default()
        };
        let errors: Vec<String> = rules.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            vec![
                "domain override \"A.example.\" is listed twice".to_owned(),
                "domain override key \"x@a.example\" is not a domain".to_owned(),
                "address override key \"a.example\" is not an address".to_owned(),
            ]
        );
        assert!(Rules::default().validate().is_empty());
    }

    #[test]
    fn built_in_patterns_match_their_formats_only() {
        assert!(DlpPattern::us_ssn().matches("ssn 123-45-6789."));
        assert!(!DlpPattern::us_ssn().matches("phone 123-456-7890"));
        assert!(DlpPattern::mrn().matches("mrn: 00123456"));
        assert!(!DlpPattern::mrn().matches("MRN 12"));
    }
}
