//! Return paths on ordinary mail (`[returns]`): each recipient of a message goes out in its own
//! transaction from its own return path (VERP), so a bounce that arrives days later names its
//! recipient; that recipient becomes `returned` and the original sender gets a DSN. The null
//! sender's mail (a DSN) keeps the null return path.

use std::time::Duration;

use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::{Daemon, DaemonOpts, py_send};
use sealgate_types::RecipientState;

use crate::inspect::Inspect;
use crate::lab::{Lab, eventually};

const ZONES: &[(&str, &str)] = &[
    ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n"),
    ("clinic.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.8\n"),
];

#[test]
fn each_recipient_leaves_from_its_own_return_path_and_a_late_bounce_returns_it() {
    let lab = Lab::new(ZONES);
    let mx = lab.sink([127, 0, 0, 5], SinkScript::default());
    let clinic = lab.sink([127, 0, 0, 8], SinkScript::default());
    let toml = format!(
        "{}retry_first = \"1s\"\nretry_max = \"1s\"\n[returns]\ndomain = \"bounces.relay.test\"\n",
        lab.config()
    );
    let d = Daemon::start(DaemonOpts {
        extra_toml: toml,
        ..DaemonOpts::default()
    });
    let smtp = d.addr("starttls");
    let sent = py_send(
        smtp,
        &[
            "--from",
            "ehr@clinic.test",
            "--to",
            "jane@example.test",
            "--to",
            "joe@example.test",
        ],
    );
    sent.assert_all_queued();
    let id = sent.queue_ids().remove(0);
    let db = Inspect::new(d.db_url(), None);
    eventually(Duration::from_secs(30), "both delivered", || {
        db.recipients_in(Some(RecipientState::Delivered)).len() == 2
    });
    let got = mx.received();
    assert_eq!(got.len(), 2, "one transaction per recipient");
    let mut paths = Vec::new();
    for m in &got {
        assert_eq!(m.rcpts.len(), 1);
        assert!(
            m.mail_from.starts_with("rtn-") && m.mail_from.ends_with("@bounces.relay.test"),
            "{}",
            m.mail_from
        );
        paths.push((m.rcpts[0].clone(), m.mail_from.clone()));
    }
    assert_ne!(paths[0].1, paths[1].1);
    // The message itself is unchanged: its header From and the stored envelope sender.
    assert_eq!(db.message(&id).sender, "ehr@clinic.test");

    // Days later, joe's server bounces it (a non-standard bounce, as some still send).
    let (_, joe_path) = paths
        .iter()
        .find(|(r, _)| r == "joe@example.test")
        .expect("joe")
        .clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let bounce = dir.path().join("bounce.eml");
    std::fs::write(
        &bounce,
        "From: MAILER-DAEMON@mx1.example.test\r\nSubject: failure notice\r\n\r\n\
         Hi. This is the qmail-send program at mx1.example.test.\r\n\
         <joe@example.test>:\r\n550 sorry, no mailbox here by that name. (#5.1.1)\r\n",
    )
    .expect("write");
    py_send(
        smtp,
        &[
            "--from",
            "",
            "--to",
            &joe_path,
            "--body-file",
            &bounce.display().to_string(),
        ],
    )
    .assert_all_queued();
    eventually(Duration::from_secs(30), "joe returned", || {
        db.recipients(&id)
            .iter()
            .any(|(r, s)| r == "joe@example.test" && s == "returned")
    });
    assert!(
        db.recipients(&id)
            .iter()
            .any(|(r, s)| r == "jane@example.test" && s == "delivered")
    );
    // The DSN reaches the sender from the null return path (never a return path of ours).
    eventually(Duration::from_secs(30), "the DSN", || {
        !clinic.received().is_empty()
    });
    let dsn = &clinic.received()[0];
    assert_eq!(dsn.mail_from, "");
    let text = String::from_utf8_lossy(&dsn.data).into_owned();
    assert!(
        text.contains("joe@example.test") && text.contains("5.1.1"),
        "{text}"
    );
}
