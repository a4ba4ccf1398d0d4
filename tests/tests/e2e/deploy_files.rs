//! `deploy/`: the container image (`deploy/Containerfile`) and `deploy/compose.yaml` with its
//! configuration `deploy/compose/sealgate.toml`. No container runtime runs here (a docker CLI
//! without a daemon or the compose plugin), so these tests check what can be checked without
//! one: the files the image copies exist, the ports it exposes are the listeners of the
//! configuration and the ports compose publishes, compose parses as YAML with the services,
//! health check, volumes and mounts the configuration expects, the database URL names the
//! compose PostgreSQL service with its credentials — and that configuration passes
//! `sealgate config check` and relays a message over the suite's real PostgreSQL (only host
//! and port replaced). The systemd unit and the image keep state and configuration in the
//! same places.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sealgate_testkit::db::TestDb;
use sealgate_testkit::tls::TestCa;
use sealgate_tests::{CliRun, Daemon, DaemonOpts, py_send, workspace_root};
use serde_json::Value;

use crate::audit_cli::config_check;
use crate::inspect::Inspect;
use crate::pg_roles::as_role;

fn deploy(file: &str) -> PathBuf {
    workspace_root().join("deploy").join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The Containerfile's instructions (continuation lines joined, comments dropped).
fn instructions() -> Vec<String> {
    let text = read(&deploy("Containerfile"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let (body, continued) = match line.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        current.push_str(body.trim());
        current.push(' ');
        if !continued && !current.trim().is_empty() {
            out.push(current.trim().to_owned());
            current.clear();
        }
    }
    out
}

/// The arguments of every instruction `name` (e.g. "EXPOSE").
fn args_of(name: &str) -> Vec<Vec<String>> {
    instructions()
        .iter()
        .filter_map(|i| i.strip_prefix(&format!("{name} ")))
        .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn exposed() -> BTreeSet<u16> {
    args_of("EXPOSE")
        .concat()
        .iter()
        .map(|p| p.parse().unwrap_or_else(|_| panic!("EXPOSE {p}")))
        .collect()
}

fn compose_config() -> toml::Table {
    read(&deploy("compose/sealgate.toml"))
        .parse()
        .expect("deploy/compose/sealgate.toml is TOML")
}

/// The ports Sealgate listens on with the compose configuration: SMTP listeners and the portal.
fn listening_ports(cfg: &toml::Table) -> BTreeSet<u16> {
    let port = |addr: &str| -> u16 {
        let (_, port) = addr.rsplit_once(':').expect("host:port");
        port.parse().expect("a port")
    };
    let mut ports: BTreeSet<u16> = cfg["smtp"]["listener"]
        .as_array()
        .expect("[[smtp.listener]]")
        .iter()
        .map(|l| port(l["addr"].as_str().expect("addr")))
        .collect();
    if cfg["portal"]["enabled"].as_bool() == Some(true) {
        ports.insert(port(cfg["portal"]["listen"].as_str().expect("listen")));
    }
    ports
}

/// deploy/compose.yaml as JSON, through PyYAML (Debian python3-yaml).
fn compose() -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(deploy("compose.yaml"))
        .output()
        .expect("python3");
    let run = CliRun::of(out);
    assert_eq!(
        run.code,
        Some(0),
        "compose.yaml does not parse (python3-yaml installed?): {}",
        run.describe()
    );
    serde_json::from_str(&run.stdout).expect("JSON from python3")
}

/// `postgres://USER:PASSWORD@HOST:PORT/DB` in parts.
struct PgUrl {
    user: String,
    password: String,
    host: String,
    port: String,
    database: String,
}

fn pg_url(url: &str) -> PgUrl {
    let rest = url
        .strip_prefix("postgres://")
        .unwrap_or_else(|| panic!("not a postgres:// URL: {url}"));
    let (userinfo, rest) = rest.split_once('@').expect("USER:PASSWORD@");
    let (user, password) = userinfo.split_once(':').expect("USER:PASSWORD");
    let (hostport, database) = rest.split_once('/').expect("/DB");
    let (host, port) = hostport.split_once(':').expect("HOST:PORT");
    PgUrl {
        user: user.to_owned(),
        password: password.to_owned(),
        host: host.to_owned(),
        port: port.to_owned(),
        database: database.to_owned(),
    }
}

#[test]
fn the_image_builds_the_sealgate_binary_from_files_the_repository_has() {
    let root = workspace_root();
    let copies: Vec<Vec<String>> = args_of("COPY")
        .into_iter()
        .filter(|a| !a[0].starts_with("--from="))
        .collect();
    assert!(copies.len() >= 3, "{copies:?}");
    for args in &copies {
        let (_dest, sources) = args.split_last().expect("COPY SRC... DEST");
        for src in sources {
            assert!(
                root.join(src).exists(),
                "deploy/Containerfile copies {src}, which the repository lacks"
            );
        }
    }
    // Every workspace member is copied: cargo loads them all to build one.
    let workspace: toml::Table = read(&root.join("Cargo.toml")).parse().expect("TOML");
    let copied: Vec<&str> = copies
        .iter()
        .flat_map(|a| a[..a.len() - 1].iter().map(String::as_str))
        .collect();
    for member in workspace["workspace"]["members"]
        .as_array()
        .expect("members")
    {
        let member = member.as_str().expect("a path");
        assert!(
            copied
                .iter()
                .any(|c| member == *c || member.starts_with(&format!("{c}/"))),
            "the image does not copy the workspace member {member}"
        );
    }
    // The package and binary the build names.
    let package: toml::Table = read(&root.join("crates/sealgate/Cargo.toml"))
        .parse()
        .expect("TOML");
    assert_eq!(package["package"]["name"].as_str(), Some("sealgate"));
    assert!(package.get("bin").is_none(), "the binary is renamed");
    let runs = args_of("RUN");
    assert!(
        runs.iter().any(|r| {
            let r = r.join(" ");
            r.contains("cargo build --release --locked -p sealgate")
                && r.contains("target/release/sealgate")
        }),
        "no release build of -p sealgate: {runs:?}"
    );
    assert_eq!(
        args_of("USER"),
        [["sealgate"]],
        "the runtime runs as sealgate"
    );
    assert_eq!(args_of("FROM").len(), 2, "a builder and a runtime stage");
}

#[test]
fn the_image_exposes_the_ports_the_compose_configuration_listens_on_and_compose_publishes() {
    let cfg = compose_config();
    assert_eq!(exposed(), listening_ports(&cfg));
    let published: BTreeSet<u16> = compose()["services"]["sealgate"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            let p = p.as_str().expect("\"HOST:CONTAINER\"");
            p.rsplit(':')
                .next()
                .and_then(|c| c.parse().ok())
                .expect("a port")
        })
        .collect();
    assert_eq!(published, exposed());
}

#[test]
fn compose_runs_postgres_and_sealgate_with_the_credentials_the_configuration_uses() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, ["postgres", "sealgate"]);

    let pg = &compose["services"]["postgres"];
    assert!(
        pg["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("docker.io/library/postgres:")),
        "{pg}"
    );
    let health = pg["healthcheck"]["test"].to_string();
    assert!(health.contains("pg_isready"), "{health}");
    let named_volumes = compose["volumes"].as_object().expect("volumes");
    let volume_of = |service: &Value, target: &str| -> String {
        service["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter_map(Value::as_str)
            .find_map(|v| {
                let parts: Vec<&str> = v.split(':').collect();
                (parts.get(1) == Some(&target)).then(|| parts[0].to_owned())
            })
            .unwrap_or_else(|| panic!("no volume at {target}: {service}"))
    };
    let pg_data = volume_of(pg, "/var/lib/postgresql/data");
    assert!(named_volumes.contains_key(&pg_data), "{pg_data}");

    let sg = &compose["services"]["sealgate"];
    assert_eq!(sg["depends_on"]["postgres"]["condition"], "service_healthy");
    assert_eq!(sg["build"]["dockerfile"], "deploy/Containerfile");
    let context = deploy(sg["build"]["context"].as_str().expect("context"));
    assert!(
        context.join("Cargo.lock").is_file(),
        "{}",
        context.display()
    );

    // The configuration file the image reads, mounted from the repository.
    let config_env = args_of("ENV").concat();
    let config_path = config_env
        .iter()
        .find_map(|e| e.strip_prefix("SEALGATE_CONFIG="))
        .expect("ENV SEALGATE_CONFIG in the image");
    let source = volume_of(sg, config_path);
    assert!(deploy(&source).is_file(), "{source}");
    assert_eq!(
        deploy(&source).canonicalize().ok(),
        deploy("compose/sealgate.toml").canonicalize().ok()
    );
    // The certificate files the configuration names are inside the TLS mount.
    let cfg = compose_config();
    let tls_dir = volume_of(sg, "/etc/sealgate/tls");
    assert!(tls_dir.starts_with("./"), "{tls_dir}");
    for key in ["cert_file", "key_file"] {
        let file = cfg["tls"][key].as_str().expect("a path");
        assert!(file.starts_with("/etc/sealgate/tls/"), "tls.{key} = {file}");
    }
    // State on the named volume the image declares.
    let data_dir = cfg["storage"]["data_dir"].as_str().expect("data_dir");
    assert!(named_volumes.contains_key(&volume_of(sg, data_dir)));
    assert_eq!(args_of("VOLUME").concat(), [format!("[\"{data_dir}\"]")]);

    // The database URL names the compose service and its credentials.
    let url = pg_url(cfg["database"]["url"].as_str().expect("database.url"));
    let env = &pg["environment"];
    assert!(services.contains_key(&url.host), "{}", url.host);
    assert_eq!(url.host, "postgres");
    assert_eq!(url.port, "5432");
    assert_eq!(env["POSTGRES_USER"].as_str(), Some(url.user.as_str()));
    assert_eq!(
        env["POSTGRES_PASSWORD"].as_str(),
        Some(url.password.as_str())
    );
    assert_eq!(env["POSTGRES_DB"].as_str(), Some(url.database.as_str()));
    let health_target = format!("-U {} -d {}", url.user, url.database);
    assert!(health.contains(&health_target), "{health}");
}

/// The compose database's role and database on the suite's cluster, dropped afterwards.
struct ComposeDatabase {
    admin: String,
    role: String,
    database: String,
}

impl ComposeDatabase {
    fn create(url: &PgUrl) -> Self {
        let db = Self {
            admin: TestDb::admin_url(),
            role: url.user.clone(),
            database: url.database.clone(),
        };
        db.drop_both();
        for sql in [
            format!(
                "CREATE ROLE \"{}\" LOGIN PASSWORD '{}'",
                db.role, url.password
            ),
            format!("CREATE DATABASE \"{}\" OWNER \"{}\"", db.database, db.role),
        ] {
            as_role(&db.admin, &sql).expect("create the compose role and database");
        }
        db
    }

    fn drop_both(&self) {
        let _ = as_role(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database),
        );
        let _ = as_role(
            &self.admin,
            &format!("DROP ROLE IF EXISTS \"{}\"", self.role),
        );
    }
}

