//! Reloading on SIGHUP (`systemctl reload`): the configuration file and the certificate files
//! are read again; what can change in a running process is put in place for the connections
//! and messages that come next, and nothing open is dropped. A file that does not load, or a
//! setting that does not check, leaves the running configuration in force and the log says
//! why. Settings that only a restart can change (listeners, database, delivery, portal, …)
//! are named in the log when the file changes them.
//!
//! Also the service manager's readiness protocol (`Type=notify`): `READY=1` once the relay
//! serves, `RELOADING=1` … `READY=1` around a reload, `STOPPING=1` on shutdown.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use sealgate_config::Config;
use sealgate_delivery::DeliveryContext;
use sealgate_ingress::{ContextSwap, IngressContext, RelayClients, ServerTls, Tenants, load_tls};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Sections a reload puts in place.
const RELOADED_SECTIONS: &[&str] = &["tls", "relay", "policy", "dkim"];

/// `[smtp]` settings a reload puts in place (the per-session limits); the rest of `[smtp]`
/// (listeners, connection limits, AUTH throttling) needs a restart.
const RELOADED_SMTP: &[&str] = &[
    "max_message_size",
    "max_recipients",
    "command_timeout",
    "data_timeout",
    "data_total_timeout",
    "max_auth_failures",
    "max_errors",
    "max_hops",
    "max_passes",
];

/// `[delivery]` settings a reload puts in place (the routes); the rest needs a restart.
const RELOADED_DELIVERY: &[&str] = &["route"];

/// What a reload changes in the running process.
pub(crate) struct Reloader {
    /// The configuration file (`None`: running on the embedded defaults, nothing to re-read).
    pub file: Option<PathBuf>,
    /// The file's text as last loaded, to tell what a reload could not apply.
    pub running: toml::Table,
    /// Where new SMTP connections get their context.
    pub ingress: ContextSwap,
    /// Delivery in this process, if enabled (its policy rules are reloaded).
    pub delivery: Option<Arc<DeliveryContext>>,
}

/// What every ingress context of the process shares, reloads or not: the queue, the
/// recorder, the store, the AUTH guard with its failure counts, and the host name and
/// postmaster (`[server]` needs a restart).
pub(crate) struct Shared {
    pub hostname: String,
    pub queue: sealgate_queue::Queue,
    pub recorder: sealgate_queue::Recorder,
    pub store: sealgate_store::Store,
    pub postmaster: Option<sealgate_types::EmailAddress>,
    pub auth: Arc<sealgate_ingress::AuthGuard>,
}

impl Shared {
    /// The shared parts of a running context.
    fn of(ctx: &IngressContext) -> Self {
        Self {
            hostname: ctx.hostname.clone(),
            queue: ctx.queue.clone(),
            recorder: ctx.recorder.clone(),
            store: ctx.store.clone(),
            postmaster: ctx.postmaster.clone(),
            auth: ctx.auth.clone(),
        }
    }
}

/// The ingress context for `cfg` over `shared`: the parts a reload changes (certificate,
/// relay clients, tenants, session limits) read from `cfg`.
pub(crate) fn ingress_context(cfg: &Config, shared: Shared) -> anyhow::Result<IngressContext> {
    let tenants = Tenants::from_config(&cfg.relay)?;
    let inbound = if cfg.arc.is_some() || tenants.need_dkim() {
        let resolver = sealgate_dns::plain_resolver(&crate::wiring::dns_config(cfg))
            .context("setting up the DNS resolver ([dns]) for DKIM and ARC checks")?;
        let timeout = cfg.dns.timeout.0 * u32::try_from(cfg.dns.attempts.max(1)).unwrap_or(1) * 2;
        Some(Arc::new(sealgate_crypto::arc::Inbound::new(
            resolver,
            &shared.hostname,
            timeout,
        )))
    } else {
        None
    };
    Ok(IngressContext {
        hostname: shared.hostname,
        queue: shared.queue,
        recorder: shared.recorder,
        store: shared.store,
        tls: server_tls(cfg)?,
        relay: RelayClients::from_config(&cfg.relay).context("relay.client senders")?,
        tenants,
        inbound,
        postmaster: shared.postmaster,
        limits: crate::serve::session_limits(cfg),
        auth: shared.auth,
    })
}

/// TLS for `[tls]`, `None` (with a warning) when there is none.
pub(crate) fn server_tls(cfg: &Config) -> anyhow::Result<Option<ServerTls>> {
    match &cfg.tls {
        Some(t) => Ok(Some(load_tls(
            &t.cert_file,
            &t.key_file,
            t.client_ca_file.as_deref(),
        )?)),
        None => {
            warn!("no [tls] configured: STARTTLS and AUTH are not offered");
            Ok(None)
        }
    }
}

/// A configuration file's text as a table, for comparing one load with the next ("": none).
pub(crate) fn raw_table(text: &str) -> anyhow::Result<toml::Table> {
    toml::from_str(text).context("parsing the configuration file as TOML")
}

