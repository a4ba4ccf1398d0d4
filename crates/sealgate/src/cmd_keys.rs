//! `sealgate keys import|list|remove`: recipients' OpenPGP keys and S/MIME certificates, as
//! the operator imports them. Every import and removal is audited in the same transaction.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use sealgate_audit::AuditEvent;
use sealgate_config::Config;
use sealgate_encrypt::pgp::PgpCert;
use sealgate_encrypt::smime::{SmimeCert, TrustStore};
use sealgate_encrypt::{KeyInfo, KeyKind, fmt_time};
use sealgate_store::{Store, StoredKey};
use sealgate_types::time::{now_micros, rfc3339_micros};

use crate::cli::KeysCommand;
use crate::cmd_users::operator;

/// Runs a keys command.
pub(crate) async fn run(cfg: &Config, store: &Store, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Import { file, addresses } => import(cfg, store, &file, &addresses).await,
        KeysCommand::List { address, json } => list(cfg, store, address.as_deref(), json).await,
        KeysCommand::Remove {
            fingerprint,
            address,
        } => remove(store, &fingerprint, address.as_deref()).await,
    }
}

/// A credential read from a file.
enum Credential {
    // Boxed: a sequoia certificate is large beside an X.509 handle.
    Pgp(Box<PgpCert>),
    Smime(SmimeCert),
}

impl Credential {
    /// What the store keeps: the binary transferable public key, or the DER certificate.
    fn material(&self) -> Vec<u8> {
        match self {
            Credential::Pgp(c) => c.to_bytes(),
            Credential::Smime(c) => c.to_der(),
        }
    }

    /// Validation at `now`; S/MIME certificates must chain to `trust`.
    fn info(&self, trust: Option<&TrustStore>, now: i64) -> anyhow::Result<KeyInfo> {
        match self {
            Credential::Pgp(c) => Ok(c.info(now)),
            Credential::Smime(c) => {
                let trust = trust.context("no trust store for S/MIME certificates")?;
                Ok(c.info(Some(trust), now))
            }
        }
    }
}

/// A credential that may be stored, and the addresses to store it for.
struct Accepted {
    info: KeyInfo,
    material: Vec<u8>,
    addresses: Vec<String>,
}

/// Now, in Unix seconds.
fn now_secs() -> i64 {
    now_micros() / 1_000_000
}

/// `usable: …` or `unusable: …`, the wording of `key_discovered` events.
fn validity(status: &Result<String, sealgate_encrypt::Problem>) -> String {
    match status {
        Ok(desc) => format!("usable: {desc}"),
        Err(problem) => format!("unusable: {problem}"),
    }
}

fn expiry(expires: Option<i64>) -> String {
    expires.map_or_else(|| "never".to_owned(), fmt_time)
}

// ---------------------------------------------------------------------------------------------
// import

