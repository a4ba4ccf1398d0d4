//! Webhook endpoints and the webhook outbox.
//!
//! [`fan_out_in_tx`] runs inside every transaction that appends an audit row (see
//! `audit::append_in_tx`): when the row announces an event ([`sealgate_types::webhook`]) and an
//! enabled endpoint takes its type, one outbox row per such endpoint is inserted in that same
//! transaction. A rolled-back state change therefore leaves no event, and a committed one
//! always has its events.
//!
//! Delivery follows the recipients' lease pattern: [`Store::claim_webhooks`] leases due rows
//! (skipping rows another node holds, on PostgreSQL), the dispatcher posts them and
//! [`Store::settle_webhooks`] writes the outcomes if the lease is still its own. Per endpoint and
//! message only the lowest pending `seq` can be claimed, so a message's events arrive in order.

use sealgate_types::time::now_micros;
use sealgate_types::webhook::{WebhookEvent, event_from};
use sealgate_types::{AuditEntry, AuditRecord};
use sqlx::any::AnyRow;
use sqlx::{Any, Row as _, Transaction};

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::portal::lock_audit_head;
use crate::store::{Backend, Store};

fn fail(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Webhooks { op, source }
}

/// An endpoint to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    /// `wh_` + 16 hex digits.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The event types it takes (`*` alone for every type).
    pub events: Vec<String>,
    /// Its signing secret, sealed by the caller under the node key ring.
    pub secret_sealed: String,
}

/// A stored endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRow {
    /// Its id.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The event types it takes (`*` alone for every type).
    pub events: Vec<String>,
    /// The signing secret, sealed.
    pub secret_sealed: String,
    /// The previous secret while a rotation lasts (sealed).
    pub previous_sealed: Option<String>,
    /// Until when the previous secret signs too.
    pub previous_until: Option<i64>,
    /// When it was added.
    pub created_at: i64,
    /// When it was disabled (a `410 Gone`, or an operator), if it is.
    pub disabled_at: Option<i64>,
    /// Why.
    pub disabled_reason: Option<String>,
    /// The first failure since the last success.
    pub failing_since: Option<i64>,
    /// When that failure was audited as an alert.
    pub alerted_at: Option<i64>,
}

impl WebhookEndpointRow {
    /// Whether it takes events of type `t`.
    pub fn takes(&self, t: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == t)
    }
}

/// A leased outbox row, ready to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// `endpoint id:seq`.
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The audit row's sequence number.
    pub seq: i64,
    /// The webhook-id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The queue id it is about, if any.
    pub message_id: Option<String>,
    /// The body to post.
    pub payload: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it was written.
    pub created_at: i64,
    /// The last answer or error.
    pub last_status: Option<String>,
    /// When the next attempt is due (pending rows).
    pub next_attempt_at: i64,
}

/// What became of one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A 2xx answer.
    Delivered {
        /// The status line or code, for operators.
        status: String,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        /// The answer or error.
        status: String,
        /// When.
        next_attempt_at: i64,
    },
    /// Retries are exhausted: the event is dead (listed, replayable).
    Dead {
        /// The last answer or error.
        status: String,
    },
    /// The endpoint answered `410 Gone`: it is disabled and the event waits, pending, until it
    /// is enabled again.
    Gone {
        /// The answer.
        status: String,
    },
}

impl WebhookOutcome {
    fn failed(&self) -> bool {
        !matches!(self, Self::Delivered { .. })
    }
}

/// A replay's selection: events written in `[since, until)`, of one endpoint or all, dead only
/// or delivered too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReplay {
    /// From (inclusive), microseconds since the epoch.
    pub since: i64,
    /// To (exclusive).
    pub until: i64,
    /// One endpoint, or every endpoint.
    pub endpoint_id: Option<String>,
    /// Replay delivered events too (a receiver that lost its data), not only dead ones.
    pub include_delivered: bool,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, secret_sealed, previous_sealed, previous_until, \
     created_at, disabled_at, disabled_reason, failing_since, alerted_at";
const OUTBOX_COLUMNS: &str = "id, endpoint_id, seq, event_id, event_type, message_id, payload, \
     state, attempts, created_at, last_status, next_attempt_at";

fn events_column(events: &[String]) -> String {
    format!(" {} ", events.join(" "))
}

fn endpoint_from_row(r: &AnyRow) -> Result<WebhookEndpointRow, sqlx::Error> {
    let events: String = r.try_get("events")?;
    Ok(WebhookEndpointRow {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        events: events.split_whitespace().map(str::to_owned).collect(),
        secret_sealed: r.try_get("secret_sealed")?,
        previous_sealed: r.try_get("previous_sealed")?,
        previous_until: r.try_get("previous_until")?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
        failing_since: r.try_get("failing_since")?,
        alerted_at: r.try_get("alerted_at")?,
    })
}

