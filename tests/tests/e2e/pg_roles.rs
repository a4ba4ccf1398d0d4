//! Least privilege on PostgreSQL: the owner of the tables runs `sealgate migrate`, `sealgate
//! db roles ROLE --apply` grants the serving role what it needs, and the relay serves, delivers
//! and audits as that role, which may not change, empty or unprotect the audit log. A serving
//! role never runs DDL: on a database that is behind it refuses to start, naming the
//! migrations and the command to run. Roles are cluster-wide on the shared test cluster, so
//! each test creates its own (unique names) and drops them, with its database, at the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealgate_store::Store;
use sealgate_testkit::db::TestDb;
use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::{CliRun, Daemon, DaemonOpts, py_send, sealgate_bin};

use crate::inspect::{Inspect, chain, runtime};
use crate::lab::{Lab, eventually, kinds_for};

const WAIT: Duration = Duration::from_secs(30);

/// A fresh database owned by a new owner role, and a new serving role with no privileges;
/// both roles and the database are dropped when this goes.
struct PgRoles {
    admin_url: String,
    database: String,
    owner: String,
    serving: String,
}

impl PgRoles {
    fn new() -> Self {
        let admin_url = TestDb::admin_url();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let roles = Self {
            database: format!("sealgate_roles_{tag}"),
            owner: format!("sealgate_owner_{tag}"),
            serving: format!("sealgate_relay_{tag}"),
            admin_url,
        };
        for sql in [
            format!("CREATE ROLE \"{}\" LOGIN", roles.owner),
            format!("CREATE ROLE \"{}\" LOGIN", roles.serving),
            format!(
                "CREATE DATABASE \"{}\" OWNER \"{}\"",
                roles.database, roles.owner
            ),
        ] {
            roles.admin(&sql).expect("set up the roles");
        }
        roles
    }

    /// Runs `sql` on the cluster as the administrator.
    fn admin(&self, sql: &str) -> Result<u64, String> {
        as_role(&self.admin_url, sql)
    }

    /// The URL of this database as `role`.
    fn url_as(&self, role: &str) -> String {
        let (scheme, rest) = self.admin_url.split_once("://").expect("a URL");
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        let host = host.split(['/', '?']).next().unwrap_or(host);
        format!("{scheme}://{role}@{host}/{}", self.database)
    }
}

impl Drop for PgRoles {
    fn drop(&mut self) {
        let _ = self.admin(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.database
        ));
        for role in [&self.serving, &self.owner] {
            let _ = self.admin(&format!("DROP ROLE IF EXISTS \"{role}\""));
        }
    }
}

/// Runs `sql` connected with `url`; the error with all its sources.
pub(crate) fn as_role(url: &str, sql: &str) -> Result<u64, String> {
    let rt = runtime();
    rt.block_on(async {
        let store = Store::connect(url, 1, Duration::from_secs(10))
            .await
            .map_err(|e| chain(&e))?;
        let done = store.execute_raw(sql).await.map_err(|e| chain(&e));
        store.close().await;
        done
    })
}

