//! Where the database schema stands against the embedded migrations, and the least-privilege
//! serving role on PostgreSQL: the owner of the tables runs the migrations; the relay serves
//! as a role that may read and append the audit log but never change, empty or unprotect it.

use sqlx::{AssertSqlSafe, Row as _};

use crate::error::StoreError;
use crate::store::{Backend, Store};

/// What the relay, the portal and the CLI do to the queue, users, keys, portal and probe
/// tables: read and write.
const READ_WRITE: &str = "SELECT, INSERT, UPDATE, DELETE";

/// Every table the migrations create, with exactly what the serving role may do to it and
/// why. A migration that adds a table adds it here (a test compares this list with the
/// migrated schema).
const SERVING_GRANTS: &[(&str, &str, &str)] = &[
    ("messages", READ_WRITE, "the queue"),
    ("recipients", READ_WRITE, "the queue"),
    ("users", READ_WRITE, "SMTP AUTH users"),
    (
        "user_senders",
        READ_WRITE,
        "which senders each user may use",
    ),
    (
        "audit",
        "SELECT, INSERT",
        "the audit log is append-only: read and append, nothing else",
    ),
    (
        "audit_head",
        "SELECT, UPDATE",
        "the chain head moves forward one row at a time (its trigger checks how)",
    ),
    ("mta_sts_policies", READ_WRITE, "cached MTA-STS policies"),
    ("domain_security", READ_WRITE, "the downgrade memory"),
    ("tls_rpt_results", READ_WRITE, "TLS-RPT counts"),
    ("tls_rpt_failures", READ_WRITE, "TLS-RPT failures"),
    (
        "recipient_keys",
        READ_WRITE,
        "recipients' keys and certificates",
    ),
    ("portal_messages", READ_WRITE, "the secure portal"),
    ("portal_grants", READ_WRITE, "the secure portal"),
    ("portal_sessions", READ_WRITE, "the secure portal"),
    (
        "dkim_keys",
        READ_WRITE,
        "DKIM signing keys, sealed under the node key ring",
    ),
    (
        "api_keys",
        READ_WRITE,
        "API keys (secrets hashed): added, listed and revoked",
    ),
    (
        "idempotency_keys",
        READ_WRITE,
        "the first answer to each API idempotency key",
    ),
    (
        "webhook_endpoints",
        READ_WRITE,
        "webhook endpoints (secrets sealed under the node key ring)",
    ),
    (
        "webhook_outbox",
        READ_WRITE,
        "webhook events: written with their audit rows, delivered, pruned",
    ),
    (
        "_sqlx_migrations",
        "SELECT",
        "which migrations are applied: read only",
    ),
];

/// The sequences behind the tables' serial columns (`nextval` needs USAGE).
const SERVING_SEQUENCES: &[&str] = &["recipients_id_seq"];

/// The database schema compared with this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Embedded migrations not applied yet, `(version, name)`, oldest first. Empty when the
    /// role may not read the migration table (then `missing_privileges` names it).
    pub pending: Vec<(i64, &'static str)>,
    /// Applied versions this build does not know (a newer Sealgate migrated the database).
    pub unknown: Vec<i64>,
    /// Whether the connected role may apply migrations: on PostgreSQL, it may create in the
    /// schema and owns (or is a member of the owner of) the migration table; always on SQLite.
    pub may_migrate: bool,
    /// PostgreSQL: whether the connected role owns (or is a member of the owner of) the audit
    /// table, and so could drop its append-only triggers. Always false on SQLite.
    pub owns_audit: bool,
    /// PostgreSQL: the tables whose privileges the connected role lacks, each with what it
    /// needs (`"portal_grants: SELECT, INSERT, UPDATE, DELETE"`). Empty on SQLite.
    pub missing_privileges: Vec<String>,
}

