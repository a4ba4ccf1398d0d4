//! `sealgate serve`: wires store, key ring, queue, ingress, delivery and the secure portal,
//! then runs until SIGTERM/SIGINT, reloading on SIGHUP (`reload.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sealgate_config::{Config, ListenerTls};
use sealgate_crypto::KeyRing;
use sealgate_ingress::{
    AuthGuard, AuthSettings, BoundListener, ConnectionLimits, Server, SessionLimits, ThrottleLimits,
};
use sealgate_queue::{Queue, Recorder};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cli::{open_store, redact};

/// Runs the relay on `cfg`, loaded from `file` (`None`: the embedded defaults) whose text was
/// `text`.
pub(crate) async fn serve(
    cfg: Config,
    text: &str,
    file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    // One TLS crypto provider for the whole process (aws-lc-rs).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The text the configuration was loaded from, to name what a reload cannot apply.
    let running = crate::reload::raw_table(text)?;
    if file.is_none() {
        info!(
            database = %cfg.database_url(),
            listener = "127.0.0.1:2525",
            relay = "127.0.0.0/8, ::1",
            "no config file given: running on the embedded defaults (SQLite under ./data, SMTP on 127.0.0.1:2525, relay for loopback only)"
        );
    }
    let store = open_store(&cfg).await?;
    let schema = crate::cmd_db::ready_schema(&store).await?;
    crate::cmd_db::warn_if_owner(&store, &schema);
    info!(database = %redact(&cfg.database_url()), "database ready");
    let key_file = cfg.seal_key_file();
    let (keys, created) = KeyRing::load_or_create(&key_file)
        .with_context(|| format!("loading the sealing key ring {}", key_file.display()))?;
    if created {
        warn!(file = %key_file.display(), key_id = keys.active_id(), "created a new sealing key: back this file up");
    }
    let listeners = bind_listeners(&cfg).await?;
    let queue = Queue::new(store.clone(), Arc::new(keys))
        .with_returns(cfg.returns.as_ref().map(|r| r.domain.as_str()));
    // One group commit for the node: sessions' AUTH events and delivery's decisions and marks.
    let recorder = Recorder::start(queue.clone(), crate::wiring::node_owner(&cfg));
    let shared = crate::reload::Shared {
        hostname: cfg.server.hostname.clone(),
        queue,
        recorder: recorder.clone(),
        store: store.clone(),
        postmaster: cfg.postmaster(),
        auth: Arc::new(AuthGuard::new(auth_settings(&cfg))?),
    };
    let ctx = Arc::new(crate::reload::ingress_context(&cfg, shared)?);
    let limits = ConnectionLimits::new(cfg.smtp.max_connections, cfg.smtp.max_connections_per_ip);
    let shutdown = shutdown_on_signals()?;
    let mut live_delivery = None;
    let delivery = if cfg.delivery.enabled {
        let dctx =
            Arc::new(crate::wiring::delivery_context(&cfg, ctx.queue.clone(), recorder).await?);
        live_delivery = Some(dctx.clone());
        if let Some(sts) = dctx.discovery.mta_sts().cloned() {
            tokio::spawn(refresh_mta_sts(
                sts,
                cfg.mta_sts.refresh_interval.0,
                cfg.mta_sts.refresh_ahead.0,
                shutdown.clone(),
            ));
        }
        Some(tokio::spawn(sealgate_delivery::run(dctx, shutdown.clone())))
    } else {
        info!("delivery is disabled in this process ([delivery] enabled = false)");
        None
    };
    // Every node writes webhook events; those with [webhooks] enabled post them.
    let webhooks = if cfg.webhooks.enabled {
        let d = sealgate_webhooks::Dispatcher::new(
            store.clone(),
            ctx.queue.shared_key_ring(),
            sealgate_webhooks::Settings::from_config(&cfg.webhooks),
            crate::wiring::node_owner(&cfg),
        )
        .context("building the webhook client")?;
        Some(tokio::spawn(d.run(shutdown.clone())))
    } else {
        None
    };
    let portal = start_portal(&cfg, &ctx.queue, shutdown.clone()).await?;
    let checker = live_delivery.clone().map(|d| {
        std::sync::Arc::new(DeliveryChecker(d)) as std::sync::Arc<dyn sealgate_api::Checker>
    });
    let api = start_api(&cfg, &ctx.queue, checker, shutdown.clone()).await?;
    let retention = tokio::spawn(hourly_retention(store.clone(), shutdown.clone()));
    let server = Server::new(ctx, limits);
    crate::reload::Reloader {
        file,
        running,
        ingress: server.context_swap(),
        delivery: live_delivery,
    }
    .spawn(shutdown.clone())?;
    info!(hostname = %cfg.server.hostname, "sealgate ready");
    crate::reload::notify(&[sd_notify::NotifyState::Ready]);
    server
        .run(listeners, shutdown, cfg.server.shutdown_grace.0)
        .await;
    if let Some(d) = delivery {
        // Running transactions finish (bounded by the client timeouts); claims are released.
        let _ = d.await;
    }
    if let Some(p) = portal {
        // Open requests finish, bounded by the shutdown grace.
        let _ = p.await;
    }
    if let Some(a) = api {
        let _ = a.await;
    }
    if let Some(w) = webhooks {
        // Posts in flight finish (bounded by the webhook timeout) and are recorded.
        let _ = w.await;
    }
    let _ = retention.await;
    store.close().await;
    info!("sealgate stopped");
    Ok(ExitCode::SUCCESS)
}

