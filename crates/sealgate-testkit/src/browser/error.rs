//! What can go wrong driving the browser.

use std::time::Duration;

/// A failed browser step. Tests usually `expect` these; a [`BrowserError::Command`] is also
/// what a step that is meant to fail (a selector that must not match) returns.
#[derive(Debug)]
pub enum BrowserError {
    /// `npm ci` in `tests/browser` failed or could not run.
    Install(String),
    /// `node` could not be started.
    Spawn(std::io::Error),
    /// The driver started but Chromium did not (its message and the driver's stderr).
    Launch(String),
    /// No reply to `cmd` within `after`.
    Timeout {
        /// The command's name.
        cmd: String,
        /// How long it was awaited.
        after: Duration,
    },
    /// The driver exited; its standard error so far.
    Closed(String),
    /// The driver answered `cmd` with an error (a selector that matched nothing, a
    /// navigation that failed, a script that threw).
    Command {
        /// The command's name.
        cmd: String,
        /// playwright-core's message.
        error: String,
    },
    /// The driver said something that is not the protocol.
    Protocol(String),
}

impl std::fmt::Display for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Install(e) => write!(f, "cannot install the browser harness: {e}"),
            Self::Spawn(e) => write!(f, "cannot run node (is nodejs installed?): {e}"),
            Self::Launch(e) => write!(f, "chromium did not start: {e}"),
            Self::Timeout { cmd, after } => write!(f, "no reply to {cmd} within {after:?}"),
            Self::Closed(stderr) => write!(f, "the browser driver exited; stderr:\n{stderr}"),
            Self::Command { cmd, error } => write!(f, "{cmd} failed: {error}"),
            Self::Protocol(e) => write!(f, "browser driver protocol error: {e}"),
        }
    }
}

impl std::error::Error for BrowserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(e) => Some(e),
            _ => None,
        }
    }
}