impl Reloader {
    /// Installs the SIGHUP handler, then reloads on each SIGHUP until shutdown.
    pub(crate) fn spawn(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hup.recv() => if got.is_none() { return },
                    _ = shutdown.wait_for(|d| *d) => return,
                }
                notify(&[sd_notify::NotifyState::Reloading, monotonic_now()]);
                info!("SIGHUP: reloading the configuration");
                match self.reload().await {
                    Ok(()) => {}
                    Err(e) => error!(
                        error = %format!("{e:#}"),
                        "reload failed: the running configuration stays in force"
                    ),
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
        });
        Ok(())
    }

    /// One reload: everything is built first and put in place only when all of it loaded.
    async fn reload(&mut self) -> anyhow::Result<()> {
        let Some(file) = self.file.clone() else {
            info!("no configuration file (embedded defaults): nothing to reload");
            return Ok(());
        };
        let (cfg, text) = crate::cli::load_config(Some(&file))
            .with_context(|| format!("loading {}", file.display()))?;
        let raw = raw_table(&text)?;
        let rules = crate::wiring::rules(&cfg)
            .map_err(|p| anyhow::anyhow!("invalid [policy]: {}", p.join("; ")))?;
        // [returns] is restart-only: the queue keeps the return paths it started with.
        let ingress = ingress_context(&cfg, Shared::of(&self.ingress.current()))?;
        let dkim = match &self.delivery {
            Some(d) => {
                Some(crate::wiring::all_dkim_keys(&cfg, d.queue.store(), d.queue.key_ring()).await?)
            }
            None => None,
        };
        // Everything loaded: put it in place.
        self.ingress.replace(Arc::new(ingress));
        if let Some(d) = &self.delivery {
            d.rules.replace(Arc::new(rules));
            d.routes.replace(Arc::new(crate::wiring::routes(&cfg)));
        }
        if let (Some(d), Some(keys)) = (&self.delivery, dkim) {
            d.dkim.replace(Arc::new(keys));
        }
        for setting in restart_only_changes(&self.running, &raw) {
            warn!(
                setting = %setting,
                "changed in the configuration file; takes effect after a restart"
            );
        }
        self.running = raw;
        info!(
            file = %file.display(),
            tls = cfg.tls.as_ref().map_or("none".to_owned(), |t| t.cert_file.display().to_string()),
            applies_to = "new connections (certificate, relay clients, session limits) and messages planned from now on (policy, routes, DKIM keys)",
            "configuration reloaded"
        );
        Ok(())
    }
}

/// The settings that differ between `old` and `new` and that a reload does not apply, as
/// `section` or `section.key`.
pub(crate) fn restart_only_changes(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    let sections: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for section in sections {
        let (a, b) = (old.get(section), new.get(section));
        if a == b || RELOADED_SECTIONS.contains(&section.as_str()) {
            continue;
        }
        let reloaded_keys = match section.as_str() {
            "smtp" => Some(RELOADED_SMTP),
            "delivery" => Some(RELOADED_DELIVERY),
            _ => None,
        };
        if let Some(reloaded) = reloaded_keys {
            let empty = toml::Table::new();
            let a = a.and_then(toml::Value::as_table).unwrap_or(&empty);
            let b = b.and_then(toml::Value::as_table).unwrap_or(&empty);
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            out.extend(
                keys.into_iter()
                    .filter(|k| a.get(*k) != b.get(*k) && !reloaded.contains(&k.as_str()))
                    .map(|k| format!("{section}.{k}")),
            );
        } else {
            out.push(section.clone());
        }
    }
    out
}

/// Tells the service manager (`NOTIFY_SOCKET`, systemd's `Type=notify`), if there is one.
pub(crate) fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify the service manager");
    }
}

/// `MONOTONIC_USEC=` of now, which systemd wants with `RELOADING=1`.
fn monotonic_now() -> sd_notify::NotifyState<'static> {
    sd_notify::NotifyState::monotonic_usec_now().unwrap_or(sd_notify::NotifyState::Ready)
}

#[cfg(test)]
mod tests {
    use super::restart_only_changes;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn only_what_a_reload_cannot_apply_is_named() {
        let old = table(
            "[server]\nhostname = \"a\"\n[smtp]\nmax_recipients = 10\nmax_connections = 5\n\
             [tls]\ncert_file = \"a.pem\"\nkey_file = \"k.pem\"\n[policy]\ndefault_level = \"required\"\n",
        );
        let new = table(
            "[server]\nhostname = \"b\"\n[smtp]\nmax_recipients = 20\nmax_connections = 6\n\
             [tls]\ncert_file = \"b.pem\"\nkey_file = \"k.pem\"\n[policy]\ndefault_level = \"preferred\"\n\
             [delivery]\nmax_connections = 3\n[[delivery.route]]\nname = \"r\"\n",
        );
        assert_eq!(
            restart_only_changes(&old, &new),
            vec!["delivery.max_connections", "server", "smtp.max_connections"]
        );
        assert!(restart_only_changes(&new, &new).is_empty());
    }
}
