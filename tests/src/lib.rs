//! End-to-end test harness: the real `sealgate` binary, started on loopback
//! with port 0, driven by SMTP clients written by others (Python `smtplib`,
//! swaks) and by a byte-exact raw client for protocol edge cases.
//!
//! Tests assert on what an operator sees: SMTP replies, `sealgate audit`
//! output, the daemon's JSON log lines and its exit status.
//!
//! - [`Daemon`]: write a config into a temp dir, spawn `serve`, wait for
//!   "sealgate ready", find the listener addresses, stop it, restart it.
//! - [`python_smtp`], [`py_send`]: the scripts in `tests/py/`.
//! - [`swaks`]: the swaks binary.
//! - [`raw_smtp`], [`RawSmtp`]: a plain TCP client that records a transcript.
//!
//! This crate is a dev crate: nothing in production depends on it.

mod clients;
mod config;
mod daemon;
mod raw;

use std::path::{Path, PathBuf};

pub use clients::{PySend, py_send, python_smtp, swaks};
pub use daemon::{Daemon, DaemonOpts};
pub use raw::{Event, RawSmtp, Reply, Step, Transcript, raw_smtp};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// The `sealgate` binary under test.
///
/// `SEALGATE_BIN` if set; otherwise the binary next to this test executable's
/// profile directory (`<target>/debug/sealgate`, which honours
/// `CARGO_TARGET_DIR`); otherwise `<workspace>/target/debug/sealgate`.
/// Panics if none exists: build it first (`cargo build --workspace`).
pub fn sealgate_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SEALGATE_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "SEALGATE_BIN={} does not exist",
            bin.display()
        );
        return bin;
    }
    let mut candidates = Vec::new();
    // <target>/debug/deps/e2e-<hash> → <target>/debug/sealgate
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("sealgate"));
    }
    candidates.push(workspace_root().join("target/debug/sealgate"));
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the sealgate binary is missing (looked at {candidates:?}); \
                 build it with `cargo build --workspace` or set SEALGATE_BIN"
            )
        })
}

/// Parses every line of `text` that is a JSON object; other lines are skipped.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(serde_json::Value::is_object)
        .collect()
}

/// Exit code, stdout and stderr of one CLI run, for assertions.
#[derive(Debug)]
pub struct CliRun {
    /// The exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CliRun {
    /// Captures a finished command.
    pub fn of(out: std::process::Output) -> CliRun {
        CliRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The non-blank stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Everything, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
