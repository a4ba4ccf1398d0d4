//! Submission users.

use sealgate_types::AuditRecord;
use sealgate_types::time::now_micros;
use sqlx::Row;

use crate::audit::append_in_tx;

use crate::error::StoreError;
use crate::model::UserRow;
use crate::store::Store;

impl Store {
    /// Adds a user, or replaces the password hash of an existing one (keeping `created_at`),
    /// and appends `audit` in the same transaction.
    pub async fn user_upsert(
        &self,
        name: &str,
        password_hash: &str,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let fail = |source| StoreError::Users {
            op: "upsert",
            source,
        };
        let mut tx = self.begin_write().await.map_err(fail)?;
        append_in_tx(&mut tx, audit).await.map_err(fail)?;
        sqlx::query(
            "INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
        )
        .bind(name.to_owned())
        .bind(password_hash.to_owned())
        .bind(now_micros())
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    /// Removes a user and appends `audit` in the same transaction; false (and nothing
    /// written) if there was no user by that name.
    pub async fn user_remove(&self, name: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let fail = |source| StoreError::Users {
            op: "remove",
            source,
        };
        let mut tx = self.begin_write().await.map_err(fail)?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    /// All users, by name.
    pub async fn user_list(&self) -> Result<Vec<UserRow>, StoreError> {
        let fail = |source| StoreError::Users { op: "list", source };
        let rows = sqlx::query("SELECT name, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter()
            .map(|row| {
                Ok(UserRow {
                    name: row.try_get("name").map_err(fail)?,
                    created_at: row.try_get("created_at").map_err(fail)?,
                })
            })
            .collect()
    }

    /// The stored password hash (PHC string) of a user, if the user exists.
    pub async fn user_password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        let fail = |source| StoreError::Users {
            op: "lookup",
            source,
        };
        let row = sqlx::query("SELECT password_hash FROM users WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(fail)?;
        row.map(|r| r.try_get("password_hash").map_err(fail))
            .transpose()
    }
}
