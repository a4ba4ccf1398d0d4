//! `sealgate dkim`: making signing keys and checking what DNS publishes for them.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use sealgate_audit::AuditEvent;
use sealgate_config::Config;
use sealgate_crypto::KeyRing;
use sealgate_crypto::dkim::{DkimAlgorithm, DkimKeys, generate, sealing_context};
use sealgate_store::{Store, StoredDkimKey};
use sealgate_types::time::now_micros;

/// `sealgate dkim …`
#[derive(Debug, Subcommand)]
pub(crate) enum DkimCommand {
    /// Make a signing key: writes the private key to --out (mode 0600, never over an existing
    /// file) and prints the TXT record to publish and the `[[dkim.key]]` to add; or, with
    /// --store, keeps it in the database sealed under the node key ring, where every node
    /// finds it at its next start or reload (audited).
    Keygen {
        /// The signing domain, e.g. clinic.example.
        domain: String,
        /// The selector, e.g. s2026 (the record goes at <selector>._domainkey.<domain>).
        #[arg(long)]
        selector: String,
        /// rsa-sha256 (2048 bits) or ed25519-sha256.
        #[arg(long, default_value = "rsa-sha256")]
        algorithm: String,
        /// Where to write the private key (PEM, PKCS#8).
        #[arg(long, required_unless_present = "store", conflicts_with = "store")]
        out: Option<std::path::PathBuf>,
        /// Keep the key in the database instead of a file.
        #[arg(long)]
        store: bool,
    },
    /// List the signing keys: the `[[dkim.key]]` files and the keys stored in the database.
    List,
    /// Remove a key stored in the database (audited); nodes stop signing with it at their next
    /// reload. Keys in files are removed from the configuration instead.
    Remove {
        /// The signing domain.
        domain: String,
        /// The selector.
        #[arg(long)]
        selector: String,
    },
    /// Compare every configured key of DOMAIN with the record DNS publishes for it; exit 1
    /// when one is missing or differs.
    Check {
        /// The signing domain.
        domain: String,
    },
}

/// Runs a `dkim` command.
pub(crate) async fn run(cfg: &Config, cmd: DkimCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DkimCommand::Keygen {
            domain,
            selector,
            algorithm,
            out,
            store,
        } => match (out, store) {
            (Some(out), false) => keygen(&domain, &selector, &algorithm, &out),
            _ => keygen_stored(cfg, &domain, &selector, &algorithm).await,
        },
        DkimCommand::Check { domain } => check(cfg, &domain).await,
        DkimCommand::List => list(cfg).await,
        DkimCommand::Remove { domain, selector } => remove(cfg, &domain, &selector).await,
    }
}

/// The selector's shape, as the configuration checks it.
fn check_selector(selector: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        sealgate_config::is_selector(selector),
        "the selector must be a DNS label such as s2026"
    );
    Ok(())
}

/// `keygen --store`: the key sealed under the node key ring, in the database.
async fn keygen_stored(
    cfg: &Config,
    domain: &str,
    selector: &str,
    algorithm: &str,
) -> anyhow::Result<ExitCode> {
    let algorithm: DkimAlgorithm = algorithm.parse()?;
    check_selector(selector)?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let ring = KeyRing::load(&cfg.seal_key_file()).with_context(|| {
        format!(
            "reading the sealing key {} (run `sealgate serve` once to create it)",
            cfg.seal_key_file().display()
        )
    })?;
    let (pem, record) = generate(algorithm)?;
    let sealed = ring.seal(pem.as_bytes(), &sealing_context(&domain, selector))?;
    let store = open(cfg).await?;
    let audit = AuditEvent::DkimKeyAdded {
        domain: domain.clone(),
        selector: selector.to_owned(),
        algorithm: algorithm.as_str().to_owned(),
        operator: crate::cmd_users::operator(),
    }
    .into_record();
    let key = StoredDkimKey {
        domain: domain.clone(),
        selector: selector.to_owned(),
        algorithm: algorithm.as_str().to_owned(),
        key_sealed: sealed.blob,
        created_at: now_micros(),
    };
    let added = store.dkim_key_add(&key, &audit).await?;
    store.close().await;
    anyhow::ensure!(
        added,
        "{domain} already has a stored key under selector {selector}: choose another selector"
    );
    println!(
        "Publish this TXT record (split into strings of at most 255 characters if your DNS needs it):"
    );
    println!();
    println!("{selector}._domainkey.{domain}. IN TXT \"{record}\"");
    println!();
    println!(
        "The key is stored in the database; `systemctl reload sealgate` (on every node) signs with it."
    );
    Ok(ExitCode::SUCCESS)
}

