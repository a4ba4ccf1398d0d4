//! Configuration errors. Each names the key it is about.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a configuration, with its dotted key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `smtp.listener[0].tls`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: String, message: &str) -> Self {
        Self {
            key,
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{0}")]
    Syntax(String),
    /// Values that parse but break a rule; all of them.
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// Any of the above, in a file.
    #[error("{path}: {inner}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong in it.
        inner: Box<ConfigError>,
    },
}

impl ConfigError {
    pub(crate) fn from_toml(e: &toml::de::Error) -> Self {
        // toml's message already names the key and shows the offending line.
        Self::Syntax(e.to_string().trim_end().to_owned())
    }

    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            e @ Self::Read { .. } => e,
            other => Self::InFile {
                path: path.to_owned(),
                inner: Box::new(other),
            },
        }
    }
}
