//! Claiming due recipients under a lease, and settling them.
//!
//! Several relay processes may share one database. A worker claims due recipients by moving
//! them to `inflight` with its own `lease_owner` and a `lease_until`; on PostgreSQL the claim
//! skips rows another transaction holds (`FOR UPDATE SKIP LOCKED`), on SQLite the claim runs
//! under the single write lock. A lease left by a crashed process expires and the rows are
//! claimed again (at-least-once delivery). Settling checks that the lease is still ours, so a
//! worker that lost its lease writes nothing.

use sealgate_types::{AuditRecord, RecipientState};

use crate::audit::{append_all_in_tx, append_in_tx};
use crate::error::StoreError;
use crate::model::RecipientRow;
use crate::portal::{PortalDeposit, deposit_in_tx, lock_audit_head};
use crate::queue::{RECIPIENT_COLUMNS, placeholders, recipient_from_row};
use crate::store::{Backend, Store};

/// The new state of a settled recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// `delivered`, `deferred` or `bounced` (or `queued` to hand it back untried).
    pub state: RecipientState,
    /// When to try again (meaningful for `deferred`).
    pub next_attempt_at: i64,
    /// The last reply or error, for operators.
    pub last_reply: Option<String>,
    /// Whether this settlement counts as an attempt.
    pub counts_as_attempt: bool,
    /// Set when the sender is being warned of the delay now (keeps an earlier warning time).
    pub warned_at: Option<i64>,
    /// For a `deferred` recipient whose wait is the policy's: the hold's name
    /// ([`sealgate_types::HoldReason`]). `None` clears an earlier hold.
    pub held: Option<String>,
}

/// One recipient's settlement within a group.
#[derive(Debug, Clone)]
pub struct SettleItem {
    /// The recipient row.
    pub recipient_id: i64,
    /// Its new state.
    pub settlement: Settlement,
    /// Audit records about it, appended in order.
    pub audit: Vec<AuditRecord>,
}

/// A message to queue together with a settlement (a DSN), with its `received` audit record.
#[derive(Debug, Clone)]
pub struct NewNotice {
    /// The message row (sealed).
    pub message: crate::NewMessage,
    /// Its recipients.
    pub recipients: Vec<String>,
    /// Its audit record.
    pub audit: AuditRecord,
}

impl NewNotice {
    /// The message, its recipients and its audit record, as the portal's writes take them
    /// ([`crate::PortalOutgoing`]).
    pub fn into_parts(self) -> crate::PortalOutgoing {
        (self.message, self.recipients, self.audit)
    }
}

fn lease_err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Lease { op, source }
}

