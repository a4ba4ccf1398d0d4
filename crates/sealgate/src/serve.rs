//! `sealgate serve`: wires store, key ring, queue and ingress, then runs until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sealgate_config::{Config, ListenerTls};
use sealgate_crypto::KeyRing;
use sealgate_ingress::{
    BoundListener, ConnectionLimits, IngressContext, Server, SessionLimits, load_tls_acceptor,
};
use sealgate_queue::Queue;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::{open_store, redact};

/// Runs the relay.
pub async fn serve(cfg: Config, embedded_defaults: bool) -> anyhow::Result<ExitCode> {
    // One TLS crypto provider for the whole process (aws-lc-rs).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if embedded_defaults {
        info!(
            database = %cfg.database_url(),
            listener = "127.0.0.1:2525",
            relay = "127.0.0.0/8, ::1",
            "no config file given: running on the embedded defaults (SQLite under ./data, SMTP on 127.0.0.1:2525, relay for loopback only)"
        );
    }
    let store = open_store(&cfg).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    info!(database = %redact(&cfg.database_url()), "database ready");
    let key_file = cfg.seal_key_file();
    let (keys, created) = KeyRing::load_or_create(&key_file)
        .with_context(|| format!("loading the sealing key ring {}", key_file.display()))?;
    if created {
        warn!(file = %key_file.display(), key_id = keys.active_id(), "created a new sealing key: back this file up");
    }
    let tls = match &cfg.tls {
        Some(t) => Some(load_tls_acceptor(&t.cert_file, &t.key_file)?),
        None => {
            warn!("no [tls] configured: STARTTLS and AUTH are not offered");
            None
        }
    };
    let listeners = bind_listeners(&cfg).await?;
    let ctx = Arc::new(IngressContext {
        hostname: cfg.server.hostname.clone(),
        queue: Queue::new(store.clone(), Arc::new(keys)),
        store: store.clone(),
        tls,
        relay_networks: cfg.relay.networks.clone(),
        limits: session_limits(&cfg),
    });
    let limits = ConnectionLimits::new(cfg.smtp.max_connections, cfg.smtp.max_connections_per_ip);
    let shutdown = shutdown_on_signals()?;
    let delivery = if cfg.delivery.enabled {
        let dctx = Arc::new(crate::wiring::delivery_context(&cfg, ctx.queue.clone())?);
        if let Some(sts) = dctx.discovery.mta_sts().cloned() {
            tokio::spawn(refresh_mta_sts(
                sts,
                cfg.mta_sts.refresh_interval.0,
                cfg.mta_sts.refresh_ahead.0,
                shutdown.clone(),
            ));
        }
        Some(tokio::spawn(sealgate_delivery::worker::run(
            dctx,
            shutdown.clone(),
        )))
    } else {
        info!("delivery is disabled in this process ([delivery] enabled = false)");
        None
    };
    info!(hostname = %cfg.server.hostname, "sealgate ready");
    Server::new(ctx, limits)
        .run(listeners, shutdown, cfg.server.shutdown_grace.0)
        .await;
    if let Some(d) = delivery {
        // Running transactions finish (bounded by the client timeouts); claims are released.
        let _ = d.await;
    }
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

fn session_limits(cfg: &Config) -> SessionLimits {
    let s = &cfg.smtp;
    SessionLimits {
        max_message_size: usize::try_from(s.max_message_size.0).unwrap_or(usize::MAX),
        max_recipients: s.max_recipients,
        command_timeout: s.command_timeout.0,
        data_timeout: s.data_timeout.0,
        max_auth_failures: s.max_auth_failures,
        max_errors: s.max_errors,
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
