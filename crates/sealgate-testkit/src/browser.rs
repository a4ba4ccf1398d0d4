//! A real browser for tests: Debian's headless Chromium, driven by playwright-core through
//! `tests/browser/portal.mjs`, one step at a time.
//!
//! [`Browser::start`] runs `node tests/browser/portal.mjs` (installing its npm dependencies
//! first with [`ensure_installed`] when `node_modules` is missing) and talks to it over a
//! line-based JSON protocol: one command per line on its standard input, one reply per line
//! on its standard output (the script's header documents every command). Every reply is
//! awaited at most [`Browser::timeout`]; the process is killed when the [`Browser`] is
//! dropped. `SEALGATE_NODE` names another `node`, `SEALGATE_CHROMIUM` another Chromium
//! (default `/usr/bin/chromium`, Debian's package).
//!
//! The script logs every request the browser makes (every page, every frame), every dialog
//! (dismissed) and every console message, so tests can assert that nothing was loaded from
//! where it must not be and that no script ran. [`TestSite`] is an HTTP(S) site on loopback
//! that records every connection and request it gets: test pages, or a "canary" that must
//! stay unvisited.
//!
//! ```ignore
//! let mut b = Browser::start()?;
//! b.goto("https://127.0.0.1:8443/p/TOKEN")?;
//! b.fill("input[name=code]", "12345678")?;
//! b.click("button[type=submit]")?;
//! assert!(b.dialogs()?.is_empty());
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

mod error;
mod site;
mod types;

pub use error::BrowserError;
pub use site::{Hit, Page, TestSite};
pub use types::{ConsoleMessage, Dialog, Download, FrameValue, HttpReply, Navigation, Request};

/// How long a reply may take unless [`Browser::set_timeout`] changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Chromium may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the driver may take to close Chromium once its standard input is closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `npm ci` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The directory of the browser harness: `tests/browser` in the workspace.
pub fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/browser")
        .components()
        .collect()
}

/// Runs `npm ci` in [`harness_dir`] unless playwright-core is installed there already.
/// Concurrent callers (threads or test processes) wait for one another through a lock file
/// in the temp directory, so only one of them installs.
pub fn ensure_installed() -> Result<(), BrowserError> {
    let dir = harness_dir();
    let installed = || {
        dir.join("node_modules/playwright-core/package.json")
            .is_file()
    };
    if installed() {
        return Ok(());
    }
    let lock_path = std::env::temp_dir().join("sealgate-browser-npm-ci.lock");
    let lock = File::create(&lock_path).map_err(|e| BrowserError::Install(e.to_string()))?;
    lock.lock()
        .map_err(|e| BrowserError::Install(e.to_string()))?;
    if installed() {
        return Ok(());
    }
    let mut child = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BrowserError::Install(format!("cannot run npm: {e}")))?;
    let stderr = Lines::default();
    collect_lines(child.stderr.take(), Arc::clone(&stderr), None);
    let status = wait_with_timeout(&mut child, INSTALL_TIMEOUT)
        .ok_or_else(|| BrowserError::Install(format!("npm ci ran over {INSTALL_TIMEOUT:?}")))?;
    if !status.success() || !installed() {
        return Err(BrowserError::Install(format!(
            "npm ci in {} failed ({status}): {}",
            dir.display(),
            lock_lines(&stderr).join("\n")
        )));
    }
    Ok(())
}

/// Waits for `child` at most `limit`; kills it and returns `None` past that.
fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

type Lines = Arc<Mutex<Vec<String>>>;

fn lock_lines(lines: &Lines) -> MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `pipe` line by line on a thread: into `into`, and into `tx` when given.
fn collect_lines(
    pipe: Option<impl std::io::Read + Send + 'static>,
    into: Lines,
    tx: Option<mpsc::Sender<String>>,
) {
    let Some(pipe) = pipe else { return };
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx {
                if tx.send(line).is_err() {
                    break;
                }
            } else {
                lock_lines(&into).push(line);
            }
        }
    });
}

