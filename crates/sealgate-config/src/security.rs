//! The verified-TLS sections: `[mta_sts]`, `[probes]` and the raw `[policy]` rules.

use serde::Deserialize;

use crate::units::HumanDuration;

/// `[mta_sts]`: fetching and caching MTA-STS policies (RFC 8461).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtaStsConfig {
    /// Look up MTA-STS policies at all. Default true.
    #[serde(default = "crate::default_true")]
    pub enabled: bool,
    /// TCP port of the policy hosts (`mta-sts.DOMAIN`). Default 443; another value is for labs.
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// Timeout for one policy fetch, connect to last byte. Default "30s".
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout: HumanDuration,
    /// How often cached policies are refreshed in the background. Default "1h".
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: HumanDuration,
    /// Cached policies expiring within this window are refetched by the refresher, so an
    /// enforce policy rarely lapses (RFC 8461 §10.2). Default "1d".
    #[serde(default = "default_refresh_ahead")]
    pub refresh_ahead: HumanDuration,
}

/// `[probes]`: the in-memory cache of DNS and MTA-STS probe results.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesConfig {
    /// Longest time a positive answer (TLSA records, a policy id) is kept, even when its DNS
    /// TTL is longer. Default "1h".
    #[serde(default = "default_max_ttl")]
    pub max_ttl: HumanDuration,
    /// How long a negative answer (no TLSA, no MTA-STS record, unsigned zone) is kept.
    /// Default "5m".
    #[serde(default = "default_negative_ttl")]
    pub negative_ttl: HumanDuration,
    /// How long a failed probe (timeout, SERVFAIL, fetch error) is remembered before it is
    /// tried again. Default "30s".
    #[serde(default = "default_failure_ttl")]
    pub failure_ttl: HumanDuration,
    /// Most domains and hosts kept. Default 10000.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
}

fn default_https_port() -> u16 {
    443
}
fn default_fetch_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_refresh_interval() -> HumanDuration {
    HumanDuration::from_secs(3600)
}
fn default_refresh_ahead() -> HumanDuration {
    HumanDuration::from_secs(24 * 3600)
}
fn default_max_ttl() -> HumanDuration {
    HumanDuration::from_secs(3600)
}
fn default_negative_ttl() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_failure_ttl() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_max_entries() -> usize {
    10_000
}
