//! `sealgate webhooks add|list|remove|disable|enable|rotate|events|replay`: where events are
//! posted (see `sealgate-webhooks`). Every change is audited.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use sealgate_config::Config;
use sealgate_crypto::KeyRing;
use sealgate_store::{Store, WebhookReplay};
use sealgate_types::time::{now_micros, rfc3339_micros};
use sealgate_webhooks::{Endpoints, WebhookError};

/// `sealgate webhooks …`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Add an endpoint; prints its signing secret once (whsec_…). Audited.
    Add {
        /// Where events are posted: https://… (http://… only to webhooks.allow_networks).
        url: String,
        /// Event types, comma-separated (message.received, recipient.delivered, …), or all.
        #[arg(long, value_delimiter = ',', default_value = "all")]
        events: Vec<String>,
        /// Only the final events of a recipient (delivered, bounced, returned) and the
        /// portal's and security events: no received, decided, deferred or held.
        #[arg(long)]
        final_only: bool,
        /// v1 (HMAC-SHA256 with a shared secret, printed) or v1a (Ed25519: the public key
        /// whpk_… is printed, the private key stays here).
        #[arg(long, default_value = "v1")]
        signature: String,
    },
    /// List the endpoints (never secrets).
    List,
    /// Remove an endpoint and its undelivered events. Audited.
    Remove {
        /// The endpoint id (wh_…).
        id: String,
    },
    /// Disable an endpoint: its events wait, and none are written for it. Audited.
    Disable {
        /// The endpoint id.
        id: String,
    },
    /// Enable a disabled endpoint (one that answered 410 Gone, or was disabled): its waiting
    /// events are due at once. Audited.
    Enable {
        /// The endpoint id.
        id: String,
    },
    /// Give an endpoint a new secret (printed once); the old one signs too for
    /// webhooks.rotation_overlap. Audited.
    Rotate {
        /// The endpoint id.
        id: String,
    },
    /// List events: dead ones by default.
    Events {
        /// pending, delivered, dead or all.
        #[arg(long, default_value = "dead")]
        state: String,
        /// Only this endpoint's.
        #[arg(long)]
        endpoint: Option<String>,
        /// Written since (RFC 3339, or an age such as 2h); default: all kept.
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Post events written in a time range again (dead ones; with --include-delivered, all).
    /// Audited.
    Replay {
        /// From (RFC 3339, or an age such as 2h).
        #[arg(long)]
        since: String,
        /// To (RFC 3339, or an age); default: now.
        #[arg(long)]
        until: Option<String>,
        /// Only this endpoint's.
        #[arg(long)]
        endpoint: Option<String>,
        /// Delivered events too (a receiver that lost what it had).
        #[arg(long)]
        include_delivered: bool,
    },
}

/// Runs a webhooks command.
pub(crate) async fn run(
    cfg: &Config,
    store: &Store,
    cmd: WebhooksCommand,
) -> anyhow::Result<ExitCode> {
    let key_file = cfg.seal_key_file();
    let (ring, created) = KeyRing::load_or_create(&key_file)
        .with_context(|| format!("loading the sealing key ring {}", key_file.display()))?;
    if created {
        eprintln!(
            "created a new sealing key ring {}: back it up; every node needs the same one",
            key_file.display()
        );
    }
    let operator = crate::cmd_users::operator();
    let ep = Endpoints {
        store,
        ring: &ring,
        operator: &operator,
    };
    let result = match cmd {
        WebhooksCommand::Add {
            url,
            events,
            final_only,
            signature,
        } => ep.add(&url, &events, final_only, &signature).await.map(|added| {
            println!("{}", added.secret);
            let what = if added.scheme == "v1a" {
                "its public key (give it to the receiver: Standard Webhooks, webhook-signature v1a)"
            } else {
                "its signing secret's only copy (give it to the receiver: Standard Webhooks, \
                 webhook-signature v1)"
            };
            eprintln!(
                "endpoint {} added for {}; the line above is {what}",
                added.id,
                added.events.join(", ")
            );
            if url.starts_with("http://") {
                eprintln!(
                    "note: plain http:// is posted to only in webhooks.allow_networks; use https://"
                );
            }
        }),
        WebhooksCommand::List => ep.list().await.map(|eps| {
            if eps.is_empty() {
                println!("no webhook endpoints (add one: sealgate webhooks add URL)");
            }
            for e in eps {
                let state = match (&e.disabled_at, &e.failing_since) {
                    (Some(at), _) => format!(
                        "disabled {} ({})",
                        rfc3339_micros(*at),
                        e.disabled_reason.as_deref().unwrap_or("")
                    ),
                    (None, Some(since)) => format!("failing since {}", rfc3339_micros(*since)),
                    (None, None) => "ok".to_owned(),
                };
                println!(
                    "{}  {}  events={}  {state}",
                    e.id,
                    e.url,
                    e.events.join(",")
                );
            }
        }),
        WebhooksCommand::Remove { id } => ep
            .remove(&id)
            .await
            .map(|()| println!("removed {id} and its undelivered events")),
        WebhooksCommand::Disable { id } => ep
            .set_disabled(&id, Some("disabled by an operator"))
            .await
            .map(|()| println!("disabled {id}: its events wait until it is enabled")),
        WebhooksCommand::Enable { id } => ep
            .set_disabled(&id, None)
            .await
            .map(|()| println!("enabled {id}: its waiting events are due now")),
        WebhooksCommand::Rotate { id } => ep
            .rotate(&id, cfg.webhooks.rotation_overlap.0)
            .await
            .map(|secret| {
                println!("{secret}");
                eprintln!(
                    "{id} signs with this new secret now, and with the old one too for {}",
                    cfg.webhooks.rotation_overlap
                );
            }),
        WebhooksCommand::Events {
            state,
            endpoint,
            since,
            limit,
        } => {
            let state = match state.as_str() {
                "all" => None,
                "pending" | "delivered" | "dead" => Some(state.as_str()),
                other => anyhow::bail!("--state {other:?}: use pending, delivered, dead or all"),
            };
            let since = since
                .as_deref()
                .map(crate::cmd_audit::parse_since)
                .transpose()?
                .unwrap_or(0);
            let rows = store
                .webhook_events(state, endpoint.as_deref(), since, limit)
                .await?;
            for r in &rows {
                println!(
                    "{}  {}  {}  {}  {}  attempts={}  {}",
                    rfc3339_micros(r.created_at),
                    r.event_id,
                    r.endpoint_id,
                    r.event_type,
                    r.state,
                    r.attempts,
                    r.last_status.as_deref().unwrap_or("-")
                );
            }
            eprintln!("{} events", rows.len());
            Ok(())
        }
        WebhooksCommand::Replay {
            since,
            until,
            endpoint,
            include_delivered,
        } => {
            let sel = WebhookReplay {
                since: crate::cmd_audit::parse_since(&since)?,
                until: until
                    .as_deref()
                    .map(crate::cmd_audit::parse_since)
                    .transpose()?
                    .unwrap_or_else(|| now_micros() + 1),
                endpoint_id: endpoint,
                include_delivered,
            };
            ep.replay(&sel).await.map(|n| {
                println!("{n} events are due again");
            })
        }
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(WebhookError::Invalid(why) | WebhookError::NotFound(why)) => {
            eprintln!("{why}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
