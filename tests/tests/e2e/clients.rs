//! Independent SMTP clients (Python smtplib, swaks) against the real daemon, on SQLite and on
//! PostgreSQL: plain, pipelined, STARTTLS, implicit TLS, AUTH over TLS. Each test asserts on
//! the queue rows, the sealed body and the audit event an operator would look at.

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::tls::{Issued, TestCa};
use sealgate_tests::{Daemon, DaemonOpts, Step, py_send, raw_smtp, swaks};

use crate::inspect::{Inspect, fresh_db};

pub(crate) const OUTSIDE_ONLY: &str = "[relay]\nnetworks = [\"10.255.0.0/16\"]\n";
pub(crate) const PASSWORD: &str = "a long passphrase for the ehr";

pub(crate) struct TlsWorld {
    _ca_dir: tempfile::TempDir,
    pub(crate) ca_file: String,
    pub(crate) issued: Issued,
}

pub(crate) fn tls_world() -> TlsWorld {
    let ca = TestCa::new();
    let issued = ca.issue(&["localhost", "relay.example.test", "127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_to(dir.path()).display().to_string();
    TlsWorld {
        _ca_dir: dir,
        ca_file,
        issued,
    }
}

pub(crate) fn inspect(daemon: &Daemon) -> Inspect {
    Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")))
}

/// User `ehr`, permitted the senders these tests use (send.py's default sender's domain and
/// the billing address swaks sends from).
pub(crate) fn add_user(daemon: &Daemon) {
    let out = daemon.cli_with_stdin(
        [
            "users",
            "add",
            "ehr",
            "--password-stdin",
            "--sender",
            "@client.example.test",
            "--sender",
            "billing@clinic.example.test",
        ],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "users add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn plain_and_pipelined_messages_are_queued_sealed_and_audited(backend: TestBackend) {
    let db = fresh_db(backend);
    let daemon = Daemon::start(DaemonOpts::with_db(&db.url));
    let addr = daemon.addr("starttls");
    let plain = py_send(addr, &["--count", "3", "--to", "jane@example.org"]);
    plain.assert_all_queued();
    let piped = py_send(
        addr,
        &[
            "--count",
            "2",
            "--pipeline",
            "--to",
            "a@example.org",
            "--to",
            "b@example.net",
        ],
    );
    piped.assert_all_queued();

    let db = inspect(&daemon);
    assert_eq!(db.message_count(), 5);
    let events = db.received_events();
    assert_eq!(events.len(), 5, "one received event per message");
    for id in plain.queue_ids() {
        assert_eq!(
            db.recipients(&id),
            [("jane@example.org".to_owned(), "queued".to_owned())]
        );
        let data = &events[&id];
        assert_eq!(data["client_ip"], "127.0.0.1");
        assert_eq!(data["helo"], "client.example.test");
        assert_eq!(data["sender"], "sender@client.example.test");
        assert!(
            data.get("tls").is_none(),
            "plain session recorded TLS: {data}"
        );
        assert_eq!(data["body_sha256"].as_str().map(str::len), Some(64));
        let body = db.body(&id);
        assert!(body.starts_with("Received: from client.example.test ([127.0.0.1])\r\n\tby relay.example.test (Sealgate) with ESMTP\r\n"), "{body}");
        assert!(
            body.contains(&format!("\tid {id}\r\n\tfor <jane@example.org>;")),
            "{body}"
        );
        assert_eq!(
            data["size"].as_u64(),
            Some((body.len() - body.find("From: ").expect("headers")) as u64)
        );
    }
    for id in piped.queue_ids() {
        let rcpts: Vec<String> = db.recipients(&id).into_iter().map(|(r, _)| r).collect();
        assert_eq!(rcpts, ["a@example.org", "b@example.net"]);
    }
}

on_both_backends!(plain_and_pipelined_messages_are_queued_sealed_and_audited);

fn starttls_with_auth_lets_an_outside_client_relay(backend: TestBackend) {
    let db = fresh_db(backend);
    let tls = tls_world();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&tls.issued),
        extra_toml: OUTSIDE_ONLY.into(),
        ..DaemonOpts::with_db(&db.url)
    });
    add_user(&daemon);
    let addr = daemon.addr("starttls");

    let anonymous = py_send(addr, &["--starttls", "--cafile", &tls.ca_file]);
    assert_eq!(
        anonymous.results[0]["stage"],
        "rcpt",
        "{}",
        anonymous.describe()
    );
    assert_eq!(
        anonymous.results[0]["code"],
        554,
        "{}",
        anonymous.describe()
    );
    assert!(
        anonymous.results[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("5.7.1")
    );

    let wrong = py_send(
        addr,
        &[
            "--starttls",
            "--cafile",
            &tls.ca_file,
            "--auth",
            "ehr:wrong password",
        ],
    );
    assert_eq!(wrong.results[0]["code"], 535, "{}", wrong.describe());

    let auth = format!("ehr:{PASSWORD}");
    let good = py_send(
        addr,
        &[
            "--starttls",
            "--cafile",
            &tls.ca_file,
            "--auth",
            &auth,
            "--to",
            "jane@example.org",
        ],
    );
    good.assert_all_queued();
    let id = &good.queue_ids()[0];
    let db = inspect(&daemon);
    let data = &db.received_events()[id];
    assert_eq!(data["auth_user"], "ehr");
    let tls_used = data["tls"].as_str().unwrap_or_default();
    assert!(tls_used.starts_with("TLSv1.3 TLS13_"), "{data}");
    let body = db.body(id);
    assert!(
        body.contains("(Sealgate) with ESMTPSA\r\n\t(version=TLSv1.3 cipher=TLS13_"),
        "{body}"
    );
    assert_eq!(db.message_count(), 1);
}

on_both_backends!(starttls_with_auth_lets_an_outside_client_relay);

#[test]
fn auth_is_neither_offered_nor_accepted_before_tls() {
    let tls = tls_world();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&tls.issued),
        ..DaemonOpts::default()
    });
    add_user(&daemon);
    // AGVocgBh... = "\0ehr\0" + password: valid credentials, refused only for lack of TLS.
    let plain = format!("AUTH PLAIN {}", b64(&format!("\0ehr\0{PASSWORD}")));
    let t = raw_smtp(
        daemon.addr("starttls"),
        &[
            Step::Cmd("EHLO c.example.test"),
            Step::Cmd(&plain),
            Step::Cmd("QUIT"),
        ],
    );
    let ehlo = t.replies()[1].text();
    assert!(ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), "{t}");
    assert_eq!(t.codes(), [220, 250, 538, 221], "{t}");
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn commands_pipelined_behind_starttls_are_discarded() {
    let tls = tls_world();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&tls.issued),
        ..DaemonOpts::default()
    });
    // The injected MAIL must never be answered: after 220 the next bytes must be TLS.
    let t = raw_smtp(
        daemon.addr("starttls"),
        &[
            Step::Cmd("EHLO c.example.test"),
            Step::Send(b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n"),
            Step::Idle(std::time::Duration::from_millis(500)),
        ],
    );
    assert_eq!(t.codes(), [220, 250, 220], "{t}");
    let logs = daemon.logs().join("\n");
    assert!(
        logs.contains("discarded input pipelined behind STARTTLS"),
        "{logs}"
    );
}

