//! The secure portal's rows: messages held sealed for recipients to read in a browser, the
//! grants (one per recipient, reached through a link token), and verified browser sessions.
//! Every change is written with its audit records in one transaction; notices and replies the
//! portal sends are queued in the same transaction as the change that calls for them.
//!
//! Ordering: every writing transaction takes the audit head first (on PostgreSQL its row lock;
//! on SQLite the write lock is already held), so the checks it makes before deciding which
//! audit records to append cannot race another writer.

use sealgate_types::AuditRecord;
use sealgate_types::time::now_micros;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::model::NewMessage;
use crate::queue::{insert_message, insert_recipient};
use crate::store::{Backend, Store};

/// A queued message with its recipients and its `received` audit record, as the portal hands
/// it over (a notice, a one-time code, a reply).
pub type PortalOutgoing = (NewMessage, Vec<String>, AuditRecord);

pub(crate) const MESSAGE_COLUMNS: &str = "id, thread_id, message_id, author, sender, key_sealed, \
     content_sealed, size, created_at, purged_at";

pub(crate) const GRANT_COLUMNS: &str = "id, token_hash, portal_message_id, thread_id, recipient, \
     sender, expires_at, revoked_at, passphrase_hash, code_hash, code_expires_at, \
     failed_attempts, locked_until, first_viewed_at, created_at";

/// A message held on the portal: the original a recipient reads, or a reply written there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalMessageRow {
    /// Its id (a UUIDv4).
    pub id: String,
    /// The id of the thread's first message (its own id for a first message).
    pub thread_id: String,
    /// The queue id of the message it was made from, if any.
    pub message_id: Option<String>,
    /// Who wrote it (an address).
    pub author: String,
    /// Where replies go: the original envelope sender.
    pub sender: String,
    /// The per-message key, sealed under the portal master key; empty once purged.
    pub key_sealed: Vec<u8>,
    /// The RFC 5322 message, AES-256-GCM under the per-message key; empty once purged.
    pub content_sealed: Vec<u8>,
    /// Size of the message before sealing, in bytes.
    pub size: i64,
    /// When it was stored (micros).
    pub created_at: i64,
    /// When retention emptied it (micros), if it did.
    pub purged_at: Option<i64>,
}

/// One recipient's access to a portal message and its thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRow {
    /// Its id (a UUIDv4): what operators name.
    pub id: String,
    /// SHA-256 (hex) of the link token; the token itself is never stored.
    pub token_hash: String,
    /// The portal message it opens.
    pub portal_message_id: String,
    /// That message's thread.
    pub thread_id: String,
    /// The recipient it was made for.
    pub recipient: String,
    /// Where the recipient's replies go.
    pub sender: String,
    /// When the link stops working (micros).
    pub expires_at: i64,
    /// When an operator revoked it (micros), if one did.
    pub revoked_at: Option<i64>,
    /// Argon2id PHC hash of a passphrase the sender set, if any.
    pub passphrase_hash: Option<String>,
    /// SHA-256 (hex) of `"grant_id:code"` of the one-time code sent last, if one is pending.
    pub code_hash: Option<String>,
    /// When that code stops working (micros).
    pub code_expires_at: Option<i64>,
    /// Failed codes or passphrases since the last success or lockout.
    pub failed_attempts: i64,
    /// No verification is accepted before this time (micros), if locked.
    pub locked_until: Option<i64>,
    /// When the recipient first read the message (micros), if ever.
    pub first_viewed_at: Option<i64>,
    /// When the grant was made (micros).
    pub created_at: i64,
}

/// A verified browser session on one grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalSessionRow {
    /// SHA-256 (hex) of the cookie value.
    pub id_hash: String,
    /// The grant it was opened on.
    pub grant_id: String,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// When it ends (micros).
    pub expires_at: i64,
}

fn portal_err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Portal { op, source }
}

