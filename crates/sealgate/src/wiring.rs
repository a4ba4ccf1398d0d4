//! Building the delivery side from configuration: the resolver, the policy rules, discovery
//! (DANE, MTA-STS) and the certificate verifiers.

use std::sync::Arc;

use anyhow::Context as _;
use sealgate_config::Config;
use sealgate_delivery::client::{ClientConfig, TlsPolicy};
use sealgate_delivery::verify::Verifiers;
use sealgate_delivery::worker::DeliveryContext;
use sealgate_discovery::mta_sts::{FetchConfig, HttpsFetcher, MtaSts};
use sealgate_discovery::{Discovery, ProbeSettings};
use sealgate_dns::{DnsConfig, HickoryResolver, Resolver};
use sealgate_policy::Rules;
use sealgate_queue::{Queue, RetryPolicy};
use sealgate_store::Store;

/// The resolver for routing and DANE.
pub fn resolver(cfg: &Config) -> anyhow::Result<Arc<dyn Resolver>> {
    let resolver = HickoryResolver::new(&DnsConfig {
        nameservers: cfg.dns.nameservers.clone(),
        timeout: cfg.dns.timeout.0,
        attempts: cfg.dns.attempts,
        dnssec: cfg.dns.dnssec,
        trust_anchor_file: cfg.dns.trust_anchor_file.clone(),
    })
    .context("setting up the DNS resolver ([dns])")?;
    Ok(Arc::new(resolver))
}

/// The `[policy]` rules, or every problem with them (each naming its key).
pub fn rules(cfg: &Config) -> Result<Rules, Vec<String>> {
    let Some(table) = &cfg.policy else {
        return Ok(Rules::default());
    };
    let rules: Rules = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| vec![format!("policy: {}", e.message().trim())])?;
    let problems: Vec<String> = rules
        .validate()
        .into_iter()
        .map(|e| format!("policy: {e}"))
        .collect();
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// The certificate verifiers for verified TLS, and the extra roots they trust.
fn verifiers(
    cfg: &Config,
) -> anyhow::Result<(Verifiers, Vec<rustls::pki_types::CertificateDer<'static>>)> {
    let extra = match &cfg.delivery.ca_file {
        Some(path) => Verifiers::load_pem_file(path).context("reading delivery.ca_file")?,
        None => Vec::new(),
    };
    let v = Verifiers::new(cfg.delivery.public_roots, &extra)
        .context("building the certificate verifiers ([delivery] public_roots, ca_file)")?;
    Ok((v, extra))
}

/// What delivery and `sealgate check` share: resolver, rules, discovery and verifiers.
pub struct Security {
    pub resolver: Arc<dyn Resolver>,
    pub rules: Arc<Rules>,
    pub discovery: Arc<Discovery>,
    pub verifiers: Arc<Verifiers>,
}

/// Builds [`Security`] over `store`.
pub fn security(cfg: &Config, store: Store) -> anyhow::Result<Security> {
    let resolver = resolver(cfg)?;
    let rules = rules(cfg).map_err(|p| anyhow::anyhow!("invalid [policy]: {}", p.join("; ")))?;
    let (verifiers, extra_roots) = verifiers(cfg)?;
    let sts = if cfg.mta_sts.enabled {
        let fetcher = HttpsFetcher::new(
            FetchConfig {
                https_port: cfg.mta_sts.https_port,
                timeout: cfg.mta_sts.fetch_timeout.0,
                extra_roots,
                public_roots: cfg.delivery.public_roots,
            },
            resolver.clone(),
        )
        .context("setting up MTA-STS policy fetching ([mta_sts])")?;
        Some(Arc::new(MtaSts::new(
            resolver.clone(),
            Arc::new(fetcher),
            store.clone(),
            cfg.probes.negative_ttl.0,
            cfg.probes.max_entries,
        )))
    } else {
        None
    };
    let discovery = Discovery::new(
        resolver.clone(),
        sts,
        store,
        ProbeSettings {
            smtp_port: cfg.delivery.smtp_port,
            max_ttl: cfg.probes.max_ttl.0,
            negative_ttl: cfg.probes.negative_ttl.0,
            failure_ttl: cfg.probes.failure_ttl.0,
            max_entries: cfg.probes.max_entries,
        },
    );
    Ok(Security {
        resolver,
        rules: Arc::new(rules),
        discovery: Arc::new(discovery),
        verifiers: Arc::new(verifiers),
    })
}

/// The delivery context for this process.
pub fn delivery_context(cfg: &Config, queue: Queue) -> anyhow::Result<DeliveryContext> {
    let d = &cfg.delivery;
    let sec = security(cfg, queue.store().clone())?;
    // Unique per process, so a restarted node never mistakes an old lease for its own.
    let owner = format!(
        "{}:{}:{}",
        cfg.server.hostname,
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    Ok(DeliveryContext {
        queue,
        resolver: sec.resolver,
        client: client_config(cfg),
        tls: TlsPolicy::Opportunistic(sec.verifiers.opportunistic_config()),
        rules: sec.rules,
        discovery: sec.discovery,
        verifiers: sec.verifiers,
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

/// SMTP client settings (EHLO name, timeouts).
pub fn client_config(cfg: &Config) -> ClientConfig {
    let d = &cfg.delivery;
    ClientConfig {
        helo_name: d
            .helo_name
            .clone()
            .unwrap_or_else(|| cfg.server.hostname.clone()),
        connect_timeout: d.connect_timeout.0,
        greeting_timeout: d.greeting_timeout.0,
        command_timeout: d.command_timeout.0,
        data_timeout: d.data_timeout.0,
    }
}
