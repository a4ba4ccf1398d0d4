//! A hold is a hold: a recipient that waits because the policy's chosen method cannot be
//! carried out here (the portal is not enabled) is told apart from one that waits because the
//! remote server said 4xx — on its row (`queue list --state held`, `queue show`), in its
//! `deferred` audit record (`held`) and in its attempt (`outcome: held`).

use std::sync::Arc;

use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::CliRun;

use super::*;
use crate::lab::{WITHOUT_AUTHENTICATED, eventually};

/// A recipient the policy lets travel without protection, whose mailbox answers 451.
const BUSY: &str = "bob@example.test";

#[test]
fn protected_mail_the_policy_cannot_deliver_here_is_held_and_a_remote_4xx_is_not() {
    let b = SecureLab::builder();
    let cert = b.issue(&[MX]);
    // No DANE, no MTA-STS: protected mail has no verified TLS here, and no portal either.
    let lab = b
        .unsigned("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
        .start();
    let sink = lab.sink_with(MX_IP, |o| {
        o.tls = Some(Arc::new(cert.server_config()));
        o.script = SinkScript::default().reject_rcpt(BUSY, "451 4.2.1 mailbox busy, try later");
    });
    let daemon = lab
        .daemon_on_sqlite(&format!(
            "{WITHOUT_AUTHENTICATED}[[policy.addresses]]\nkey = \"bob@example.test\"\nlevel = \"none\"\n"
        ));
    let held_id = send(&daemon, RCPT, &[]);
    let busy_id = send(&daemon, BUSY, &[]);
    let db = inspect(&daemon);
    wait_for(&db, &held_id, RCPT, "deferred");
    wait_for(&db, &busy_id, BUSY, "deferred");

    let held = first(&db, &held_id, "deferred");
    assert_eq!(held["held"], "portal-disabled", "{held}");
    assert!(
        held["reason"]
            .as_str()
            .is_some_and(|r| r.contains("portal, which is not enabled")),
        "{held}"
    );
    assert_eq!(first(&db, &held_id, "attempt")["outcome"], "held");
    let remote = first(&db, &busy_id, "deferred");
    assert!(
        remote.get("held").is_none(),
        "a remote 4xx is no hold: {remote}"
    );
    assert!(
        remote["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("451")),
        "{remote}"
    );
    assert_eq!(first(&db, &busy_id, "attempt")["outcome"], "temporary");
    assert!(
        sink.received().is_empty(),
        "nothing may have been accepted by the peer"
    );

    // Retries run every second here, so a recipient may be in flight at any one look.
    let mut listed = CliRun::of(daemon.cli(["queue", "list", "--state", "held"]));
    eventually(WAIT, "the held recipient listed as held", || {
        listed = CliRun::of(daemon.cli(["queue", "list", "--state", "held"]));
        listed.code == Some(0) && listed.stdout.contains(&held_id)
    });
    assert!(
        listed.stdout.contains("on hold by policy: portal-disabled"),
        "{}",
        listed.describe()
    );
    assert!(
        !listed.stdout.contains(&busy_id),
        "a remote 4xx is no hold: {}",
        listed.describe()
    );
    let mut shown = CliRun::of(daemon.cli(["queue", "show", held_id.as_str()]));
    eventually(WAIT, "queue show naming the hold", || {
        shown = CliRun::of(daemon.cli(["queue", "show", held_id.as_str()]));
        shown.stdout.contains("on hold by policy: portal-disabled")
    });
    let bad = CliRun::of(daemon.cli(["queue", "list", "--state", "waiting"]));
    assert_ne!(bad.code, Some(0), "{}", bad.describe());
    assert!(bad.stderr.contains("or held"), "{}", bad.describe());
}
