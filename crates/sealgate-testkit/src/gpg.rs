//! GnuPG as a test oracle: a throwaway `GNUPGHOME` per [`GpgHome`], keys made by the real
//! `gpg` (2.2), and decryption whose `--status-file` lines tests assert on.
//!
//! Every call passes `--homedir` and sets `GNUPGHOME`, so `~/.gnupg` is never touched; input
//! and output go through files in the home directory (no pipes that could fill up), each
//! call is killed after [`TIMEOUT`], and dropping the home stops its agent.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one `gpg` call may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest input a call accepts (the helper is for test messages, not bulk data).
pub const MAX_INPUT: usize = 64 * 1024 * 1024;

/// What kind of key [`GpgHome::gen_key`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// Ed25519 primary (certify, sign) with a Curve25519 encryption subkey.
    Default,
    /// RSA 3072 primary (certify, sign) with an RSA 3072 encryption subkey.
    Rsa3072,
    /// Ed25519 primary (certify, sign) and no encryption-capable key.
    SigningOnly,
    /// Like [`KeySpec::Default`], made ten days ago (`--faked-system-time`) with a one-day
    /// expiry on both keys: expired now.
    Expired,
    /// Like [`KeySpec::Default`], then revoked with the revocation certificate gpg stored
    /// in `openpgp-revocs.d`.
    Revoked,
}

/// What one `gpg` call produced.
#[derive(Clone, Debug)]
pub struct GpgOutput {
    /// What gpg wrote to `--output` (the plaintext when decrypting).
    pub plaintext: Vec<u8>,
    /// The `--status-file` lines without the `[GNUPG:] ` prefix, e.g. `GOODSIG 1234… alice`.
    pub status: Vec<String>,
    /// What gpg wrote to standard output (listings).
    pub stdout: String,
    /// gpg's human-readable diagnostics.
    pub stderr: String,
    /// Whether gpg exited with status 0.
    pub ok: bool,
}

impl GpgOutput {
    /// The status lines whose keyword is `keyword`, with the keyword and its space removed.
    pub fn status_args<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.status.iter().filter_map(move |l| {
            let rest = l.strip_prefix(keyword)?;
            (rest.is_empty() || rest.starts_with(' ')).then(|| rest.trim_start())
        })
    }

    /// Whether a status line with `keyword` was printed.
    pub fn has_status(&self, keyword: &str) -> bool {
        self.status_args(keyword).next().is_some()
    }

    /// Whether gpg reported a good signature (`GOODSIG`).
    pub fn good_sig(&self) -> bool {
        self.has_status("GOODSIG")
    }

    /// Whether gpg reported a valid signature (`VALIDSIG`) by `fingerprint` — the signing
    /// key's or its primary key's fingerprint (any case).
    pub fn valid_sig_by(&self, fingerprint: &str) -> bool {
        self.status_args("VALIDSIG").any(|args| {
            let fields: Vec<&str> = args.split(' ').collect();
            // VALIDSIG <fpr> <date> <ts> <expire> <ver> <res> <pk> <hash> <class> <primary-fpr>
            fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case(fingerprint))
                || fields
                    .get(9)
                    .is_some_and(|f| f.eq_ignore_ascii_case(fingerprint))
        })
    }
}

/// A temporary GnuPG home directory with its own agent.
#[derive(Debug)]
pub struct GpgHome {
    dir: tempfile::TempDir,
}

impl Default for GpgHome {
    fn default() -> Self {
        Self::new()
    }
}

/// Distinguishes the scratch files of concurrent calls in one home.
static CALL: AtomicU64 = AtomicU64::new(0);

impl GpgHome {
    /// A fresh, empty home (mode 0700, as gpg requires).
    pub fn new() -> Self {
        // A short path: the agent's socket path must fit in sockaddr_un.
        let dir = tempfile::Builder::new()
            .prefix("sg-gpg")
            .tempdir_in("/tmp")
            .expect("create GNUPGHOME");
        set_private(dir.path());
        std::fs::write(dir.path().join("gpg.conf"), "no-auto-key-locate\n")
            .expect("write gpg.conf");
        std::fs::write(
            dir.path().join("gpg-agent.conf"),
            "allow-loopback-pinentry\n",
        )
        .expect("write gpg-agent.conf");
        GpgHome { dir }
    }

    /// The directory (`GNUPGHOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes a key for the user id `uid_email` and returns its primary fingerprint
    /// (40 uppercase hex digits).
    pub fn gen_key(&self, uid_email: &str, spec: KeySpec) -> String {
        let (primary, sub, expiry, faked) = match spec {
            KeySpec::Default | KeySpec::Revoked => ("ed25519", Some("cv25519"), "0", None),
            KeySpec::Rsa3072 => ("rsa3072", Some("rsa3072"), "0", None),
            KeySpec::SigningOnly => ("ed25519", None, "0", None),
            KeySpec::Expired => (
                "ed25519",
                Some("cv25519"),
                "1d",
                Some(unix_now() - 10 * 86_400),
            ),
        };
        let faked: Vec<String> = faked
            .map(|t| vec!["--faked-system-time".to_owned(), format!("{t}!")])
            .unwrap_or_default();
        let mut args: Vec<&str> = faked.iter().map(String::as_str).collect();
        args.extend(["--quick-gen-key", uid_email, primary, "cert,sign", expiry]);
        let made = self.run_ok(&args, None);
        // KEY_CREATED <type> <fingerprint>: the key just made, whatever else matches.
        let fpr = made
            .status_args("KEY_CREATED")
            .find_map(|a| a.split(' ').nth(1))
            .map(str::to_owned)
            .expect("gpg reported KEY_CREATED");
        if let Some(sub) = sub {
            let mut args: Vec<&str> = faked.iter().map(String::as_str).collect();
            args.extend(["--quick-add-key", &fpr, sub, "encr", expiry]);
            self.run_ok(&args, None);
        }
        if spec == KeySpec::Revoked {
            self.revoke(&fpr);
        }
        fpr
    }

