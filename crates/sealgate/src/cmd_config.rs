//! `sealgate config check FILE`

use std::path::Path;
use std::process::ExitCode;

use sealgate_config::Config;

/// Prints "ok" or every problem (each naming its key, and the file when one is unusable);
/// exit 1 when invalid.
pub fn check(file: &Path) -> ExitCode {
    let cfg = match Config::load(file) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut problems = crate::wiring::rules(&cfg).err().unwrap_or_default();
    // The files [pgp] and [smime] name must be there and usable (signing keys, archive key,
    // CA file, CRLs): each problem names its key, the file and why.
    if let Err(more) = crate::wiring::encryption_checked(&cfg) {
        problems.extend(more);
    }
    if problems.is_empty() {
        println!("{}: ok", file.display());
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: invalid configuration:", file.display());
        for p in problems {
            eprintln!("  {p}");
        }
        ExitCode::from(1)
    }
}