fn swaks_over_implicit_tls_and_starttls_with_auth_and_pipelining(backend: TestBackend) {
    let db = fresh_db(backend);
    let tls = tls_world();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&tls.issued),
        listeners: vec!["starttls", "implicit"],
        extra_toml: OUTSIDE_ONLY.into(),
        ..DaemonOpts::with_db(&db.url)
    });
    add_user(&daemon);
    let common = |addr: std::net::SocketAddr, mode: &str, mech: &str| {
        swaks([
            "--server",
            &addr.to_string(),
            mode,
            "--tls-verify",
            "--tls-ca-path",
            &tls.ca_file,
            "--tls-sni",
            "localhost",
            "--auth",
            mech,
            "--auth-user",
            "ehr",
            "--auth-password",
            PASSWORD,
            "--pipeline",
            "--from",
            "billing@clinic.example.test",
            "--to",
            "payer@example.org",
            "--ehlo",
            "billing.clinic.example.test",
        ])
    };
    for (listener, mode, mech) in [
        ("implicit", "--tlsc", "LOGIN"),
        ("starttls", "--tls", "PLAIN"),
    ] {
        let out = common(daemon.addr(listener), mode, mech);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "swaks {mode} {mech}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("<~  235 2.7.0"), "{text}");
        assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    }
    let db = inspect(&daemon);
    let events = db.received_events();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .values()
            .all(|d| d["auth_user"] == "ehr" && d["helo"] == "billing.clinic.example.test")
    );
    assert!(
        events
            .values()
            .all(|d| d["tls"].as_str().is_some_and(|t| t.starts_with("TLSv1.")))
    );
}

on_both_backends!(swaks_over_implicit_tls_and_starttls_with_auth_and_pipelining);

#[test]
fn smtplib_over_implicit_tls_rejects_a_certificate_from_another_ca() {
    let tls = tls_world();
    let other = tls_world();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&tls.issued),
        listeners: vec!["implicit"],
        ..DaemonOpts::default()
    });
    let addr = daemon.addr("implicit");
    py_send(addr, &["--smtps", "--cafile", &tls.ca_file]).assert_all_queued();
    let refused = py_send(addr, &["--smtps", "--cafile", &other.ca_file]);
    assert!(!refused.output.status.success(), "{}", refused.describe());
    assert!(
        refused.describe().contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        refused.describe()
    );
}