async fn open(cfg: &Config) -> anyhow::Result<Store> {
    let store = crate::cli::open_store(cfg).await?;
    crate::cmd_db::ready_schema(&store).await?;
    Ok(store)
}

/// Every key, from files and from the database.
async fn every_key(cfg: &Config) -> anyhow::Result<DkimKeys> {
    let store = open(cfg).await?;
    let ring = KeyRing::load(&cfg.seal_key_file())
        .with_context(|| format!("reading the sealing key {}", cfg.seal_key_file().display()))?;
    let keys = crate::wiring::all_dkim_keys(cfg, &store, &ring).await;
    store.close().await;
    keys
}

async fn list(cfg: &Config) -> anyhow::Result<ExitCode> {
    let store = open(cfg).await?;
    let stored = store.dkim_keys().await?;
    store.close().await;
    let mut rows: Vec<[String; 4]> = vec![[
        "DOMAIN".into(),
        "SELECTOR".into(),
        "ALGORITHM".into(),
        "WHERE".into(),
    ]];
    rows.extend(cfg.dkim.keys.iter().map(|k| {
        [
            k.domain.to_ascii_lowercase(),
            k.selector.clone(),
            k.algorithm.clone(),
            k.key_file.display().to_string(),
        ]
    }));
    rows.extend(stored.iter().map(|k| {
        [
            k.domain.clone(),
            k.selector.clone(),
            k.algorithm.clone(),
            "database".to_owned(),
        ]
    }));
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for [d, s, a, w] in &rows {
        println!("{d:<w0$}  {s:<w1$}  {a:<w2$}  {w}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(cfg: &Config, domain: &str, selector: &str) -> anyhow::Result<ExitCode> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let store = open(cfg).await?;
    let audit = AuditEvent::DkimKeyRemoved {
        domain: domain.clone(),
        selector: selector.to_owned(),
        operator: crate::cmd_users::operator(),
    }
    .into_record();
    let removed = store.dkim_key_remove(&domain, selector, &audit).await?;
    store.close().await;
    if !removed {
        eprintln!("no stored key of {domain} under selector {selector}");
        return Ok(ExitCode::from(1));
    }
    println!(
        "removed {selector}._domainkey.{domain}; `systemctl reload sealgate` (on every node) stops signing with it"
    );
    Ok(ExitCode::SUCCESS)
}

fn keygen(domain: &str, selector: &str, algorithm: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let algorithm: DkimAlgorithm = algorithm.parse()?;
    let (pem, record) = generate(algorithm)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "creating {} (an existing file is never overwritten)",
                out.display()
            )
        })?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    println!(
        "Publish this TXT record (split into strings of at most 255 characters if your DNS needs it):"
    );
    println!();
    println!("{selector}._domainkey.{domain}. IN TXT \"{record}\"");
    println!();
    println!("and add to the configuration:");
    println!();
    println!("[[dkim.key]]");
    println!("domain = \"{domain}\"");
    println!("selector = \"{selector}\"");
    println!("algorithm = \"{}\"", algorithm.as_str());
    println!("key_file = \"{}\"", out.display());
    Ok(ExitCode::SUCCESS)
}

async fn check(cfg: &Config, domain: &str) -> anyhow::Result<ExitCode> {
    let keys = every_key(cfg).await?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mine: Vec<_> = keys
        .keys()
        .iter()
        .filter(|k| k.domain() == domain)
        .collect();
    if mine.is_empty() {
        anyhow::bail!("no [[dkim.key]] for {domain} in the configuration and none stored");
    }
    let resolver = crate::wiring::resolver(cfg)?;
    let mut all_good = true;
    for key in mine {
        let name = key.record_name();
        let verdict = match resolver.txt(&name).await {
            Err(e) => Err(format!("lookup failed: {e}")),
            Ok(records) if records.is_empty() => Err("no TXT record".to_owned()),
            Ok(records) => {
                let dkim: Vec<&String> = records.iter().filter(|r| r.contains("p=")).collect();
                match dkim.as_slice() {
                    [] => Err("no DKIM record among the TXT records".to_owned()),
                    [one] => key.matches_record(one),
                    _ => Err("more than one DKIM record".to_owned()),
                }
            }
        };
        match verdict {
            Ok(()) => println!(
                "ok       {name} ({}): the published key matches",
                key.algorithm().as_str()
            ),
            Err(why) => {
                all_good = false;
                println!("PROBLEM  {name} ({}): {why}", key.algorithm().as_str());
                println!("         publish: {name}. IN TXT \"{}\"", key.record());
            }
        }
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
