//! What every part of delivery shares: the queue, the node's recorder, DNS, TLS and policy
//! settings, limits and the connection cache. Built once by the binary (`wiring.rs`).

use std::sync::Arc;
use std::time::Duration;

use sealgate_dns::Resolver;
use sealgate_queue::{Queue, Recorder, RetryPolicy};

use crate::client::{ClientConfig, TlsPolicy};

/// Everything the workers share.
pub struct DeliveryContext {
    /// The queue to claim from and settle into.
    pub queue: Queue,
    /// MX and address lookups.
    pub resolver: Arc<dyn Resolver>,
    /// SMTP client settings (EHLO name, timeouts).
    pub client: ClientConfig,
    /// How to use STARTTLS for opportunistic delivery (`tls-opportunistic`).
    pub tls: TlsPolicy,
    /// The operator's per-recipient security rules, as of the last (re)load: each message is
    /// planned on the rules of the moment its planning began.
    pub rules: sealgate_types::Live<sealgate_policy::Rules>,
    /// The operator's routes (`[[delivery.route]]`), as of the last (re)load: a routed
    /// domain's mail goes to the route's hosts under the route's TLS requirement.
    pub routes: sealgate_types::Live<crate::route::Routes>,
    /// The probes (DANE, MTA-STS, downgrade memory) and their caches.
    pub discovery: Arc<sealgate_discovery::Discovery>,
    /// Certificate verification for verified TLS (DANE, WebPKI for MTA-STS, pins).
    pub verifiers: Arc<crate::verify::Verifiers>,
    /// How PGP/MIME and S/MIME messages are made (a method is off when its part is `None`).
    pub encryption: Arc<crate::encrypt::Encryption>,
    /// The secure portal (`[portal] enabled`); `None`: portal recipients are held.
    pub portal: Option<Arc<crate::portal::PortalSettings>>,
    /// Port of remote MX hosts (25 on the internet).
    pub smtp_port: u16,
    /// Retry schedule and give-up age.
    pub retry: RetryPolicy,
    /// How long claims are held.
    pub lease: Duration,
    /// This node's lease owner name (unique per process).
    pub owner: String,
    /// This node's group commit for audit events and send marks (its owner is `owner`).
    pub recorder: Recorder,
    /// Our host name, for DSNs.
    pub hostname: String,
    /// Outbound connections at once.
    pub max_connections: usize,
    /// Outbound connections at once per domain.
    pub max_connections_per_domain: usize,
    /// Idle poll interval.
    pub poll_interval: Duration,
    /// On shutdown, how long running transactions may take before they are cut off (their
    /// recipients are handed back to the queue and retried: at-least-once).
    pub shutdown_grace: Duration,
    /// Idle connections kept for reuse.
    pub connections: crate::pool::ConnectionCache,
    /// DKIM keys (`[[dkim.key]]` files and the keys stored in the database), as of the last
    /// (re)load: every message sent is signed with its author's domain's keys.
    pub dkim: sealgate_types::Live<sealgate_crypto::dkim::DkimKeys>,
    /// ARC sealing (`[arc]`) of messages that arrived signed; `None`: off.
    pub arc: Option<Arc<sealgate_crypto::arc::ArcSealer>>,
}

impl std::fmt::Debug for DeliveryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryContext")
            .field("owner", &self.owner)
            .field("smtp_port", &self.smtp_port)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}
