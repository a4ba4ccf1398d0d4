//! Messages and their recipients.

use std::collections::HashMap;

use sealgate_types::{AuditRecord, RecipientState, time::now_micros};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::model::{Envelope, MessageRow, NewMessage, RecipientRow};
use crate::store::Store;

const MESSAGE_COLUMNS: &str = "id, received_at, sender, size, body_sha256, header_message_id, \
     client_ip, helo, auth_user, tls, requiretls, key_id, sealed_body, origin";

pub(crate) const RECIPIENT_COLUMNS: &str = "id, message_id, rcpt, state, attempts, next_attempt_at, \
     last_reply, lease_owner, lease_until, updated_at, warned_at, sending_owner, sending_since, held";

pub(crate) async fn insert_message(
    tx: &mut Transaction<'static, Any>,
    msg: &NewMessage,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (id, received_at, sender, size, body_sha256, header_message_id, \
         client_ip, helo, auth_user, tls, requiretls, key_id, sealed_body, origin) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(msg.id.clone())
    .bind(msg.received_at)
    .bind(msg.sender.clone())
    .bind(msg.size)
    .bind(msg.body_sha256.clone())
    .bind(msg.header_message_id.clone())
    .bind(msg.client_ip.clone())
    .bind(msg.helo.clone())
    .bind(msg.auth_user.clone())
    .bind(msg.tls.clone())
    // The column is INTEGER (0/1) on both backends.
    .bind(i32::from(msg.requiretls))
    .bind(msg.key_id.clone())
    .bind(msg.sealed_body.clone())
    .bind(msg.origin.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn insert_recipient(
    tx: &mut Transaction<'static, Any>,
    message_id: &str,
    rcpt: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipients (message_id, rcpt, state, attempts, next_attempt_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $4)",
    )
    .bind(message_id.to_owned())
    .bind(rcpt.to_owned())
    .bind(RecipientState::Queued.as_str().to_owned())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn message_from_row(row: &AnyRow) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        id: row.try_get("id")?,
        received_at: row.try_get("received_at")?,
        sender: row.try_get("sender")?,
        size: row.try_get("size")?,
        body_sha256: row.try_get("body_sha256")?,
        header_message_id: row.try_get("header_message_id")?,
        client_ip: row.try_get("client_ip")?,
        helo: row.try_get("helo")?,
        auth_user: row.try_get("auth_user")?,
        tls: row.try_get("tls")?,
        requiretls: row.try_get::<i64, _>("requiretls")? != 0,
        key_id: row.try_get("key_id")?,
        sealed_body: row.try_get("sealed_body")?,
        origin: row.try_get("origin")?,
    })
}

/// `$first, $first+1, …`: `n` numbered placeholders for an `IN (…)` list, whose values are
/// then bound in order (only placeholders are spliced into SQL text, never values).
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn recipient_from_row(row: &AnyRow) -> Result<RecipientRow, StoreError> {
    let get = |e| StoreError::ReadQueue(e);
    let state: String = row.try_get("state").map_err(get)?;
    Ok(RecipientRow {
        id: row.try_get("id").map_err(get)?,
        message_id: row.try_get("message_id").map_err(get)?,
        rcpt: row.try_get("rcpt").map_err(get)?,
        state: state.parse().map_err(|_| StoreError::Corrupt {
            what: "recipient state",
            value: state.clone(),
        })?,
        attempts: row.try_get("attempts").map_err(get)?,
        next_attempt_at: row.try_get("next_attempt_at").map_err(get)?,
        last_reply: row.try_get("last_reply").map_err(get)?,
        lease_owner: row.try_get("lease_owner").map_err(get)?,
        lease_until: row.try_get("lease_until").map_err(get)?,
        updated_at: row.try_get("updated_at").map_err(get)?,
        warned_at: row.try_get("warned_at").map_err(get)?,
        sending_owner: row.try_get("sending_owner").map_err(get)?,
        sending_since: row.try_get("sending_since").map_err(get)?,
        held: row.try_get("held").map_err(get)?,
    })
}