fn outbox_from_row(r: &AnyRow) -> Result<OutboxRow, sqlx::Error> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        seq: r.try_get("seq")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        message_id: r.try_get("message_id")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        created_at: r.try_get("created_at")?,
        last_status: r.try_get("last_status")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}

/// One outbox row to write with its audit row.
#[derive(Debug)]
pub(crate) struct OutboxInsert {
    endpoint_id: String,
    event_id: String,
    event_type: &'static str,
    message_id: Option<String>,
    payload: String,
}

impl OutboxInsert {
    /// Binds the row's six values after the audit row's eight (see `audit::append_after`).
    pub(crate) fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
        seq: i64,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        q.bind(format!("{}:{seq}", self.endpoint_id))
            .bind(self.endpoint_id.clone())
            .bind(self.event_id.clone())
            .bind(self.event_type.to_owned())
            .bind(self.message_id.clone())
            .bind(self.payload.clone())
    }

    /// Inserts the row on its own (SQLite, where a statement costs no round trip).
    pub(crate) async fn insert(
        &self,
        tx: &mut Transaction<'static, Any>,
        entry: &AuditEntry,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO webhook_outbox (id, endpoint_id, seq, event_id, event_type, message_id, \
             payload, created_at, state, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $8)",
        )
        .bind(format!("{}:{}", self.endpoint_id, entry.seq))
        .bind(self.endpoint_id.clone())
        .bind(entry.seq)
        .bind(self.event_id.clone())
        .bind(self.event_type.to_owned())
        .bind(self.message_id.clone())
        .bind(self.payload.clone())
        .bind(entry.at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The outbox rows of the event `entry` announces: one per enabled endpoint taking its type,
/// to be written in the transaction that appends `entry`. `before` is the row appended just
/// before it in the same transaction, if any. `known`: the enabled endpoints as read with the
/// head bump (`id events…` joined by `|`; inner `None`: there are none), or `None` to read them
/// here.
pub(crate) async fn plan_in_tx(
    tx: &mut Transaction<'static, Any>,
    entry: &AuditEntry,
    data: &serde_json::Value,
    before: Option<&AuditRecord>,
    known: Option<Option<String>>,
) -> Result<Vec<OutboxInsert>, sqlx::Error> {
    let listed: Vec<(String, String)> = match known {
        Some(None) => return Ok(Vec::new()),
        Some(Some(list)) => list
            .split('|')
            .filter_map(|e| {
                let (id, events) = e.trim().split_once(' ')?;
                Some((id.to_owned(), events.to_owned()))
            })
            .collect(),
        None => {
            let rows =
                sqlx::query("SELECT id, events FROM webhook_endpoints WHERE disabled_at IS NULL")
                    .fetch_all(&mut **tx)
                    .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("events")?)))
                .collect::<Result<_, sqlx::Error>>()?
        }
    };
    // No endpoint at all (the common case): no event is built.
    if listed.is_empty() {
        return Ok(Vec::new());
    }
    let Some(event) = event_from(entry, data, before) else {
        return Ok(Vec::new());
    };
    let takers: Vec<String> = listed
        .into_iter()
        .filter(|(_, events)| {
            events
                .split_whitespace()
                .any(|e| e == "*" || e == event.event_type)
        })
        .map(|(id, _)| id)
        .collect();
    if takers.is_empty() {
        return Ok(Vec::new());
    }
    let message_id = match (&event.message_id, &event.grant_id) {
        (Some(m), _) => Some(m.clone()),
        (None, Some(grant)) => grant_message(tx, grant).await?,
        (None, None) => portal_message_of(tx, &event).await?,
    };
    let payload = event.body(message_id.as_deref());
    Ok(takers
        .into_iter()
        .map(|endpoint_id| OutboxInsert {
            endpoint_id,
            event_id: event.id.clone(),
            event_type: event.event_type,
            message_id: message_id.clone(),
            payload: payload.clone(),
        })
        .collect())
}

/// The queue id of the message a portal grant was made for.
async fn grant_message(
    tx: &mut Transaction<'static, Any>,
    grant: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT m.message_id FROM portal_grants g \
         JOIN portal_messages m ON m.id = g.portal_message_id WHERE g.id = $1",
    )
    .bind(grant.to_owned())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some(r) => r.try_get("message_id")?,
        None => None,
    })
}