impl Store {
    /// Compares the applied migrations with the embedded ones and, on PostgreSQL, looks at
    /// what the connected role may do. Runs no DDL.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let fail = |source| StoreError::Schema {
            op: "status",
            source,
        };
        let known = self.migrations();
        let (applied, pending) = match self.applied_versions().await.map_err(fail)? {
            Some(applied) => {
                let pending = known
                    .iter()
                    .filter(|(v, _, _)| !applied.contains(v))
                    .map(|&(v, name, _)| (v, name))
                    .collect();
                (applied, pending)
            }
            None => (Vec::new(), Vec::new()),
        };
        let unknown = applied
            .iter()
            .copied()
            .filter(|v| !known.iter().any(|(k, _, _)| k == v))
            .collect();
        let (may_migrate, owns_audit, missing_privileges) = match self.backend() {
            Backend::Sqlite => (true, false, Vec::new()),
            Backend::Postgres => self.postgres_role().await.map_err(fail)?,
        };
        Ok(SchemaStatus {
            pending,
            unknown,
            may_migrate,
            owns_audit,
            missing_privileges,
        })
    }

    /// Versions recorded as successfully applied (none when nothing was ever migrated);
    /// `None` when the role may not read the migration table (`missing_privileges` names it).
    async fn applied_versions(&self) -> Result<Option<Vec<i64>>, sqlx::Error> {
        let state = match self.backend() {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            // 0: no table; 1: readable; 2: there but not readable by this role.
            Backend::Postgres => {
                "SELECT CAST(CASE WHEN to_regclass('_sqlx_migrations') IS NULL THEN 0 \
                 WHEN has_table_privilege(to_regclass('_sqlx_migrations'), 'SELECT') THEN 1 \
                 ELSE 2 END AS BIGINT)"
            }
        };
        let state: i64 = sqlx::query_scalar(state).fetch_one(&self.pool).await?;
        match state {
            0 => Ok(Some(Vec::new())),
            1 => sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await
            .map(Some),
            _ => Ok(None),
        }
    }

    /// `(may_migrate, owns_audit, missing_privileges)` of the connected PostgreSQL role.
    async fn postgres_role(&self) -> Result<(bool, bool, Vec<String>), sqlx::Error> {
        let row = sqlx::query(
            "SELECT \
               CAST(CASE WHEN COALESCE(has_schema_privilege(current_schema(), 'CREATE'), FALSE) \
                 AND (to_regclass('_sqlx_migrations') IS NULL OR pg_has_role( \
                   (SELECT relowner FROM pg_class WHERE oid = to_regclass('_sqlx_migrations')), \
                   'USAGE')) THEN 1 ELSE 0 END AS BIGINT) AS may_migrate, \
               CAST(CASE WHEN to_regclass('audit') IS NOT NULL AND pg_has_role( \
                   (SELECT relowner FROM pg_class WHERE oid = to_regclass('audit')), 'USAGE') \
                 THEN 1 ELSE 0 END AS BIGINT) AS owns_audit",
        )
        .fetch_one(&self.pool)
        .await?;
        let may_migrate: i64 = row.try_get("may_migrate")?;
        let owns_audit: i64 = row.try_get("owns_audit")?;
        let mut missing = Vec::new();
        for &(table, needed, _) in SERVING_GRANTS {
            let lacking: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM unnest(string_to_array($2, ', ')) AS p \
                 WHERE to_regclass($1) IS NOT NULL AND NOT has_table_privilege(to_regclass($1), p)",
            )
            .bind(table)
            .bind(needed)
            .fetch_one(&self.pool)
            .await?;
            if lacking > 0 {
                missing.push(format!("{table}: {needed}"));
            }
        }
        Ok((may_migrate == 1, owns_audit == 1, missing))
    }

    /// PostgreSQL: grants `role` exactly what serving needs in the current schema (see
    /// [`serving_role_sql`]), in one transaction. Run as the owner of the tables.
    pub async fn grant_serving_role(&self, role: &str) -> Result<String, StoreError> {
        let fail = |source| StoreError::Schema {
            op: "grant",
            source,
        };
        if self.backend() != Backend::Postgres {
            return Err(StoreError::Invalid {
                what: "database roles exist only on PostgreSQL",
            });
        }
        let schema: String = sqlx::query_scalar("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?;
        let sql = serving_role_sql(role, &schema);
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(schema)
    }
}

