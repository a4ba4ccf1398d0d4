//! Returned mail end to end: a real Postfix is the recipient domain's MX. It accepts a portal
//! notice for an address it has no mailbox for and bounces it afterwards, as MXs do, to the
//! notice's return path (`[returns]`, VERP) — relayed to Sealgate. Sealgate ties the bounce to
//! the original recipient: it becomes `returned`, the original sender gets a DSN at its own MX,
//! and a `recipient.returned` webhook reaches a receiver that verifies it with standardwebhooks.
//! The recipient whose notice arrived stays delivered; a replayed bounce, a forged token and a
//! delay report change nothing and are on record.

use std::net::{Ipv4Addr, SocketAddr};

use sealgate_testkit::postfix::{PostfixMx, PostfixOpts};
use sealgate_types::RecipientState;
use serde_json::json;

use super::*;
use crate::webhooks::{Receiver, add_endpoint};

const BOUNCES: &str = "bounces.relay.test";
const POSTFIX_IP: [u8; 4] = [127, 0, 0, 6];
const NOBODY: &str = "nobody@example.test";
/// Refused at RCPT by the MX: Sealgate meets the failure itself.
const GONE: &str = "gone@example.test";

#[test]
fn a_notice_bounced_by_postfix_returns_its_recipient_with_a_dsn_and_a_webhook() {
    let builder = SecureLab::builder();
    let clinic_cert = builder.issue(&["mx.clinic.test"]);
    let tlsa = format!(
        "_{}._tcp.mx IN TLSA 3 1 1 {}\n",
        builder.port(),
        spki_sha256(&clinic_cert)
    );
    let lab = builder
        .signed("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.6\n")
        .signed(
            "clinic.test",
            &format!("@ IN MX 10 mx\nmx IN A 127.0.0.7\n{tlsa}"),
        )
        .start();
    let clinic = lab.tls_sink(CLINIC_MX_IP, &clinic_cert);
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = free_addr(Ipv4Addr::LOCALHOST);
    let base = format!("https://{listen}");
    let extra = format!(
        "{}[returns]\ndomain = \"{BOUNCES}\"\n[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\n\
         retry_schedule = [\"1s\", \"1s\", \"1s\"]\npoll_interval = \"100ms\"\n",
        portal_table(&lab, dir.path(), listen, &base, "")
    );
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: lab.config_with(WITHOUT_AUTHENTICATED, &extra),
        ..DaemonOpts::default()
    });
    wait_listening(listen, &daemon);
    let smtp = daemon.addr("starttls");
    // The MX: mail for example.test lands in its Maildir, except for NOBODY, which it takes
    // and then bounces; mail for other domains (the bounce) goes to Sealgate.
    let mut opts = PostfixOpts::new(SocketAddr::from((POSTFIX_IP, lab.port)), &["example.test"]);
    opts.relayhost = Some(format!("[{}]:{}", smtp.ip(), smtp.port()));
    opts.transport = vec![(NOBODY.to_owned(), "error:5.1.1 User unknown".to_owned())];
    opts.reject = vec![(GONE.to_owned(), "550 5.1.1 No such user here".to_owned())];
    let postfix = PostfixMx::start(opts);
    let rx = Receiver::start();
    let (_, secret) = add_endpoint(
        &daemon,
        &rx.url(),
        &["--events", "recipient.returned,portal.notified"],
    );
    rx.control(json!({ "secrets": [secret] }));

    let file = dir.path().join("message.eml");
    std::fs::write(
        &file,
        format!(
            "From: {SENDER}\r\nTo: {RCPT}, {NOBODY}, {GONE}\r\nSubject: Lab results\r\n\r\nYour results are ready.\r\n"
        ),
    )
    .expect("write message");
    let sent = py_send(
        smtp,
        &[
            "--from",
            SENDER,
            "--to",
            RCPT,
            "--to",
            NOBODY,
            "--to",
            GONE,
            "--body-file",
            &file.display().to_string(),
        ],
    );
    sent.assert_all_queued();
    let id = sent.queue_ids().remove(0);
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));

    // Jane's notice arrives, from her own return path.
    let delivered = postfix.wait_for_messages(1, WAIT);
    let notice = String::from_utf8_lossy(&delivered[0]).into_owned();
    assert!(notice.contains("Return-Path: <rtn-"), "{notice}");
    assert!(notice.contains(&format!("@{BOUNCES}>")), "{notice}");

    // NOBODY's notice bounces: the original recipient is returned, the sender gets a DSN.
    let state_of = |rcpt: &str| {
        db.recipients(&id)
            .into_iter()
            .find(|(r, _)| r == rcpt)
            .map(|(_, s)| s)
            .unwrap_or_default()
    };
    eventually(WAIT, "the bounce to return the recipient", || {
        state_of(NOBODY) == "returned"
    });
    // GONE's notice was refused at RCPT: Sealgate returns GONE itself, and sends no DSN to a
    // return path of its own.
    eventually(WAIT, "the refused notice to return its recipient", || {
        state_of(GONE) == "returned"
    });
    assert_eq!(state_of(RCPT), "delivered");
    let gone = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "returned" && e.recipient.as_deref() == Some(GONE))
        .expect("GONE returned");
    assert!(
        gone.data.contains("5.1.1") && gone.data.contains("\"client_ip\":\"local\""),
        "{}",
        gone.data
    );
    let returned = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "returned" && e.recipient.as_deref() == Some(NOBODY))
        .expect("a returned record");
    assert_eq!(returned.message_id.as_deref(), Some(id.as_str()));
    assert_eq!(returned.recipient.as_deref(), Some(NOBODY));
    let data: Value = serde_json::from_str(&returned.data).expect("json");
    assert_eq!(data["status"], "5.1.1", "{data}");
    assert!(
        data["reported_by"]
            .as_str()
            .unwrap_or_default()
            .contains("mx.example.test"),
        "{data}"
    );
    eventually(WAIT, "the two DSNs at the sender's MX", || {
        clinic
            .received()
            .iter()
            .filter(|m| m.rcpts.iter().any(|r| r == SENDER) && m.mail_from.is_empty())
            .count()
            == 2
    });
    let dsn = clinic
        .received()
        .into_iter()
        .find(|m| {
            m.mail_from.is_empty()
                && String::from_utf8_lossy(&m.data).contains(&format!("rfc822; {NOBODY}"))
        })
        .expect("dsn");
    let text = String::from_utf8_lossy(&dsn.data).into_owned();
    assert!(text.contains("report-type=delivery-status"), "{text}");
    assert!(text.contains(NOBODY) && text.contains("5.1.1"), "{text}");
    let about: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Final-Recipient:"))
        .collect();
    assert_eq!(
        about.len(),
        1,
        "the DSN is about the returned recipient only:\n{text}"
    );
    assert!(about[0].contains(NOBODY), "{text}");
    eventually(WAIT, "the recipient.returned webhooks", || {
        rx.accepted()
            .iter()
            .filter(|e| e["body"]["type"] == "recipient.returned")
            .count()
            == 2
    });
    let hook = rx
        .accepted()
        .into_iter()
        .find(|e| {
            e["body"]["type"] == "recipient.returned" && e["body"]["data"]["recipient"] == NOBODY
        })
        .expect("webhook");
    assert_eq!(hook["body"]["data"]["recipient"], NOBODY, "{hook}");
    assert_eq!(hook["body"]["data"]["message_id"], id.as_str(), "{hook}");
    assert_eq!(hook["body"]["data"]["status"], "5.1.1", "{hook}");

    // The same bounce again (a replay), to NOBODY's return path: nothing changes, on record.
    let nobody_path = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "portal_notice" && e.recipient.as_deref() == Some(NOBODY))
        .and_then(|e| serde_json::from_str::<Value>(&e.data).ok())
        .and_then(|d| d["notice_id"].as_str().map(str::to_owned))
        .map(|notice_id| db.message(&notice_id).sender)
        .expect("the notice's return path");
    assert!(
        nobody_path.starts_with("rtn-") && nobody_path.ends_with(BOUNCES),
        "{nobody_path}"
    );
    let report = dir.path().join("report.eml");
    std::fs::write(&report, dsn_for(NOBODY, "failed", "5.1.1")).expect("write report");
    let report = report.display().to_string();
    let again = py_send(
        smtp,
        &["--from", "", "--to", &nobody_path, "--body-file", &report],
    );
    again.assert_all_queued();
    // A forged token: refused at RCPT, on record.
    let forged = nobody_path.replacen("rtn-", "rtn-9", 1);
    let refused = py_send(
        smtp,
        &["--from", "", "--to", &forged, "--body-file", &report],
    );
    assert!(!refused.output.status.success(), "{}", refused.describe());
    assert!(refused.describe().contains("550"), "{}", refused.describe());
    // A delay report for Jane: she stays delivered.
    let jane_path = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "portal_notice" && e.recipient.as_deref() == Some(RCPT))
        .and_then(|e| serde_json::from_str::<Value>(&e.data).ok())
        .and_then(|d| d["notice_id"].as_str().map(str::to_owned))
        .map(|notice_id| db.message(&notice_id).sender)
        .expect("the notice's return path");
    let delay = dir.path().join("delay.eml");
    std::fs::write(&delay, dsn_for(RCPT, "delayed", "4.4.1")).expect("write delay");
    py_send(
        smtp,
        &[
            "--from",
            "",
            "--to",
            &jane_path,
            "--body-file",
            &delay.display().to_string(),
        ],
    )
    .assert_all_queued();
    eventually(WAIT, "three ignored bounces on record", || {
        db.audit()
            .iter()
            .filter(|e| e.kind == "bounce_ignored")
            .count()
            == 3
    });
    let reasons: Vec<String> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "bounce_ignored")
        .map(|e| e.data)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("returned, not delivered")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("does not check")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("delayed")), "{reasons:?}");
    assert_eq!(state_of(RCPT), "delivered");
    assert_eq!(
        db.audit().iter().filter(|e| e.kind == "returned").count(),
        2
    );
    assert_eq!(
        db.recipients_in(Some(RecipientState::Returned)).len(),
        2,
        "only NOBODY and GONE are returned"
    );
    // Nothing sent to the return-path domain was ever queued for delivery.
    // (Notices are sent from return paths; none is ever a recipient.)
    let queued_to_ours = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "received")
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .flat_map(|d| d["recipients"].as_array().cloned().unwrap_or_default())
        .filter(|r| r.as_str().unwrap_or_default().ends_with(BOUNCES))
        .count();
    assert_eq!(
        queued_to_ours, 0,
        "a message was queued to a return path of ours (a bounce relayed, or a DSN to ourselves)"
    );
}

/// An RFC 3464 report about `rcpt`.
fn dsn_for(rcpt: &str, action: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test\r\nTo: bounces\r\nSubject: Delivery Status Notification\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n\
         --R\r\nContent-Type: text/plain\r\n\r\nReport.\r\n\
         --R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n--R--\r\n"
    )
}
