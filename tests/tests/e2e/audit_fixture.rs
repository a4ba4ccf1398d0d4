//! Databases written by earlier releases keep verifying. `tests/fixtures/audit-<commit>.db`
//! was written by that commit's binary (`tests/fixtures/make-audit-fixture.sh`): users and
//! their senders, AUTH failures and a success, a refused sender, accepted messages (one with
//! REQUIRETLS), an operator's retry and bounce with its DSN. This binary must verify its
//! chain and read every row, before and after applying its own migrations.

use std::path::Path;
use std::process::Command;

use sealgate_tests::{CliRun, json_lines, sealgate_bin, workspace_root};

/// The fixtures and how many audit rows each holds.
const FIXTURES: &[(&str, usize)] = &[("audit-9f6d6fb.db", 19)];

fn config(dir: &Path, db: &Path) -> std::path::PathBuf {
    let path = dir.join("sealgate.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nhostname = \"fixture.example.test\"\n\n[database]\nurl = \"sqlite://{}\"\n\n\
             [storage]\ndata_dir = \"{}\"\nseal_key_file = \"{}\"\n",
            db.display(),
            dir.display(),
            dir.join("seal.key").display()
        ),
    )
    .expect("config");
    path
}

fn run(cfg: &Path, args: &[&str]) -> CliRun {
    CliRun::of(
        Command::new(sealgate_bin())
            .arg("--config")
            .arg(cfg)
            .args(args)
            .output()
            .expect("run sealgate"),
    )
}

fn verifies_and_reads(cfg: &Path, rows: usize, when: &str) {
    let verify = run(cfg, &["audit", "verify"]);
    assert_eq!(verify.code, Some(0), "{when}: {}", verify.describe());
    assert!(
        verify
            .stdout
            .contains(&format!("audit log ok: {rows} events, head ")),
        "{when}: {}",
        verify.describe()
    );
    let tail = run(cfg, &["audit", "tail", "-n", "1000", "--json"]);
    assert_eq!(tail.code, Some(0), "{when}: {}", tail.describe());
    let events = json_lines(&tail.stdout);
    assert_eq!(events.len(), rows, "{when}: {}", tail.describe());
    for kind in [
        "user_saved",
        "user_senders_changed",
        "user_removed",
        "auth_failed",
        "auth_succeeded",
        "sender_refused",
        "received",
        "retry_requested",
        "bounced",
    ] {
        assert!(
            events.iter().any(|e| e["kind"] == kind),
            "{when}: no {kind} row read back: {}",
            tail.describe()
        );
    }
    let requiretls = events
        .iter()
        .filter(|e| e["kind"] == "received" && e["data"]["requiretls"] == true)
        .count();
    assert_eq!(requiretls, 1, "{when}: {}", tail.describe());
}

#[test]
fn audit_chains_written_by_earlier_releases_still_verify() {
    for &(name, rows) in FIXTURES {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("sealgate.db");
        std::fs::copy(workspace_root().join("tests/fixtures").join(name), &db).expect("copy");
        let cfg = config(dir.path(), &db);
        verifies_and_reads(&cfg, rows, &format!("{name} as written"));
        let migrate = run(&cfg, &["migrate"]);
        assert_eq!(migrate.code, Some(0), "{name}: {}", migrate.describe());
        verifies_and_reads(
            &cfg,
            rows,
            &format!("{name} after this release's migrations"),
        );
    }
}
