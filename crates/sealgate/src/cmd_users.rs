//! `sealgate users add|senders|remove|list`

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use sealgate_audit::AuditEvent;
use sealgate_store::Store;
use sealgate_types::{AllowedSenders, SenderRule};

use crate::cli::UsersCommand;

/// Runs a users command.
pub(crate) async fn run(store: &Store, cmd: UsersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCommand::Add {
            name,
            password_stdin: _,
            senders,
            any_sender,
        } => add_user(store, &name, &senders, any_sender).await?,
        UsersCommand::Senders { name, add, remove } => {
            return change_senders(store, &name, &add, &remove).await;
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
        UsersCommand::List => list_users(store).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `users add`: a new user needs senders; an existing one keeps its own unless given new ones.
async fn add_user(store: &Store, name: &str, rules: &[String], any: bool) -> anyhow::Result<()> {
    validate_name(name)?;
    let senders = if any {
        Some(AllowedSenders::any())
    } else if rules.is_empty() {
        None
    } else {
        Some(parse_rules(rules)?)
    };
    if senders.is_none() && store.user_senders(name).await?.is_none() {
        bail!(
            "a new user needs the senders it may use: --sender ADDRESS, --sender @DOMAIN \
             (repeatable), or --any-sender"
        );
    }
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
    let hash =
        tokio::task::spawn_blocking(move || sealgate_crypto::hash_password(&owned)).await??;
    let saved = AuditEvent::UserSaved {
        name: name.to_owned(),
        operator: operator(),
    };
    let changed = senders.as_ref().map(|s| senders_changed(name, s));
    let with_senders = senders.as_ref().zip(changed.as_ref());
    store
        .user_upsert(name, &hash, with_senders, &saved.into_record())
        .await?;
    println!("user {name} saved");
    if let Some(s) = &senders {
        println!("senders: {s}");
    }
    Ok(())
}

/// `users senders`: prints the list, after applying `--remove` then `--add`.
async fn change_senders(
    store: &Store,
    name: &str,
    add: &[String],
    remove: &[String],
) -> anyhow::Result<ExitCode> {
    let (add, remove) = (parse_rules(add)?, parse_rules(remove)?);
    let Some(mut senders) = store.user_senders(name).await? else {
        eprintln!("no user {name}");
        return Ok(ExitCode::from(1));
    };
    let before = senders.clone();
    for rule in remove.rules() {
        if !senders.remove(rule) {
            eprintln!("{name} had no sender {rule}");
        }
    }
    for rule in add.rules() {
        senders.insert(rule.clone());
    }
    if senders != before {
        let audit = senders_changed(name, &senders);
        if !store.user_set_senders(name, &senders, &audit).await? {
            eprintln!("no user {name}");
            return Ok(ExitCode::from(1));
        }
    }
    for rule in senders.rules() {
        println!("{rule}");
    }
    if let Some(note) = binding_note(name, &senders) {
        eprintln!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `users list`: name, created, senders; notes about unrestricted and blocked users on stderr.
async fn list_users(store: &Store) -> anyhow::Result<()> {
    for u in store.user_list().await? {
        println!(
            "{}\t{}\t{}",
            u.name,
            sealgate_types::time::rfc3339_micros(u.created_at),
            u.senders
        );
        if let Some(note) = binding_note(&u.name, &u.senders) {
            eprintln!("{note}");
        }
    }
    Ok(())
}

/// What an operator should know about a binding that is not a plain list.
fn binding_note(name: &str, senders: &AllowedSenders) -> Option<String> {
    if senders.is_unrestricted() {
        Some(format!(
            "note: {name} is unrestricted (*): it may use any envelope sender and header From; \
             restrict it with: sealgate users senders {name} --add ADDRESS --remove '*'"
        ))
    } else if senders.is_empty() {
        Some(format!(
            "note: {name} has no senders and cannot send; permit some with: \
             sealgate users senders {name} --add ADDRESS"
        ))
    } else {
        None
    }
}

fn parse_rules(rules: &[String]) -> anyhow::Result<AllowedSenders> {
    let parsed: Result<Vec<SenderRule>, _> = rules.iter().map(|r| r.parse()).collect();
    Ok(AllowedSenders::from_rules(parsed?))
}

fn senders_changed(name: &str, senders: &AllowedSenders) -> sealgate_types::AuditRecord {
    AuditEvent::UserSendersChanged {
        name: name.to_owned(),
        senders: senders.texts(),
        operator: operator(),
    }
    .into_record()
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
pub(crate) fn operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}