impl Store {
    /// Claims up to `limit` recipients that are due at `now` (queued or deferred with
    /// `next_attempt_at <= now`, or inflight under an expired lease), oldest due first, for
    /// `owner` until `lease_until`. Returns the claimed rows.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<RecipientRow>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE recipients SET state = 'inflight', lease_owner = $1, lease_until = $2, \
             updated_at = $3 WHERE id IN (SELECT id FROM recipients \
             WHERE (state IN ('queued', 'deferred') AND next_attempt_at <= $3) \
             OR (state = 'inflight' AND lease_until < $3) \
             ORDER BY next_attempt_at, id LIMIT $4{lock}) RETURNING {RECIPIENT_COLUMNS}"
        );
        let mut tx = self.begin_write().await.map_err(lease_err("claim"))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(lease_until)
            .bind(now)
            .bind(limit.max(0))
            .fetch_all(&mut **tx)
            .await
            .map_err(lease_err("claim"))?;
        tx.commit().await.map_err(lease_err("claim"))?;
        let mut claimed: Vec<RecipientRow> = rows
            .iter()
            .map(recipient_from_row)
            .collect::<Result<_, _>>()?;
        claimed.sort_by_key(|r| (r.next_attempt_at, r.id));
        Ok(claimed)
    }

    /// Settles one recipient claimed by `owner` (see [`Store::settle_group`]).
    pub async fn settle(
        &self,
        recipient_id: i64,
        owner: &str,
        settlement: &Settlement,
        audit: &[AuditRecord],
    ) -> Result<bool, StoreError> {
        let item = SettleItem {
            recipient_id,
            settlement: settlement.clone(),
            audit: audit.to_vec(),
        };
        self.settle_group(owner, &[item], &[]).await
    }

    /// Settles a group of recipients claimed by `owner` and queues the notices (DSNs) they call
    /// for, all in one transaction, so a bounce is never recorded without its DSN. Returns
    /// false, writing nothing, when any lease is no longer `owner`'s.
    pub async fn settle_group(
        &self,
        owner: &str,
        items: &[SettleItem],
        notices: &[NewNotice],
    ) -> Result<bool, StoreError> {
        self.settle_group_with(owner, &[], None, items, notices)
            .await
    }

    /// [`Store::settle_group`] that first writes `before` (audit records of what led to the
    /// settlement: a refused verification's alert and failed try) and `deposit` (the portal
    /// deposit the settled recipients went to), all in the one transaction: a lost lease or a
    /// failure leaves none of it written.
    pub async fn settle_group_with(
        &self,
        owner: &str,
        before: &[AuditRecord],
        deposit: Option<&PortalDeposit>,
        items: &[SettleItem],
        notices: &[NewNotice],
    ) -> Result<bool, StoreError> {
        if let Some(d) = deposit {
            d.check()?;
        }
        let fail = lease_err("settle");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        if deposit.is_some() {
            // The deposit reads what it writes: the audit head's lock first, as everywhere.
            lock_audit_head(&mut tx, self.backend())
                .await
                .map_err(&fail)?;
        }
        append_all_in_tx(&mut tx, before).await.map_err(&fail)?;
        if let Some(d) = deposit {
            deposit_in_tx(&mut tx, d).await.map_err(&fail)?;
        }
        let now = sealgate_types::time::now_micros();
        for item in items {
            // Audit first: its head row lock comes before any recipient row lock everywhere.
            append_all_in_tx(&mut tx, &item.audit)
                .await
                .map_err(&fail)?;
            let s = &item.settlement;
            let done = sqlx::query(
                "UPDATE recipients SET state = $1, next_attempt_at = $2, last_reply = $3, \
                 attempts = attempts + $4, lease_owner = NULL, lease_until = NULL, updated_at = $5, \
                 warned_at = COALESCE(warned_at, $8), sending_owner = NULL, sending_since = NULL, \
                 held = $9 \
                 WHERE id = $6 AND state = 'inflight' AND lease_owner = $7",
            )
            .bind(s.state.as_str().to_owned())
            .bind(s.next_attempt_at)
            .bind(s.last_reply.clone())
            .bind(i64::from(s.counts_as_attempt))
            .bind(now)
            .bind(item.recipient_id)
            .bind(owner.to_owned())
            .bind(s.warned_at)
            .bind(s.held.clone())
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
            if done.rows_affected() == 0 {
                // Dropping the transaction rolls everything back.
                return Ok(false);
            }
        }
        for n in notices {
            append_in_tx(&mut tx, &n.audit).await.map_err(&fail)?;
            crate::queue::insert_message(&mut tx, &n.message)
                .await
                .map_err(&fail)?;
            for rcpt in &n.recipients {
                crate::queue::insert_recipient(&mut tx, &n.message.id, rcpt, now)
                    .await
                    .map_err(&fail)?;
            }
        }
        tx.commit().await.map_err(&fail)?;
        Ok(true)
    }

    /// Commits, in one transaction, `audit` records (first) and, for each set in `marks`, the
    /// mark that `owner` is about to send those recipients' message data: `sending_owner` and
    /// `sending_since = now`. A set is marked only when every recipient in it is still
    /// `inflight` under `owner`'s lease, that lease has not run out at `now`, and no other
    /// node's mark is still waiting to be recorded (see [`Store::note_possible_duplicates`]); the result
    /// says, per set, whether it was (a set that was not must not be sent). Fails as a whole
    /// when the database does. The mark stays until the attempt is settled (or a node that
    /// takes the recipient over records it as a possible duplicate): a graceful release keeps
    /// it, since a transaction cut off at shutdown may have reached the remote server.
    pub async fn commit_batch(
        &self,
        owner: &str,
        audit: &[AuditRecord],
        marks: &[Vec<i64>],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        if audit.is_empty() && marks.iter().all(Vec::is_empty) {
            return Ok(vec![true; marks.len()]);
        }
        let fail = lease_err("mark");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        for rec in audit {
            append_in_tx(&mut tx, rec).await.map_err(&fail)?;
        }
        let mut marked = Vec::with_capacity(marks.len());
        for set in marks {
            let mut ids = set.clone();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                marked.push(true);
                continue;
            }
            let list = placeholders(3, ids.len());
            let sql = format!(
                "UPDATE recipients SET sending_owner = $1, sending_since = $2 \
                 WHERE state = 'inflight' AND lease_owner = $1 AND lease_until > $2 \
                 AND (sending_owner IS NULL OR sending_owner = $1) AND id IN ({list})"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(owner.to_owned())
                .bind(now);
            for id in &ids {
                q = q.bind(*id);
            }
            let done = q.execute(&mut **tx).await.map_err(&fail)?;
            marked.push(usize::try_from(done.rows_affected()).ok() == Some(ids.len()));
        }
        tx.commit().await.map_err(&fail)?;
        Ok(marked)
    }

    /// Records that recipients `owner` has just claimed carry another node's sending mark
    /// (that node stopped after it was cleared to send and before it settled): one audit
    /// record each, in `items` order, and the marks cleared, in one transaction. Each item is
    /// the recipient id, the owner its mark names, and the record. Returns false, writing
    /// nothing, when any of them is no longer `owner`'s or no longer carries that mark (so a
    /// mark is recorded once).
    pub async fn note_possible_duplicates(
        &self,
        owner: &str,
        items: &[(i64, String, AuditRecord)],
    ) -> Result<bool, StoreError> {
        if items.is_empty() {
            return Ok(true);
        }
        let fail = lease_err("note");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        for (_, _, rec) in items {
            append_in_tx(&mut tx, rec).await.map_err(&fail)?;
        }
        for (id, previous, _) in items {
            let done = sqlx::query(
                "UPDATE recipients SET sending_owner = NULL, sending_since = NULL \
                 WHERE id = $1 AND sending_owner = $2 AND state = 'inflight' AND lease_owner = $3",
            )
            .bind(*id)
            .bind(previous.clone())
            .bind(owner.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(&fail)?;
            if done.rows_affected() == 0 {
                // Dropping the transaction rolls everything back.
                return Ok(false);
            }
        }
        tx.commit().await.map_err(&fail)?;
        Ok(true)
    }

    /// Hands every recipient `owner` still holds back to the queue, due now, without counting
    /// an attempt (graceful shutdown). Returns how many were released.
    pub async fn release_leases(&self, owner: &str, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE recipients SET state = 'queued', next_attempt_at = $1, lease_owner = NULL, \
             lease_until = NULL, updated_at = $1 WHERE state = 'inflight' AND lease_owner = $2",
        )
        .bind(now)
        .bind(owner.to_owned())
        .execute(&self.pool)
        .await
        .map_err(lease_err("release"))?;
        Ok(done.rows_affected())
    }

    /// The earliest `next_attempt_at` of any recipient still to be tried, if any (so a worker
    /// can sleep until then instead of polling).
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN state = 'inflight' THEN lease_until ELSE next_attempt_at END) AS t \
             FROM recipients WHERE state IN ('queued', 'deferred', 'inflight')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::ReadQueue)?;
        row.try_get::<Option<i64>, _>("t")
            .map_err(StoreError::ReadQueue)
    }
}

