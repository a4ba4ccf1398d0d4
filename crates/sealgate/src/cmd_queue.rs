//! `sealgate queue list|show|retry|bounce`. There is no silent delete: giving up on a message
//! is a bounce, with a DSN to its sender and an audit event per recipient.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sealgate_audit::AuditEvent;
use sealgate_config::Config;
use sealgate_crypto::KeyRing;
use sealgate_queue::{NoticeKind, NoticeRecipient, Queue};
use sealgate_store::{AuditFilter, OperatorAction, Store};
use sealgate_types::{RecipientState, time::rfc3339_micros};

use crate::cli::QueueCommand;

/// Runs a queue command.
pub(crate) async fn run(
    cfg: &Config,
    store: &Store,
    cmd: QueueCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        QueueCommand::List { state, limit } => list(store, state.as_deref(), limit).await,
        QueueCommand::Show { id } => show(store, &id).await,
        QueueCommand::Retry { id } => retry(store, &id).await,
        QueueCommand::Bounce { id } => bounce(cfg, store, &id).await,
    }
}

async fn list(store: &Store, state: Option<&str>, limit: i64) -> anyhow::Result<ExitCode> {
    let rows = if state == Some("held") {
        store.list_held(limit).await?
    } else {
        let state: Option<RecipientState> = state
            .map(str::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--state: {e} (or held)"))?;
        store.list_recipients(state, limit).await?
    };
    for r in rows {
        let next = if r.state.is_final() {
            "-".to_owned()
        } else {
            rfc3339_micros(r.next_attempt_at)
        };
        println!(
            "{}  {:<9} attempts={} next={} {}  {}",
            r.message_id,
            r.state,
            r.attempts,
            next,
            r.rcpt,
            r.last_reply.as_deref().unwrap_or_default()
        );
        if let Some(hold) = held(&r) {
            println!("    on hold by policy: {hold}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A deferred recipient's hold, for operators: its name (`portal-disabled`, ...).
fn held(r: &sealgate_store::RecipientRow) -> Option<&str> {
    (r.state == RecipientState::Deferred)
        .then_some(r.held.as_deref())
        .flatten()
}

async fn show(store: &Store, id: &str) -> anyhow::Result<ExitCode> {
    let Some(m) = store.message(id).await? else {
        eprintln!("no message {id}");
        return Ok(ExitCode::from(1));
    };
    println!("message   {}", m.id);
    println!(
        "received  {} from {} ({})",
        rfc3339_micros(m.received_at),
        m.client_ip,
        m.helo
    );
    println!("sender    <{}>", m.sender);
    println!("size      {} bytes, sha256 {}", m.size, m.body_sha256);
    println!("tls       {}", m.tls.as_deref().unwrap_or("none"));
    println!("auth      {}", m.auth_user.as_deref().unwrap_or("-"));
    println!(
        "msg-id    {}",
        m.header_message_id.as_deref().unwrap_or("-")
    );
    println!("recipients:");
    for r in store.recipients_of(id).await? {
        println!(
            "  {:<9} attempts={} {}  {}",
            r.state,
            r.attempts,
            r.rcpt,
            r.last_reply.as_deref().unwrap_or_default()
        );
        if let Some(hold) = held(&r) {
            println!("            on hold by policy: {hold}");
        }
        if let (Some(owner), Some(until)) = (&r.lease_owner, r.lease_until) {
            println!(
                "            held by {owner} until {}",
                rfc3339_micros(until)
            );
        }
        // Left by a node that stopped mid-send: the next claim records a possible duplicate.
        if let (Some(owner), Some(since)) = (&r.sending_owner, r.sending_since) {
            println!(
                "            being sent by {owner} since {} (outcome not recorded yet)",
                rfc3339_micros(since)
            );
        }
    }
    println!("audit:");
    let filter = AuditFilter {
        message_id: Some(id.to_owned()),
        ..AuditFilter::default()
    };
    for e in store.audit_after(0, &filter, 10_000).await? {
        println!("  {}", sealgate_audit::format_line(&e));
    }
    Ok(ExitCode::SUCCESS)
}

async fn retry(store: &Store, id: &str) -> anyhow::Result<ExitCode> {
    let op = crate::cmd_users::operator();
    let audit = |rcpt: &str| {
        AuditEvent::RetryRequested {
            message_id: id.to_owned(),
            recipient: rcpt.to_owned(),
            operator: op.clone(),
        }
        .into_record()
    };
    let (changed, inflight) = store
        .operator_action(id, OperatorAction::RetryNow, &audit)
        .await?;
    report(id, "due now", &changed, inflight)
}

async fn bounce(cfg: &Config, store: &Store, id: &str) -> anyhow::Result<ExitCode> {
    let Some(m) = store.message(id).await? else {
        eprintln!("no message {id}");
        return Ok(ExitCode::from(1));
    };
    let waiting: Vec<String> = store
        .recipients_of(id)
        .await?
        .into_iter()
        .filter(|r| matches!(r.state, RecipientState::Queued | RecipientState::Deferred))
        .map(|r| r.rcpt)
        .collect();
    let op = crate::cmd_users::operator();
    let reason = format!("5.0.0 delivery abandoned by an operator ({op})");
    if !waiting.is_empty() {
        // The DSN first: if it cannot be queued, nothing is bounced and the command fails, so
        // the sender can never be left without a notice.
        let keys = KeyRing::load(&cfg.seal_key_file())
            .context("loading the sealing key ring (needed for the DSN)")?;
        let queue = Queue::new(store.clone(), Arc::new(keys));
        let failed: Vec<NoticeRecipient> = waiting
            .iter()
            .map(|r| NoticeRecipient {
                recipient: r.clone(),
                reason: reason.clone(),
                remote_mta: None,
            })
            .collect();
        let build = sealgate_queue::dsn_builder(&cfg.server.hostname);
        let dsn = queue
            .queue_notice(
                NoticeKind::Failure,
                id,
                &m.sender,
                m.received_at,
                &failed,
                &build,
            )
            .await
            .context("queueing the DSN; nothing was bounced")?;
        match dsn {
            Some(dsn) => println!("DSN {dsn} queued to <{}>", m.sender),
            None => println!("null sender: no DSN"),
        }
    }
    let audit = |rcpt: &str| {
        AuditEvent::Bounced {
            message_id: id.to_owned(),
            recipient: rcpt.to_owned(),
            reason: reason.clone(),
        }
        .into_record()
    };
    let (changed, inflight) = store
        .operator_action(id, OperatorAction::Bounce, &audit)
        .await?;
    if changed != waiting {
        eprintln!(
            "note: recipients changed state meanwhile; the DSN lists {waiting:?}, bounced now: {changed:?}"
        );
    }
    report(id, "bounced", &changed, inflight)
}

fn report(id: &str, what: &str, changed: &[String], inflight: i64) -> anyhow::Result<ExitCode> {
    for r in changed {
        println!("{id} {r}: {what}");
    }
    if inflight > 0 {
        println!(
            "{inflight} recipient(s) are being delivered right now and were left alone; run the command again shortly"
        );
    }
    if changed.is_empty() && inflight == 0 {
        eprintln!("{id}: no waiting recipients (unknown id, or all delivered or bounced)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
