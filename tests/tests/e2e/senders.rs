//! Sender binding against the real daemon: a user added with `--sender` may send as itself
//! and gets `553 5.7.1` as anyone else — in MAIL FROM and in the header From — over
//! STARTTLS + AUTH with Python's smtplib; nothing is queued for the refused messages, each
//! refusal is in the audit log, and `users senders` changes what is permitted. A
//! `[[relay.client]]` network is bound the same way without AUTH.

use sealgate_testkit::db::TestBackend;
use sealgate_tests::{CliRun as Run, Daemon, DaemonOpts, PySend, py_send};
use serde_json::Value;

use crate::clients::{OUTSIDE_ONLY, TlsWorld, inspect, tls_world};
use crate::inspect::fresh_db;

const PASSWORD: &str = "alice's long passphrase";

fn send_as_alice(daemon: &Daemon, tls: &TlsWorld, from: &str, header_from: &str) -> PySend {
    let auth = format!("alice:{PASSWORD}");
    py_send(
        daemon.addr("starttls"),
        &[
            "--starttls",
            "--cafile",
            &tls.ca_file,
            "--auth",
            &auth,
            "--from",
            from,
            "--header-from",
            header_from,
            "--to",
            "jane@example.org",
        ],
    )
}

fn assert_refused(sent: &PySend, stage: &str) {
    let r = &sent.results[0];
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_u64()),
        (Some(stage), Some(553)),
        "{}",
        sent.describe()
    );
    assert!(
        r["text"].as_str().unwrap_or_default().starts_with("5.7.1 "),
        "{}",
        sent.describe()
    );
}

/// `(auth_user or network, field, sender)` of each `sender_refused` record.
fn refusals(daemon: &Daemon) -> Vec<(String, String, String)> {
    inspect(daemon)
        .audit()
        .into_iter()
        .filter(|e| e.kind == "sender_refused")
        .map(|e| {
            let d: Value = serde_json::from_str(&e.data).expect("json");
            let who = d["auth_user"].as_str().or(d["network"].as_str());
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                who.unwrap_or_default().to_owned(),
                text(&d["field"]),
                text(&d["sender"]),
            )
        })
        .collect()
}

fn alice_may_send_only_as_herself_until_permitted_more(backend: TestBackend) {
    let db = fresh_db(backend);
    let tls = tls_world();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&tls.issued),
        extra_toml: OUTSIDE_ONLY.into(),
        ..DaemonOpts::with_db(&db.url)
    });
    let add = Run::of(daemon.cli_with_stdin(
        [
            "users",
            "add",
            "alice",
            "--password-stdin",
            "--sender",
            "alice@clinic.example.test",
        ],
        format!("{PASSWORD}\n").as_bytes(),
    ));
    assert_eq!(add.code, Some(0), "{}", add.describe());

    let own = "alice@clinic.example.test";
    let ceo = "ceo@clinic.example.test";
    send_as_alice(&daemon, &tls, own, &format!("Alice <{own}>")).assert_all_queued();
    assert_refused(
        &send_as_alice(&daemon, &tls, ceo, &format!("<{ceo}>")),
        "mail",
    );
    assert_refused(
        &send_as_alice(&daemon, &tls, own, &format!("The CEO <{ceo}>")),
        "data",
    );

    let db = inspect(&daemon);
    assert_eq!(
        db.message_count(),
        1,
        "nothing queued for the refused messages"
    );
    let received = db.received_events();
    assert!(
        received
            .values()
            .all(|d| d["sender"] == own && d["auth_user"] == "alice")
    );
    assert_eq!(
        refusals(&daemon),
        [
            ("alice".to_owned(), "mail-from".to_owned(), ceo.to_owned()),
            ("alice".to_owned(), "header-from".to_owned(), ceo.to_owned()),
        ]
    );

    let more = Run::of(daemon.cli(["users", "senders", "alice", "--add", ceo]));
    assert_eq!(more.code, Some(0), "{}", more.describe());
    assert_eq!(more.lines(), [own, ceo], "{}", more.describe());
    send_as_alice(&daemon, &tls, ceo, &format!("<{ceo}>")).assert_all_queued();
    let kinds: Vec<String> = inspect(&daemon)
        .audit()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "user_senders_changed")
            .count(),
        2,
        "one for users add, one for users senders: {kinds:?}"
    );
}

on_both_backends!(alice_may_send_only_as_herself_until_permitted_more);

#[test]
fn a_new_user_needs_senders() {
    let daemon = Daemon::start(DaemonOpts::default());
    let add = Run::of(daemon.cli_with_stdin(
        ["users", "add", "bob", "--password-stdin"],
        format!("{PASSWORD}\n").as_bytes(),
    ));
    assert_ne!(add.code, Some(0), "{}", add.describe());
    assert!(add.stderr.contains("--sender"), "{}", add.describe());
    let list = Run::of(daemon.cli(["users", "list"]));
    assert_eq!(list.lines(), Vec::<&str>::new(), "{}", list.describe());
    let bad = Run::of(daemon.cli_with_stdin(
        [
            "users",
            "add",
            "bob",
            "--password-stdin",
            "--sender",
            "not an address",
        ],
        format!("{PASSWORD}\n").as_bytes(),
    ));
    assert!(
        bad.stderr.contains("is not a sender rule"),
        "{}",
        bad.describe()
    );
}

#[test]
fn a_relay_client_network_gets_553_for_a_sender_it_is_not_permitted() {
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: "[relay]\nnetworks = []\n\n[[relay.client]]\nname = \"ehr\"\n\
                     networks = [\"127.0.0.0/8\", \"::1/128\"]\nsenders = [\"@clinic.example.test\"]\n"
            .into(),
        ..DaemonOpts::default()
    });
    let addr = daemon.addr("starttls");
    py_send(addr, &["--from", "billing@clinic.example.test"]).assert_all_queued();
    assert_refused(&py_send(addr, &["--from", "billing@other.example"]), "mail");
    assert_refused(
        &py_send(
            addr,
            &[
                "--from",
                "billing@clinic.example.test",
                "--header-from",
                "<ceo@other.example>",
            ],
        ),
        "data",
    );
    assert_eq!(inspect(&daemon).message_count(), 1);
    assert_eq!(
        refusals(&daemon),
        [
            (
                "ehr".to_owned(),
                "mail-from".to_owned(),
                "billing@other.example".to_owned()
            ),
            (
                "ehr".to_owned(),
                "header-from".to_owned(),
                "ceo@other.example".to_owned()
            ),
        ]
    );
}