async fn bind_listeners(cfg: &Config) -> anyhow::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for l in &cfg.smtp.listeners {
        let bound = BoundListener::bind(l.addr, l.tls == ListenerTls::Implicit).await?;
        info!(addr = %bound.local_addr, mode = l.tls.as_str(), "smtp listener bound");
        out.push(bound);
    }
    Ok(out)
}

/// Binds and starts the portal web server when `[portal] enabled`.
async fn start_portal(
    cfg: &Config,
    queue: &Queue,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if !cfg.portal.enabled {
        return Ok(None);
    }
    let settings = sealgate_portal::PortalSettings::from_config(cfg);
    let listener = sealgate_portal::bind(&settings)
        .await
        .context("starting the secure portal")?;
    info!(addr = %listener.local_addr, tls = listener.is_tls(), "portal listener bound");
    if !listener.is_tls() {
        warn!("portal serves plain HTTP: put a TLS-terminating proxy in front of it");
    }
    let ctx = sealgate_portal::PortalContext {
        store: queue.store().clone(),
        queue: queue.clone(),
        master: crate::wiring::portal_master_key(cfg)?,
        settings,
        hostname: cfg.server.hostname.clone(),
    };
    Ok(Some(tokio::spawn(sealgate_portal::run(
        ctx, listener, shutdown,
    ))))
}

/// `POST /v1/check` over this process's delivery: probes and decides as delivery would, with
/// the rules and routes of the moment, and sends nothing.
#[derive(Debug)]
struct DeliveryChecker(std::sync::Arc<sealgate_delivery::DeliveryContext>);

impl sealgate_api::Checker for DeliveryChecker {
    fn check<'a>(
        &'a self,
        address: &'a str,
        subject: &'a str,
        headers: &'a [(String, String)],
        requiretls: bool,
    ) -> sealgate_api::CheckFuture<'a> {
        Box::pin(async move {
            let d = &self.0;
            let mut all = headers.to_vec();
            all.push(("Subject".to_owned(), subject.to_owned()));
            let facts = sealgate_policy::MessageFacts {
                subject: subject.to_owned(),
                headers: all,
                body_sample: String::new(),
                requiretls,
                phi_free: false,
            };
            let report = sealgate_delivery::check(
                d.resolver.as_ref(),
                &d.discovery,
                &d.rules.current(),
                &d.routes.current(),
                address,
                &facts,
            )
            .await;
            serde_json::to_value(&report).unwrap_or(serde_json::Value::Null)
        })
    }
}

