//! Sealgate's domain vocabulary (layer L0).
//!
//! Owns the identifiers, envelope addresses, sender bindings, recipient states, the security
//! vocabulary discovery and policy share, and the audit record with its hash chain. Pure data and pure functions: no I/O, no tokio, and no
//! dependency on any other Sealgate crate.

pub mod address;
pub mod audit;
pub mod ids;
pub mod live;
pub mod security;
pub mod senders;
pub mod state;
pub mod time;
pub mod webhook;

pub use address::{AddressError, EmailAddress};
pub use audit::{AuditEntry, AuditRecord, GENESIS_HASH, chain_hash};
pub use ids::MessageId;
pub use live::Live;
pub use senders::{AllowedSenders, SenderRule, SenderRuleError};
pub use state::{HoldReason, Outcome, RecipientState};
