//! API keys (`api_keys`): the hash of each key's secret, its scopes and sender rules. Adding
//! and revoking a key is audited in the same transaction.

use sealgate_types::AuditRecord;
use sealgate_types::time::now_micros;
use sqlx::Row as _;

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::store::Store;

/// One API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// The public id (16 hex digits).
    pub id: String,
    /// The operator's name for it.
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
    /// `send`, `read`, `admin`.
    pub scopes: Vec<String>,
    /// Sender rules it may use (`@clinic.example`); empty: any sender.
    pub senders: Vec<String>,
    /// When it was added (microseconds since the epoch).
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

fn fail(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::ApiKeys { op, source }
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<ApiKeyRow, sqlx::Error> {
    let words = |s: String| s.split_whitespace().map(str::to_owned).collect();
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        secret_sha256: r.try_get("secret_sha256")?,
        scopes: words(r.try_get("scopes")?),
        senders: words(r.try_get("senders")?),
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const COLUMNS: &str = "id, name, secret_sha256, scopes, senders, created_at, revoked_at";

impl Store {
    /// Stores a new key and appends `audit` in the same transaction; false (and nothing
    /// written) when a key has this name already.
    pub async fn api_key_add(
        &self,
        key: &ApiKeyRow,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(fail("add"))?;
        let taken = sqlx::query("SELECT 1 FROM api_keys WHERE name = $1")
            .bind(key.name.clone())
            .fetch_optional(&mut **tx)
            .await
            .map_err(fail("add"))?
            .is_some();
        if taken {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await.map_err(fail("add"))?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, secret_sha256, scopes, senders, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.clone())
        .bind(key.name.clone())
        .bind(key.secret_sha256.clone())
        .bind(key.scopes.join(" "))
        .bind(key.senders.join(" "))
        .bind(now_micros())
        .execute(&mut **tx)
        .await
        .map_err(fail("add"))?;
        tx.commit().await.map_err(fail("add"))?;
        Ok(true)
    }

    /// The key with this public id, revoked or not.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(fail("lookup"))?;
        row.as_ref().map(row_of).transpose().map_err(fail("lookup"))
    }

    /// Every key, by name.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(fail("list"))?;
        rows.iter()
            .map(row_of)
            .collect::<Result<_, _>>()
            .map_err(fail("list"))
    }

    /// Revokes the key called `name` and appends `audit(id)` in the same transaction; its id,
    /// or `None` (nothing written) when there is no such key or it was revoked already.
    pub async fn api_key_revoke(
        &self,
        name: &str,
        audit: &(dyn Fn(&str) -> AuditRecord + Sync),
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_write().await.map_err(fail("revoke"))?;
        let id: Option<String> =
            sqlx::query("SELECT id FROM api_keys WHERE name = $1 AND revoked_at IS NULL")
                .bind(name.to_owned())
                .fetch_optional(&mut **tx)
                .await
                .map_err(fail("revoke"))?
                .map(|r| r.try_get("id"))
                .transpose()
                .map_err(fail("revoke"))?;
        let Some(id) = id else { return Ok(None) };
        append_in_tx(&mut tx, &audit(&id))
            .await
            .map_err(fail("revoke"))?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
            .bind(now_micros())
            .bind(id.clone())
            .execute(&mut **tx)
            .await
            .map_err(fail("revoke"))?;
        tx.commit().await.map_err(fail("revoke"))?;
        Ok(Some(id))
    }
}
