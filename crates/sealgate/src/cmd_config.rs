//! `sealgate config check FILE`

use std::path::Path;
use std::process::ExitCode;

use sealgate_config::Config;

/// Prints "ok" or every problem (each naming its key); exit 1 when invalid.
pub fn check(file: &Path) -> ExitCode {
    let cfg = match Config::load(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match crate::wiring::rules(&cfg) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: invalid configuration:", file.display());
            for p in problems {
                eprintln!("  {p}");
            }
            ExitCode::from(1)
        }
    }
}
