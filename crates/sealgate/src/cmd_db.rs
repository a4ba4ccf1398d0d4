//! The database schema: `sealgate migrate`, `sealgate db roles`, and the check every other
//! command makes before it starts (migrating only when the connected role may, never running
//! DDL as a least-privilege serving role).

use std::process::ExitCode;

use anyhow::Context as _;
use sealgate_config::Config;
use sealgate_store::{Backend, SchemaStatus, Store};
use tracing::{info, warn};

use crate::cli::{DbCommand, MigrateArgs, open_store, open_store_at};

/// `sealgate migrate`: applies the migrations as the owner (`--database-url`, or the
/// configured URL).
pub(crate) async fn migrate(cfg: &Config, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let store = match &args.database_url {
        Some(url) => open_store_at(cfg, url).await?,
        None => open_store(cfg).await?,
    };
    store.migrate().await.context("applying migrations")?;
    store.close().await;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// `sealgate db …`
pub(crate) async fn run(cfg: &Config, cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Roles {
            role,
            apply: false,
            schema,
            ..
        } => {
            print!("{}", sealgate_store::serving_role_sql(&role, &schema));
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Roles {
            role,
            apply: true,
            database_url,
            ..
        } => {
            let store = match &database_url {
                Some(url) => open_store_at(cfg, url).await?,
                None => open_store(cfg).await?,
            };
            let schema = store
                .grant_serving_role(&role)
                .await
                .with_context(|| format!("granting {role} what serving needs"))?;
            store.close().await;
            println!("granted {role} what serving needs in schema {schema}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Makes sure the schema is current before a command uses the store: nothing to do when it
/// is; migrations applied when the connected role may apply them (SQLite, or the PostgreSQL
/// owner: a single-role setup keeps migrating on start); otherwise an error naming what is
/// missing and the command that fixes it. Never runs DDL as a role that may not.
pub(crate) async fn ready_schema(store: &Store) -> anyhow::Result<SchemaStatus> {
    let mut status = store
        .schema_status()
        .await
        .context("reading the database schema version")?;
    if !status.unknown.is_empty() {
        anyhow::bail!(
            "the database has migrations this sealgate does not know (versions {:?}): \
             a newer sealgate migrated it; run that version",
            status.unknown
        );
    }
    if !status.pending.is_empty() {
        if !status.may_migrate {
            anyhow::bail!(
                "the database schema is not current: {} not applied, and this database role \
                 may not apply migrations (it serves with least privilege). Run `sealgate \
                 migrate --database-url postgres://OWNER@HOST/DB` as the owner of the tables, \
                 then `sealgate db roles ROLE --apply --database-url …` (README: PostgreSQL roles)",
                pending_names(&status)
            );
        }
        info!(pending = %pending_names(&status), "applying database migrations");
        store
            .migrate()
            .await
            .context("applying database migrations")?;
        status = store
            .schema_status()
            .await
            .context("reading the database schema version")?;
    }
    if !status.missing_privileges.is_empty() {
        anyhow::bail!(
            "this database role lacks privileges it needs ({}): run `sealgate db roles ROLE \
             --apply --database-url postgres://OWNER@HOST/DB` as the owner of the tables \
             (after every `sealgate migrate`)",
            status.missing_privileges.join("; ")
        );
    }
    Ok(status)
}

/// `serve` on PostgreSQL as the owner of the audit table works (a single-role setup), with a
/// warning: that role could drop the table's append-only triggers.
pub(crate) fn warn_if_owner(store: &Store, status: &SchemaStatus) {
    if store.backend() == Backend::Postgres && status.owns_audit {
        warn!(
            "serving as the owner of the audit table: this role could drop its append-only \
             triggers; serve as a least-privilege role (README: PostgreSQL roles)"
        );
    }
}

/// "0006_sending, 0007_x": the pending migrations as their files are named.
fn pending_names(status: &SchemaStatus) -> String {
    let names: Vec<String> = status
        .pending
        .iter()
        .map(|(v, name)| format!("migration {v:04}_{name}"))
        .collect();
    names.join(", ")
}
