//! `sealgate check ADDRESS`: the decision for one recipient, with its evidence, without
//! sending anything.

use std::process::ExitCode;

use anyhow::Context as _;
use sealgate_config::Config;
use sealgate_policy::MessageFacts;
use sealgate_store::Store;

use crate::cli::CheckArgs;

/// Probes and decides like delivery would, then prints the report.
pub(crate) async fn run(cfg: &Config, store: &Store, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut headers = Vec::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected NAME:VALUE"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(s) = &args.subject {
        headers.push(("Subject".to_owned(), s.clone()));
    }
    let facts = MessageFacts {
        subject: args.subject.clone().unwrap_or_default(),
        headers,
        body_sample: String::new(),
        requiretls: args.requiretls,
        phi_free: false,
    };
    let sec = crate::wiring::security(cfg, store.clone())?;
    let report = sealgate_delivery::check(
        sec.resolver.as_ref(),
        &sec.discovery,
        &sec.rules,
        &crate::wiring::routes(cfg),
        &args.address,
        &facts,
    )
    .await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}
