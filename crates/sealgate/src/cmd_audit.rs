//! `sealgate audit verify|tail`

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use sealgate_store::{AuditFilter, Store};

use crate::cli::TailArgs;

/// Verifies the chain; exit 1 with the first problem when broken.
pub(crate) async fn verify(store: &Store) -> anyhow::Result<ExitCode> {
    let report = sealgate_audit::verify(store).await?;
    match &report.problem {
        None => {
            println!(
                "audit log ok: {} events, head {}",
                report.rows, report.head_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(problem) => {
            println!(
                "audit log BROKEN after checking {} events: {problem}",
                report.rows
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints past events, then follows new ones with -f.
pub(crate) async fn tail(store: &Store, args: TailArgs) -> anyhow::Result<ExitCode> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    // Stored addresses have lowercase domains (the local part is kept as given).
    let recipient = args.rcpt.map(|r| match r.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => r,
    });
    let filter = AuditFilter {
        message_id: args.message,
        recipient,
        since,
    };
    let json = args.json;
    let mut out = std::io::stdout();
    sealgate_audit::tail(store, &filter, args.lines.max(0), args.follow, |e| {
        let line = if json {
            sealgate_audit::format_json(e)
        } else {
            sealgate_audit::format_line(e)
        };
        // A closed pipe (e.g. `| head`) ends the output quietly.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// RFC 3339, or an age such as "15m" meaning that long ago.
pub(crate) fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    match sealgate_config::HumanDuration::parse(s) {
        Ok(d) => {
            let ago = i64::try_from(d.0.as_micros()).context("--since is too far back")?;
            Ok(sealgate_types::time::now_micros() - ago)
        }
        Err(_) => {
            bail!("--since {s:?}: use RFC 3339 (2026-11-24T08:00:00Z) or an age (15m, 2h, 7d)")
        }
    }
}
