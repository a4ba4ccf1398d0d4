//! Recipients' OpenPGP keys and S/MIME certificates: one row per credential and address, with
//! the audit record of every change in the same transaction.

use sealgate_types::AuditRecord;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::store::Store;

const KEY_COLUMNS: &str = "kind, fingerprint, address, material, source, expires, added_at";

/// One stored credential for one recipient address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// `pgp` or `smime`.
    pub kind: String,
    /// OpenPGP: the primary key's fingerprint (uppercase hex); S/MIME: SHA-256 of the DER
    /// (lowercase hex).
    pub fingerprint: String,
    /// The recipient address, lowercase.
    pub address: String,
    /// OpenPGP: the binary transferable public key; S/MIME: the DER certificate.
    pub material: Vec<u8>,
    /// Where it came from: `import` (an operator's `sealgate keys import`).
    pub source: String,
    /// When the credential expires (Unix seconds), if it does.
    pub expires: Option<i64>,
    /// When the row was last written (microseconds since the epoch).
    pub added_at: i64,
}

impl Store {
    /// Writes `keys` (an existing row with the same kind, address and fingerprint is
    /// replaced) and appends `audit`, all in one transaction; returns the rows written.
    /// Addresses are stored lowercase. Nothing is written, not even `audit`, for no keys.
    pub async fn keys_put(
        &self,
        keys: &[StoredKey],
        audit: &AuditRecord,
    ) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let fail = |source| StoreError::Keys { op: "put", source };
        let mut tx = self.begin_write().await.map_err(fail)?;
        append_in_tx(&mut tx, audit).await.map_err(fail)?;
        for key in keys {
            sqlx::query(
                "INSERT INTO recipient_keys \
                 (kind, fingerprint, address, material, source, expires, added_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (kind, address, fingerprint) DO UPDATE SET \
                 material = excluded.material, source = excluded.source, \
                 expires = excluded.expires, added_at = excluded.added_at",
            )
            .bind(key.kind.clone())
            .bind(key.fingerprint.clone())
            .bind(key.address.to_lowercase())
            .bind(key.material.clone())
            .bind(key.source.clone())
            .bind(key.expires)
            .bind(key.added_at)
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(keys.len())
    }

    /// The credentials stored for `address` (any case), by kind, newest first.
    pub async fn keys_for(&self, address: &str) -> Result<Vec<StoredKey>, StoreError> {
        let fail = |source| StoreError::Keys { op: "for", source };
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM recipient_keys WHERE address = $1 \
             ORDER BY kind, added_at DESC, fingerprint"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(address.to_lowercase())
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// Every stored credential, by address, kind and fingerprint.
    pub async fn keys_list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let fail = |source| StoreError::Keys { op: "list", source };
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM recipient_keys ORDER BY address, kind, fingerprint");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// Deletes the rows of `fingerprint` (any case), only for `address` when given, and
    /// appends `audit` in the same transaction; returns the removed rows. When nothing
    /// matches, nothing is written (no audit row) and the result is empty.
    pub async fn keys_remove(
        &self,
        fingerprint: &str,
        address: Option<&str>,
        audit: &AuditRecord,
    ) -> Result<Vec<StoredKey>, StoreError> {
        let fail = |source| StoreError::Keys {
            op: "remove",
            source,
        };
        let filter = "lower(fingerprint) = $1 AND ($2 = '' OR address = $2)";
        let fingerprint = fingerprint.to_lowercase();
        let address = address.unwrap_or("").to_lowercase();
        let mut tx = self.begin_write().await.map_err(fail)?;
        // Read first: an empty match must leave no audit row, and the audit row has to be
        // appended before any other write of the transaction (see `append_in_tx`).
        let select = format!(
            "SELECT {KEY_COLUMNS} FROM recipient_keys WHERE {filter} \
             ORDER BY address, kind, fingerprint"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(fingerprint.clone())
            .bind(address.clone())
            .fetch_all(&mut **tx)
            .await
            .map_err(fail)?;
        let removed: Vec<StoredKey> = rows
            .iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        if removed.is_empty() {
            return Ok(removed);
        }
        append_in_tx(&mut tx, audit).await.map_err(fail)?;
        let delete = format!("DELETE FROM recipient_keys WHERE {filter}");
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(fingerprint)
            .bind(address)
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(removed)
    }
}

fn from_row(row: &AnyRow) -> Result<StoredKey, sqlx::Error> {
    Ok(StoredKey {
        kind: row.try_get("kind")?,
        fingerprint: row.try_get("fingerprint")?,
        address: row.try_get("address")?,
        material: row.try_get("material")?,
        source: row.try_get("source")?,
        expires: row.try_get("expires")?,
        added_at: row.try_get("added_at")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
#[path = "keys_tests.rs"]
mod tests;
