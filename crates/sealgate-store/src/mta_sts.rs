//! Cached MTA-STS policies (RFC 8461 §5): the last valid policy per domain, kept until it
//! expires so that a blocked or tampered refresh cannot remove an enforce policy (§5.1).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::store::Store;

/// One cached MTA-STS policy, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsPolicyRow {
    /// The policy domain, lowercase without a trailing dot.
    pub domain: String,
    /// The `id` of the `_mta-sts` TXT record the policy was fetched for (§3.1).
    pub policy_id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// The `mx` patterns, in policy order.
    pub mx: Vec<String>,
    /// `max_age` as published, in seconds.
    pub max_age: i64,
    /// When the policy was fetched (microseconds since the epoch).
    pub fetched_at: i64,
    /// `fetched_at + max_age` (microseconds since the epoch).
    pub expires_at: i64,
    /// The policy text as fetched, for operators.
    pub body: String,
}

impl Store {
    /// The cached policy of `domain`, expired or not (the caller compares `expires_at`).
    pub async fn mta_sts_get(&self, domain: &str) -> Result<Option<StsPolicyRow>, StoreError> {
        let fail = |source| StoreError::MtaSts { op: "get", source };
        let row = sqlx::query(
            "SELECT domain, policy_id, mode, mx, max_age, fetched_at, expires_at, body \
             FROM mta_sts_policies WHERE domain = $1",
        )
        .bind(domain.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        row.as_ref().map(from_row).transpose().map_err(fail)
    }

    /// Stores `row` as the policy of its domain, replacing any earlier one.
    pub async fn mta_sts_put(&self, row: &StsPolicyRow) -> Result<(), StoreError> {
        let fail = |source| StoreError::MtaSts { op: "put", source };
        let mut tx = self.begin_write().await.map_err(fail)?;
        sqlx::query(
            "INSERT INTO mta_sts_policies \
             (domain, policy_id, mode, mx, max_age, fetched_at, expires_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id, \
             mode = excluded.mode, mx = excluded.mx, max_age = excluded.max_age, \
             fetched_at = excluded.fetched_at, expires_at = excluded.expires_at, \
             body = excluded.body",
        )
        .bind(row.domain.clone())
        .bind(row.policy_id.clone())
        .bind(row.mode.clone())
        .bind(row.mx.join("\n"))
        .bind(row.max_age)
        .bind(row.fetched_at)
        .bind(row.expires_at)
        .bind(row.body.clone())
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    /// The cached policies whose `expires_at` is before `before_micros` (including those
    /// already expired), soonest first: what a background refresher should fetch again.
    pub async fn mta_sts_expiring(
        &self,
        before_micros: i64,
    ) -> Result<Vec<StsPolicyRow>, StoreError> {
        let fail = |source| StoreError::MtaSts {
            op: "expiring",
            source,
        };
        let rows = sqlx::query(
            "SELECT domain, policy_id, mode, mx, max_age, fetched_at, expires_at, body \
             FROM mta_sts_policies WHERE expires_at < $1 ORDER BY expires_at, domain",
        )
        .bind(before_micros)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }
}

fn from_row(row: &AnyRow) -> Result<StsPolicyRow, sqlx::Error> {
    let mx: String = row.try_get("mx")?;
    Ok(StsPolicyRow {
        domain: row.try_get("domain")?,
        policy_id: row.try_get("policy_id")?,
        mode: row.try_get("mode")?,
        mx: mx
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        max_age: row.try_get("max_age")?,
        fetched_at: row.try_get("fetched_at")?,
        expires_at: row.try_get("expires_at")?,
        body: row.try_get("body")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {

    use sealgate_testkit::db::TestBackend;

    use super::*;
    use crate::test_support::open;

    fn row(domain: &str, id: &str, expires_at: i64) -> StsPolicyRow {
        StsPolicyRow {
            domain: domain.into(),
            policy_id: id.into(),
            mode: "enforce".into(),
            mx: vec!["mx1.example.test".into(), "*.example.net".into()],
            max_age: 86_400,
            fetched_at: expires_at - 86_400_000_000,
            expires_at,
            body: "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\n".into(),
        }
    }

    async fn policy_is_stored_read_back_and_replaced(backend: TestBackend) {
        let (_db, store) = open(backend).await;
        assert_eq!(store.mta_sts_get("example.test").await.unwrap(), None);

        let first = row("example.test", "1", 2_000_000_000_000_000);
        store.mta_sts_put(&first).await.unwrap();
        assert_eq!(
            store.mta_sts_get("example.test").await.unwrap(),
            Some(first)
        );

        let mut second = row("example.test", "2", 2_100_000_000_000_000);
        second.mode = "testing".into();
        second.mx = vec!["only.example.test".into()];
        store.mta_sts_put(&second).await.unwrap();
        assert_eq!(
            store.mta_sts_get("example.test").await.unwrap(),
            Some(second)
        );
        assert_eq!(store.mta_sts_get("other.test").await.unwrap(), None);
    }

    async fn policy_without_mx_round_trips_as_empty(backend: TestBackend) {
        let (_db, store) = open(backend).await;
        let mut none = row("none.test", "7", 2_000_000_000_000_000);
        none.mode = "none".into();
        none.mx = Vec::new();
        store.mta_sts_put(&none).await.unwrap();
        let got = store.mta_sts_get("none.test").await.unwrap().unwrap();
        assert!(got.mx.is_empty());
        assert_eq!(got, none);
    }

    async fn expiring_lists_policies_before_the_cutoff_soonest_first(backend: TestBackend) {
        let (_db, store) = open(backend).await;
        store
            .mta_sts_put(&row("late.test", "1", 3_000))
            .await
            .unwrap();
        store
            .mta_sts_put(&row("soon.test", "1", 1_000))
            .await
            .unwrap();
        store
            .mta_sts_put(&row("mid.test", "1", 2_000))
            .await
            .unwrap();

        let domains = |rows: Vec<StsPolicyRow>| -> Vec<String> {
            rows.into_iter().map(|r| r.domain).collect()
        };
        assert!(store.mta_sts_expiring(1_000).await.unwrap().is_empty());
        assert_eq!(
            domains(store.mta_sts_expiring(2_001).await.unwrap()),
            ["soon.test", "mid.test"]
        );
        assert_eq!(
            domains(store.mta_sts_expiring(i64::MAX).await.unwrap()),
            ["soon.test", "mid.test", "late.test"]
        );
    }

    sealgate_testkit::on_each_backend!(
        policy_is_stored_read_back_and_replaced,
        policy_without_mx_round_trips_as_empty,
        expiring_lists_policies_before_the_cutoff_soonest_first,
    );
}
