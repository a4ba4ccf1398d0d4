//! `sealgate config check FILE`

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use sealgate_config::Config;
use sealgate_crypto::KeyRing;

/// Prints "ok" and the effective chain of every policy rule, or every problem (each naming
/// its key, and the file when one is unusable); exit 1 when invalid.
pub(crate) fn check(file: &Path) -> ExitCode {
    let cfg = match Config::load(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let rules = crate::wiring::rules(&cfg);
    let mut problems = rules.as_ref().err().cloned().unwrap_or_default();
    // The files [pgp] and [smime] name must be there and usable (signing keys, archive key,
    // CA file, CRLs): each problem names its key, the file and why.
    if let Err(more) = crate::wiring::encryption_checked(&cfg) {
        problems.extend(more);
    }
    problems.extend(file_problems(&cfg));
    if problems.is_empty() {
        println!("{}: ok", file.display());
        if let Ok(rules) = rules {
            print_chains(&rules);
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: invalid configuration:", file.display());
        for p in problems {
            eprintln!("  {p}");
        }
        ExitCode::from(1)
    }
}

/// Each policy rule's chain as `decide` starts from it, before availability is known.
fn print_chains(rules: &sealgate_policy::Rules) {
    println!("policy chains (methods unavailable for a recipient are skipped at delivery time):");
    for (rule, chain, why) in rules.effective_chains() {
        let chain: Vec<&str> = chain.iter().map(|m| m.as_str()).collect();
        println!("  {rule}: {} ({why})", chain.join(" > "));
    }
}

/// Loads every other file the configuration names, through the functions `serve` and
/// `sealgate check` load it with, so a configuration that passes starts: the `[tls]`
/// certificate and key, the trust-anchor file (with the resolver), `delivery.ca_file`, the
/// portal's certificate and key, and the sealing and portal key rings when they exist
/// (`serve` creates missing ones). One problem per unusable file, naming its key and the file.
fn file_problems(cfg: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let mut note = |result: anyhow::Result<()>| {
        if let Err(e) = result {
            problems.push(format!("{e:#}"));
        }
    };
    if let Some(tls) = &cfg.tls {
        note(
            sealgate_ingress::load_tls(
                &tls.cert_file,
                &tls.key_file,
                tls.client_ca_file.as_deref(),
            )
            .map(drop)
            .context("tls.cert_file/key_file/client_ca_file"),
        );
    }
    note(
        sealgate_ingress::Tenants::from_config(&cfg.relay)
            .map(drop)
            .context("relay.tenant"),
    );
    note(crate::wiring::dkim_keys(cfg).map(drop));
    note(crate::wiring::arc_sealer(cfg).map(drop));
    // `serve` builds the resolver for delivery, `sealgate check` always.
    if cfg.delivery.enabled || cfg.dns.trust_anchor_file.is_some() {
        note(crate::wiring::resolver(cfg).map(drop));
    }
    note(crate::wiring::verifiers(cfg).map(drop));
    note(existing_key_ring(
        "storage.seal_key_file",
        &cfg.seal_key_file(),
    ));
    if cfg.portal.enabled {
        let settings = sealgate_portal::PortalSettings::from_config(cfg);
        note(
            sealgate_portal::check_tls(&settings)
                .map_err(anyhow::Error::from)
                .context("portal.tls_cert_file/tls_key_file"),
        );
        note(existing_key_ring(
            "portal.master_key_file",
            &cfg.portal_master_key_file(),
        ));
    }
    problems
}

/// Loads the key ring at `path` when the file exists (`serve` creates a missing one).
fn existing_key_ring(key: &str, path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    KeyRing::load(path).map(drop).context(key.to_owned())
}
