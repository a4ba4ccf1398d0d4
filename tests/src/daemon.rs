//! The `sealgate serve` process under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sealgate_testkit::tls::Issued;
use serde_json::Value;
use tempfile::TempDir;

use crate::config::render_config;
use crate::sealgate_bin;

/// How long `serve` may take to print "sealgate ready".
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd daemon may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// What to start. `DaemonOpts::default()` is one plain ("starttls" mode, no
/// `[tls]`) listener on 127.0.0.1:0 over SQLite in the daemon's temp dir.
#[derive(Debug, Clone)]
pub struct DaemonOpts<'a> {
    /// `database.url`; `None` means a SQLite file in the daemon's data dir.
    pub db_url: Option<String>,
    /// Certificate chain and key for the `[tls]` section.
    pub tls: Option<&'a Issued>,
    /// One `[[smtp.listener]]` on 127.0.0.1:0 per entry: "starttls" or "implicit".
    pub listeners: Vec<&'a str>,
    /// `server.hostname`.
    pub hostname: String,
    /// TOML merged over the generated config (tables merge, other values replace).
    pub extra_toml: String,
    /// Extra environment for the daemon and for [`Daemon::cli`].
    pub env: Vec<(String, String)>,
}

impl Default for DaemonOpts<'_> {
    fn default() -> Self {
        Self {
            db_url: None,
            tls: None,
            listeners: vec!["starttls"],
            hostname: "relay.example.test".to_owned(),
            extra_toml: String::new(),
            env: Vec::new(),
        }
    }
}

impl<'a> DaemonOpts<'a> {
    /// The defaults over the given database URL (SQLite or PostgreSQL).
    pub fn with_db(db_url: impl Into<String>) -> Self {
        Self {
            db_url: Some(db_url.into()),
            ..Self::default()
        }
    }
}

type Lines = Arc<Mutex<Vec<String>>>;

/// A running (or stopped) `sealgate serve` with its own temp dir holding the
/// config file and the data dir. Dropping it kills the process; if the test
/// is panicking, its output is printed first.
pub struct Daemon {
    dir: Option<TempDir>,
    dir_path: PathBuf,
    config: PathBuf,
    db_url: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
    earlier_runs: Vec<String>,
    listeners: Vec<(String, SocketAddr)>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("dir", &self.dir_path)
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Writes the config and starts `sealgate --config F --log-format json serve`,
    /// returning once it logged "sealgate ready" (panics after 30 s).
    pub fn start(opts: DaemonOpts<'_>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sealgate-e2e-")
            .tempdir()
            .expect("create daemon temp dir");
        let dir_path = dir.path().to_path_buf();
        let data_dir = dir_path.join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let db_url = opts
            .db_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("sealgate.db").display()));
        let config = dir_path.join("sealgate.toml");
        let text = render_config(&opts, &dir_path, &db_url);
        std::fs::write(&config, text).expect("write config");
        let keep = std::env::var_os("SEALGATE_E2E_KEEP").is_some();
        let mut daemon = Self {
            dir: if keep { None } else { Some(dir) },
            dir_path,
            config,
            db_url,
            env: opts.env,
            child: None,
            stdout: Lines::default(),
            stderr: Lines::default(),
            earlier_runs: Vec::new(),
            listeners: Vec::new(),
        };
        if keep {
            eprintln!("keeping daemon dir {}", daemon.dir_path.display());
        }
        daemon.spawn();
        daemon
    }

    /// Starts the daemon again with the same config and data dir (after
    /// [`kill9`](Self::kill9) or [`terminate`](Self::terminate); a running
    /// daemon is terminated first). Listener addresses change: port 0.
    pub fn restart(&mut self) {
        if self.is_running() {
            let status = self.terminate();
            assert!(status.success(), "daemon exited with {status} on SIGTERM");
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut previous = std::mem::take(&mut *lock(&self.stdout));
        previous.extend(lock(&self.stderr).drain(..).map(|l| format!("stderr: {l}")));
        self.earlier_runs.extend(previous);
        self.listeners.clear();

        let mut cmd = self.command();
        cmd.args(["--log-format", "json", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sealgate serve");
        collect_lines(child.stdout.take(), Arc::clone(&self.stdout));
        collect_lines(child.stderr.take(), Arc::clone(&self.stderr));
        self.child = Some(child);
        self.wait_ready();
    }

    /// The binary with `--config`, a scrubbed environment and the temp dir as cwd.
    fn command(&self) -> Command {
        let mut cmd = Command::new(sealgate_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .current_dir(&self.dir_path)
            .env_remove("SEALGATE_CONFIG")
            .env_remove("SEALGATE_DATABASE_URL")
            .env_remove("RUST_LOG");
        if let Ok(filter) = std::env::var("SEALGATE_E2E_RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(listeners) = ready_listeners(&lock(&self.stdout)) {
                self.listeners = listeners;
                return;
            }
            if let Some(status) = self.try_wait() {
                thread::sleep(Duration::from_millis(200)); // let the readers drain
                panic!(
                    "sealgate serve exited with {status} before \"sealgate ready\"\n{}",
                    self.output_report()
                );
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "sealgate serve not ready after {READY_TIMEOUT:?}\n{}",
                    self.output_report()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The first listener of this mode ("starttls" or "implicit").
    pub fn addr(&self, mode: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(m, _)| m == mode)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {mode:?} listener; have {:?}", self.listeners))
    }

    /// Every listener as (mode, address), in the order they were logged.
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// SIGKILL, then reap. No-op if it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // std sends SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (30 s at most, else SIGKILL and panic); returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().expect("terminate: daemon is not running");
        signal(pid, "TERM");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "sealgate did not exit {EXIT_TIMEOUT:?} after SIGTERM\n{}",
                    self.output_report()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Sends a signal by name ("HUP", "INT", ...) to the running daemon.
    pub fn signal(&self, name: &str) {
        signal(self.pid().expect("daemon is not running"), name);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_wait().is_none()
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("poll sealgate process")
    }

    /// Stdout lines (JSON log lines) of the current run.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.stdout).clone()
    }

    /// Stderr lines of the current run.
    pub fn stderr(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// Stdout and stderr of earlier runs (before restarts), then this run's stdout.
    pub fn all_logs(&self) -> Vec<String> {
        let mut all = self.earlier_runs.clone();
        all.extend(self.logs());
        all
    }

    /// This run's log lines parsed as JSON (non-JSON lines skipped).
    pub fn log_events(&self) -> Vec<Value> {
        crate::json_lines(&self.logs().join("\n"))
    }

    /// Waits until a log line of this run satisfies `pred`, and returns it.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.log_events().into_iter().find(|v| pred(v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no matching log line within {timeout:?}\n{}",
                self.output_report()
            );
            thread::sleep(POLL);
        }
    }

    /// Runs `sealgate --config F ARGS...` and returns its output.
    pub fn cli<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cli_with_stdin(args, b"")
    }

    /// Like [`cli`](Self::cli), writing `stdin` to the process (e.g. `users add
    /// NAME --password-stdin`).
    pub fn cli_with_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sealgate cli");
        let mut input = child.stdin.take().expect("piped stdin");
        // Ignore EPIPE: a command that does not read stdin may exit first.
        let _ = input.write_all(stdin);
        drop(input);
        child.wait_with_output().expect("wait for sealgate cli")
    }

    /// The temp dir holding `sealgate.toml` and `data/`.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir_path.join("data")
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// Everything the daemon printed so far, for failure messages.
    pub fn output_report(&self) -> String {
        let mut s = format!("--- config {} ---\n", self.config.display());
        s.push_str(&std::fs::read_to_string(&self.config).unwrap_or_default());
        for (name, lines) in [
            ("earlier runs", &self.earlier_runs),
            ("stdout", &self.logs()),
            ("stderr", &self.stderr()),
        ] {
            if !lines.is_empty() {
                s.push_str(&format!("--- {name} ---\n{}\n", lines.join("\n")));
            }
        }
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!("=== sealgate daemon output ===\n{}", self.output_report());
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

fn lock(lines: &Lines) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn collect_lines(pipe: Option<impl Read + Send + 'static>, into: Lines) {
    let Some(pipe) = pipe else { return };
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => lock(&into).push(line),
                Err(_) => break,
            }
        }
    });
}

