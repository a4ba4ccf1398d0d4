//! Changes to portal grants after the deposit: one-time codes, failed attempts and lockout,
//! sessions, views, replies, an operator's revoke and extend, and retention. Each is one
//! transaction with its audit records, audit first (see `portal`).

use sealgate_types::AuditRecord;
use sealgate_types::time::now_micros;
use sqlx::{Any, Row, Transaction};

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::portal::{
    GRANT_COLUMNS, GrantRow, PortalMessageRow, PortalOutgoing, PortalSessionRow, grant_from_row,
    insert_outgoing, insert_portal_message, lock_audit_head,
};
use crate::store::Store;

fn portal_err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Portal { op, source }
}

/// Runs `sql` (binding `grant_id` as `$1`, then `extra`) and fails with `RowNotFound` when no
/// grant matched, so the caller's transaction rolls back.
async fn update_grant(
    tx: &mut Transaction<'static, Any>,
    sql: &'static str,
    grant_id: &str,
    extra: &[Option<i64>],
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query(sql).bind(grant_id.to_owned());
    for v in extra {
        q = q.bind(*v);
    }
    if q.execute(&mut **tx).await?.rows_affected() == 0 {
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

/// Grants ended (expired, or revoked) before `$1`, in SQL: what retention looks at.
const ENDED: &str = "(g.expires_at < $1 OR (g.revoked_at IS NOT NULL AND g.revoked_at < $1))";

impl Store {
    /// Stores a new one-time code (`code_hash`, valid until `code_expires_at`) on the grant
    /// and queues the email carrying it (`notice`, with its `received` record), with `audit`,
    /// in one transaction. Fails, writing nothing, for an unknown grant.
    pub async fn portal_set_code(
        &self,
        grant_id: &str,
        code_hash: &str,
        code_expires_at: i64,
        notice: &PortalOutgoing,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let fail = portal_err("set-code");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, &notice.2).await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        sqlx::query("UPDATE portal_grants SET code_hash = $2, code_expires_at = $3 WHERE id = $1")
            .bind(grant_id.to_owned())
            .bind(code_hash.to_owned())
            .bind(code_expires_at)
            .execute(&mut **tx)
            .await
            .map_err(&fail)
            .and_then(|done| match done.rows_affected() {
                0 => Err(fail(sqlx::Error::RowNotFound)),
                _ => Ok(()),
            })?;
        insert_outgoing(&mut tx, notice, now_micros())
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    /// A failed code or passphrase: `failed_attempts` goes up by one; when it reaches
    /// `max_attempts` the grant is locked until `lock_until`, `failed_attempts` starts again
    /// at 0 and the pending code is cleared. With `audit`. Returns the grant as it is now.
    pub async fn portal_fail_attempt(
        &self,
        grant_id: &str,
        max_attempts: i64,
        lock_until: i64,
        audit: &AuditRecord,
    ) -> Result<GrantRow, StoreError> {
        let fail = portal_err("fail-attempt");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        // Every right-hand side reads the row as it was before this UPDATE.
        let sql = format!(
            "UPDATE portal_grants SET \
             failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 \
                 ELSE failed_attempts + 1 END, \
             locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_until END, \
             code_hash = CASE WHEN failed_attempts + 1 >= $2 THEN NULL ELSE code_hash END, \
             code_expires_at = CASE WHEN failed_attempts + 1 >= $2 THEN NULL \
                 ELSE code_expires_at END \
             WHERE id = $1 RETURNING {GRANT_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(grant_id.to_owned())
            .bind(max_attempts.max(1))
            .bind(lock_until)
            .fetch_optional(&mut **tx)
            .await
            .map_err(&fail)?
            .ok_or_else(|| fail(sqlx::Error::RowNotFound))?;
        let grant = grant_from_row(&row).map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(grant)
    }

    /// A successful verification: the pending code and the failed attempts are cleared and
    /// `session` is stored, with `audit`. Fails, writing nothing, for an unknown grant.
    pub async fn portal_open_session(
        &self,
        grant_id: &str,
        session: &PortalSessionRow,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let fail = portal_err("open-session");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        update_grant(
            &mut tx,
            "UPDATE portal_grants SET code_hash = NULL, code_expires_at = NULL, \
             failed_attempts = 0 WHERE id = $1",
            grant_id,
            &[],
        )
        .await
        .map_err(&fail)?;
        sqlx::query(
            "INSERT INTO portal_sessions (id_hash, grant_id, csrf, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session.id_hash.clone())
        .bind(grant_id.to_owned())
        .bind(session.csrf.clone())
        .bind(session.expires_at)
        .execute(&mut **tx)
        .await
        .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    /// Audit events by themselves (a view, a download), and the grant's `first_viewed_at`
    /// set now when `first_view` (kept if already set).
    pub async fn portal_record(
        &self,
        grant_id: &str,
        first_view: bool,
        audit: &[AuditRecord],
    ) -> Result<(), StoreError> {
        let fail = portal_err("record");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        for rec in audit {
            append_in_tx(&mut tx, rec).await.map_err(&fail)?;
        }
        if first_view {
            update_grant(
                &mut tx,
                "UPDATE portal_grants SET first_viewed_at = COALESCE(first_viewed_at, $2) \
                 WHERE id = $1",
                grant_id,
                &[Some(now_micros())],
            )
            .await
            .map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)
    }

    /// A recipient's reply: its portal message (same thread), the outgoing message (origin
    /// `portal-reply`, with its `received` record) and `audit`, in one transaction.
    pub async fn portal_reply(
        &self,
        msg: &PortalMessageRow,
        outgoing: &PortalOutgoing,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let fail = portal_err("reply");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, &outgoing.2).await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        insert_portal_message(&mut tx, msg).await.map_err(&fail)?;
        insert_outgoing(&mut tx, outgoing, now_micros())
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    /// Sign-out: deletes the session whose cookie hashes to `id_hash`, with `audit`. False,
    /// writing nothing, when there is no such session (ended already).
    pub async fn portal_end_session(
        &self,
        id_hash: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let fail = portal_err("end-session");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        let done = sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls the audit record back.
            return Ok(false);
        }
        tx.commit().await.map_err(&fail)?;
        Ok(true)
    }

    /// Revokes a grant at `now` and ends its sessions, with `audit`. False, writing nothing,
    /// when there is no such grant or it was revoked already.
    pub async fn portal_revoke(
        &self,
        grant_id: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let fail = portal_err("revoke");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        let sql = "UPDATE portal_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        match update_grant(&mut tx, sql, grant_id, &[Some(now)]).await {
            // Dropping the transaction rolls the audit record back.
            Err(sqlx::Error::RowNotFound) => return Ok(false),
            other => other.map_err(&fail)?,
        }
        sqlx::query("DELETE FROM portal_sessions WHERE grant_id = $1")
            .bind(grant_id.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(true)
    }

    /// Moves a grant's expiry to `new_expires_at`, with `audit`. False, writing nothing, when
    /// there is no such grant, it is revoked, or retention has purged its message.
    pub async fn portal_extend(
        &self,
        grant_id: &str,
        new_expires_at: i64,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let fail = portal_err("extend");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        append_in_tx(&mut tx, audit).await.map_err(&fail)?;
        let sql = "UPDATE portal_grants SET expires_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             AND portal_message_id IN (SELECT id FROM portal_messages WHERE purged_at IS NULL)";
        match update_grant(&mut tx, sql, grant_id, &[Some(new_expires_at)]).await {
            Err(sqlx::Error::RowNotFound) => return Ok(false),
            other => other.map_err(&fail)?,
        }
        tx.commit().await.map_err(&fail)?;
        Ok(true)
    }

    /// Retention: empties the sealed content and key (and sets `purged_at` = `now`) of every
    /// portal message not yet purged whose thread's grants all ended — expired, or revoked —
    /// before `cutoff`, and deletes those grants' sessions and every session past its end; one
    /// audit record per message, built by `audit_for` (handed the row with its sealed fields
    /// left empty). The grants and the audit stay. Returns how many messages were purged.
    pub async fn portal_purge(
        &self,
        cutoff: i64,
        now: i64,
        audit_for: &(dyn Fn(&PortalMessageRow) -> AuditRecord + Sync),
    ) -> Result<u64, StoreError> {
        let fail = portal_err("purge");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        lock_audit_head(&mut tx, self.backend())
            .await
            .map_err(&fail)?;
        let select = format!(
            "SELECT id, thread_id, message_id, author, sender, size, created_at \
             FROM portal_messages m WHERE purged_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM portal_grants g WHERE g.thread_id = m.thread_id AND NOT {ENDED}) \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(cutoff)
            .fetch_all(&mut **tx)
            .await
            .map_err(&fail)?;
        let mut purged = 0;
        for r in &rows {
            let row = purge_view(r).map_err(&fail)?;
            append_in_tx(&mut tx, &audit_for(&row))
                .await
                .map_err(&fail)?;
            sqlx::query(
                "UPDATE portal_messages SET key_sealed = $2, content_sealed = $2, \
                 purged_at = $3 WHERE id = $1",
            )
            .bind(row.id.clone())
            .bind(Vec::<u8>::new())
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
            sqlx::query(
                "DELETE FROM portal_sessions WHERE grant_id IN \
                 (SELECT id FROM portal_grants WHERE thread_id = $1)",
            )
            .bind(row.thread_id.clone())
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
            purged += 1;
        }
        // Sessions past their end are of no use to anyone: drop them with the same pass.
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(purged)
    }
}

/// A purge candidate as handed to the audit builder: no sealed bytes.
fn purge_view(r: &sqlx::any::AnyRow) -> Result<PortalMessageRow, sqlx::Error> {
    Ok(PortalMessageRow {
        id: r.try_get("id")?,
        thread_id: r.try_get("thread_id")?,
        message_id: r.try_get("message_id")?,
        author: r.try_get("author")?,
        sender: r.try_get("sender")?,
        key_sealed: Vec::new(),
        content_sealed: Vec::new(),
        size: r.try_get("size")?,
        created_at: r.try_get("created_at")?,
        purged_at: None,
    })
}
