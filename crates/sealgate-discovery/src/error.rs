//! Errors of the discovery probes.

/// What went wrong while probing.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A DNS lookup failed (not a validated denial: those are answers, not errors).
    #[error("dns lookup failed")]
    Dns(#[from] sealgate_dns::DnsError),
    /// Reading or writing persisted probe state failed.
    #[error("probe state storage failed")]
    Store(#[from] sealgate_store::StoreError),
}