pub(crate) fn message_from_row(row: &AnyRow) -> Result<PortalMessageRow, sqlx::Error> {
    Ok(PortalMessageRow {
        id: row.try_get("id")?,
        thread_id: row.try_get("thread_id")?,
        message_id: row.try_get("message_id")?,
        author: row.try_get("author")?,
        sender: row.try_get("sender")?,
        key_sealed: row.try_get("key_sealed")?,
        content_sealed: row.try_get("content_sealed")?,
        size: row.try_get("size")?,
        created_at: row.try_get("created_at")?,
        purged_at: row.try_get("purged_at")?,
    })
}

pub(crate) fn grant_from_row(row: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        id: row.try_get("id")?,
        token_hash: row.try_get("token_hash")?,
        portal_message_id: row.try_get("portal_message_id")?,
        thread_id: row.try_get("thread_id")?,
        recipient: row.try_get("recipient")?,
        sender: row.try_get("sender")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        passphrase_hash: row.try_get("passphrase_hash")?,
        code_hash: row.try_get("code_hash")?,
        code_expires_at: row.try_get("code_expires_at")?,
        failed_attempts: row.try_get("failed_attempts")?,
        locked_until: row.try_get("locked_until")?,
        first_viewed_at: row.try_get("first_viewed_at")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Takes the audit head's row lock (PostgreSQL) before the reads that decide what the
/// transaction writes; on SQLite `BEGIN IMMEDIATE` already holds the write lock.
pub(crate) async fn lock_audit_head(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(crate) async fn insert_portal_message(
    tx: &mut Transaction<'static, Any>,
    m: &PortalMessageRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portal_messages (id, thread_id, message_id, author, sender, key_sealed, \
         content_sealed, size, created_at, purged_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(m.id.clone())
    .bind(m.thread_id.clone())
    .bind(m.message_id.clone())
    .bind(m.author.clone())
    .bind(m.sender.clone())
    .bind(m.key_sealed.clone())
    .bind(m.content_sealed.clone())
    .bind(m.size)
    .bind(m.created_at)
    .bind(m.purged_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_grant(tx: &mut Transaction<'static, Any>, g: &GrantRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portal_grants (id, token_hash, portal_message_id, thread_id, recipient, \
         sender, expires_at, revoked_at, passphrase_hash, code_hash, code_expires_at, \
         failed_attempts, locked_until, first_viewed_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(g.id.clone())
    .bind(g.token_hash.clone())
    .bind(g.portal_message_id.clone())
    .bind(g.thread_id.clone())
    .bind(g.recipient.clone())
    .bind(g.sender.clone())
    .bind(g.expires_at)
    .bind(g.revoked_at)
    .bind(g.passphrase_hash.clone())
    .bind(g.code_hash.clone())
    .bind(g.code_expires_at)
    .bind(g.failed_attempts)
    .bind(g.locked_until)
    .bind(g.first_viewed_at)
    .bind(g.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes a queued message of the portal (its `received` record must already be appended).
pub(crate) async fn insert_outgoing(
    tx: &mut Transaction<'static, Any>,
    (message, recipients, _): &PortalOutgoing,
    now: i64,
) -> Result<(), sqlx::Error> {
    insert_message(tx, message).await?;
    for rcpt in recipients {
        insert_recipient(tx, &message.id, rcpt, now).await?;
    }
    Ok(())
}

/// The first message of a thread already made from queue message `message_id`, if any.
async fn existing_original(
    tx: &mut Transaction<'static, Any>,
    message_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, thread_id FROM portal_messages WHERE message_id = $1 AND id = thread_id \
         ORDER BY created_at, id LIMIT 1",
    )
    .bind(message_id.to_owned())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("thread_id")?)))
        .transpose()
}

async fn grant_exists(
    tx: &mut Transaction<'static, Any>,
    portal_message_id: &str,
    recipient: &str,
) -> Result<bool, sqlx::Error> {
    let row =
        sqlx::query("SELECT id FROM portal_grants WHERE portal_message_id = $1 AND recipient = $2")
            .bind(portal_message_id.to_owned())
            .bind(recipient.to_owned())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.is_some())
}

/// A deposit on the portal (see [`Store::portal_deposit`]): the portal message, its grants,
/// the notices and their `portal_notice` records, `grants[i]`, `notices[i]` and `audit[i]`
/// belonging together. Written on its own or inside a settlement
/// ([`Store::settle_group_with`]).
#[derive(Debug, Clone)]
pub struct PortalDeposit {
    /// The sealed message (not stored again when one made from the same queue message is).
    pub msg: PortalMessageRow,
    /// One grant per recipient.
    pub grants: Vec<GrantRow>,
    /// The notice for each grant.
    pub notices: Vec<PortalOutgoing>,
    /// The `portal_notice` record for each grant.
    pub audit: Vec<AuditRecord>,
}

impl PortalDeposit {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.grants.len() != self.notices.len() || self.grants.len() != self.audit.len() {
            return Err(StoreError::Invalid {
                what: "portal deposit: grants, notices and audit must be parallel",
            });
        }
        Ok(())
    }
}

/// Writes `d` in `tx` (whose audit head is locked): see [`Store::portal_deposit`]. The ids
/// of the grants created.
pub(crate) async fn deposit_in_tx(
    tx: &mut Transaction<'static, Any>,
    d: &PortalDeposit,
) -> Result<Vec<String>, sqlx::Error> {
    let existing = match &d.msg.message_id {
        Some(id) => existing_original(tx, id).await?,
        None => None,
    };
    let (target, thread) = existing
        .clone()
        .unwrap_or_else(|| (d.msg.id.clone(), d.msg.thread_id.clone()));
    let mut keep = Vec::new();
    for (i, g) in d.grants.iter().enumerate() {
        if !grant_exists(tx, &target, &g.recipient).await? {
            keep.push(i);
        }
    }
    for &i in &keep {
        append_in_tx(tx, &d.notices[i].2).await?;
        append_in_tx(tx, &d.audit[i]).await?;
    }
    if existing.is_none() && !keep.is_empty() {
        insert_portal_message(tx, &d.msg).await?;
    }
    let now = now_micros();
    let mut created = Vec::with_capacity(keep.len());
    for &i in &keep {
        let grant = GrantRow {
            portal_message_id: target.clone(),
            thread_id: thread.clone(),
            ..d.grants[i].clone()
        };
        insert_grant(tx, &grant).await?;
        insert_outgoing(tx, &d.notices[i], now).await?;
        created.push(grant.id);
    }
    Ok(created)
}

impl Store {
    /// The delivery worker's deposit, in ONE transaction: the portal message, its grants, the
    /// notice messages (each like [`Store::enqueue`]: message row with its origin, recipient
    /// rows and its `received` audit record) and `audit` (the `portal_notice` events).
    /// `grants`, `notices` and `audit` are parallel: `notices[i]` and `audit[i]` belong to
    /// `grants[i]`. A grant whose (portal message, recipient) already exists is skipped with
    /// its notice and audit record. When a first message made from the same queue message
    /// (`msg.message_id`) is already stored — another recipient's deposit, or this one
    /// retried after a crash — the grants attach to it and `msg` is not stored again.
    /// Returns the ids of the grants actually created.
    pub async fn portal_deposit(
        &self,
        msg: &PortalMessageRow,
        grants: &[GrantRow],
        notices: &[PortalOutgoing],
        audit: &[AuditRecord],
    ) -> Result<Vec<String>, StoreError> {
        let deposit = PortalDeposit {
            msg: msg.clone(),
            grants: grants.to_vec(),
            notices: notices.to_vec(),
            audit: audit.to_vec(),
        };
        deposit.check()?;
        let fail = portal_err("deposit");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        lock_audit_head(&mut tx, self.backend())
            .await
            .map_err(&fail)?;
        let created = deposit_in_tx(&mut tx, &deposit).await.map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(created)
    }

    /// The recipients of queue message `message_id` that already hold a grant on the portal
    /// (a deposit for them was written before), as stored.
    pub async fn portal_granted(&self, message_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.recipient FROM portal_grants g \
             JOIN portal_messages m ON g.portal_message_id = m.id \
             WHERE m.message_id = $1 AND m.id = m.thread_id",
        )
        .bind(message_id.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(portal_err("read"))?;
        rows.iter()
            .map(|r| r.try_get("recipient"))
            .collect::<Result<_, _>>()
            .map_err(portal_err("read"))
    }

    /// The grant recipient `rcpt` holds for queue message `message_id` (its deposit, not the
    /// replies of its thread), if any.
    pub async fn portal_grant_for(
        &self,
        message_id: &str,
        rcpt: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        let fail = portal_err("read");
        let columns: Vec<String> = GRANT_COLUMNS
            .split(',')
            .map(|c| format!("g.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT {} FROM portal_grants g JOIN portal_messages m ON g.portal_message_id = m.id \
             WHERE m.message_id = $1 AND m.id = m.thread_id AND g.recipient = $2",
            columns.join(", ")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id.to_owned())
            .bind(rcpt.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(&fail)?;
        row.as_ref().map(grant_from_row).transpose().map_err(&fail)
    }

    /// The grant whose link token hashes to `token_hash`.
    pub async fn portal_grant_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        self.grant_where("token_hash", token_hash).await
    }

    /// One grant by id.
    pub async fn portal_grant(&self, id: &str) -> Result<Option<GrantRow>, StoreError> {
        self.grant_where("id", id).await
    }

    async fn grant_where(&self, column: &str, value: &str) -> Result<Option<GrantRow>, StoreError> {
        let fail = portal_err("read");
        let sql = format!("SELECT {GRANT_COLUMNS} FROM portal_grants WHERE {column} = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(&fail)?;
        row.as_ref().map(grant_from_row).transpose().map_err(&fail)
    }

    /// Every grant, newest first (for `sealgate portal list`).
    pub async fn portal_grants(&self) -> Result<Vec<GrantRow>, StoreError> {
        let fail = portal_err("read");
        let sql = format!("SELECT {GRANT_COLUMNS} FROM portal_grants ORDER BY created_at DESC, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(grant_from_row)
            .collect::<Result<_, _>>()
            .map_err(&fail)
    }

    /// One portal message by id.
    pub async fn portal_message(&self, id: &str) -> Result<Option<PortalMessageRow>, StoreError> {
        let fail = portal_err("read");
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM portal_messages WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(&fail)?;
        row.as_ref()
            .map(message_from_row)
            .transpose()
            .map_err(&fail)
    }

    /// The messages of a thread, oldest first.
    pub async fn portal_thread(
        &self,
        thread_id: &str,
    ) -> Result<Vec<PortalMessageRow>, StoreError> {
        let fail = portal_err("read");
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM portal_messages WHERE thread_id = $1 \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(thread_id.to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()
            .map_err(&fail)
    }

    /// One session by the hash of its cookie value.
    pub async fn portal_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<PortalSessionRow>, StoreError> {
        let fail = portal_err("read");
        let row = sqlx::query(
            "SELECT id_hash, grant_id, csrf, expires_at FROM portal_sessions WHERE id_hash = $1",
        )
        .bind(id_hash.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(&fail)?;
        let read = |r: &AnyRow| -> Result<PortalSessionRow, sqlx::Error> {
            Ok(PortalSessionRow {
                id_hash: r.try_get("id_hash")?,
                grant_id: r.try_get("grant_id")?,
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            })
        };
        row.as_ref().map(read).transpose().map_err(&fail)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
#[path = "portal_tests.rs"]
mod tests;
