//! The admin guides in `docs/guides/`, played end to end. Each guide carries its Sealgate
//! configuration in a ```toml block right after a `<!-- tested: guides/NAME -->` line; the
//! test of that guide reads the block from the guide itself, replaces only what cannot be used
//! on a test machine (listener addresses, the files under `/etc/sealgate/`, the placeholder
//! addresses and ids the guide names), runs the real daemon with it and plays the sender the
//! guide is for. A guide edited into something that does not work fails its test. The
//! README's quick start marks its blocks the same way (`readme.rs`).

mod ehr;
mod google_workspace;
mod microsoft_365;
mod partner_route;
mod readme;

use std::path::Path;
use std::process::Command;

use sealgate_testkit::tls::TestCa;
use sealgate_tests::{CliRun, Daemon, DaemonOpts, PySend, py_send, sealgate_bin};

use crate::audit_cli::config_check;

/// The host name every guide gives Sealgate (`server.hostname`, and the name on its
/// certificate that the clients check).
pub(crate) const HOSTNAME: &str = "relay.clinic.example";

/// The configuration block of `docs/guides/<file>` that follows `<!-- tested: guides/<name> -->`.
pub(crate) fn tested_block(file: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/guides")
        .join(file);
    marked_block(&path, name, "toml")
}

/// The ```` ```lang ```` block of the file at `path` that follows `<!-- tested: guides/<name> -->`.
pub(crate) fn marked_block(path: &Path, name: &str, lang: &str) -> String {
    let file = path.display();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {file}: {e}"));
    let marker = format!("<!-- tested: guides/{name} -->");
    assert_eq!(
        text.lines().filter(|l| l.trim() == marker).count(),
        1,
        "{file} must hold the line {marker} once"
    );
    let mut lines = text.lines().skip_while(|l| l.trim() != marker).skip(1);
    let fence = format!("```{lang}");
    assert_eq!(
        lines.next(),
        Some(fence.as_str()),
        "{marker} in {file} must be followed by a {fence} block"
    );
    let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
    assert!(
        !block.is_empty(),
        "the block after {marker} in {file} is empty"
    );
    block.join("\n") + "\n"
}

/// `block` with each `(placeholder, local value)` replaced. Every placeholder must be in the
/// block (a guide that renamed a file fails here, not silently), and no path under
/// `/etc/sealgate/` may be left: the daemon under test reads only what the test wrote.
pub(crate) fn localise(block: &str, local: &[(String, String)]) -> String {
    let mut text = block.to_owned();
    for (placeholder, value) in local {
        assert!(
            text.contains(placeholder.as_str()),
            "the guide's block no longer contains {placeholder:?}:\n{block}"
        );
        text = text.replace(placeholder.as_str(), value);
    }
    assert!(
        !text.contains("/etc/sealgate/"),
        "a path of the guide is not replaced by a local file:\n{text}"
    );
    text
}

/// One pair for [`localise`].
pub(crate) fn swap(placeholder: &str, value: impl Into<String>) -> (String, String) {
    (placeholder.to_owned(), value.into())
}

/// A test CA, Sealgate's certificate for [`HOSTNAME`] from it, and a directory for the files
/// the guide puts under `/etc/sealgate/`.
pub(crate) struct Site {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: TestCa,
    pub(crate) ca_file: String,
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
}

impl Site {
    pub(crate) fn new() -> Self {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = ca.write_to(dir.path()).display().to_string();
        let (cert, key) = ca
            .issue(&[HOSTNAME, "127.0.0.1"])
            .write_to(dir.path(), "sealgate");
        Self {
            ca_file,
            cert_file: cert.display().to_string(),
            key_file: key.display().to_string(),
            ca,
            dir,
        }
    }