impl Drop for ComposeDatabase {
    fn drop(&mut self) {
        self.drop_both();
    }
}

/// The suite's PostgreSQL `host:port` (from DATABASE_URL).
fn suite_host_port() -> String {
    let admin = TestDb::admin_url();
    let rest = admin.split_once("://").map_or(admin.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}

#[test]
fn the_compose_configuration_passes_config_check_and_relays_over_postgresql() {
    let text = read(&deploy("compose/sealgate.toml"));
    let url = pg_url(compose_config()["database"]["url"].as_str().expect("url"));
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_to(dir.path()).display().to_string();
    let (cert, key) = ca
        .issue(&["relay.clinic.example", "127.0.0.1"])
        .write_to(dir.path(), "fullchain");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let local = text
        .replace("postgres:5432", &suite_host_port())
        .replace("0.0.0.0:25\"", "127.0.0.1:0\"")
        .replace("0.0.0.0:587\"", "127.0.0.1:0\"")
        .replace("0.0.0.0:465\"", "127.0.0.1:0\"")
        .replace("0.0.0.0:8443\"", "127.0.0.1:0\"")
        .replace("/var/lib/sealgate", &data.display().to_string())
        .replace(
            "/etc/sealgate/tls/fullchain.pem",
            &cert.display().to_string(),
        )
        .replace("/etc/sealgate/tls/key.pem", &key.display().to_string());
    let parsed: toml::Table = local.parse().expect("TOML");
    let local_url = parsed["database"]["url"].as_str().expect("url").to_owned();
    assert_eq!(pg_url(&local_url).host, "127.0.0.1", "{local_url}");
    for path in [
        &parsed["tls"]["cert_file"],
        &parsed["tls"]["key_file"],
        &parsed["storage"]["data_dir"],
    ] {
        let path = path.as_str().expect("a path");
        assert!(Path::new(path).starts_with(dir.path()), "{path}");
    }
    let file = dir.path().join("sealgate.toml");
    std::fs::write(&file, &local).expect("write");
    let checked = config_check(&file);
    assert_eq!(checked.code, Some(0), "{}", checked.describe());

    let _database = ComposeDatabase::create(&url);
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: local,
        ..DaemonOpts::with_db(local_url)
    });
    assert_eq!(
        daemon.listeners().len(),
        3,
        "the three SMTP listeners of the compose configuration: {:?}",
        daemon.listeners()
    );
    let password = "a passphrase for the compose test";
    let add = CliRun::of(daemon.cli_with_stdin(
        [
            "users",
            "add",
            "ehr",
            "--password-stdin",
            "--sender",
            "@clinic.example",
        ],
        format!("{password}\n").as_bytes(),
    ));
    assert_eq!(add.code, Some(0), "{}", add.describe());
    let auth = format!("ehr:{password}");
    py_send(
        daemon.addr("starttls"),
        &[
            "--starttls",
            "--cafile",
            &ca_file,
            "--servername",
            "relay.clinic.example",
            "--auth",
            &auth,
            "--from",
            "billing@clinic.example",
            "--to",
            "patient@example.org",
        ],
    )
    .assert_all_queued();
    assert_eq!(Inspect::new(daemon.db_url(), None).message_count(), 1);
}

#[test]
fn the_systemd_unit_and_the_image_keep_state_and_configuration_in_the_same_places() {
    // reload.rs checks the unit's hardening and readiness lines and runs systemd-analyze;
    // this checks that the two ways to deploy agree.
    let unit = read(&deploy("sealgate.service"));
    let value = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    let volume = args_of("VOLUME").concat().join("");
    for dir in value("ReadWritePaths") {
        assert_eq!(volume, format!("[\"{dir}\"]"), "the image's state volume");
    }
    assert_eq!(value("WorkingDirectory"), ["/var/lib/sealgate"]);
    assert_eq!(
        args_of("WORKDIR").last(),
        Some(&vec!["/var/lib/sealgate".to_owned()])
    );
    let config = args_of("ENV").concat();
    let config = config
        .iter()
        .find_map(|e| e.strip_prefix("SEALGATE_CONFIG="))
        .expect("ENV SEALGATE_CONFIG");
    let start = value("ExecStart").concat();
    assert!(start.contains(&format!("--config {config} ")), "{start}");
    // The unit may bind ports below 1024 only through this capability, and nothing else.
    assert_eq!(value("AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(value("CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(value("User"), ["sealgate"]);
}
