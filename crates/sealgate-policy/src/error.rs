//! Errors of the policy crate: all of them are configuration errors, found when rules are
//! loaded, never while deciding.

/// What is wrong with a rule or a spelling.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A method name that is not one of `tls-verified`, `tls-authenticated`,
    /// `tls-opportunistic`, `pgp`, `smime`, `portal`.
    #[error("unknown delivery method {0:?}")]
    UnknownMethod(String),
    /// A level that is not `required` or `none`.
    #[error("unknown protection level {0:?}")]
    UnknownLevel(String),
    /// A DLP pattern that is not a valid regular expression.
    #[error("dlp pattern {name:?} is not a valid regular expression")]
    Pattern {
        /// The pattern's configured name.
        name: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
    /// An override whose key does not fit its list (a domain with `@`, an address without).
    #[error("{kind} override key {key:?} is not {}", if *kind == "domain" { "a domain" } else { "an address" })]
    BadOverrideKey {
        /// `domain` or `address`.
        kind: &'static str,
        /// The key as configured.
        key: String,
    },
    /// An override whose `chain` is empty or names a method twice.
    #[error("{kind} override {key:?}: chain must name at least one method, each once")]
    BadChain {
        /// `domain` or `address`.
        kind: &'static str,
        /// The key as configured.
        key: String,
    },
    /// The content triggers' `chain` is empty or names a method twice.
    #[error("content chain must name at least one method, each once")]
    BadContentChain,
    /// `protecting` lists `tls-opportunistic` or leaves out the portal.
    #[error("protecting: {0}")]
    Protecting(&'static str),
    /// An order (the preference or a rule's chain) that puts `tls-authenticated` before
    /// `tls-verified`.
    #[error(
        "{rule}: tls-authenticated must come after tls-verified (authenticated TLS is never preferred to verified TLS)"
    )]
    AuthenticatedFirst {
        /// `preference`, or which override.
        rule: String,
    },
    /// The same key listed twice in one override list.
    #[error("{kind} override {key:?} is listed twice")]
    DuplicateOverride {
        /// `domain` or `address`.
        kind: &'static str,
        /// The key as configured (second occurrence).
        key: String,
    },
}
