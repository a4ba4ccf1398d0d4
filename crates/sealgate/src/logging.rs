//! Tracing set-up: human or JSON lines; RUST_LOG overrides the configured filter.

use sealgate_config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormatArg;

/// Initialises logging. The daemon logs to stdout at the configured level; other commands
/// print their own output on stdout, so their logs go to stderr and only warnings show.
pub(crate) fn init(cfg: &Config, flag: Option<LogFormatArg>, daemon: bool) {
    let format = match flag {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Human) => LogFormat::Human,
        None => cfg.log.format,
    };
    let default = if daemon {
        cfg.log.filter.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (format, daemon) {
        (LogFormat::Json, true) => builder.json().with_writer(std::io::stdout).try_init(),
        (LogFormat::Json, false) => builder.json().with_writer(std::io::stderr).try_init(),
        (LogFormat::Human, true) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Human, false) => builder.with_writer(std::io::stderr).try_init(),
    };
    if let Err(e) = result {
        eprintln!("sealgate: logging already initialised: {e}");
    }
}
