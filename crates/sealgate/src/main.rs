//! The `sealgate` binary (layer L5): command line, configuration loading, logging, signals,
//! and the wiring of every component with explicit constructors. The only crate that reads
//! the environment, initialises tracing, installs signal handlers or uses `anyhow`.

mod cli;
mod cmd_api_keys;
mod cmd_audit;
mod cmd_check;
mod cmd_config;
mod cmd_db;
mod cmd_dkim;
mod cmd_keys;
mod cmd_portal;
mod cmd_queue;
mod cmd_users;
mod cmd_webhooks;
mod logging;
mod portal_jobs;
mod reload;
mod serve;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealgate: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sealgate: {e:#}");
            ExitCode::from(2)
        }
    }
}
