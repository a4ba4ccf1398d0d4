//! `sealgate keys import|list|remove` on SQLite and on PostgreSQL, run as the real binary the
//! way an operator would: OpenPGP keys made by GnuPG, S/MIME certificates from a test CA (with
//! a CRL), refusals of unusable credentials, and the audit rows `sealgate audit tail` shows.
//! `sealgate config check` reporting unusable `[pgp]`/`[smime]` files is tested here too.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_testkit::smime::{EmailCert, EmailCertSpec, issue_email, revocation_list};
use sealgate_testkit::tls::TestCa;
use sealgate_tests::{CliRun as Run, json_lines, sealgate_bin};
use serde_json::Value;
use sha2::Digest as _;

use crate::inspect::fresh_db;

mod config_check;
mod pgp;
mod smime;

/// Who runs the commands: `sealgate` names the operator from `SUDO_USER` first.
const OPERATOR: &str = "keys-e2e-operator";

/// A config over a fresh database, with `[smime]` trusting a test CA whose CRL revokes
/// [`Desk::revoked`]; the directory also holds the files a test imports.
struct Desk {
    dir: tempfile::TempDir,
    config: PathBuf,
    ca: TestCa,
    revoked: EmailCert,
    db: TestDb,
}

impl Desk {
    fn new(backend: TestBackend) -> Desk {
        let db = fresh_db(backend);
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new();
        let ca_file = ca.write_to(dir.path());
        let revoked = issue_email(&ca, "eve@example.net", EmailCertSpec::default());
        let crl = dir.path().join("crl.pem");
        std::fs::write(&crl, revocation_list(&ca, &[&revoked])).expect("write crl");
        let data = dir.path().join("data");
        let text = format!(
            "[database]\nurl = {url:?}\n[storage]\ndata_dir = {data:?}\n\
             [delivery]\nenabled = false\n[smime]\nca_file = {ca_file:?}\ncrl_files = [{crl:?}]\n",
            url = db.url,
        );
        let config = dir.path().join("sealgate.toml");
        std::fs::write(&config, text).expect("write config");
        Desk {
            dir,
            config,
            ca,
            revoked,
            db,
        }
    }

    /// Writes `bytes` to `name` in the desk's directory.
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    /// `sealgate --config F ARGS...`
    fn run(&self, args: &[&str]) -> Run {
        run_with_config(&self.config, args)
    }

    /// `sealgate keys ARGS...`
    fn keys(&self, args: &[&str]) -> Run {
        let mut all = vec!["keys"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// `keys ARGS...`, which must exit 0.
    fn keys_ok(&self, args: &[&str]) -> Run {
        let run = self.keys(args);
        assert_eq!(run.code, Some(0), "keys {args:?}\n{}", run.describe());
        run
    }

    /// `keys import FILE ARGS...`, which must be refused (exit 1) naming `fingerprint` and
    /// `problem`; returns the run.
    fn refused(&self, file: &Path, args: &[&str], fingerprint: &str, problem: &str) -> Run {
        let mut all = vec!["import", path_str(file)];
        all.extend_from_slice(args);
        let run = self.keys(&all);
        assert_eq!(run.code, Some(1), "import {file:?}\n{}", run.describe());
        let line = format!(" {fingerprint}: {problem}");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("refused: ") && l.contains(&line)),
            "expected a refusal naming {fingerprint} and {problem:?}\n{}",
            run.describe()
        );
        assert!(run.stdout.is_empty(), "{}", run.describe());
        run
    }

    /// The audit events as `sealgate audit tail --json` prints them.
    fn audit(&self) -> Vec<Value> {
        let run = self.run(&["audit", "tail", "--json", "-n", "1000"]);
        assert_eq!(run.code, Some(0), "{}", run.describe());
        json_lines(&run.stdout)
    }

    /// `keys list --json`, one object per stored row.
    fn listed(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        json_lines(&self.keys_ok(&all).stdout)
    }
}

fn run_with_config(config: &Path, args: &[&str]) -> Run {
    let out = Command::new(sealgate_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SEALGATE_CONFIG")
        .env_remove("SEALGATE_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("SUDO_USER", OPERATOR)
        .output()
        .expect("run sealgate");
    Run::of(out)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// An S/MIME fingerprint: SHA-256 of the DER, lowercase hex.
fn sha256_hex(der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(der))
}

/// The audit events of `kind`, their data objects.
fn events(audit: &[Value], kind: &str) -> Vec<Value> {
    audit
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["data"].clone())
        .collect()
}

/// The (address, kind, fingerprint) of listed rows.
fn rows(listed: &[Value]) -> Vec<(String, String, String)> {
    listed
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("address"), s("kind"), s("fingerprint"))
        })
        .collect()
}

fn row(address: &str, kind: &str, fingerprint: &str) -> (String, String, String) {
    (address.to_owned(), kind.to_owned(), fingerprint.to_owned())
}
