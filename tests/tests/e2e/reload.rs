//! SIGHUP (`systemctl reload`) as an operator uses it: a renewed certificate is presented to
//! the next STARTTLS client, relay clients change for new connections, an open session goes on,
//! a broken file leaves the running configuration in force with the reason in the log, and the
//! service manager hears READY, RELOADING and STOPPING over its notify socket.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sealgate_testkit::tls::{Issued, TestCa};
use sealgate_tests::{Daemon, DaemonOpts, RawSmtp};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

fn log_message(v: &Value) -> Option<&str> {
    v.pointer("/fields/message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.pointer(&format!("/fields/{name}"))
        .or_else(|| v.get(name))
        .and_then(Value::as_str)
}

/// How many log lines of this run carry `message`.
fn count(d: &Daemon, message: &str) -> usize {
    d.log_events()
        .iter()
        .filter(|v| log_message(v) == Some(message))
        .count()
}

/// Sends SIGHUP and waits for the `n`th reload's outcome line (`configuration reloaded` or
/// `reload failed: …`).
fn reload(d: &Daemon, n: usize) -> Value {
    d.signal("HUP");
    let outcome = |v: &Value| {
        log_message(v)
            .is_some_and(|m| m == "configuration reloaded" || m.starts_with("reload failed"))
    };
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let seen: Vec<Value> = d.log_events().into_iter().filter(|v| outcome(v)).collect();
        if seen.len() >= n {
            return seen[n - 1].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no outcome of reload {n}\n{}",
            d.output_report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The leaf certificate the server at `addr` presents after STARTTLS, as `openssl s_client`
/// sees it (PEM).
fn presented(addr: std::net::SocketAddr) -> String {
    let out = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-starttls", "smtp", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", "relay.example.test"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| {
        panic!(
            "no certificate from s_client:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .expect("end of certificate")
        + begin
        + "-----END CERTIFICATE-----".len();
    text[begin..end].to_owned()
}

fn same_pem(a: &str, b: &Issued) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    squash(a) == squash(&b.cert_pem)
}

/// The service manager's end of `NOTIFY_SOCKET`.
struct Notify {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: String,
}

impl Notify {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        Self {
            socket,
            path: path.display().to_string(),
            _dir: dir,
        }
    }

    fn next(&self) -> String {
        let mut buf = [0u8; 512];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within the timeout");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// One message over a session that is already past EHLO.
fn send_one(s: &mut RawSmtp) {
    assert_eq!(
        s.cmd("MAIL FROM:<ehr@clinic.example.test>").code,
        250,
        "{}",
        s.transcript()
    );
    assert_eq!(
        s.cmd("RCPT TO:<jane@example.org>").code,
        250,
        "{}",
        s.transcript()
    );
    assert_eq!(s.cmd("DATA").code, 354, "{}", s.transcript());
    s.send(b"Subject: results\r\n\r\nbody\r\n.\r\n");
    let done = s.reply().expect("reply to the end of data");
    assert_eq!(done.code, 250, "{}", s.transcript());
}

fn write_cert(issued: &Issued, daemon: &Daemon) {
    // Where the test config put the daemon's certificate (see tests/src/config.rs).
    issued.write_to(&daemon.dir().join("tls"), "server");
}

#[test]
fn sighup_presents_a_renewed_certificate_to_new_clients_and_open_sessions_go_on() {
    let ca = TestCa::new();
    let names = ["relay.example.test", "127.0.0.1"];
    let (first, renewed) = (ca.issue(&names), ca.issue(&names));
    let notify = Notify::new();
    let mut daemon = Daemon::start(DaemonOpts {
        tls: Some(&first),
        env: vec![("NOTIFY_SOCKET".into(), notify.path.clone())],
        ..DaemonOpts::default()
    });
    assert_eq!(notify.next(), "READY=1\n");
    let addr = daemon.addr("starttls");
    assert!(same_pem(&presented(addr), &first));

    let mut open = RawSmtp::connect(addr);
    assert_eq!(open.cmd("EHLO ehr.clinic.example.test").code, 250);

    write_cert(&renewed, &daemon);
    let outcome = reload(&daemon, 1);
    assert_eq!(
        log_message(&outcome),
        Some("configuration reloaded"),
        "{outcome}"
    );
    let reloading = notify.next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC=") && reloading.ends_with('\n'),
        "{reloading:?}"
    );
    assert_eq!(notify.next(), "READY=1\n");

    let now = presented(addr);
    assert!(
        same_pem(&now, &renewed),
        "the renewed certificate is not presented:\n{now}"
    );
    assert!(!same_pem(&now, &first));
    // The session opened before the reload is not dropped.
    send_one(&mut open);
    open.send_line("QUIT");

    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit {status}\n{}",
        daemon.output_report()
    );
    assert_eq!(notify.next(), "STOPPING=1\n");
}

#[test]
fn a_broken_file_or_certificate_leaves_the_running_configuration_and_the_log_says_why() {
    let ca = TestCa::new();
    let issued = ca.issue(&["relay.example.test", "127.0.0.1"]);
    let mut daemon = Daemon::start(DaemonOpts {
        tls: Some(&issued),
        ..DaemonOpts::default()
    });
    let addr = daemon.addr("starttls");
    let config = daemon.config_path().to_owned();
    let good = std::fs::read_to_string(&config).expect("config");

    // A misspelt key: refused, named, nothing changes.
    std::fs::write(
        &config,
        format!("{good}\n[mta_sts]\nrefresh_intervall = \"1h\"\n"),
    )
    .expect("write");
    let outcome = reload(&daemon, 1);
    assert_eq!(
        log_message(&outcome),
        Some("reload failed: the running configuration stays in force"),
        "{outcome}"
    );
    let why = field(&outcome, "error").unwrap_or_default();
    assert!(why.contains("refresh_intervall"), "{why}");

    // A certificate file that is not a certificate: refused, the file named.
    std::fs::write(&config, &good).expect("write");
    let cert_file = daemon.dir().join("tls").join("server.pem");
    std::fs::write(&cert_file, "not a certificate\n").expect("write");
    let outcome = reload(&daemon, 2);
    assert!(
        log_message(&outcome).is_some_and(|m| m.starts_with("reload failed")),
        "{outcome}"
    );
    let why = field(&outcome, "error").unwrap_or_default();
    assert!(why.contains("server.pem"), "{why}");

    // The process lives on the configuration it had: same certificate, loopback still relays.
    assert!(daemon.is_running());
    assert!(same_pem(&presented(addr), &issued));
    let mut s = RawSmtp::connect(addr);
    assert_eq!(s.cmd("EHLO ehr.clinic.example.test").code, 250);
    send_one(&mut s);
    assert_eq!(count(&daemon, "configuration reloaded"), 0);
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit {status}\n{}",
        daemon.output_report()
    );
}

#[test]
fn sighup_applies_new_relay_clients_and_names_what_needs_a_restart() {
    let mut daemon = Daemon::start(DaemonOpts::default());
    let addr = daemon.addr("starttls");
    let config = daemon.config_path().to_owned();
    let text = std::fs::read_to_string(&config).expect("config");
    let mut table: toml::Table = text.parse().expect("toml");
    // Loopback may no longer relay; a restart-only setting changes too.
    table.insert(
        "relay".into(),
        toml::Value::Table(
            [(
                "networks".to_owned(),
                toml::Value::Array(vec!["10.255.0.0/16".into()]),
            )]
            .into_iter()
            .collect(),
        ),
    );
    let delivery = table
        .get_mut("delivery")
        .and_then(toml::Value::as_table_mut)
        .expect("[delivery]");
    delivery.insert("max_connections".into(), 7.into());
    let mut before = RawSmtp::connect(addr);
    assert_eq!(before.cmd("EHLO ehr.clinic.example.test").code, 250);
    write_config(&config, &table);

    let outcome = reload(&daemon, 1);
    assert_eq!(
        log_message(&outcome),
        Some("configuration reloaded"),
        "{outcome}"
    );
    let restart = daemon.wait_for_log(WAIT, |v| {
        log_message(v) == Some("changed in the configuration file; takes effect after a restart")
    });
    assert_eq!(
        field(&restart, "setting"),
        Some("delivery.max_connections"),
        "{restart}"
    );
    assert_eq!(
        daemon
            .log_events()
            .iter()
            .filter(|v| log_message(v)
                .is_some_and(|m| m.starts_with("changed in the configuration file")))
            .count(),
        1,
        "only delivery.max_connections needs a restart"
    );

    // A new connection from loopback may no longer relay ...
    let mut after = RawSmtp::connect(addr);
    assert_eq!(after.cmd("EHLO ehr.clinic.example.test").code, 250);
    assert_eq!(after.cmd("MAIL FROM:<ehr@clinic.example.test>").code, 250);
    let refused = after.cmd("RCPT TO:<jane@example.org>");
    assert_eq!(refused.code / 100, 5, "{}", after.transcript());
    // ... while the session that began before the reload keeps what it started with.
    send_one(&mut before);
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit {status}\n{}",
        daemon.output_report()
    );
}

fn write_config(path: &Path, table: &toml::Table) {
    std::fs::write(path, toml::to_string(table).expect("toml")).expect("write config");
}

#[test]
fn sighup_applies_a_new_policy_to_the_messages_planned_after_it() {
    use crate::inspect::Inspect;
    use crate::lab::Lab;
    use crate::trail::{first, wait_for};
    use sealgate_testkit::smtp_sink::SinkScript;

    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    // A plain peer: under the lab's `default_level = "none"` it gets the message as it is.
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let store = crate::inspect::fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon_retrying(&store.url, "1h");
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    let send = |to: &str| {
        let sent = sealgate_tests::py_send(daemon.addr("starttls"), &["--to", to]);
        sent.assert_all_queued();
        sent.queue_ids().remove(0)
    };
    let before = send("jane@example.test");
    wait_for(&db, &before, "jane@example.test", "delivered");

    // Protection required from now on: a plain peer (no TLS of any kind) and no portal here,
    // so the next message waits and the peer gets nothing more.
    let config = daemon.config_path().to_owned();
    let text = std::fs::read_to_string(&config).expect("config");
    let required = text.replace("default_level = \"none\"", "default_level = \"required\"");
    assert_ne!(text, required, "the lab config sets default_level");
    std::fs::write(&config, required).expect("write config");
    let outcome = reload(&daemon, 1);
    assert_eq!(
        log_message(&outcome),
        Some("configuration reloaded"),
        "{outcome}"
    );

    let after = send("joe@example.test");
    wait_for(&db, &after, "joe@example.test", "deferred");
    let waits = first(&db, &after, "deferred");
    assert!(
        waits["reason"]
            .as_str()
            .is_some_and(|r| r.contains("nothing was sent")),
        "{waits}"
    );
    assert_eq!(first(&db, &after, "decision")["level"], "required");
    assert_eq!(first(&db, &before, "decision")["level"], "none");
    assert_eq!(
        sink.received().len(),
        1,
        "only the message sent before the reload arrived"
    );
}

/// The shipped unit uses what this file tests: readiness and reload notifications, reload by
/// SIGHUP; and systemd itself (`systemd-analyze verify`) finds nothing wrong with it.
#[test]
fn the_systemd_unit_waits_for_readiness_reloads_with_sighup_and_verifies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("deploy/sealgate.service")).expect("unit");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ReadWritePaths=/var/lib/sealgate",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "deploy/sealgate.service lacks {line}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sealgate.service");
    let bin = sealgate_tests::sealgate_bin();
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/sealgate", &bin.display().to_string()),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}
