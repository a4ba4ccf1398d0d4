//! `sealgate api-keys add|list|revoke`: the keys the REST API accepts.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use sealgate_audit::AuditEvent;
use sealgate_crypto::api_key::new_api_key;
use sealgate_store::{ApiKeyRow, Store};
use sealgate_types::AllowedSenders;

/// What a key may do.
const SCOPES: &[&str] = &["send", "read", "admin"];

/// `sealgate api-keys …`
#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeysCommand {
    /// Add a key; prints it once (only a hash of its secret is stored). Audited.
    Add {
        /// A name for the key, such as ehr-prod.
        name: String,
        /// What it may do: send, read, admin (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// A domain it may send as (repeatable); without any, it may send as any sender.
        #[arg(long = "sender-domain")]
        sender_domains: Vec<String>,
    },
    /// List the keys (ids, names, scopes, senders, revoked or not; never secrets).
    List,
    /// Revoke a key: it opens nothing from now on. Audited.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// Runs an api-keys command.
pub(crate) async fn run(store: &Store, cmd: ApiKeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiKeysCommand::Add {
            name,
            scope,
            sender_domains,
        } => add(store, &name, &scope, &sender_domains).await,
        ApiKeysCommand::List => list(store).await,
        ApiKeysCommand::Revoke { name } => {
            let audit = |id: &str| {
                AuditEvent::ApiKeyRevoked {
                    key_id: id.to_owned(),
                    name: name.clone(),
                    operator: crate::cmd_users::operator(),
                }
                .into_record()
            };
            match store.api_key_revoke(&name, &audit).await? {
                Some(id) => {
                    println!("revoked {name} (id {id}): it opens nothing from now on");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("no unrevoked key called {name}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

async fn add(
    store: &Store,
    name: &str,
    scopes: &[String],
    domains: &[String],
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
        "the name must be a word without spaces"
    );
    let mut scopes: Vec<String> = scopes
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    scopes.sort();
    scopes.dedup();
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        anyhow::bail!("unknown scope {bad:?}: use send, read or admin");
    }
    let senders: Vec<String> = domains
        .iter()
        .map(|d| format!("@{}", d.trim().trim_start_matches('@').to_ascii_lowercase()))
        .collect();
    AllowedSenders::parse_list(&senders).context("--sender-domain")?;
    let key = new_api_key()?;
    let row = ApiKeyRow {
        id: key.id.clone(),
        name: name.to_owned(),
        secret_sha256: key.secret_sha256.clone(),
        scopes: scopes.clone(),
        senders: senders.clone(),
        created_at: 0,
        revoked_at: None,
    };
    let audit = AuditEvent::ApiKeyAdded {
        key_id: key.id.clone(),
        name: name.to_owned(),
        scopes,
        senders,
        operator: crate::cmd_users::operator(),
    }
    .into_record();
    if !store.api_key_add(&row, &audit).await? {
        eprintln!("a key called {name} exists already");
        return Ok(ExitCode::from(1));
    }
    println!("{}", key.token);
    eprintln!(
        "key {name} (id {}) added; the line above is its only copy: give it to the client \
         (Authorization: Bearer …)",
        key.id
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let keys = store.api_keys().await?;
    println!("ID                NAME  SCOPES  SENDERS  STATE");
    for k in keys {
        let senders = if k.senders.is_empty() {
            "any".to_owned()
        } else {
            k.senders.join(",")
        };
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{}  {}  {}  {}  {}",
            k.id,
            k.name,
            k.scopes.join(","),
            senders,
            state
        );
    }
    Ok(ExitCode::SUCCESS)
}