impl Store {
    /// Queues a message in one transaction: its audit record (first, see the `audit` module),
    /// the message row, and one `queued` recipient row each, due now. Nothing is written if
    /// any part fails (a duplicate id, a duplicate recipient, the database going away).
    pub async fn enqueue(
        &self,
        msg: &NewMessage,
        recipients: &[String],
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let fail = |source| StoreError::Enqueue {
            message_id: msg.id.clone(),
            source,
        };
        let mut tx = self.begin_write().await.map_err(fail)?;
        append_in_tx(&mut tx, audit).await.map_err(fail)?;
        insert_message(&mut tx, msg).await.map_err(fail)?;
        let now = now_micros();
        for rcpt in recipients {
            insert_recipient(&mut tx, &msg.id, rcpt, now)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// [`Store::enqueue`] under an idempotency key: in the same transaction, the key's row is
    /// looked up first (a row older than `window_start` is dropped) and, when there is one,
    /// nothing is written and it is returned; otherwise it is written with the message. Two
    /// requests racing with one key: one commits, the other finds its row (`Ok(Some)`) or, if
    /// it looked before that commit, fails on the key's uniqueness and looks again.
    pub async fn enqueue_idempotent(
        &self,
        msg: &NewMessage,
        recipients: &[String],
        audit: &AuditRecord,
        key: &IdempotencyRow,
        window_start: i64,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        let fail = |source| StoreError::Enqueue {
            message_id: msg.id.clone(),
            source,
        };
        let attempt = async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idem_key = $2 \
                 AND created_at < $3",
            )
            .bind(key.api_key_id.clone())
            .bind(key.idem_key.clone())
            .bind(window_start)
            .execute(&mut **tx)
            .await?;
            if let Some(first) = idempotency_row(&mut tx, &key.api_key_id, &key.idem_key).await? {
                return Ok(Some(first));
            }
            append_in_tx(&mut tx, audit).await?;
            sqlx::query(
                "INSERT INTO idempotency_keys (api_key_id, idem_key, request_sha256, message_id, \
                 response, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key.api_key_id.clone())
            .bind(key.idem_key.clone())
            .bind(key.request_sha256.clone())
            .bind(key.message_id.clone())
            .bind(key.response.clone())
            .bind(now_micros())
            .execute(&mut **tx)
            .await?;
            insert_message(&mut tx, msg).await?;
            let now = now_micros();
            for rcpt in recipients {
                insert_recipient(&mut tx, &msg.id, rcpt, now).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(None)
        };
        match attempt.await {
            Ok(found) => Ok(found),
            Err(e) => {
                // Lost a race with the same key: the winner's row is there now.
                let mut tx = self.begin_write().await.map_err(fail)?;
                let first = idempotency_row(&mut tx, &key.api_key_id, &key.idem_key)
                    .await
                    .map_err(fail)?;
                drop(tx);
                match first {
                    Some(row) => Ok(Some(row)),
                    None => Err(fail(e)),
                }
            }
        }
    }

    /// Deletes the idempotency rows written before `before` (their keys are no longer
    /// honoured); how many.
    pub async fn prune_idempotency(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        Ok(done.rows_affected())
    }

    /// One message by queue id.
    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        row.as_ref()
            .map(message_from_row)
            .transpose()
            .map_err(StoreError::ReadQueue)
    }

    /// Sender, acceptance time, REQUIRETLS flag (RFC 8689) and origin of each listed message,
    /// by queue id, in one query and without reading the sealed bodies (what claiming needs
    /// for every recipient it takes).
    pub async fn envelopes(&self, ids: &[String]) -> Result<HashMap<String, Envelope>, StoreError> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT id, sender, received_at, requiretls, origin FROM messages WHERE id IN ({})",
            placeholders(1, unique.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in unique {
            query = query.bind(id.clone());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let envelope = Envelope {
                    sender: r.try_get("sender")?,
                    received_at: r.try_get("received_at")?,
                    requiretls: r.try_get::<i64, _>("requiretls")? != 0,
                    origin: r.try_get("origin")?,
                };
                Ok((id, envelope))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::ReadQueue)
    }

    /// The recipients of one message, in the order they were given.
    pub async fn recipients_of(&self, message_id: &str) -> Result<Vec<RecipientRow>, StoreError> {
        let sql =
            format!("SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE message_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id.to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        rows.iter().map(recipient_from_row).collect()
    }

    /// How many messages are stored.
    pub async fn count_messages(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM messages")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        row.try_get("n").map_err(StoreError::ReadQueue)
    }

    /// Up to `limit` recipients held by policy (deferred, with a hold), oldest first.
    pub async fn list_held(&self, limit: i64) -> Result<Vec<RecipientRow>, StoreError> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients \
             WHERE state = 'deferred' AND held IS NOT NULL ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        rows.iter().map(recipient_from_row).collect()
    }

    /// Up to `limit` recipients, oldest first, optionally only those in `state`.
    pub async fn list_recipients(
        &self,
        state: Option<RecipientState>,
        limit: i64,
    ) -> Result<Vec<RecipientRow>, StoreError> {
        let rows = match state {
            Some(state) => {
                let sql = format!(
                    "SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE state = $1 ORDER BY id LIMIT $2"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(state.as_str().to_owned())
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                let sql = format!("SELECT {RECIPIENT_COLUMNS} FROM recipients ORDER BY id LIMIT $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(StoreError::ReadQueue)?;
        rows.iter().map(recipient_from_row).collect()
    }
}

impl Store {
    /// One page of recipients in id order after `after_id`, each with its message's envelope
    /// sender: only `state` when given, only those updated at or after `since` when given.
    pub async fn recipients_page(
        &self,
        after_id: i64,
        state: Option<RecipientState>,
        since: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(RecipientRow, String)>, StoreError> {
        let columns: Vec<String> = RECIPIENT_COLUMNS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT {}, m.sender AS message_sender FROM recipients r \
             JOIN messages m ON m.id = r.message_id \
             WHERE r.id > $1 AND ($2 = '' OR r.state = $2) AND r.updated_at >= $3 \
             ORDER BY r.id LIMIT $4",
            columns.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_id)
            .bind(state.map_or(String::new(), |s| s.as_str().to_owned()))
            .bind(since.unwrap_or(i64::MIN))
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::ReadQueue)?;
        rows.iter()
            .map(|r| {
                let sender: String = r.try_get("message_sender").map_err(StoreError::ReadQueue)?;
                Ok((recipient_from_row(r)?, sender))
            })
            .collect()
    }
}

/// The first answer to an API idempotency key (`idempotency_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    /// The API key's id.
    pub api_key_id: String,
    /// The client's idempotency key.
    pub idem_key: String,
    /// SHA-256 (hex) of the first request's body.
    pub request_sha256: String,
    /// The message it created.
    pub message_id: String,
    /// The first answer's JSON body.
    pub response: String,
}

async fn idempotency_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    api_key_id: &str,
    idem_key: &str,
) -> Result<Option<IdempotencyRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_sha256, message_id, response FROM idempotency_keys \
         WHERE api_key_id = $1 AND idem_key = $2",
    )
    .bind(api_key_id.to_owned())
    .bind(idem_key.to_owned())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        Ok(IdempotencyRow {
            api_key_id: api_key_id.to_owned(),
            idem_key: idem_key.to_owned(),
            request_sha256: r.try_get("request_sha256")?,
            message_id: r.try_get("message_id")?,
            response: r.try_get("response")?,
        })
    })
    .transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod idempotency_tests {
    use sealgate_testkit::db::TestBackend;
    use serde_json::json;

    use super::*;
    use crate::test_support::{audit_kinds, open};

    fn message(id: &str) -> NewMessage {
        NewMessage {
            id: id.into(),
            received_at: 1,
            sender: "ehr@clinic.test".into(),
            size: 3,
            body_sha256: "ab".repeat(32),
            header_message_id: None,
            client_ip: "127.0.0.1".into(),
            helo: "api".into(),
            auth_user: None,
            tls: None,
            requiretls: false,
            key_id: "k1".into(),
            sealed_body: vec![1, 2, 3],
            origin: Some("api".into()),
        }
    }

    fn key(message_id: &str, body: &str) -> IdempotencyRow {
        IdempotencyRow {
            api_key_id: "0123456789abcdef".into(),
            idem_key: "order-1".into(),
            request_sha256: body.into(),
            message_id: message_id.into(),
            response: format!("{{\"id\":\"{message_id}\"}}"),
        }
    }

    fn received(id: &str) -> AuditRecord {
        AuditRecord {
            kind: "received".into(),
            message_id: Some(id.into()),
            recipient: None,
            data: json!({ "sender": "ehr@clinic.test" }),
        }
    }

    async fn a_key_is_honoured_in_its_window_then_replaced_and_pruned(backend: TestBackend) {
        let (_db, store) = open(backend).await;
        let rcpts = ["jane@example.test".to_owned()];
        let first = store
            .enqueue_idempotent(&message("m1"), &rcpts, &received("m1"), &key("m1", "b1"), 0)
            .await
            .unwrap();
        assert_eq!(first, None, "queued");
        // Within the window: the first answer, and nothing written.
        let again = store
            .enqueue_idempotent(&message("m2"), &rcpts, &received("m2"), &key("m2", "b1"), 0)
            .await
            .unwrap();
        assert_eq!(again.map(|r| r.message_id), Some("m1".to_owned()));
        assert!(store.message("m2").await.unwrap().is_none());
        assert_eq!(audit_kinds(&store).await, ["received"]);
        // Once the window has passed (its row is older than window_start), the key is new.
        let later = store
            .enqueue_idempotent(
                &message("m3"),
                &rcpts,
                &received("m3"),
                &key("m3", "b3"),
                i64::MAX,
            )
            .await
            .unwrap();
        assert_eq!(later, None);
        assert!(store.message("m3").await.unwrap().is_some());
        // Pruning drops what is older than the cut-off, and only that.
        assert_eq!(store.prune_idempotency(0).await.unwrap(), 0);
        assert_eq!(store.prune_idempotency(i64::MAX).await.unwrap(), 1);
    }

    sealgate_testkit::on_each_backend!(a_key_is_honoured_in_its_window_then_replaced_and_pruned,);
}
