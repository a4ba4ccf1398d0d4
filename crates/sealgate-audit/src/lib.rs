//! Sealgate audit (layer L2): the typed audit-event taxonomy, verification of the hash chain,
//! and the formats `sealgate audit tail` prints.
//!
//! Events are built here ([`AuditEvent`]) and turned into rows ([`AuditEvent::into_record`]) that
//! `sealgate-store` writes in the same transaction as the change they describe. This crate reads
//! the log only through `sealgate-store`; it must not depend on any other Sealgate crate at its
//! layer or above (no queue, ingress, delivery, binary).

pub mod error;
mod event;
mod format;
mod record;
mod tail;
mod verify;

pub use error::AuditError;
pub use event::{AttemptEvidence, AuditEvent, TenantMatch};
pub use format::{format_json, format_line};
pub use tail::tail;
pub use verify::{ChainProblem, VerifyReport, verify};