    /// Imports the revocation certificate gpg stored for `fpr` when it made the key.
    fn revoke(&self, fpr: &str) {
        let path = self
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{fpr}.rev"));
        let text = std::fs::read_to_string(&path).expect("read stored revocation certificate");
        // gpg prefixes the armor line with a colon so an accidental import does nothing.
        let armored = text.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        self.import(armored.as_bytes());
    }

    /// The primary fingerprint of the first key whose user id contains `uid_email` (gpg's
    /// case-insensitive substring match).
    pub fn fingerprint_of(&self, uid_email: &str) -> String {
        let out = self.run_ok(&["--with-colons", "--list-keys", uid_email], None);
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .map(str::to_owned)
            .expect("a fingerprint in gpg --list-keys")
    }

    /// The public key `fpr` (binary, or ASCII-armored if `armored`).
    pub fn export_public(&self, fpr: &str, armored: bool) -> Vec<u8> {
        let mut args = vec!["--export"];
        if armored {
            args.insert(0, "--armor");
        }
        args.push(fpr);
        self.run_ok(&args, None).plaintext
    }

    /// The secret key `fpr`, unprotected (binary).
    pub fn export_secret(&self, fpr: &str) -> Vec<u8> {
        self.run_ok(&["--export-secret-keys", fpr], None).plaintext
    }

    /// Imports keys (public or secret, armored or binary).
    pub fn import(&self, bytes: &[u8]) {
        self.run_ok(&["--import"], Some(bytes));
    }

    /// `gpg --decrypt` of `bytes` (armored or binary); check [`GpgOutput::ok`].
    pub fn decrypt(&self, bytes: &[u8]) -> GpgOutput {
        self.run(&["--decrypt"], Some(bytes))
    }

    /// Runs gpg with `args` (and `input` as its last argument, through a file) in this
    /// home; what `--output` received is [`GpgOutput::plaintext`].
    pub fn run(&self, args: &[&str], input: Option<&[u8]>) -> GpgOutput {
        assert!(
            input.is_none_or(|i| i.len() <= MAX_INPUT),
            "gpg input too large"
        );
        let n = CALL.fetch_add(1, Ordering::Relaxed);
        let scratch = |what: &str| self.path().join(format!("call{n}.{what}"));
        let (in_path, out_path, status_path) = (scratch("in"), scratch("out"), scratch("status"));
        let mut cmd = self.command();
        cmd.arg("--status-file").arg(&status_path);
        cmd.arg("--output").arg(&out_path).args(args);
        if let Some(input) = input {
            std::fs::write(&in_path, input).expect("write gpg input");
            cmd.arg(&in_path);
        }
        let (ok, stdout, stderr) = run_bounded(cmd, &scratch("stdout"), &scratch("stderr"));
        let out = GpgOutput {
            plaintext: std::fs::read(&out_path).unwrap_or_default(),
            status: read_status(&status_path),
            stdout,
            stderr,
            ok,
        };
        for p in [in_path, out_path, status_path] {
            let _ = std::fs::remove_file(p);
        }
        out
    }

    /// [`GpgHome::run`], panicking with gpg's diagnostics if it fails.
    fn run_ok(&self, args: &[&str], input: Option<&[u8]>) -> GpgOutput {
        let out = self.run(args, input);
        assert!(out.ok, "gpg {args:?} failed:\n{}", out.stderr);
        out
    }

    /// `gpg` confined to this home, non-interactive, with an empty passphrase.
    fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.path())
            .env_remove("GPG_AGENT_INFO")
            .arg("--homedir")
            .arg(self.path())
            .args([
                "--batch",
                "--no-tty",
                "--yes",
                "--pinentry-mode",
                "loopback",
            ])
            .args(["--passphrase", ""]);
        cmd
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        // Stop this home's agent (and only it) so it does not outlive the test.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `cmd` with stdin closed and stdout, stderr to files; kills it after [`TIMEOUT`].
/// Returns whether it succeeded and what it printed.
fn run_bounded(mut cmd: Command, stdout_path: &Path, stderr_path: &Path) -> (bool, String, String) {
    let out_file = std::fs::File::create(stdout_path).expect("create gpg stdout file");
    let err_file = std::fs::File::create(stderr_path).expect("create gpg stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .spawn()
        .expect("spawn gpg (is GnuPG installed?)");
    let deadline = Instant::now() + TIMEOUT;
    let ok = loop {
        match child.try_wait().expect("wait for gpg") {
            Some(status) => break status.success(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gpg did not finish within {TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let read = |p: &Path| {
        let text = std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned());
        let _ = std::fs::remove_file(p);
        text.unwrap_or_default()
    };
    (ok, read(stdout_path), read(stderr_path))
}

/// The status file's lines without the `[GNUPG:] ` prefix.
fn read_status(path: &Path) -> Vec<String> {
    // Lossy: status lines may carry raw bytes (notation values, user ids).
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] "))
        .map(str::to_owned)
        .collect()
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .expect("chmod 700 GNUPGHOME");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