/// The key store for `/v1/keys`: what `sealgate keys import|list|remove` do.
struct CliKeyBook {
    cfg: Config,
    store: sealgate_store::Store,
}

impl std::fmt::Debug for CliKeyBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CliKeyBook")
    }
}

fn key_json(row: &sealgate_store::StoredKey) -> serde_json::Value {
    serde_json::json!({
        "address": row.address,
        "kind": row.kind,
        "fingerprint": row.fingerprint,
        "expires": row.expires.map(sealgate_encrypt::fmt_time),
    })
}

impl sealgate_api::KeyBook for CliKeyBook {
    fn import<'a>(
        &'a self,
        data: &'a [u8],
        addresses: &'a [String],
        operator: &'a str,
    ) -> sealgate_api::KeyFuture<'a> {
        use sealgate_api::KeyBookError;
        Box::pin(async move {
            let outcome =
                crate::cmd_keys::import_data(&self.cfg, &self.store, data, addresses, operator)
                    .await
                    .map_err(|e| {
                        let text = format!("{e:#}");
                        if e.downcast_ref::<sealgate_store::StoreError>().is_some() {
                            KeyBookError::Failed(text)
                        } else {
                            KeyBookError::Refused(format!("the body: {text}"))
                        }
                    })?;
            if !outcome.refused.is_empty() {
                return Err(KeyBookError::Refused(format!(
                    "the body: nothing imported: {}",
                    outcome.refused.join("; ")
                )));
            }
            let imported: Vec<serde_json::Value> = outcome
                .imported
                .iter()
                .map(|r| {
                    let mut j = key_json(r);
                    j["validity"] = outcome.status_of(&r.fingerprint).into();
                    j
                })
                .collect();
            Ok(serde_json::json!({ "imported": imported, "notes": outcome.notes }))
        })
    }

    fn list<'a>(&'a self, address: Option<&'a str>) -> sealgate_api::KeyFuture<'a> {
        Box::pin(async move {
            let rows = crate::cmd_keys::listed(&self.cfg, &self.store, address)
                .await
                .map_err(|e| sealgate_api::KeyBookError::Failed(format!("{e:#}")))?;
            let keys: Vec<serde_json::Value> = rows.into_iter().map(|(_, j)| j).collect();
            Ok(serde_json::json!({ "keys": keys }))
        })
    }

    fn remove<'a>(
        &'a self,
        fingerprint: &'a str,
        address: Option<&'a str>,
        operator: &'a str,
    ) -> sealgate_api::KeyFuture<'a> {
        Box::pin(async move {
            let removed = crate::cmd_keys::remove_rows(&self.store, fingerprint, address, operator)
                .await
                .map_err(|e| sealgate_api::KeyBookError::Failed(format!("{e:#}")))?;
            let removed: Vec<serde_json::Value> = removed.iter().map(key_json).collect();
            Ok(serde_json::json!({ "removed": removed }))
        })
    }
}

/// Failed API authentications a client address may make per minute (then 429).
const AUTH_FAILURES_PER_MINUTE: u32 = 30;