/// A PostgreSQL identifier, quoted (RFC-free: PostgreSQL's own rule, `"` doubled).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL that gives `role` what the relay, the portal and the CLI need in `schema` and no
/// more: read-write on the queue, users, keys, portal and probe tables and their sequences;
/// only SELECT and INSERT on the audit log (so no UPDATE, DELETE or TRUNCATE), SELECT and
/// UPDATE on its chain head, SELECT on the migration table; ownership of nothing (so no ALTER
/// and no DROP TRIGGER). Run it as the owner after creating the role and after every
/// `sealgate migrate`: a table that a migration adds gets no grant until then.
pub fn serving_role_sql(role: &str, schema: &str) -> String {
    let r = quote_ident(role);
    let s = quote_ident(schema);
    let mut sql = format!(
        "-- Sealgate: grants for the serving role {r}. Run as the owner of the Sealgate tables\n\
         -- (the role that runs `sealgate migrate`), and again after every `sealgate migrate`.\n\
         BEGIN;\n\
         GRANT USAGE ON SCHEMA {s} TO {r};\n"
    );
    for (table, privileges, why) in SERVING_GRANTS {
        let t = format!("{s}.{}", quote_ident(table));
        sql.push_str(&format!(
            "-- {table}: {why}.\n\
             REVOKE ALL ON TABLE {t} FROM {r};\n\
             GRANT {privileges} ON TABLE {t} TO {r};\n"
        ));
    }
    for sequence in SERVING_SEQUENCES {
        let q = format!("{s}.{}", quote_ident(sequence));
        sql.push_str(&format!(
            "REVOKE ALL ON SEQUENCE {q} FROM {r};\nGRANT USAGE, SELECT ON SEQUENCE {q} TO {r};\n"
        ));
    }
    sql.push_str("COMMIT;\n");
    sql
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use sealgate_testkit::db::{TestBackend, TestDb};

    use super::*;
    use crate::test_support::open;

    #[test]
    fn the_audit_log_gets_only_select_and_insert_and_names_are_quoted() {
        let sql = serving_role_sql("relay\"x", "public");
        let has = |line: &str| sql.lines().any(|l| l == line);
        assert!(
            has(r#"REVOKE ALL ON TABLE "public"."audit" FROM "relay""x";"#),
            "{sql}"
        );
        assert!(
            has(r#"GRANT SELECT, INSERT ON TABLE "public"."audit" TO "relay""x";"#),
            "{sql}"
        );
        assert!(has(
            r#"GRANT SELECT, UPDATE ON TABLE "public"."audit_head" TO "relay""x";"#
        ));
        assert!(has(
            r#"GRANT SELECT ON TABLE "public"."_sqlx_migrations" TO "relay""x";"#
        ));
        assert!(!sql.contains("OWNER") && !sql.contains("TRUNCATE"), "{sql}");
    }

    /// A migration that adds a table or a sequence must say what the serving role may do
    /// with it: [`SERVING_GRANTS`] and [`SERVING_SEQUENCES`] name exactly what exists.
    #[tokio::test]
    async fn the_serving_grants_name_every_table_and_sequence_the_migrations_create() {
        let (_db, store) = open(TestBackend::Postgres).await;
        let list = |kind: &'static str| {
            let store = store.clone();
            async move {
                let mut names: Vec<String> = sqlx::query_scalar(
                    "SELECT CAST(c.relname AS TEXT) FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind::text = $1 ORDER BY 1",
                )
                .bind(kind)
                .fetch_all(&store.pool)
                .await
                .unwrap();
                names.sort();
                names
            }
        };
        let mut tables: Vec<&str> = SERVING_GRANTS.iter().map(|(t, _, _)| *t).collect();
        tables.sort_unstable();
        assert_eq!(list("r").await, tables);
        assert_eq!(list("S").await, SERVING_SEQUENCES);
    }

    #[tokio::test]
    async fn a_current_schema_has_nothing_pending_and_an_empty_one_everything() {
        for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
            let (_db, store) = open(backend).await;
            let status = store.schema_status().await.unwrap();
            assert!(status.pending.is_empty(), "{backend:?}: {status:?}");
            assert!(
                status.unknown.is_empty() && status.may_migrate,
                "{status:?}"
            );
            assert!(status.missing_privileges.is_empty(), "{status:?}");
            assert_eq!(status.owns_audit, backend == TestBackend::Postgres);

            let db = TestDb::new(backend).await;
            let empty = Store::connect(&db.url, 2, std::time::Duration::from_secs(10))
                .await
                .unwrap();
            let status = empty.schema_status().await.unwrap();
            let names: Vec<&str> = status.pending.iter().map(|(_, n)| *n).collect();
            assert_eq!(names.first(), Some(&"init"), "{backend:?}");
            assert_eq!(status.pending.len(), empty.migrations().len());
        }
    }
}
