//! The README's quick start for the API and webhooks, run as written: the `[api]` block it
//! tells the reader to save starts the daemon, and its shell block (an API key, a webhook
//! endpoint, a message posted with curl) runs in bash with only the binary's path, the
//! configuration file and the API's port replaced. The message is answered `202` with its
//! queue id and queued from the API, and its `message.received` event waits in the new
//! endpoint's outbox.

use std::process::Command;

use sealgate_tests::{CliRun, Daemon, DaemonOpts, sealgate_bin, workspace_root};
use serde_json::Value;

use super::{localise, marked_block, swap};
use crate::api::api_bound;
use crate::trail::{first, inspect};

/// The ```` ```lang ```` block of README.md marked `<!-- tested: guides/<name> -->`.
fn readme_block(name: &str, lang: &str) -> String {
    marked_block(&workspace_root().join("README.md"), name, lang)
}

#[test]
fn the_readme_quick_start_queues_a_message_through_the_api_and_adds_a_webhook() {
    let config = readme_block("readme_api_config", "toml");
    // The README's curl goes to the default listener; the test's listens on a free port.
    let table: toml::Table = config.parse().expect("the README's block is TOML");
    assert!(table["api"].get("listen").is_none(), "{config}");
    let config = localise(
        &config,
        &[swap(
            "enabled = true",
            "enabled = true\nlisten = \"127.0.0.1:0\"",
        )],
    );
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: config,
        ..DaemonOpts::default()
    });
    let (addr, bound) = api_bound(&daemon);
    // Without [tls], as in the quick start: plain HTTP on loopback.
    assert_eq!(
        bound.pointer("/fields/tls"),
        Some(&Value::Bool(false)),
        "{bound}"
    );

    let script = localise(
        &readme_block("readme_api", "sh"),
        &[
            swap(
                "target/release/sealgate",
                format!("'{}'", sealgate_bin().display()),
            ),
            swap(
                "data/quickstart.toml",
                format!("'{}'", daemon.config_path().display()),
            ),
            swap("127.0.0.1:8444", addr.to_string()),
        ],
    );
    let run = CliRun::of(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(daemon.dir())
            .env_remove("SEALGATE_CONFIG")
            .env_remove("SEALGATE_DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .expect("run bash"),
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());

    // stdout: the endpoint's secret (printed once), then curl's answer with its headers.
    let (secret, answer) = run
        .stdout
        .split_once("HTTP/")
        .unwrap_or_else(|| panic!("no HTTP answer\n{}", run.describe()));
    assert!(secret.trim().starts_with("whsec_"), "{}", run.describe());
    let status = answer.split_whitespace().nth(1);
    assert_eq!(status, Some("202"), "{}", run.describe());
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body\n{}", run.describe()));
    let body: Value = serde_json::from_str(body).expect("the answer is JSON");
    let id = body["id"].as_str().expect("a queue id").to_owned();
    assert_eq!(body["recipients"], serde_json::json!(["jane@example.org"]));
    let received = first(&inspect(&daemon), &id, "received");
    assert_eq!(received["origin"], "api", "{received}");

    // stderr names the endpoint; the message's first event is in its outbox.
    let endpoint = run
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("wh_"))
        .unwrap_or_else(|| panic!("no endpoint id\n{}", run.describe()));
    let events = CliRun::of(daemon.cli([
        "webhooks",
        "events",
        "--state",
        "all",
        "--endpoint",
        endpoint,
    ]));
    assert_eq!(events.code, Some(0), "{}", events.describe());
    assert!(
        events
            .lines()
            .iter()
            .any(|l| l.contains("message.received")),
        "{}",
        events.describe()
    );
}