/// A running headless Chromium behind `portal.mjs`. Killed on drop.
pub struct Browser {
    child: Child,
    /// `None` once closed (on drop: the driver's cue to close Chromium).
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
    stderr: Lines,
    next_id: u64,
    timeout: Duration,
    version: String,
    /// Chromium's profile directory (the driver removes it; [`Drop`] too if it was killed).
    profile: Option<PathBuf>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Installs the harness if needed ([`ensure_installed`]), starts the driver and waits
    /// until Chromium runs.
    pub fn start() -> Result<Self, BrowserError> {
        ensure_installed()?;
        let dir = harness_dir();
        let mut child = Command::new(std::env::var_os("SEALGATE_NODE").unwrap_or("node".into()))
            .arg(dir.join("portal.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BrowserError::Spawn)?;
        let stdin = child.stdin.take();
        let (tx, replies) = mpsc::channel();
        let stderr = Lines::default();
        collect_lines(child.stdout.take(), Lines::default(), Some(tx));
        collect_lines(child.stderr.take(), Arc::clone(&stderr), None);
        let mut browser = Self {
            child,
            stdin,
            replies,
            stderr,
            next_id: 1,
            timeout: DEFAULT_TIMEOUT,
            version: String::new(),
            profile: None,
        };
        browser.wait_ready()?;
        Ok(browser)
    }

    /// Waits for the driver's `{"ready": ...}` line.
    fn wait_ready(&mut self) -> Result<(), BrowserError> {
        let line = self.next_line(START_TIMEOUT, "start")?;
        let ready: Value = serde_json::from_str(&line)
            .map_err(|e| BrowserError::Protocol(format!("{e}: {line}")))?;
        if ready["ready"] != true {
            return Err(BrowserError::Launch(format!(
                "{}\n{}",
                ready["error"].as_str().unwrap_or(&line),
                self.stderr_text()
            )));
        }
        self.version = ready["version"].as_str().unwrap_or_default().to_owned();
        self.profile = ready["profile"]
            .as_str()
            .map(PathBuf::from)
            .filter(|p| is_our_profile(p));
        Ok(())
    }

    /// Chromium's version, as the browser reported it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Chromium's profile directory, removed when the browser closes.
    pub fn profile(&self) -> Option<&Path> {
        self.profile.as_deref()
    }

    /// How long each reply may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long each reply may take (the driver's own step timeout is a little less).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// What the driver wrote to standard error so far (diagnostics).
    pub fn stderr_text(&self) -> String {
        lock_lines(&self.stderr).join("\n")
    }

    /// The next line of the driver's standard output, within `limit`.
    fn next_line(&mut self, limit: Duration, what: &str) -> Result<String, BrowserError> {
        match self.replies.recv_timeout(limit) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(BrowserError::Timeout {
                cmd: what.to_owned(),
                after: limit,
            }),
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(Duration::from_millis(100)); // let stderr drain
                Err(BrowserError::Closed(self.stderr_text()))
            }
        }
    }