/// What an operator does to a message's waiting (queued or deferred) recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    /// Make them due now (`sealgate queue retry`).
    RetryNow,
    /// Give up now (`sealgate queue bounce`); the caller sends the DSN.
    Bounce,
}

impl Store {
    /// Applies `action` to every queued or deferred recipient of `message_id`, appending the
    /// audit record `audit(rcpt)` for each, in one transaction. Returns the recipients changed
    /// and how many are in flight (held by a worker, untouched).
    pub async fn operator_action(
        &self,
        message_id: &str,
        action: OperatorAction,
        audit: &(dyn Fn(&str) -> AuditRecord + Sync),
    ) -> Result<(Vec<String>, i64), StoreError> {
        use sqlx::Row;
        let fail = lease_err("operator action");
        let mut tx = self.begin_write().await.map_err(&fail)?;
        let rows =
            sqlx::query("SELECT rcpt, state FROM recipients WHERE message_id = $1 ORDER BY id")
                .bind(message_id.to_owned())
                .fetch_all(&mut **tx)
                .await
                .map_err(&fail)?;
        let mut waiting = Vec::new();
        let mut inflight = 0;
        for row in &rows {
            let rcpt: String = row.try_get("rcpt").map_err(&fail)?;
            let state: String = row.try_get("state").map_err(&fail)?;
            match state.as_str() {
                "queued" | "deferred" => waiting.push(rcpt),
                "inflight" => inflight += 1,
                _ => {}
            }
        }
        if waiting.is_empty() {
            return Ok((waiting, inflight));
        }
        for rcpt in &waiting {
            append_in_tx(&mut tx, &audit(rcpt)).await.map_err(&fail)?;
        }
        let now = sealgate_types::time::now_micros();
        let (state, reply) = match action {
            OperatorAction::RetryNow => (RecipientState::Queued, None),
            OperatorAction::Bounce => (
                RecipientState::Bounced,
                Some("bounced by an operator".to_owned()),
            ),
        };
        sqlx::query(
            "UPDATE recipients SET state = $1, next_attempt_at = $2, \
             last_reply = COALESCE($3, last_reply), updated_at = $2 \
             WHERE message_id = $4 AND state IN ('queued', 'deferred')",
        )
        .bind(state.as_str().to_owned())
        .bind(now)
        .bind(reply)
        .bind(message_id.to_owned())
        .execute(&mut **tx)
        .await
        .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok((waiting, inflight))
    }
}
