//! Building the delivery side from configuration.

use std::sync::Arc;

use anyhow::Context as _;
use sealgate_config::Config;
use sealgate_delivery::client::{ClientConfig, TlsPolicy};
use sealgate_delivery::worker::DeliveryContext;
use sealgate_dns::{DnsConfig, HickoryResolver};
use sealgate_queue::{Queue, RetryPolicy};

/// The delivery context for this process.
pub fn delivery_context(cfg: &Config, queue: Queue) -> anyhow::Result<DeliveryContext> {
    let d = &cfg.delivery;
    let resolver = HickoryResolver::new(&DnsConfig {
        nameservers: cfg.dns.nameservers.clone(),
        timeout: cfg.dns.timeout.0,
        attempts: cfg.dns.attempts,
    })
    .context("setting up the DNS resolver ([dns])")?;
    let tls = sealgate_delivery::tls::opportunistic_config()
        .context("building the outbound TLS configuration")?;
    let client = ClientConfig {
        helo_name: d
            .helo_name
            .clone()
            .unwrap_or_else(|| cfg.server.hostname.clone()),
        connect_timeout: d.connect_timeout.0,
        greeting_timeout: d.greeting_timeout.0,
        command_timeout: d.command_timeout.0,
        data_timeout: d.data_timeout.0,
    };
    // Unique per process, so a restarted node never mistakes an old lease for its own.
    let owner = format!(
        "{}:{}:{}",
        cfg.server.hostname,
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    Ok(DeliveryContext {
        queue,
        resolver: Arc::new(resolver),
        client,
        tls: TlsPolicy::Opportunistic(tls),
        smtp_port: d.smtp_port,
        retry: RetryPolicy {
            first_retry: cfg.queue.retry_first.0,
            max_delay: cfg.queue.retry_max.0,
            max_age: cfg.queue.max_age.0,
            jitter_percent: 20,
            delay_warning: cfg.queue.delay_warning.0,
        },
        lease: cfg.queue.lease.0,
        owner,
        hostname: cfg.server.hostname.clone(),
        max_connections: d.max_connections,
        max_connections_per_domain: d.max_connections_per_domain,
        poll_interval: d.poll_interval.0,
        shutdown_grace: cfg.server.shutdown_grace.0,
        connections: Default::default(),
    })
}