/// Binds and starts the REST API when `[api] enabled`.
async fn start_api(
    cfg: &Config,
    queue: &Queue,
    checker: Option<std::sync::Arc<dyn sealgate_api::Checker>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if !cfg.api.enabled {
        return Ok(None);
    }
    let settings = sealgate_api::ApiSettings {
        listen: cfg.api.listen,
        tls: cfg.api.tls(cfg.tls.as_ref()),
        shutdown_grace: cfg.server.shutdown_grace.0,
    };
    let listener = sealgate_web::bind(settings.listen, settings.tls.as_ref())
        .await
        .context("starting the API ([api])")?;
    info!(addr = %listener.local_addr, tls = listener.is_tls(), "api listener bound");
    if !listener.is_tls() {
        warn!("the API serves plain HTTP on loopback: put a TLS-terminating proxy in front of it");
    }
    let ctx = std::sync::Arc::new(sealgate_api::ApiContext {
        store: queue.store().clone(),
        limit: sealgate_api::RateLimit::new(cfg.api.requests_per_minute),
        auth_failures: sealgate_api::RateLimit::new(AUTH_FAILURES_PER_MINUTE),
        queue: queue.clone(),
        hostname: cfg.server.hostname.clone(),
        max_message_size: usize::try_from(cfg.smtp.max_message_size.0).unwrap_or(usize::MAX),
        max_recipients: cfg.smtp.max_recipients,
        checker,
        keys: Some(std::sync::Arc::new(CliKeyBook {
            cfg: cfg.clone(),
            store: queue.store().clone(),
        }) as std::sync::Arc<dyn sealgate_api::KeyBook>),
        webhook_rotation_overlap: cfg.webhooks.rotation_overlap.0,
    });
    let app = sealgate_api::router(ctx);
    Ok(Some(tokio::spawn(sealgate_web::run_app(
        app,
        listener,
        settings.shutdown_grace,
        shutdown,
    ))))
}

/// Retention, hourly until shutdown (the first pass at start): empties the content of portal
/// messages whose links all ended (whether or not the portal is enabled now, so content left
/// from when it was still goes), and removes idempotency keys past their 24 hours.
async fn hourly_retention(store: sealgate_store::Store, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|d| *d) => return,
        }
        let now = sealgate_types::time::now_micros();
        if let Err(e) = crate::portal_jobs::retention_once(&store, now).await {
            warn!(error = %format!("{e:#}"), "portal retention failed; trying again in an hour");
        }
        // Idempotency keys are honoured for 24 hours; their rows go after that.
        match store.prune_idempotency(now - 24 * 3600 * 1_000_000).await {
            Ok(0) => {}
            Ok(n) => info!(rows = n, "expired idempotency keys removed"),
            Err(e) => {
                warn!(error = %e, "removing expired idempotency keys failed; trying again in an hour")
            }
        }
    }
}

pub(crate) fn session_limits(cfg: &Config) -> SessionLimits {
    let s = &cfg.smtp;
    SessionLimits {
        max_message_size: usize::try_from(s.max_message_size.0).unwrap_or(usize::MAX),
        max_recipients: s.max_recipients,
        command_timeout: s.command_timeout.0,
        data_timeout: s.data_timeout.0,
        data_total_timeout: s.data_total_timeout.0,
        max_auth_failures: s.max_auth_failures,
        max_errors: s.max_errors,
        max_hops: s.max_hops,
        max_passes: s.max_passes,
    }
}

fn auth_settings(cfg: &Config) -> AuthSettings {
    let s = &cfg.smtp;
    AuthSettings {
        concurrency: s.auth_concurrency,
        cache_ttl: s.auth_cache_ttl.0,
        throttle: ThrottleLimits {
            per_user: s.auth_max_failures_per_user,
            per_client: s.auth_max_failures_per_ip,
            window: s.auth_failure_window.0,
        },
    }
}

/// A channel that turns true on the first SIGTERM or SIGINT.
fn shutdown_on_signals() -> anyhow::Result<watch::Receiver<bool>> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(
            signal = which,
            "shutting down: no new connections; open sessions may finish"
        );
        crate::reload::notify(&[sd_notify::NotifyState::Stopping]);
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Refreshes cached MTA-STS policies before they expire (RFC 8461 §10.2), until shutdown.
async fn refresh_mta_sts(
    sts: Arc<sealgate_discovery::mta_sts::MtaSts>,
    every: std::time::Duration,
    ahead: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|d| *d) => return,
        }
        let refreshed = sts.refresh_expiring(ahead).await;
        if refreshed > 0 {
            info!(refreshed, "MTA-STS policies refreshed");
        }
    }
}