    /// Writes `dir/<name>` and returns its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a site file");
        path.display().to_string()
    }

    /// A client certificate from the test CA for `names`, as (chain, key) paths.
    pub(crate) fn client_cert(&self, names: &[&str], label: &str) -> (String, String) {
        let (cert, key) = self.ca.issue(names).write_to(self.dir.path(), label);
        (cert.display().to_string(), key.display().to_string())
    }

    /// The `[tls]` files of every guide: Sealgate's certificate chain and key.
    pub(crate) fn tls_swaps(&self) -> Vec<(String, String)> {
        vec![
            swap("/etc/sealgate/tls/fullchain.pem", &self.cert_file),
            swap("/etc/sealgate/tls/key.pem", &self.key_file),
        ]
    }

    /// Makes each `[[dkim.key]]` of `block`, and its `[arc]` key, the way the guide says, with
    /// `sealgate dkim keygen DOMAIN --selector S --out FILE` (which must print the TXT
    /// record to publish), and returns the swaps of their key files.
    pub(crate) fn dkim_keys(&self, block: &str) -> Vec<(String, String)> {
        let table: toml::Table = block.parse().expect("the guide's block is TOML");
        let mut keys = table
            .get("dkim")
            .and_then(|d| d.get("key"))
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(toml::Value::Table(arc)) = table.get("arc") {
            // ARC seals with RSA.
            let mut key = arc.clone();
            key.insert("algorithm".into(), "rsa-sha256".into());
            keys.push(toml::Value::Table(key));
        }
        let text = |k: &toml::Value, field: &str| {
            k.get(field)
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("[[dkim.key]] without {field}"))
                .to_owned()
        };
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                let (domain, selector) = (text(k, "domain"), text(k, "selector"));
                let out = self.dir.path().join(format!("dkim-{i}.pem"));
                let run = sealgate(
                    self.dir.path(),
                    &[
                        "dkim",
                        "keygen",
                        &domain,
                        "--selector",
                        &selector,
                        "--algorithm",
                        &text(k, "algorithm"),
                        "--out",
                        &out.display().to_string(),
                    ],
                );
                let record = format!("{selector}._domainkey.{domain}. IN TXT \"v=DKIM1;");
                assert!(
                    run.code == Some(0) && run.stdout.contains(&record),
                    "{}",
                    run.describe()
                );
                swap(&text(k, "key_file"), out.display().to_string())
            })
            .collect()
    }
}

/// `sealgate ARGS` without a configuration file, in `dir`.
fn sealgate(dir: &Path, args: &[&str]) -> CliRun {
    CliRun::of(
        Command::new(sealgate_bin())
            .args(args)
            .current_dir(dir)
            .env_remove("SEALGATE_CONFIG")
            .env_remove("SEALGATE_DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .expect("run sealgate"),
    )
}

/// Starts the daemon on the localised guide configuration, after `sealgate config check`
/// passed it (the guides tell the operator to run it first).
pub(crate) fn start(config: String) -> Daemon {
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: config,
        ..DaemonOpts::default()
    });
    let checked = config_check(daemon.config_path());
    assert_eq!(checked.code, Some(0), "{}", checked.describe());
    daemon
}

/// One message over STARTTLS, verifying Sealgate's certificate for [`HOSTNAME`] against the
/// site's CA, from `source`, presenting `cert` if any, with extra `headers`.
pub(crate) fn send(
    daemon: &Daemon,
    site: &Site,
    source: &str,
    cert: Option<&(String, String)>,
    from: &str,
    headers: &[String],
) -> PySend {
    let mut args: Vec<&str> = vec![
        "--starttls",
        "--cafile",
        &site.ca_file,
        "--servername",
        HOSTNAME,
        "--source",
        source,
        "--from",
        from,
        "--to",
        "patient@example.org",
    ];
    if let Some((c, k)) = cert {
        args.extend(["--cert", c, "--key", k]);
    }
    for h in headers {
        args.extend(["--header", h]);
    }
    py_send(daemon.addr("starttls"), &args)
}

/// The first message's reply: stage, code and text.
pub(crate) fn reply(sent: &PySend) -> (String, u64, String) {
    let r = &sent.results[0];
    (
        r["stage"].as_str().unwrap_or_default().to_owned(),
        r["code"].as_u64().unwrap_or_default(),
        r["text"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Asserts the first message got exactly `code text` at `stage`.
pub(crate) fn assert_refused(sent: &PySend, stage: &str, code: u64, text: &str) {
    assert_eq!(
        reply(sent),
        (stage.to_owned(), code, text.to_owned()),
        "{}",
        sent.describe()
    );
}

#[test]
fn every_guide_has_its_tested_block() {
    // The tests below read these; this one names a guide that lost its marker at once.
    for (file, name) in [
        ("microsoft-365.md", "microsoft_365"),
        ("google-workspace.md", "google_workspace"),
        ("ehr.md", "ehr_submission"),
        ("ehr.md", "ehr_allow_list"),
        ("partner-route.md", "partner_route"),
    ] {
        let block = tested_block(file, name);
        let parsed: Result<toml::Table, _> = block.parse();
        assert!(parsed.is_ok(), "{file} {name}: {parsed:?}");
    }
}
