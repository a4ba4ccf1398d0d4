//! `sealgate audit tail [-f]`: the last rows, then new ones as they are written.

use std::time::Duration;

use sealgate_store::{AuditFilter, AuditListener, Store};
use sealgate_types::AuditEntry;

use crate::error::AuditError;

/// SQLite has no notifications: poll this often.
const SQLITE_POLL: Duration = Duration::from_millis(250);
/// PostgreSQL notifies, but a notification can be lost while the listener reconnects: poll
/// this often anyway.
const POSTGRES_FALLBACK_POLL: Duration = Duration::from_secs(2);
/// Rows read per query while following.
const PAGE: i64 = 1000;

/// Hands the last `initial` rows matching `filter` to `out`, oldest first. With `follow`, then
/// waits for new rows (woken by PostgreSQL notifications, with a poll every 2 s as a fallback;
/// on SQLite a poll every 250 ms) and hands over each matching one as it is committed. Following
/// never ends by itself: the caller drops the future to stop.
pub async fn tail(
    store: &Store,
    filter: &AuditFilter,
    initial: i64,
    follow: bool,
    mut out: impl FnMut(&AuditEntry),
) -> Result<(), AuditError> {
    // Listen before reading, so nothing written in between goes unnoticed.
    let mut listener = if follow {
        store.audit_listener().await?
    } else {
        None
    };
    let (head_seq, _) = store.audit_head().await?;
    let rows = store.audit_last(filter, initial.max(0)).await?;
    let mut cursor = head_seq;
    for e in &rows {
        out(e);
        cursor = cursor.max(e.seq);
    }
    if !follow {
        return Ok(());
    }
    loop {
        cursor = drain(store, filter, cursor, &mut out).await?;
        wait(&mut listener).await?;
    }
}

/// Hands over every matching row after `cursor`; returns the new cursor.
///
/// Seqs become visible in order (appenders hold the head lock until commit), and every row up
/// to a committed head is visible, so reading the head first lets the cursor skip past rows
/// that do not match without ever skipping one that was not yet visible.
async fn drain(
    store: &Store,
    filter: &AuditFilter,
    mut cursor: i64,
    out: &mut impl FnMut(&AuditEntry),
) -> Result<i64, AuditError> {
    loop {
        let (head_seq, _) = store.audit_head().await?;
        let rows = store.audit_after(cursor, filter, PAGE).await?;
        let full = rows.len() as i64 == PAGE;
        for e in &rows {
            out(e);
            cursor = e.seq;
        }
        if !full {
            return Ok(cursor.max(head_seq));
        }
    }
}

async fn wait(listener: &mut Option<AuditListener>) -> Result<(), AuditError> {
    match listener {
        Some(l) => {
            // `recv` is cancel-safe; losing the race to the timer just means a poll.
            tokio::select! {
                r = l.recv() => r?,
                () = tokio::time::sleep(POSTGRES_FALLBACK_POLL) => {}
            }
        }
        None => tokio::time::sleep(SQLITE_POLL).await,
    }
    Ok(())
}
