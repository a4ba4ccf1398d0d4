//! SMTP ingress (layer L4).
//!
//! Owns the listeners and SMTP sessions (RFC 5321) through which EHRs, billing systems and
//! Microsoft 365 / Google Workspace hand mail to Sealgate: EHLO and the ESMTP extensions,
//! STARTTLS and implicit TLS, AUTH over TLS, relay control, sender binding, strict framing
//! against SMTP smuggling, limits and timeouts. A message is acknowledged with 250 only after the queue has
//! committed it. Must not depend on the delivery side: ingress and delivery meet in the queue.

mod auth;
mod error;
mod guard;
mod io;
mod limits;
mod mailbox_list;
mod received;
mod relay;
mod senders;
mod server;
mod session;
mod tenants;
mod tls;

pub use error::IngressError;
pub use guard::{AuthGuard, AuthSettings, ThrottleLimits};
pub use limits::ConnectionLimits;
pub use senders::RelayClients;
pub use server::{BoundListener, ContextSwap, Server};
pub use session::{Session, SessionInfo};
pub use tenants::Tenants;
pub use tls::{ClientCert, ClientCerts, ServerTls, load_tls, load_tls_acceptor};

use std::sync::Arc;
use std::time::Duration;

use sealgate_queue::{Queue, Recorder};
use sealgate_store::Store;

/// Everything a session needs, shared by all sessions of all listeners.
pub struct IngressContext {
    /// Name in the greeting, EHLO reply and Received header.
    pub hostname: String,
    /// Where accepted messages go.
    pub queue: Queue,
    /// Group commit for what a session must have on record before it answers (AUTH success).
    pub recorder: Recorder,
    /// Where AUTH users are looked up.
    pub store: Store,
    /// Certificate for STARTTLS / implicit TLS (and the check of client certificates);
    /// `None` = no TLS offered.
    pub tls: Option<ServerTls>,
    /// Client networks that may relay without AUTH, each with the senders it may use.
    pub relay: RelayClients,
    /// Cloud tenants that may relay without AUTH when all their factors hold.
    pub tenants: Tenants,
    /// Checks arriving messages' DKIM signatures and ARC chains and records the results in
    /// the stored message (`[arc]`, or a tenant with `dkim = true`); `None`: not checked.
    pub inbound: Option<Arc<sealgate_crypto::arc::Inbound>>,
    /// Where `<Postmaster>` goes (RFC 5321 §4.5.1): the operator address; `None` = refused.
    pub postmaster: Option<sealgate_types::EmailAddress>,
    /// Per-session limits.
    pub limits: SessionLimits,
    /// Password checks and AUTH failure counts, shared by all sessions.
    pub auth: Arc<AuthGuard>,
}

impl std::fmt::Debug for IngressContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressContext")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls.is_some())
            .field("relay", &self.relay)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Limits that apply inside one SMTP session.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Largest message in bytes (SIZE, RFC 1870).
    pub max_message_size: usize,
    /// Recipients per transaction.
    pub max_recipients: usize,
    /// Waiting for a command.
    pub command_timeout: Duration,
    /// Waiting for the next data block inside DATA.
    pub data_timeout: Duration,
    /// The whole message, from 354 to the final dot.
    pub data_total_timeout: Duration,
    /// Failed AUTH attempts before the session is closed.
    pub max_auth_failures: u32,
    /// Refused commands before the session is closed.
    pub max_errors: u32,
    /// `Received` fields a message may already carry (more: 554 5.4.6, a loop).
    pub max_hops: usize,
    /// Times a message may pass this relay (our own `Received` fields; more: 554 5.4.6).
    pub max_passes: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 1000,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            data_total_timeout: Duration::from_secs(30 * 60),
            max_auth_failures: 3,
            max_errors: 20,
            max_hops: 50,
            max_passes: 3,
        }
    }
}

/// Shared handle to the context.
pub type Context = Arc<IngressContext>;