/// `sealgate ARGS` without a config file, in `dir`, with a clean environment.
fn sealgate(dir: &Path, args: &[&str]) -> CliRun {
    CliRun::of(
        Command::new(sealgate_bin())
            .args(args)
            .current_dir(dir)
            .env_remove("SEALGATE_CONFIG")
            .env_remove("SEALGATE_DATABASE_URL")
            .env_remove("SEALGATE_OWNER_DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
            .expect("run sealgate"),
    )
}

fn owner_sets_up(roles: &PgRoles, dir: &Path) {
    let owner = roles.url_as(&roles.owner);
    let run = sealgate(dir, &["migrate", "--database-url", &owner]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let run = sealgate(
        dir,
        &[
            "db",
            "roles",
            &roles.serving,
            "--apply",
            "--database-url",
            &owner,
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
}

#[test]
fn the_relay_serves_as_a_least_privilege_role_that_cannot_change_the_audit_log() {
    let roles = PgRoles::new();
    let dir = tempfile::tempdir().expect("tempdir");
    owner_sets_up(&roles, dir.path());

    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let mx = lab.sink([127, 0, 0, 5], SinkScript::default());
    let serving_url = roles.url_as(&roles.serving);
    let daemon = lab.daemon(&serving_url);
    let sent = py_send(
        daemon.addr("starttls"),
        &["--from", "ehr@clinic.test", "--to", "jane@example.test"],
    );
    sent.assert_all_queued();
    let id = sent.queue_ids().remove(0);
    assert!(
        lab.rt.block_on(mx.wait_for(1, WAIT)),
        "not delivered\n{}",
        daemon.output_report()
    );
    let db = Inspect::new(&roles.url_as(&roles.owner), None);
    eventually(WAIT, "the delivered event", || {
        kinds_for(&db, &id, "jane@example.test")
            .last()
            .map(String::as_str)
            == Some("delivered")
    });
    assert!(
        !daemon
            .all_logs()
            .iter()
            .any(|l| l.contains("owner of the audit table")),
        "the serving role was taken for the owner\n{}",
        daemon.output_report()
    );

    // The CLI works as the serving role too, without trying to migrate.
    let run = CliRun::of(daemon.cli_with_stdin(
        [
            "users",
            "add",
            "alice",
            "--password-stdin",
            "--sender",
            "alice@clinic.example",
        ],
        b"correct horse\n",
    ));
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let run = CliRun::of(daemon.cli(["audit", "verify"]));
    assert_eq!(run.code, Some(0), "{}", run.describe());

    // What the serving role may not do to the audit log and its chain head.
    assert_eq!(as_role(&serving_url, "SELECT 1 FROM audit LIMIT 1"), Ok(1));
    for (sql, refusal) in [
        (
            "UPDATE audit SET kind = 'x'",
            "permission denied for table audit",
        ),
        ("DELETE FROM audit", "permission denied for table audit"),
        ("TRUNCATE audit", "permission denied for table audit"),
        (
            "ALTER TABLE audit DISABLE TRIGGER audit_append_only",
            "must be owner of table audit",
        ),
        (
            "ALTER TABLE audit ADD COLUMN note TEXT",
            "must be owner of table audit",
        ),
        (
            "DROP TRIGGER audit_append_only ON audit",
            "must be owner of relation audit",
        ),
        (
            "DROP TRIGGER audit_no_truncate ON audit",
            "must be owner of relation audit",
        ),
        ("DROP TABLE audit", "must be owner of table audit"),
        (
            "DELETE FROM audit_head",
            "permission denied for table audit_head",
        ),
        (
            "TRUNCATE audit_head",
            "permission denied for table audit_head",
        ),
        (
            "DROP TRIGGER audit_head_forward_only ON audit_head",
            "must be owner of relation audit_head",
        ),
        (
            "DROP FUNCTION sealgate_audit_refuse_change() CASCADE",
            "must be owner of function sealgate_audit_refuse_change",
        ),
        (
            "DELETE FROM _sqlx_migrations",
            "permission denied for table _sqlx_migrations",
        ),
        (
            "CREATE TABLE sneaky (id INT)",
            "permission denied for schema public",
        ),
    ] {
        let err = as_role(&serving_url, sql).expect_err(sql);
        assert!(err.contains(refusal), "{sql}: {err}");
    }
    assert_eq!(
        kinds_for(&db, &id, "jane@example.test"),
        ["received", "decision", "attempt", "delivered"]
    );
}

/// Runs `sealgate --config F serve` and waits (bounded) for it to exit; its output.
fn serve_fails(config: &Path) -> CliRun {
    let mut child = Command::new(sealgate_bin())
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("SEALGATE_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sealgate serve");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("serve did not exit\n{}", CliRun::of(out).describe());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = CliRun::of(child.wait_with_output().expect("wait"));
    assert_ne!(run.code, Some(0), "{}", run.describe());
    run
}

#[test]
fn a_serving_role_never_migrates_and_names_what_the_owner_must_run() {
    let roles = PgRoles::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sealgate.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = {:?}\n[storage]\ndata_dir = {:?}\n[delivery]\nenabled = false\n\
             [[smtp.listener]]\naddr = \"127.0.0.1:0\"\ntls = \"starttls\"\n",
            roles.url_as(&roles.serving),
            dir.path().join("data")
        ),
    )
    .expect("write the config");

    // Unmigrated: no DDL is tried, and the error names the migrations and the command.
    let run = serve_fails(&config);
    assert!(
        run.stderr.contains("migration 0001_init")
            && run.stderr.contains("sealgate migrate --database-url"),
        "{}",
        run.describe()
    );
    let tables = as_role(
        &roles.url_as(&roles.owner),
        "SELECT 1 FROM pg_class WHERE relname = '_sqlx_migrations'",
    );
    assert_eq!(
        tables,
        Ok(0),
        "the serving role created the migration table"
    );

    // Migrated by the owner, but the grants not run: it names the missing privileges.
    let owner = roles.url_as(&roles.owner);
    let run = sealgate(dir.path(), &["migrate", "--database-url", &owner]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let run = serve_fails(&config);
    assert!(
        run.stderr.contains("audit: SELECT, INSERT") && run.stderr.contains("sealgate db roles"),
        "{}",
        run.describe()
    );

    // A single owner role keeps working as before, with a warning.
    let daemon = Daemon::start(DaemonOpts::with_db(owner.clone()));
    assert!(
        daemon
            .all_logs()
            .iter()
            .any(|l| l.contains("owner of the audit table")),
        "{}",
        daemon.output_report()
    );
}
