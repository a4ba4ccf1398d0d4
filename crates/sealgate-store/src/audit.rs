//! The audit chain: appending under the head lock, reading, and waiting for new rows.
//!
//! Every transaction that appends audit rows first runs
//! `UPDATE audit_head SET seq = seq + 1 … RETURNING seq, hash`. On PostgreSQL that takes the
//! head's row lock until commit; on SQLite the transaction already holds the database write lock
//! (`BEGIN IMMEDIATE`). Either way appenders are serialised, so each row gets the next seq and
//! the previous row's hash, and a rolled-back transaction leaves neither a row nor a gap.

use std::fmt::Write as _;

use sealgate_types::{AuditEntry, AuditRecord, chain_hash, time::now_micros};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::error::StoreError;
use crate::model::AuditFilter;
use crate::store::{Backend, Store};

const AUDIT_COLUMNS: &str = "seq, at, kind, message_id, recipient, data, prev_hash, hash";

/// Appends one audit row inside `tx`, bumping the head first. Call it before any other write
/// in the transaction (the bump is what orders concurrent appenders), once per row.
///
/// When the row announces a webhook event, the event's outbox rows are written too (see
/// `webhooks::fan_out_in_tx`).
pub(crate) async fn append_in_tx(
    tx: &mut Transaction<'static, Any>,
    rec: &AuditRecord,
) -> Result<AuditEntry, sqlx::Error> {
    append_after(tx, rec, None).await
}

/// Appends `recs` in order inside `tx` (see [`append_in_tx`]); each row's webhook event may read
/// the one before it (a delivery's attempt).
pub(crate) async fn append_all_in_tx(
    tx: &mut Transaction<'static, Any>,
    recs: &[AuditRecord],
) -> Result<(), sqlx::Error> {
    let mut before = None;
    for rec in recs {
        append_after(tx, rec, before).await?;
        before = Some(rec);
    }
    Ok(())
}