    /// Sends `cmd` (an object with at least `"cmd"`) and returns the fields of its reply.
    /// Replies to earlier commands that timed out are skipped.
    pub fn call(&mut self, cmd: Value) -> Result<Map<String, Value>, BrowserError> {
        let Value::Object(mut cmd) = cmd else {
            return Err(BrowserError::Protocol("a command is a JSON object".into()));
        };
        let name = cmd
            .get("cmd")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let id = self.next_id;
        self.next_id += 1;
        cmd.insert("id".into(), id.into());
        // The driver gives up a little before we do, so its error arrives instead of ours.
        let step = self
            .timeout
            .saturating_sub(Duration::from_secs(2))
            .max(Duration::from_secs(1));
        cmd.entry("timeout_ms")
            .or_insert(u64::try_from(step.as_millis()).unwrap_or(u64::MAX).into());
        let line = Value::Object(cmd).to_string();
        let sent = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        sent.map_err(|_| BrowserError::Closed(self.stderr_text()))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left, &name)?;
            let Ok(Value::Object(reply)) = serde_json::from_str::<Value>(&line) else {
                return Err(BrowserError::Protocol(format!("not a JSON object: {line}")));
            };
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if reply.get("ok") == Some(&Value::Bool(true)) {
                return Ok(reply);
            }
            let error = reply.get("error").and_then(Value::as_str).unwrap_or("?");
            return Err(BrowserError::Command {
                cmd: name,
                error: error.to_owned(),
            });
        }
    }

    /// Navigates to `url` and waits for its `load` event.
    pub fn goto(&mut self, url: &str) -> Result<Navigation, BrowserError> {
        let r = self.call(json!({"cmd": "goto", "url": url}))?;
        Ok(Navigation::from_reply(&r))
    }

    /// Clicks the first element matching `selector`; when that navigates (a link, a form
    /// submit, a redirect after POST), waits until the new page has loaded.
    pub fn click(&mut self, selector: &str) -> Result<Navigation, BrowserError> {
        let r = self.call(json!({"cmd": "click", "selector": selector}))?;
        Ok(Navigation::from_reply(&r))
    }

    /// Types `value` into the form field matching `selector`.
    pub fn fill(&mut self, selector: &str, value: &str) -> Result<(), BrowserError> {
        self.call(json!({"cmd": "fill", "selector": selector, "value": value}))
            .map(drop)
    }

    /// The rendered text (`innerText`) of the first element matching `selector`.
    pub fn text(&mut self, selector: &str) -> Result<String, BrowserError> {
        let r = self.call(json!({"cmd": "text", "selector": selector}))?;
        Ok(str_field(&r, "text"))
    }

    /// The current page's HTML as the browser holds it.
    pub fn content(&mut self) -> Result<String, BrowserError> {
        let r = self.call(json!({"cmd": "content"}))?;
        Ok(str_field(&r, "html"))
    }

    /// The current page's URL.
    pub fn url(&mut self) -> Result<String, BrowserError> {
        let r = self.call(json!({"cmd": "content"}))?;
        Ok(str_field(&r, "url"))
    }

    /// Clicks `selector`, which must start a download, and saves it to `path`.
    pub fn download(&mut self, selector: &str, path: &Path) -> Result<Download, BrowserError> {
        let target = path.display().to_string();
        let r = self.call(json!({"cmd": "download", "selector": selector, "path": target}))?;
        let bytes = std::fs::read(path).map_err(|e| BrowserError::Protocol(e.to_string()))?;
        Ok(Download {
            filename: str_field(&r, "filename"),
            bytes,
        })
    }

    /// Evaluates the JavaScript expression `expr` in the main frame (through the DevTools
    /// protocol: the page's CSP does not apply).
    pub fn eval(&mut self, expr: &str) -> Result<Value, BrowserError> {
        let mut r = self.call(json!({"cmd": "eval", "expr": expr}))?;
        Ok(r.remove("value").unwrap_or(Value::Null))
    }

    /// Evaluates `expr` in every frame of the page (sandboxed ones included).
    pub fn eval_in_frames(&mut self, expr: &str) -> Result<Vec<FrameValue>, BrowserError> {
        let r = self.call(json!({"cmd": "eval_in_frames", "expr": expr}))?;
        Ok(list(&r, "frames")
            .iter()
            .map(FrameValue::from_json)
            .collect())
    }

    /// The URLs of every frame of the page, the main frame first.
    pub fn frames(&mut self) -> Result<Vec<String>, BrowserError> {
        let r = self.call(json!({"cmd": "frames"}))?;
        Ok(list(&r, "frames")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// An HTTP request sent by the browser's network stack with the browser's cookies, but
    /// not from a page (so no CSP or CORS applies): `form` fields are sent
    /// `application/x-www-form-urlencoded`. Redirects are not followed.
    pub fn request(
        &mut self,
        method: &str,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<HttpReply, BrowserError> {
        self.request_with(method, url, form, &[])
    }

    /// [`Browser::request`] with extra request `headers` (a `Cookie` header given here is
    /// sent besides the browser's own cookies).
    pub fn request_with(
        &mut self,
        method: &str,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpReply, BrowserError> {
        let mut cmd = json!({"cmd": "request", "method": method, "url": url});
        if !headers.is_empty() {
            let fields: Map<String, Value> = headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            cmd["headers"] = Value::Object(fields);
        }
        if !form.is_empty() {
            let fields: Map<String, Value> = form
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            cmd["form"] = Value::Object(fields);
        }
        Ok(HttpReply::from_reply(&self.call(cmd)?))
    }

    /// The browser's cookies (HttpOnly ones included) as JSON objects with `name`, `value`,
    /// `path`, `httpOnly`, `secure`, `sameSite`.
    pub fn cookies(&mut self) -> Result<Vec<Value>, BrowserError> {
        let r = self.call(json!({"cmd": "cookies"}))?;
        Ok(list(&r, "cookies").to_vec())
    }

    /// Every request the browser made or began since it started (or since
    /// [`Browser::clear`]), including those its CSP or mixed-content rules then blocked.
    pub fn requests(&mut self) -> Result<Vec<Request>, BrowserError> {
        let r = self.call(json!({"cmd": "requests"}))?;
        Ok(list(&r, "requests")
            .iter()
            .map(Request::from_json)
            .collect())
    }

    /// Every dialog (alert, confirm, prompt) a page opened; all were dismissed.
    pub fn dialogs(&mut self) -> Result<Vec<Dialog>, BrowserError> {
        let r = self.call(json!({"cmd": "dialogs"}))?;
        Ok(list(&r, "dialogs").iter().map(Dialog::from_json).collect())
    }

    /// Every console message and uncaught page error (type `pageerror`).
    pub fn console(&mut self) -> Result<Vec<ConsoleMessage>, BrowserError> {
        let r = self.call(json!({"cmd": "console"}))?;
        Ok(list(&r, "messages")
            .iter()
            .map(ConsoleMessage::from_json)
            .collect())
    }

    /// Forgets the requests, dialogs and console messages seen so far.
    pub fn clear(&mut self) -> Result<(), BrowserError> {
        self.call(json!({"cmd": "clear"})).map(drop)
    }

    /// Saves a full-page PNG screenshot to `path` (for debugging a failing test).
    pub fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        let target = path.display().to_string();
        self.call(json!({"cmd": "screenshot", "path": target}))
            .map(drop)
    }

    /// Closes the browser and waits for the driver to exit.
    pub fn quit(mut self) -> Result<(), BrowserError> {
        self.call(json!({"cmd": "quit"}))?;
        let _ = wait_with_timeout(&mut self.child, CLOSE_TIMEOUT);
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin lets the driver close Chromium and remove its profile; past a
        // short wait, it is killed.
        drop(self.stdin.take());
        let _ = wait_with_timeout(&mut self.child, CLOSE_TIMEOUT);
        if let Some(profile) = self.profile.take() {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

/// Whether `path` is a profile directory the driver made: `sealgate-chromium-*` directly in
/// the temp directory (nothing else is ever removed on its word).
fn is_our_profile(path: &Path) -> bool {
    path.parent() == Some(std::env::temp_dir().as_path())
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("sealgate-chromium-"))
}

fn str_field(reply: &Map<String, Value>, key: &str) -> String {
    reply
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn list<'a>(reply: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    reply
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}
