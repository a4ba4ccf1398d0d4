//! `sealgate dkim`: making signing keys and checking what DNS publishes for them.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use sealgate_config::Config;
use sealgate_crypto::dkim::{DkimAlgorithm, generate};

/// `sealgate dkim …`
#[derive(Debug, Subcommand)]
pub(crate) enum DkimCommand {
    /// Make a signing key: writes the private key to --out (mode 0600, never over an existing
    /// file) and prints the TXT record to publish and the `[[dkim.key]]` to add.
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
        #[arg(long)]
        out: std::path::PathBuf,
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
        } => keygen(&domain, &selector, &algorithm, &out),
        DkimCommand::Check { domain } => check(cfg, &domain).await,
    }
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
    let keys = crate::wiring::dkim_keys(cfg)?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mine: Vec<_> = keys
        .keys()
        .iter()
        .filter(|k| k.domain() == domain)
        .collect();
    if mine.is_empty() {
        anyhow::bail!("no [[dkim.key]] for {domain} in the configuration");
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
