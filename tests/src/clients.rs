//! SMTP clients written by others: Python `smtplib` (through the scripts in
//! `tests/py/`) and swaks.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The directory of the Python helper scripts.
fn py_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// Runs Python 3 (`SEALGATE_PYTHON`, default `python3`): `script` ending in
/// `.py` names a file in `tests/py/`, anything else is run with `-c`.
pub fn python_smtp<I, S>(script: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let python = std::env::var("SEALGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut cmd = Command::new(&python);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    if script.ends_with(".py") {
        let path = py_dir().join(script);
        assert!(path.is_file(), "no such script {}", path.display());
        cmd.arg(path);
    } else {
        cmd.arg("-c").arg(script);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e} (is python3 installed?)"))
}

/// What `tests/py/send.py` reported: one JSON object per message (`index`,
/// `code`, `text`, `queue_id`, and `stage` of the first refused step), or a
/// single `{"error": ...}` object when the connection failed.
#[derive(Debug)]
pub struct PySend {
    pub output: Output,
    pub results: Vec<Value>,
}

impl PySend {
    /// Panics with the script's output unless it exited 0 (every message got 250).
    pub fn assert_all_queued(&self) -> &Self {
        assert!(
            self.output.status.success(),
            "send.py failed ({}):\n{}",
            self.output.status,
            self.describe()
        );
        self
    }

    /// The queue ids of the accepted messages, in order.
    pub fn queue_ids(&self) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|r| r.get("queue_id").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// Stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

/// Runs `tests/py/send.py --host IP --port PORT ARGS...` (see the script for
/// the flags: `--from`, `--to` (repeatable), `--starttls`, `--smtps`,
/// `--cafile`, `--auth user:pass`, `--size`, `--count`, `--pipeline`, ...).
pub fn py_send(addr: SocketAddr, args: &[&str]) -> PySend {
    let mut all = vec![
        "--host".to_owned(),
        addr.ip().to_string(),
        "--port".to_owned(),
        addr.port().to_string(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let output = python_smtp("send.py", &all);
    let results = crate::json_lines(&String::from_utf8_lossy(&output.stdout));
    PySend { output, results }
}

/// Runs swaks with `args` (e.g. `["--server", "127.0.0.1:2525", "--to", ...]`).
pub fn swaks<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new("swaks")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run swaks: {e} (scripts/test installs it)"))
}