async fn append_after(
    tx: &mut Transaction<'static, Any>,
    rec: &AuditRecord,
    before: Option<&AuditRecord>,
) -> Result<AuditEntry, sqlx::Error> {
    // A row that may announce a webhook event needs the enabled endpoints: on PostgreSQL they
    // come back with the head bump (no round trip of their own); SQLite asks in-process.
    let announcing = sealgate_types::webhook::may_announce(&rec.kind);
    let with_endpoints = announcing && (**tx).backend_name() == "PostgreSQL";
    let head = sqlx::query(if with_endpoints {
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash, \
         (SELECT string_agg(id || ' ' || events, '|') FROM webhook_endpoints \
         WHERE disabled_at IS NULL) AS endpoints"
    } else {
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"
    })
    .fetch_one(&mut **tx)
    .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let endpoints: Option<Option<String>> = if with_endpoints {
        Some(head.try_get("endpoints")?)
    } else {
        None
    };
    let data = rec.data.to_string();
    let at = now_micros();
    let hash = chain_hash(
        seq,
        at,
        &rec.kind,
        rec.message_id.as_deref(),
        rec.recipient.as_deref(),
        &data,
        &prev_hash,
    );
    let entry = AuditEntry {
        seq,
        at,
        kind: rec.kind.clone(),
        message_id: rec.message_id.clone(),
        recipient: rec.recipient.clone(),
        data,
        prev_hash,
        hash,
    };
    // The outbox rows of the event this row announces, if any endpoint takes it.
    let outbox = if announcing {
        crate::webhooks::plan_in_tx(tx, &entry, &rec.data, before, endpoints).await?
    } else {
        Vec::new()
    };
    if (**tx).backend_name() == "PostgreSQL" {
        // One round trip under the head's lock: the row, its outbox rows, the new head hash.
        let mut sql = String::from(
            "WITH a AS (INSERT INTO audit (seq, at, kind, message_id, recipient, data, \
             prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8))",
        );
        for (i, _) in outbox.iter().enumerate() {
            let p = 9 + i * 6;
            let _ = write!(
                sql,
                ", o{i} AS (INSERT INTO webhook_outbox (id, endpoint_id, seq, event_id, \
                 event_type, message_id, payload, created_at, state, attempts, next_attempt_at) \
                 VALUES (${}, ${}, $1, ${}, ${}, ${}, ${}, $2, 'pending', 0, $2))",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            );
        }
        sql.push_str(" UPDATE audit_head SET hash = $8 WHERE id = 1");
        let mut q = bind_entry(sqlx::query(AssertSqlSafe(sql)), &entry);
        for row in &outbox {
            q = row.bind(q, entry.seq);
        }
        q.execute(&mut **tx).await?;
    } else {
        bind_entry(
            sqlx::query(
                "INSERT INTO audit (seq, at, kind, message_id, recipient, data, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ),
            &entry,
        )
        .execute(&mut **tx)
        .await?;
        for row in &outbox {
            row.insert(tx, &entry).await?;
        }
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(entry.hash.clone())
            .execute(&mut **tx)
            .await?;
    }
    Ok(entry)
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds `$1`…`$8` of an audit row's insert.
fn bind_entry<'q>(q: AnyQuery<'q>, e: &AuditEntry) -> AnyQuery<'q> {
    q.bind(e.seq)
        .bind(e.at)
        .bind(e.kind.clone())
        .bind(e.message_id.clone())
        .bind(e.recipient.clone())
        .bind(e.data.clone())
        .bind(e.prev_hash.clone())
        .bind(e.hash.clone())
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        message_id: row.try_get("message_id")?,
        recipient: row.try_get("recipient")?,
        data: row.try_get("data")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// `SELECT … WHERE seq > $1 AND <filter> ORDER BY seq <dir> LIMIT $n`, with the filter's
/// values bound in order. Only placeholders are spliced into the text, never values.
async fn select_audit(
    store: &Store,
    after_seq: i64,
    filter: &AuditFilter,
    limit: i64,
    newest_first: bool,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > $1");
    let mut n = 1;
    if filter.message_id.is_some() {
        n += 1;
        let _ = write!(sql, " AND message_id = ${n}");
    }
    if filter.recipient.is_some() {
        // Events about this recipient, and message-wide events (recipient column empty, like
        // `received`) of messages sent to it.
        n += 1;
        let _ = write!(
            sql,
            " AND (recipient = ${n} OR (recipient IS NULL AND message_id IN \
             (SELECT message_id FROM recipients WHERE rcpt = ${n})))"
        );
    }
    if filter.since.is_some() {
        n += 1;
        let _ = write!(sql, " AND at >= ${n}");
    }
    let dir = if newest_first { "DESC" } else { "ASC" };
    let _ = write!(sql, " ORDER BY seq {dir} LIMIT ${}", n + 1);

    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(after_seq);
    if let Some(m) = &filter.message_id {
        query = query.bind(m.clone());
    }
    if let Some(r) = &filter.recipient {
        query = query.bind(r.clone());
    }
    if let Some(t) = filter.since {
        query = query.bind(t);
    }
    let rows = query.bind(limit.max(0)).fetch_all(&store.pool).await?;
    rows.iter().map(entry_from_row).collect()
}

impl Store {
    /// Appends one audit record in its own transaction and returns the stored row.
    pub async fn append_audit(&self, rec: &AuditRecord) -> Result<AuditEntry, StoreError> {
        let mut tx = self.begin_write().await.map_err(StoreError::AppendAudit)?;
        let entry = append_in_tx(&mut tx, rec)
            .await
            .map_err(StoreError::AppendAudit)?;
        tx.commit().await.map_err(StoreError::AppendAudit)?;
        Ok(entry)
    }

    /// Appends several audit records in one transaction (all or none), in order.
    pub async fn append_audit_batch(&self, recs: &[AuditRecord]) -> Result<(), StoreError> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await.map_err(StoreError::AppendAudit)?;
        for rec in recs {
            append_in_tx(&mut tx, rec)
                .await
                .map_err(StoreError::AppendAudit)?;
        }
        tx.commit().await.map_err(StoreError::AppendAudit)
    }

    /// Up to `limit` rows matching `filter` with `seq > after_seq`, in ascending seq order.
    pub async fn audit_after(
        &self,
        after_seq: i64,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        select_audit(self, after_seq, filter, limit, false)
            .await
            .map_err(StoreError::ReadAudit)
    }

    /// The last `n` rows matching `filter`, returned in ascending seq order.
    pub async fn audit_last(
        &self,
        filter: &AuditFilter,
        n: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut rows = select_audit(self, 0, filter, n, true)
            .await
            .map_err(StoreError::ReadAudit)?;
        rows.reverse();
        Ok(rows)
    }

    /// The chain head: the last seq written (0 when empty) and its hash (genesis when empty).
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::ReadAudit)?;
        let seq = row.try_get("seq").map_err(StoreError::ReadAudit)?;
        let hash = row.try_get("hash").map_err(StoreError::ReadAudit)?;
        Ok((seq, hash))
    }

    /// On PostgreSQL, a listener woken whenever an audit row is committed anywhere
    /// (`LISTEN sealgate_audit`). `None` on SQLite: callers poll [`Store::audit_after`].
    pub async fn audit_listener(&self) -> Result<Option<AuditListener>, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        let mut inner = sqlx::postgres::PgListener::connect(self.url())
            .await
            .map_err(StoreError::Listen)?;
        inner
            .listen(AUDIT_CHANNEL)
            .await
            .map_err(StoreError::Listen)?;
        Ok(Some(AuditListener { inner }))
    }
}

/// The PostgreSQL notification channel the audit insert trigger signals on.
const AUDIT_CHANNEL: &str = "sealgate_audit";

/// Wakes up when new audit rows are committed (PostgreSQL only). Notifications can be missed
/// while the listener reconnects, so callers should also poll now and then.
#[derive(Debug)]
pub struct AuditListener {
    inner: sqlx::postgres::PgListener,
}

impl AuditListener {
    /// Waits for the next notification.
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.inner.recv().await.map_err(StoreError::Listen)?;
        Ok(())
    }
}