async fn import(
    cfg: &Config,
    store: &Store,
    file: &Path,
    addresses: &[String],
) -> anyhow::Result<ExitCode> {
    let requested = requested_addresses(addresses)?;
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display().to_string();
    let outcome = import_data(cfg, store, &data, &requested, &operator())
        .await
        .with_context(|| name.clone())?;
    for note in &outcome.notes {
        eprintln!("note: {name}: {note}");
    }
    if !outcome.refused.is_empty() {
        for why in &outcome.refused {
            eprintln!("refused: {why}");
        }
        eprintln!("nothing imported from {name}");
        return Ok(ExitCode::from(1));
    }
    for row in &outcome.imported {
        println!(
            "imported {} {} {} expires={} {}",
            row.address,
            row.kind,
            row.fingerprint,
            expiry(row.expires),
            outcome.status_of(&row.fingerprint)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What an import did: the rows stored (none when anything was refused: all or nothing),
/// why credentials were refused, and notes (skipped CA certificates, secret material).
pub(crate) struct ImportOutcome {
    pub(crate) imported: Vec<StoredKey>,
    pub(crate) refused: Vec<String>,
    pub(crate) notes: Vec<String>,
    statuses: Vec<(String, String)>,
}

impl ImportOutcome {
    /// `usable: …` / `unusable: …` of an imported fingerprint.
    pub(crate) fn status_of(&self, fingerprint: &str) -> &str {
        self.statuses
            .iter()
            .find(|(f, _)| f == fingerprint)
            .map_or("", |(_, s)| s.as_str())
    }
}

/// Imports the credentials in `data` for `requested` addresses (lowercase; none: the
/// addresses each binds), audited as `operator`: all of them, or none when any is refused.
/// `Err` for data that holds no credential, or a database failure.
pub(crate) async fn import_data(
    cfg: &Config,
    store: &Store,
    data: &[u8],
    requested: &[String],
    operator: &str,
) -> anyhow::Result<ImportOutcome> {
    let creds = read_credentials(data)?;
    let mut notes = Vec::new();
    let creds = without_issuers(creds, &mut notes);
    let trust = if creds.iter().any(|c| matches!(c, Credential::Smime(_))) {
        Some(crate::wiring::smime_trust(cfg)?)
    } else {
        None
    };
    let (accepted, refused) = screen(&creds, trust.as_ref(), requested, now_secs())?;
    let mut outcome = ImportOutcome {
        imported: Vec::new(),
        refused,
        notes,
        statuses: Vec::new(),
    };
    if !outcome.refused.is_empty() {
        return Ok(outcome);
    }
    if holds_secret_keys(data) {
        outcome
            .notes
            .push("holds secret key material: only the public part is stored".to_owned());
    }
    // One transaction per credential (its rows and its `key_imported` event). Everything was
    // validated above, so only a database failure can stop an import part-way.
    for a in &accepted {
        outcome
            .imported
            .extend(store_accepted(store, a, operator).await?);
        outcome
            .statuses
            .push((a.info.fingerprint.clone(), validity(&a.info.status)));
    }
    Ok(outcome)
}

/// `creds` without the CA certificates that issued another certificate of the file (a
/// recipient's certificate sent with its chain): those are no recipients. The chain is not
/// kept — trust comes from `smime.ca_file` (roots, and any intermediates) — so say so.
fn without_issuers(creds: Vec<Credential>, notes: &mut Vec<String>) -> Vec<Credential> {
    let issuer_of_another = |c: &Credential| match c {
        Credential::Smime(ca) => creds.iter().any(|o| match o {
            Credential::Smime(leaf) => !std::ptr::eq(ca, leaf) && ca.issued(leaf),
            Credential::Pgp(_) => false,
        }),
        Credential::Pgp(_) => false,
    };
    let keep: Vec<bool> = creds.iter().map(|c| !issuer_of_another(c)).collect();
    creds
        .into_iter()
        .zip(keep)
        .filter_map(|(c, keep)| {
            if let (false, Credential::Smime(ca)) = (keep, &c) {
                notes.push(format!(
                    "skipped CA certificate {} (the chain is not stored; \
                     put intermediates and roots in smime.ca_file)",
                    ca.fingerprint()
                ));
            }
            keep.then_some(c)
        })
        .collect()
}

/// `--address` values, lowercase; each must look like an address.
pub(crate) fn requested_addresses(addresses: &[String]) -> anyhow::Result<Vec<String>> {
    addresses
        .iter()
        .map(|a| {
            let a = a.trim().to_lowercase();
            match a.split_once('@') {
                Some((l, d))
                    if !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace) =>
                {
                    Ok(a)
                }
                _ => bail!("--address {a:?} is not an email address"),
            }
        })
        .collect()
}

/// Validates every credential at `now`: those to store, and why the others are refused
/// (each naming the fingerprint). A requested address that no credential binds is refused too.
fn screen(
    creds: &[Credential],
    trust: Option<&TrustStore>,
    requested: &[String],
    now: i64,
) -> anyhow::Result<(Vec<Accepted>, Vec<String>)> {
    let infos = creds
        .iter()
        .map(|c| c.info(trust, now))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut refused: Vec<String> = requested
        .iter()
        .filter(|r| !infos.iter().any(|i| i.binds(r)))
        .map(|r| format!("{r}: no key or certificate in the file binds it"))
        .collect();
    let mut accepted: Vec<Accepted> = Vec::new();
    for (cred, info) in creds.iter().zip(infos) {
        if accepted
            .iter()
            .any(|a| a.info.fingerprint == info.fingerprint)
        {
            continue;
        }
        match addresses_for(&info, requested) {
            Ok(addresses) => accepted.push(Accepted {
                material: cred.material(),
                info,
                addresses,
            }),
            Err(why) => refused.push(format!(
                "{} {}: {why}",
                info.kind.as_str(),
                info.fingerprint
            )),
        }
    }
    Ok((accepted, refused))
}

/// The addresses to store a credential for, or why it must not be stored.
fn addresses_for(info: &KeyInfo, requested: &[String]) -> Result<Vec<String>, String> {
    if let Err(problem) = &info.status {
        return Err(problem.to_string());
    }
    if info.emails.is_empty() {
        return Err("binds no email address".to_owned());
    }
    if requested.is_empty() {
        return Ok(info.emails.clone());
    }
    let chosen: Vec<String> = requested
        .iter()
        .filter(|r| info.binds(r))
        .cloned()
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "binds none of {} (it binds {})",
            requested.join(", "),
            info.emails.join(", ")
        ));
    }
    Ok(chosen)
}