/// `kill -s NAME PID` through the shell builtin (no procps needed, no unsafe).
fn signal(pid: u32, name: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {name} {pid}"))
        .status()
        .expect("run sh to send a signal");
    assert!(status.success(), "kill -s {name} {pid} failed");
}

/// The `message` of a tracing-subscriber JSON line (in `fields`, or flattened).
pub(crate) fn message(v: &Value) -> Option<&str> {
    v.pointer("/fields/message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
}

fn field<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    v.get("fields")
        .and_then(|f| f.get(name))
        .or_else(|| v.get(name))
}

/// Once "sealgate ready" is logged: the (mode, addr) of every "smtp listener bound" line.
fn ready_listeners(lines: &[String]) -> Option<Vec<(String, SocketAddr)>> {
    let events: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !events.iter().any(|v| message(v) == Some("sealgate ready")) {
        return None;
    }
    let bound = events
        .iter()
        .filter(|v| message(v) == Some("smtp listener bound"))
        .map(|v| {
            let addr = field(v, "addr")
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("listener line without a socket addr: {v}"));
            let mode = field(v, "mode").and_then(Value::as_str).unwrap_or("");
            (mode.to_owned(), addr)
        })
        .collect();
    Some(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_read_once_ready_is_logged() {
        let bound = r#"{"timestamp":"t","level":"INFO","fields":{"message":"smtp listener bound","addr":"127.0.0.1:41234","mode":"starttls"},"target":"sealgate_ingress"}"#;
        let ready = r#"{"timestamp":"t","level":"INFO","fields":{"message":"sealgate ready"},"target":"sealgate"}"#;
        let mut lines = vec!["not json".to_owned(), bound.to_owned()];
        assert_eq!(ready_listeners(&lines), None);
        lines.push(ready.to_owned());
        let got = ready_listeners(&lines).expect("ready");
        assert_eq!(
            got,
            vec![(
                "starttls".to_owned(),
                "127.0.0.1:41234".parse().expect("addr")
            )]
        );
    }
}
