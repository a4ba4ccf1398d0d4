//! Sealgate policy engine (L2): the pure rule logic that turns evidence into a per-recipient
//! [`Decision`] — the protection [`Level`], the ordered fallback chain of [`Method`]s (the
//! first is chosen), the evidence lines saying what was found and why each preferred method
//! was not chosen, and the alerts (possible downgrade) the audit must raise.
//!
//! Inputs are plain data: [`Rules`] (operator configuration), [`DomainEvidence`] and
//! [`RecipientEvidence`] (filled by the discovery probes), and [`MessageFacts`] (subject,
//! headers, a body sample). [`decide`] is pure and deterministic.
//!
//! Invariants: the chain is never empty; when protection is required it never holds
//! `tls-opportunistic` — "protection required never resolves to plaintext". For a message
//! with protected content the chain ends with the portal. A phi-free message (one Sealgate
//! wrote itself without protected content: a portal notice, [`MessageFacts::phi_free`]) is
//! at level none whatever the rules say, and its chain holds only `tls-verified` (when
//! available) and `tls-opportunistic` — never the portal, PGP or S/MIME. Precedence: address
//! override > domain override > content trigger > org default; `TLS-Required: No` (RFC 8689)
//! never lowers a required level.
//!
//! This crate must stay pure: it depends on `sealgate-types` at most among Sealgate crates,
//! and never on tokio, networking, DNS, storage or any other I/O crate.

mod content;
mod decide;
mod decision;
mod error;
mod evidence;
mod method;
mod rules;

pub use decide::{KeysThatMatter, Prepared, decide, prepare};
pub use decision::{Decision, Failed, Source};
pub use error::PolicyError;
pub use evidence::{
    Credential, DaneStatus, DomainEvidence, MessageFacts, MtaStsMode, RecipientEvidence,
    RouteEvidence, Unusable,
};
pub use method::{Level, Method};
pub use rules::{ContentTriggers, DlpPattern, Override, Rules, default_preference};

#[cfg(test)]
mod tests;
