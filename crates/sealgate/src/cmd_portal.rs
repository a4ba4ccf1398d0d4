//! `sealgate portal list|revoke|extend|purge`: the grants (links) of the secure portal. Every
//! change is audited with the operator who made it; nothing here ever shows a token, a code
//! or message content.

use std::process::ExitCode;

use anyhow::bail;
use sealgate_audit::AuditEvent;
use sealgate_store::{GrantRow, Store};
use sealgate_types::time::{now_micros, rfc3339_micros};

use crate::cli::PortalCommand;
use crate::cmd_users::operator;

const DAY_MICROS: i64 = 86_400_000_000;
/// Most days `extend` adds at once (like `portal.grant_days`).
const MAX_DAYS: u32 = 3650;

/// Runs a portal command.
pub(crate) async fn run(store: &Store, cmd: PortalCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PortalCommand::List { json } => list(store, json).await,
        PortalCommand::Revoke { id } => revoke(store, &id).await,
        PortalCommand::Extend { id, days } => extend(store, &id, days).await,
        PortalCommand::Purge => {
            let n = crate::portal_jobs::retention_once(store, now_micros()).await?;
            println!("purged {n} portal messages");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `revoked`, `expired`, `locked` or `active`, at `now`.
fn state(g: &GrantRow, now: i64) -> &'static str {
    if g.revoked_at.is_some() {
        "revoked"
    } else if g.expires_at <= now {
        "expired"
    } else if g.locked_until.is_some_and(|t| t > now) {
        "locked"
    } else {
        "active"
    }
}

async fn list(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let now = now_micros();
    let time = |t: Option<i64>| t.map(rfc3339_micros);
    for g in store.portal_grants().await? {
        if json {
            let line = serde_json::json!({
                "id": g.id,
                "state": state(&g, now),
                "recipient": g.recipient,
                "sender": g.sender,
                "portal_message_id": g.portal_message_id,
                "thread_id": g.thread_id,
                "created": rfc3339_micros(g.created_at),
                "expires": rfc3339_micros(g.expires_at),
                "revoked": time(g.revoked_at),
                "first_viewed": time(g.first_viewed_at),
                "locked_until": time(g.locked_until),
                "passphrase": g.passphrase_hash.is_some(),
            });
            println!("{line}");
        } else {
            println!(
                "{}\t{}\t{}\texpires {}\tviewed {}",
                g.id,
                state(&g, now),
                g.recipient,
                rfc3339_micros(g.expires_at),
                time(g.first_viewed_at).unwrap_or_else(|| "-".to_owned()),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(store: &Store, id: &str) -> anyhow::Result<ExitCode> {
    let Some(grant) = store.portal_grant(id).await? else {
        eprintln!("no portal grant {id}");
        return Ok(ExitCode::from(1));
    };
    let event = AuditEvent::PortalRevoked {
        grant_id: grant.id.clone(),
        operator: operator(),
        expires: grant.expires_at,
    };
    if !store
        .portal_revoke(&grant.id, now_micros(), &event.into_record())
        .await?
    {
        eprintln!("portal grant {id} was revoked already");
        return Ok(ExitCode::from(1));
    }
    println!("portal grant {id} revoked");
    Ok(ExitCode::SUCCESS)
}

/// The expiry after adding `days`: from the current expiry, or from `now` once it has passed.
fn extended(expires_at: i64, now: i64, days: u32) -> i64 {
    expires_at
        .max(now)
        .saturating_add(i64::from(days) * DAY_MICROS)
}

async fn extend(store: &Store, id: &str, days: u32) -> anyhow::Result<ExitCode> {
    if days == 0 || days > MAX_DAYS {
        bail!("DAYS must be from 1 to {MAX_DAYS}");
    }
    let Some(grant) = store.portal_grant(id).await? else {
        eprintln!("no portal grant {id}");
        return Ok(ExitCode::from(1));
    };
    let expires = extended(grant.expires_at, now_micros(), days);
    let event = AuditEvent::PortalExtended {
        grant_id: grant.id.clone(),
        operator: operator(),
        expires,
    };
    if !store
        .portal_extend(&grant.id, expires, &event.into_record())
        .await?
    {
        eprintln!("portal grant {id} is revoked or its message was purged: not extended");
        return Ok(ExitCode::from(1));
    }
    println!("portal grant {id} now expires {}", rfc3339_micros(expires));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extending_counts_from_the_expiry_or_from_now_once_it_passed() {
        assert_eq!(
            extended(10 * DAY_MICROS, 5 * DAY_MICROS, 2),
            12 * DAY_MICROS
        );
        assert_eq!(extended(3 * DAY_MICROS, 5 * DAY_MICROS, 2), 7 * DAY_MICROS);
    }

    #[test]
    fn a_grant_is_revoked_expired_locked_or_active() {
        let g = GrantRow {
            id: "g".into(),
            token_hash: "h".into(),
            portal_message_id: "p".into(),
            thread_id: "p".into(),
            recipient: "r@x.test".into(),
            sender: "s@x.test".into(),
            expires_at: 100,
            revoked_at: None,
            passphrase_hash: None,
            code_hash: None,
            code_expires_at: None,
            failed_attempts: 0,
            locked_until: Some(60),
            first_viewed_at: None,
            created_at: 0,
        };
        assert_eq!(state(&g, 50), "locked");
        assert_eq!(state(&g, 70), "active");
        assert_eq!(state(&g, 100), "expired");
        let revoked = GrantRow {
            revoked_at: Some(1),
            ..g
        };
        assert_eq!(state(&revoked, 50), "revoked");
    }
}
