//! `sealgate config check FILE`

use std::path::Path;
use std::process::ExitCode;

use sealgate_config::Config;

/// Prints "ok" or every problem (each naming its key); exit 1 when invalid.
pub fn check(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