/// The queue id of a purged portal message (`portal.expired`).
async fn portal_message_of(
    tx: &mut Transaction<'static, Any>,
    event: &WebhookEvent,
) -> Result<Option<String>, sqlx::Error> {
    let Some(id) = event
        .payload
        .pointer("/data/portal_message_id")
        .and_then(|v| v.as_str())
    else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT message_id FROM portal_messages WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => r.try_get("message_id")?,
        None => None,
    })
}

impl Store {
    /// Adds an endpoint and appends `audit` in the same transaction.
    pub async fn webhook_add(
        &self,
        endpoint: &NewWebhookEndpoint,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let f = fail("add endpoint");
        let mut tx = self.begin_write().await.map_err(&f)?;
        append_in_tx(&mut tx, audit).await.map_err(&f)?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, events, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(endpoint.id.clone())
        .bind(endpoint.url.clone())
        .bind(events_column(&endpoint.events))
        .bind(endpoint.secret_sealed.clone())
        .bind(now_micros())
        .execute(&mut **tx)
        .await
        .map_err(&f)?;
        tx.commit().await.map_err(&f)?;
        Ok(())
    }

    /// Every endpoint, oldest first.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpointRow>, StoreError> {
        let f = fail("list endpoints");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(&f)?;
        rows.iter()
            .map(endpoint_from_row)
            .collect::<Result<_, _>>()
            .map_err(&f)
    }

    /// One endpoint.
    pub async fn webhook_endpoint(
        &self,
        id: &str,
    ) -> Result<Option<WebhookEndpointRow>, StoreError> {
        let f = fail("read endpoint");
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(&f)?;
        row.as_ref().map(endpoint_from_row).transpose().map_err(&f)
    }

    /// Removes an endpoint with its outbox rows, appending `audit` in the same transaction;
    /// false (nothing written) when there is no such endpoint.
    pub async fn webhook_remove(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let f = fail("remove endpoint");
        let mut tx = self.begin_write().await.map_err(&f)?;
        append_in_tx(&mut tx, audit).await.map_err(&f)?;
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(&f)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM webhook_outbox WHERE endpoint_id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(&f)?;
        tx.commit().await.map_err(&f)?;
        Ok(true)
    }

    /// Disables (`reason` set) or enables (`None`) an endpoint, appending `audit` in the same
    /// transaction; false (nothing written) when there is no such endpoint or it is already so.
    pub async fn webhook_set_disabled(
        &self,
        id: &str,
        reason: Option<&str>,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let f = fail("disable endpoint");
        let mut tx = self.begin_write().await.map_err(&f)?;
        append_in_tx(&mut tx, audit).await.map_err(&f)?;
        let done = match reason {
            Some(reason) => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 \
                     WHERE id = $1 AND disabled_at IS NULL",
                )
                .bind(id.to_owned())
                .bind(now_micros())
                .bind(reason.to_owned())
                .execute(&mut **tx)
                .await
            }
            None => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, \
                     failing_since = NULL, alerted_at = NULL \
                     WHERE id = $1 AND disabled_at IS NOT NULL",
                )
                .bind(id.to_owned())
                .execute(&mut **tx)
                .await
            }
        }
        .map_err(&f)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if reason.is_none() {
            // Events that waited while it was disabled are due now.
            sqlx::query(
                "UPDATE webhook_outbox SET next_attempt_at = $2 \
                 WHERE endpoint_id = $1 AND state = 'pending'",
            )
            .bind(id.to_owned())
            .bind(now_micros())
            .execute(&mut **tx)
            .await
            .map_err(&f)?;
        }
        tx.commit().await.map_err(&f)?;
        Ok(true)
    }

    /// Replaces an endpoint's secret with `secret_sealed`; the old one keeps signing until
    /// `previous_until`. Appends `audit` in the same transaction; false when there is no such
    /// endpoint.
    pub async fn webhook_rotate(
        &self,
        id: &str,
        secret_sealed: &str,
        previous_until: i64,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query(
            "UPDATE webhook_endpoints SET previous_sealed = secret_sealed, previous_until = $3, \
             secret_sealed = $2 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(secret_sealed.to_owned())
        .bind(previous_until);
        self.audited_change("rotate secret", audit, change).await
    }

    /// Appends `audit` and runs `change` in one transaction; false, and nothing written, when
    /// `change` touched no row.
    async fn audited_change(
        &self,
        op: &'static str,
        audit: &AuditRecord,
        change: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
    ) -> Result<bool, StoreError> {
        let f = fail(op);
        let mut tx = self.begin_write().await.map_err(&f)?;
        append_in_tx(&mut tx, audit).await.map_err(&f)?;
        let done = change.execute(&mut **tx).await.map_err(&f)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await.map_err(&f)?;
        Ok(true)
    }

    /// Leases up to `limit` due outbox rows to `owner` until `lease_until`: pending, due at
    /// `now`, not leased (or the lease ran out), of an enabled endpoint, and the lowest pending
    /// `seq` of their endpoint and message. Oldest due first.
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let f = fail("claim");
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE OF o SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2 WHERE id IN (\
             SELECT o.id FROM webhook_outbox o JOIN webhook_endpoints e ON e.id = o.endpoint_id \
             WHERE o.state = 'pending' AND o.next_attempt_at <= $3 \
             AND (o.lease_until IS NULL OR o.lease_until < $3) AND e.disabled_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.endpoint_id = o.endpoint_id \
             AND p.message_id = o.message_id AND p.state = 'pending' AND p.seq < o.seq) \
             ORDER BY o.next_attempt_at, o.seq LIMIT $4{lock}) RETURNING {OUTBOX_COLUMNS}"
        );
        let mut tx = self.begin_write().await.map_err(&f)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(lease_until)
            .bind(now)
            .bind(limit.max(0))
            .fetch_all(&mut **tx)
            .await
            .map_err(&f)?;
        tx.commit().await.map_err(&f)?;
        let mut claimed: Vec<OutboxRow> = rows
            .iter()
            .map(outbox_from_row)
            .collect::<Result<_, _>>()
            .map_err(&f)?;
        claimed.sort_by_key(|r| (r.next_attempt_at, r.seq));
        Ok(claimed)
    }

    /// Writes what became of posts `owner` made, in one transaction: each row only if its
    /// lease is still `owner`'s (returns how many were). An endpoint's failure streak starts
    /// at its first failure and ends at a success; a `Gone` disables the endpoint, with
    /// `gone_audit(endpoint id, status)` appended first.
    pub async fn settle_webhooks(
        &self,
        owner: &str,
        results: &[(OutboxRow, WebhookOutcome)],
        gone_audit: impl Fn(&str, &str) -> AuditRecord,
    ) -> Result<usize, StoreError> {
        if results.is_empty() {
            return Ok(0);
        }
        let f = fail("settle");
        let now = now_micros();
        let mut tx = self.begin_write().await.map_err(&f)?;
        let mut gone: Vec<(&str, &str)> = Vec::new();
        for (row, outcome) in results {
            if let WebhookOutcome::Gone { status } = outcome
                && !gone.iter().any(|(id, _)| *id == row.endpoint_id)
            {
                gone.push((&row.endpoint_id, status));
            }
        }
        for (id, status) in &gone {
            append_in_tx(&mut tx, &gone_audit(id, status))
                .await
                .map_err(&f)?;
        }
        let mut settled = 0;
        for (row, outcome) in results {
            let (state, status, next, attempt) = match outcome {
                WebhookOutcome::Delivered { status } => ("delivered", status, now, 1),
                WebhookOutcome::Retry {
                    status,
                    next_attempt_at,
                } => ("pending", status, *next_attempt_at, 1),
                WebhookOutcome::Dead { status } => ("dead", status, now, 1),
                WebhookOutcome::Gone { status } => ("pending", status, now, 0),
            };
            let settled_at = (state != "pending").then_some(now);
            let done = sqlx::query(
                "UPDATE webhook_outbox SET state = $1, last_status = $2, next_attempt_at = $3, \
                 attempts = attempts + $4, settled_at = $5, lease_owner = NULL, \
                 lease_until = NULL WHERE id = $6 AND lease_owner = $7 AND state = 'pending'",
            )
            .bind(state)
            .bind(status.clone())
            .bind(next)
            .bind(attempt)
            .bind(settled_at)
            .bind(row.id.clone())
            .bind(owner.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(&f)?;
            settled += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        // Endpoints: a success ends a failure streak, a failure starts one.
        let mut seen: Vec<&str> = Vec::new();
        for (row, outcome) in results.iter().rev() {
            if seen.contains(&row.endpoint_id.as_str()) {
                continue;
            }
            seen.push(&row.endpoint_id);
            let q = if outcome.failed() {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = $2 \
                     WHERE id = $1 AND failing_since IS NULL",
                )
                .bind(row.endpoint_id.clone())
                .bind(now)
            } else {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = NULL, alerted_at = NULL \
                     WHERE id = $1 AND failing_since IS NOT NULL",
                )
                .bind(row.endpoint_id.clone())
            };
            q.execute(&mut **tx).await.map_err(&f)?;
        }
        for (id, status) in &gone {
            sqlx::query(
                "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 \
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind((*id).to_owned())
            .bind(now)
            .bind(format!("the endpoint answered {status}"))
            .execute(&mut **tx)
            .await
            .map_err(&f)?;
        }
        tx.commit().await.map_err(&f)?;
        Ok(settled)
    }

    /// Endpoints failing since before `cut_off` whose failure was not audited yet.
    pub async fn webhook_failing_since(
        &self,
        cut_off: i64,
    ) -> Result<Vec<WebhookEndpointRow>, StoreError> {
        let f = fail("read failing endpoints");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE failing_since <= $1 \
             AND alerted_at IS NULL AND disabled_at IS NULL ORDER BY id"
        )))
        .bind(cut_off)
        .fetch_all(&self.pool)
        .await
        .map_err(&f)?;
        rows.iter()
            .map(endpoint_from_row)
            .collect::<Result<_, _>>()
            .map_err(&f)
    }

    /// Marks an endpoint's failure streak as alerted and appends `alert` in the same
    /// transaction; false (nothing written) when it was alerted already (by another node) or
    /// recovered meanwhile.
    pub async fn webhook_mark_alerted(
        &self,
        id: &str,
        alert: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query(
            "UPDATE webhook_endpoints SET alerted_at = $2 WHERE id = $1 \
             AND alerted_at IS NULL AND failing_since IS NOT NULL",
        )
        .bind(id.to_owned())
        .bind(now_micros());
        self.audited_change("alert", alert, change).await
    }

    /// Outbox rows in `state` (any state when `None`), of one endpoint or all, written at or
    /// after `since`, oldest first, at most `limit`.
    pub async fn webhook_events(
        &self,
        state: Option<&str>,
        endpoint_id: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let f = fail("list events");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM webhook_outbox WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR endpoint_id = $2) AND created_at >= $3 \
             ORDER BY created_at, seq, endpoint_id LIMIT $4"
        )))
        .bind(state.map(str::to_owned))
        .bind(endpoint_id.map(str::to_owned))
        .bind(since)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(&f)?;
        rows.iter()
            .map(outbox_from_row)
            .collect::<Result<_, _>>()
            .map_err(&f)
    }

    /// Makes the selected events due again (attempts from zero, same webhook-id), appending
    /// `audit(count)` first in the same transaction. Returns how many.
    pub async fn webhook_replay(
        &self,
        sel: &WebhookReplay,
        audit: impl FnOnce(u64) -> AuditRecord,
    ) -> Result<u64, StoreError> {
        let f = fail("replay");
        let states = if sel.include_delivered {
            "('dead', 'delivered')"
        } else {
            "('dead')"
        };
        let filter = format!(
            "state IN {states} AND created_at >= $1 AND created_at < $2 \
             AND ($3 IS NULL OR endpoint_id = $3)"
        );
        let mut tx = self.begin_write().await.map_err(&f)?;
        // The head's lock first, as every appender takes it, then count what the record names.
        lock_audit_head(&mut tx, self.backend()).await.map_err(&f)?;
        let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM webhook_outbox WHERE {filter}"
        )))
        .bind(sel.since)
        .bind(sel.until)
        .bind(sel.endpoint_id.clone())
        .fetch_one(&mut **tx)
        .await
        .map_err(&f)?
        .try_get("n")
        .map_err(&f)?;
        let count = u64::try_from(count).unwrap_or(0);
        append_in_tx(&mut tx, &audit(count)).await.map_err(&f)?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = $4, \
             lease_owner = NULL, lease_until = NULL, settled_at = NULL WHERE {filter}"
        )))
        .bind(sel.since)
        .bind(sel.until)
        .bind(sel.endpoint_id.clone())
        .bind(now_micros())
        .execute(&mut **tx)
        .await
        .map_err(&f)?;
        tx.commit().await.map_err(&f)?;
        Ok(count)
    }

    /// Deletes delivered events settled before `delivered_before` and dead ones settled before
    /// `dead_before`; returns how many.
    pub async fn webhook_prune(
        &self,
        delivered_before: i64,
        dead_before: i64,
    ) -> Result<u64, StoreError> {
        let f = fail("prune");
        let mut tx = self.begin_write().await.map_err(&f)?;
        let done = sqlx::query(
            "DELETE FROM webhook_outbox WHERE (state = 'delivered' AND settled_at < $1) \
             OR (state = 'dead' AND settled_at < $2)",
        )
        .bind(delivered_before)
        .bind(dead_before)
        .execute(&mut **tx)
        .await
        .map_err(&f)?;
        tx.commit().await.map_err(&f)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
#[path = "webhooks_tests.rs"]
mod tests;