/// Stores one row per address with its `key_imported` event; the rows.
async fn store_accepted(
    store: &Store,
    a: &Accepted,
    operator: &str,
) -> anyhow::Result<Vec<StoredKey>> {
    let kind = a.info.kind.as_str();
    let added_at = now_micros();
    let rows: Vec<StoredKey> = a
        .addresses
        .iter()
        .map(|address| StoredKey {
            kind: kind.to_owned(),
            fingerprint: a.info.fingerprint.clone(),
            address: address.clone(),
            material: a.material.clone(),
            source: "import".to_owned(),
            expires: a.info.expires,
            added_at,
        })
        .collect();
    let status = validity(&a.info.status);
    let event = AuditEvent::KeyImported {
        kind: kind.to_owned(),
        fingerprint: a.info.fingerprint.clone(),
        addresses: a.addresses.clone(),
        expires: a.info.expires,
        status,
        operator: operator.to_owned(),
    };
    store.keys_put(&rows, &event.into_record()).await?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// reading files

/// Every credential in `data`: OpenPGP certificates (armored or binary, one or a keyring) or
/// X.509 certificates (a PEM bundle or one DER certificate).
fn read_credentials(data: &[u8]) -> anyhow::Result<Vec<Credential>> {
    match sniff(data) {
        Some(KeyKind::Pgp) => Ok(PgpCert::parse_all(data)?
            .into_iter()
            .map(|c| Credential::Pgp(Box::new(c)))
            .collect()),
        Some(KeyKind::Smime) => Ok(SmimeCert::parse_all(data)?
            .into_iter()
            .map(Credential::Smime)
            .collect()),
        None => bail!("holds neither OpenPGP keys nor X.509 certificates"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What `data` holds, by its armor (RFC 9580 §6.2), PEM label (RFC 7468 §5) or first byte:
/// a DER certificate starts with a SEQUENCE (0x30), an OpenPGP packet with bit 7 set
/// (RFC 9580 §4.2).
fn sniff(data: &[u8]) -> Option<KeyKind> {
    if contains(data, b"-----BEGIN PGP ") {
        Some(KeyKind::Pgp)
    } else if contains(data, b"-----BEGIN CERTIFICATE-----")
        || contains(data, b"-----BEGIN X509 CERTIFICATE-----")
    {
        Some(KeyKind::Smime)
    } else {
        match data.first() {
            Some(0x30) => Some(KeyKind::Smime),
            Some(b) if b & 0x80 != 0 => Some(KeyKind::Pgp),
            _ => None,
        }
    }
}

/// Whether `data` holds private or secret keys: a PEM private key (RFC 7468 §10-11) or
/// OpenPGP secret keys (armored or binary).
fn holds_secret_keys(data: &[u8]) -> bool {
    contains(data, b"PRIVATE KEY-----") || PgpCert::holds_secret(data)
}

// ---------------------------------------------------------------------------------------------
// list and remove

/// One stored row validated now: `(usable, "usable: …" | "unusable: …")`.
fn revalidate(row: &StoredKey, trust: Option<&TrustStore>, now: i64) -> (bool, String) {
    let info = match row.kind.as_str() {
        "pgp" => PgpCert::from_bytes(&row.material).map(|c| c.info(now)),
        "smime" => SmimeCert::from_der(&row.material).map(|c| c.info(trust, now)),
        other => return (false, format!("unusable: unknown kind {other:?}")),
    };
    match info {
        Err(e) => (false, format!("unusable: stored material unreadable: {e}")),
        Ok(info) if info.fingerprint != row.fingerprint => (
            false,
            "unusable: stored material does not match the fingerprint".to_owned(),
        ),
        Ok(info) if !info.binds(&row.address) => (
            false,
            format!("unusable: no longer bound to {}", row.address),
        ),
        Ok(info) => (info.usable(), validity(&info.status)),
    }
}

/// The stored keys (of `address`, or all), each validated now, as JSON objects.
pub(crate) async fn listed(
    cfg: &Config,
    store: &Store,
    address: Option<&str>,
) -> anyhow::Result<Vec<(StoredKey, serde_json::Value)>> {
    let rows = match address {
        Some(a) => store.keys_for(a).await?,
        None => store.keys_list().await?,
    };
    let trust = if rows.iter().any(|r| r.kind == "smime") {
        Some(crate::wiring::smime_trust(cfg)?)
    } else {
        None
    };
    let now = now_secs();
    Ok(rows
        .into_iter()
        .map(|row| {
            let (usable, validity) = revalidate(&row, trust.as_ref(), now);
            let json = serde_json::json!({
                "address": row.address,
                "kind": row.kind,
                "fingerprint": row.fingerprint,
                "source": row.source,
                "expires": row.expires.map(fmt_time),
                "added_at": rfc3339_micros(row.added_at),
                "usable": usable,
                "validity": validity,
            });
            (row, json)
        })
        .collect())
}

async fn list(
    cfg: &Config,
    store: &Store,
    address: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    for (row, line) in listed(cfg, store, address).await? {
        let validity = line["validity"].as_str().unwrap_or_default().to_owned();
        if json {
            println!("{line}");
        } else {
            println!(
                "{} {} {} source={} expires={} {validity}",
                row.address,
                row.kind,
                row.fingerprint,
                row.source,
                expiry(row.expires)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A fingerprint as typed: spaces (gpg prints groups of four) and a `0x` prefix dropped.
fn normalize_fingerprint(typed: &str) -> String {
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let bare = compact
        .strip_prefix("0x")
        .or_else(|| compact.strip_prefix("0X"))
        .unwrap_or(&compact);
    bare.to_owned()
}

async fn remove(store: &Store, typed: &str, address: Option<&str>) -> anyhow::Result<ExitCode> {
    let fingerprint = normalize_fingerprint(typed);
    let for_address = address
        .map(|a| format!(" for {}", a.to_lowercase()))
        .unwrap_or_default();
    let removed = remove_rows(store, typed, address, &operator()).await?;
    if removed.is_empty() {
        eprintln!("no stored key or certificate {fingerprint}{for_address}");
        return Ok(ExitCode::from(1));
    }
    for row in &removed {
        println!("removed {} {} {}", row.address, row.kind, row.fingerprint);
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the stored rows of fingerprint `typed` (of `address`, or every address) with a
/// `key_removed` event by `operator`; the rows removed (none: nothing matched).
pub(crate) async fn remove_rows(
    store: &Store,
    typed: &str,
    address: Option<&str>,
    operator: &str,
) -> anyhow::Result<Vec<StoredKey>> {
    let fingerprint = normalize_fingerprint(typed);
    let rows = match address {
        Some(a) => store.keys_for(a).await?,
        None => store.keys_list().await?,
    };
    let matching: Vec<&StoredKey> = rows
        .iter()
        .filter(|r| r.fingerprint.eq_ignore_ascii_case(&fingerprint))
        .collect();
    let Some(first) = matching.first() else {
        return Ok(Vec::new());
    };
    let event = AuditEvent::KeyRemoved {
        kind: first.kind.clone(),
        fingerprint: first.fingerprint.clone(),
        addresses: matching.iter().map(|r| r.address.clone()).collect(),
        operator: operator.to_owned(),
    };
    Ok(store
        .keys_remove(&fingerprint, address, &event.into_record())
        .await?)
}

#[cfg(test)]
#[path = "cmd_keys_tests.rs"]
mod tests;
