//! Returned mail: a delivered recipient that the other side sent back (a bounce to our return
//! path) becomes `returned`, with its audit record and the DSN to the original sender in the
//! same transaction.

use sealgate_types::AuditRecord;
use sealgate_types::time::now_micros;

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::lease::NewNotice;
use crate::model::RecipientRow;
use crate::queue::{RECIPIENT_COLUMNS, recipient_from_row};
use crate::store::Store;

fn fail(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Lease { op, source }
}

impl Store {
    /// One recipient row by its id.
    pub async fn recipient_by_id(&self, id: i64) -> Result<Option<RecipientRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::ReadQueue)?;
        row.as_ref().map(recipient_from_row).transpose()
    }

    /// Makes a `delivered` recipient `returned` (`reason` as its last reply), appending `audit`
    /// first and queueing `notice` (the DSN) in the same transaction. False, and nothing
    /// written, when the recipient is not `delivered` (returned already, or never delivered).
    pub async fn mark_returned(
        &self,
        recipient_id: i64,
        reason: &str,
        audit: &AuditRecord,
        notice: Option<&NewNotice>,
    ) -> Result<bool, StoreError> {
        let f = fail("return");
        let mut tx = self.begin_write().await.map_err(&f)?;
        append_in_tx(&mut tx, audit).await.map_err(&f)?;
        let now = now_micros();
        let done = sqlx::query(
            "UPDATE recipients SET state = 'returned', last_reply = $2, updated_at = $3 \
             WHERE id = $1 AND state = 'delivered'",
        )
        .bind(recipient_id)
        .bind(reason.to_owned())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(&f)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(n) = notice {
            append_in_tx(&mut tx, &n.audit).await.map_err(&f)?;
            crate::queue::insert_message(&mut tx, &n.message)
                .await
                .map_err(&f)?;
            for rcpt in &n.recipients {
                crate::queue::insert_recipient(&mut tx, &n.message.id, rcpt, now)
                    .await
                    .map_err(&f)?;
            }
        }
        tx.commit().await.map_err(&f)?;
        Ok(true)
    }
}
