//! `docs/guides/ehr.md`: an EHR played by swaks with the guide's own commands. A. Submission on
//! 587 with STARTTLS and AUTH as the user the guide creates: it relays as its senders and gets
//! `553` as another domain; without logging in it cannot relay. B. The allow-listed address
//! (here 127.0.0.4) relays as the clinic's senders without AUTH and gets `553` as another
//! domain; any other address gets `554` at RCPT.

use sealgate_tests::{CliRun, Daemon, swaks};

use super::{HOSTNAME, Site, localise, start, swap, tested_block};
use crate::clients::inspect;

const PASSWORD: &str = "Zr3tq8WmN1xKp5vB7cY2dF4h";
const REFUSED_SENDER: &str = "553 5.7.1 Sender address not allowed for this client";
const NO_RELAY: &str =
    "554 5.7.1 Relay access denied: authenticate or send from a permitted network";

/// swaks over STARTTLS, verifying Sealgate's certificate, as the guide runs it; `args` add
/// the source address, AUTH and the sender.
fn swaks_to(daemon: &Daemon, site: &Site, args: &[&str]) -> CliRun {
    let server = daemon.addr("starttls").to_string();
    let mut all = vec![
        "--server",
        &server,
        "--tls",
        "--tls-verify",
        "--tls-ca-path",
        &site.ca_file,
        "--tls-sni",
        HOSTNAME,
        "--ehlo",
        "ehr.clinic.example",
        "--to",
        "you@example.org",
    ];
    all.extend(args);
    CliRun::of(swaks(all))
}

fn assert_queued(run: &CliRun) {
    assert!(
        run.code == Some(0) && run.stdout.contains("250 2.0.0 Ok: queued as "),
        "{}",
        run.describe()
    );
}

fn assert_refused(run: &CliRun, reply: &str) {
    assert!(
        run.code != Some(0) && run.stdout.contains(reply),
        "expected {reply:?}:\n{}",
        run.describe()
    );
}

#[test]
fn the_guides_submission_user_relays_as_its_senders_only() {
    let site = Site::new();
    let block = tested_block("ehr.md", "ehr_submission");
    let mut local = vec![swap("0.0.0.0:587", "127.0.0.1:0")];
    local.extend(site.tls_swaps());
    let daemon = start(localise(&block, &local));
    // The guide's `users add` (the password piped in on standard input).
    let add = CliRun::of(daemon.cli_with_stdin(
        [
            "users",
            "add",
            "ehr-prod",
            "--password-stdin",
            "--sender",
            "@clinic.example",
            "--sender",
            "billing@hospital.example",
        ],
        format!("{PASSWORD}\n").as_bytes(),
    ));
    assert_eq!(add.code, Some(0), "{}", add.describe());
    let login = [
        "--auth",
        "LOGIN",
        "--auth-user",
        "ehr-prod",
        "--auth-password",
        PASSWORD,
    ];
    let as_ehr = |from: &str| {
        let mut args = login.to_vec();
        args.extend(["--from", from]);
        swaks_to(&daemon, &site, &args)
    };

    assert_queued(&as_ehr("billing@clinic.example"));
    assert_queued(&as_ehr("billing@hospital.example"));
    assert_refused(&as_ehr("billing@other.example"), REFUSED_SENDER);
    assert_refused(&as_ehr("ceo@hospital.example"), REFUSED_SENDER);
    // Without logging in: `[relay] networks = []` lets no address relay by itself.
    assert_refused(
        &swaks_to(&daemon, &site, &["--from", "billing@clinic.example"]),
        NO_RELAY,
    );

    let db = inspect(&daemon);
    assert_eq!(db.message_count(), 2, "nothing refused is queued");
    assert!(
        db.received_events()
            .values()
            .all(|d| d["auth_user"] == "ehr-prod")
    );
}

#[test]
fn the_guides_allow_listed_address_relays_as_the_clinic_and_no_other_address_relays() {
    let site = Site::new();
    let block = tested_block("ehr.md", "ehr_allow_list");
    let mut local = vec![
        swap("10.1.0.5:25", "127.0.0.1:0"),
        swap("10.1.20.15/32", "127.0.0.4/32"),
    ];
    local.extend(site.tls_swaps());
    let daemon = start(localise(&block, &local));
    let from = |source: &str, sender: &str| {
        swaks_to(
            &daemon,
            &site,
            &["--local-interface", source, "--from", sender],
        )
    };

    assert_queued(&from("127.0.0.4", "billing@clinic.example"));
    assert_queued(&from("127.0.0.4", "billing@hospital.example"));
    assert_refused(&from("127.0.0.4", "billing@other.example"), REFUSED_SENDER);
    assert_refused(&from("127.0.0.4", "ceo@hospital.example"), REFUSED_SENDER);
    assert_refused(&from("127.0.0.5", "billing@clinic.example"), NO_RELAY);

    let db = inspect(&daemon);
    assert_eq!(db.message_count(), 2, "nothing refused is queued");
    let refused: Vec<serde_json::Value> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "sender_refused")
        .map(|e| serde_json::from_str(&e.data).expect("audit data is JSON"))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|d| d["network"] == "ehr"), "{refused:?}");
}
