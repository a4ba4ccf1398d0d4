//! DKIM signing keys kept in the database (`dkim_keys`), so every node of a cluster signs with
//! the same keys. The private key arrives sealed (the caller seals it under the node key ring)
//! and leaves sealed; adding and removing a key is audited in the same transaction.

use sealgate_types::AuditRecord;
use sealgate_types::time::now_micros;
use sqlx::Row as _;

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::store::Store;

/// One stored DKIM key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDkimKey {
    /// The signing domain, lowercase.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    /// The PKCS#8 PEM private key, sealed under the node key ring.
    pub key_sealed: Vec<u8>,
    /// When it was stored (microseconds since the epoch).
    pub created_at: i64,
}

fn fail(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::DkimKeys { op, source }
}

impl Store {
    /// Stores a new key and appends `audit` in the same transaction; false (and nothing
    /// written) when the domain already has a key under this selector.
    pub async fn dkim_key_add(
        &self,
        key: &StoredDkimKey,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(fail("add"))?;
        let exists = sqlx::query("SELECT 1 FROM dkim_keys WHERE domain = $1 AND selector = $2")
            .bind(key.domain.clone())
            .bind(key.selector.clone())
            .fetch_optional(&mut **tx)
            .await
            .map_err(fail("add"))?
            .is_some();
        if exists {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await.map_err(fail("add"))?;
        sqlx::query(
            "INSERT INTO dkim_keys (domain, selector, algorithm, key_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.domain.clone())
        .bind(key.selector.clone())
        .bind(key.algorithm.clone())
        .bind(key.key_sealed.clone())
        .bind(now_micros())
        .execute(&mut **tx)
        .await
        .map_err(fail("add"))?;
        tx.commit().await.map_err(fail("add"))?;
        Ok(true)
    }

    /// Every stored key, by domain and selector.
    pub async fn dkim_keys(&self) -> Result<Vec<StoredDkimKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT domain, selector, algorithm, key_sealed, created_at FROM dkim_keys \
             ORDER BY domain, selector",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(fail("list"))?;
        rows.iter()
            .map(|r| {
                Ok(StoredDkimKey {
                    domain: r.try_get("domain")?,
                    selector: r.try_get("selector")?,
                    algorithm: r.try_get("algorithm")?,
                    key_sealed: r.try_get("key_sealed")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(fail("list"))
    }

    /// Removes a key and appends `audit` in the same transaction; false (and nothing written)
    /// when there is no such key.
    pub async fn dkim_key_remove(
        &self,
        domain: &str,
        selector: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(fail("remove"))?;
        let done = sqlx::query("DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2")
            .bind(domain.to_owned())
            .bind(selector.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(fail("remove"))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await.map_err(fail("remove"))?;
        tx.commit().await.map_err(fail("remove"))?;
        Ok(true)
    }
}
