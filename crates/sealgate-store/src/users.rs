//! Submission users and their sender bindings (which envelope and header senders each may
//! use; one `user_senders` row per rule, none = may not send).

use std::collections::BTreeMap;

use sealgate_types::time::now_micros;
use sealgate_types::{AllowedSenders, AuditRecord};
use sqlx::{Any, Row, Transaction};

use crate::audit::append_in_tx;

use crate::error::StoreError;
use crate::model::UserRow;
use crate::store::Store;

impl Store {
    /// Adds a user, or replaces the password hash of an existing one (keeping `created_at`),
    /// and appends `audit` in the same transaction. With `senders`, the user's sender binding
    /// is replaced too and its audit record appended alongside; without, an existing user
    /// keeps its binding and a new one gets none (it may not send until given one).
    pub async fn user_upsert(
        &self,
        name: &str,
        password_hash: &str,
        senders: Option<(&AllowedSenders, &AuditRecord)>,
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
        if let Some((senders, senders_audit)) = senders {
            append_in_tx(&mut tx, senders_audit).await.map_err(fail)?;
            replace_senders(&mut tx, name, senders)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// Replaces a user's sender binding and appends `audit` in the same transaction; false
    /// (and nothing written) if there is no user by that name.
    pub async fn user_set_senders(
        &self,
        name: &str,
        senders: &AllowedSenders,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let fail = |source| StoreError::Users {
            op: "set senders",
            source,
        };
        let mut tx = self.begin_write().await.map_err(fail)?;
        let exists = sqlx::query("SELECT name FROM users WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&mut **tx)
            .await
            .map_err(fail)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await.map_err(fail)?;
        replace_senders(&mut tx, name, senders)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    /// A user's sender binding; `None` if there is no user by that name.
    pub async fn user_senders(&self, name: &str) -> Result<Option<AllowedSenders>, StoreError> {
        let fail = |source| StoreError::Users {
            op: "senders lookup",
            source,
        };
        let rows = sqlx::query(
            "SELECT s.rule FROM users u LEFT JOIN user_senders s ON s.user_name = u.name \
             WHERE u.name = $1",
        )
        .bind(name.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut rules = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(rule) = row.try_get::<Option<String>, _>("rule").map_err(fail)? {
                rules.push(rule);
            }
        }
        parse_rules(rules).map(Some).map_err(fail)
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

    /// All users, by name, with their sender bindings.
    pub async fn user_list(&self) -> Result<Vec<UserRow>, StoreError> {
        let fail = |source| StoreError::Users { op: "list", source };
        let mut rules: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in sqlx::query("SELECT user_name, rule FROM user_senders")
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?
        {
            let user: String = row.try_get("user_name").map_err(fail)?;
            rules
                .entry(user)
                .or_default()
                .push(row.try_get("rule").map_err(fail)?);
        }
        let rows = sqlx::query("SELECT name, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("name").map_err(fail)?;
                let senders = parse_rules(rules.remove(&name).unwrap_or_default()).map_err(fail)?;
                Ok(UserRow {
                    name,
                    created_at: row.try_get("created_at").map_err(fail)?,
                    senders,
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

/// Stored rules back into a binding; a row that does not parse is a decode error (the CLI
/// only ever stores parsed rules).
fn parse_rules(rules: Vec<String>) -> Result<AllowedSenders, sqlx::Error> {
    AllowedSenders::parse_list(rules).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Deletes a user's rules and inserts `senders` in their place.
async fn replace_senders(
    tx: &mut Transaction<'static, Any>,
    name: &str,
    senders: &AllowedSenders,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_senders WHERE user_name = $1")
        .bind(name.to_owned())
        .execute(&mut **tx)
        .await?;
    for rule in senders.texts() {
        sqlx::query("INSERT INTO user_senders (user_name, rule) VALUES ($1, $2)")
            .bind(name.to_owned())
            .bind(rule)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
