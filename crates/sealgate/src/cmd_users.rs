//! `sealgate users add|remove|list`

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use sealgate_audit::AuditEvent;
use sealgate_store::Store;

use crate::cli::UsersCommand;

/// Runs a users command.
pub async fn run(store: &Store, cmd: UsersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCommand::Add {
            name,
            password_stdin: _,
        } => {
            validate_name(&name)?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.len() < 8 {
                bail!("password too short: use at least 8 characters");
            }
            let owned = password.to_owned();
            let hash = tokio::task::spawn_blocking(move || sealgate_crypto::hash_password(&owned))
                .await??;
            let event = AuditEvent::UserSaved {
                name: name.clone(),
                operator: operator(),
            };
            store
                .user_upsert(&name, &hash, &event.into_record())
                .await?;
            println!("user {name} saved");
        }
        UsersCommand::Remove { name } => {
            let event = AuditEvent::UserRemoved {
                name: name.clone(),
                operator: operator(),
            };
            if !store.user_remove(&name, &event.into_record()).await? {
                eprintln!("no user {name}");
                return Ok(ExitCode::from(1));
            }
            println!("user {name} removed");
        }
        UsersCommand::List => {
            for u in store.user_list().await? {
                println!(
                    "{}\t{}",
                    u.name,
                    sealgate_types::time::rfc3339_micros(u.created_at)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 128
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        bail!("invalid user name {name:?}: 1-128 characters, no spaces or control characters");
    }
    Ok(())
}

/// The operating-system user running the command, for the audit trail.
pub fn operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}
