//! Return paths: only ours check, under any key of the ring; bounces: RFC 3464 reports as
//! Postfix and Exchange write them, common non-standard ones, and what is not a failure.

use std::sync::Arc;

use sealgate_crypto::KeyRing;

use super::*;

fn ring(dir: &tempfile::TempDir, name: &str) -> Arc<KeyRing> {
    let (keys, _) = KeyRing::load_or_create(&dir.path().join(name)).expect("keys");
    Arc::new(keys)
}

#[test]
fn a_return_path_names_its_recipient_and_only_ours_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = ReturnPaths::new("Bounces.Relay.Test.", ring(&dir, "a.key"));
    let a = paths.address(42);
    assert!(
        a.starts_with("rtn-42-") && a.ends_with("@bounces.relay.test"),
        "{a}"
    );
    assert_eq!(paths.recipient_of(&a), Ok(42));
    // Case folded by a remote MTA still checks.
    assert_eq!(paths.recipient_of(&a.to_ascii_uppercase()), Ok(42));
    assert!(paths.is_ours(&a) && !paths.is_ours("rtn-42-00@elsewhere.test"));
    // Another recipient's number with this tag, a changed tag, another ring's tag: refused.
    let (_, tag) = a
        .trim_start_matches("rtn-42-")
        .split_once('@')
        .map_or(("", ""), |(t, d)| (d, t));
    let moved = format!("rtn-43-{tag}@bounces.relay.test");
    assert!(paths.recipient_of(&moved).is_err());
    let flipped = a.replacen(&tag[..1], if &tag[..1] == "0" { "1" } else { "0" }, 1);
    assert!(paths.recipient_of(&flipped).is_err(), "{flipped}");
    let other = ReturnPaths::new("bounces.relay.test", ring(&dir, "b.key"));
    assert!(other.recipient_of(&a).is_err());
    for bad in [
        "",
        "x@bounces.relay.test",
        "rtn-@bounces.relay.test",
        "rtn-0-00@b.test",
        "rtn-5-zz@b.test",
        "rtn-5-0@b.test",
    ] {
        assert!(paths.recipient_of(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_return_path_made_before_a_key_rotation_still_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seal.key");
    let (old, _) = KeyRing::load_or_create(&path).expect("keys");
    let before = ReturnPaths::new("b.test", Arc::new(old)).address(7);
    // Rotate: a new active key in front of the old one.
    let old_text = std::fs::read_to_string(&path).expect("read");
    let fresh = dir.path().join("fresh.key");
    let (_, _) = KeyRing::load_or_create(&fresh).expect("keys");
    let new_line = std::fs::read_to_string(&fresh)
        .expect("read")
        .lines()
        .find(|l| l.starts_with("sealgate-seal-v1"))
        .expect("key line")
        .replacen("sealgate-seal-v1 ", "sealgate-seal-v1 rotated-", 1);
    std::fs::write(&path, format!("{new_line}\n{old_text}")).expect("write");
    let rotated = ReturnPaths::new("b.test", Arc::new(KeyRing::load(&path).expect("load")));
    assert_ne!(rotated.address(7), before);
    assert_eq!(rotated.recipient_of(&before), Ok(7));
}

const POSTFIX_DSN: &str = "From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: rtn-1-00@bounces.relay.test\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\
\tboundary=\"B1\"\r\n\
\r\n\
--B1\r\n\
Content-Description: Notification\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
I'm sorry to have to inform you that your message could not\r\n\
be delivered to one or more recipients.\r\n\
\r\n\
<nobody@example.test>: User unknown\r\n\
\r\n\
--B1\r\n\
Content-Description: Delivery report\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.test\r\n\
X-Postfix-Queue-ID: 4ABC\r\n\
Arrival-Date: Tue,  8 Dec 2026 01:00:00 +0000 (UTC)\r\n\
\r\n\
Final-Recipient: rfc822; nobody@example.test\r\n\
Original-Recipient: rfc822;nobody@example.test\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: X-Postfix; User unknown\r\n\
\r\n\
--B1\r\n\
Content-Description: Undelivered Message Headers\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Subject: private\r\n\
\r\n\
--B1--\r\n";

#[test]
fn an_rfc3464_report_is_read_for_its_recipient() {
    let b = read_bounce(POSTFIX_DSN.as_bytes(), "nobody@example.test");
    assert_eq!(
        b,
        Bounce::Failed {
            status: "5.1.1".into(),
            diagnostic: "X-Postfix; User unknown".into(),
            reported_by: Some("dns; mx.example.test".into()),
        }
    );
    assert_eq!(b.reply_code(), None);
    // An Exchange-style report with an SMTP diagnostic and two recipients: ours is chosen.
    let exchange = POSTFIX_DSN
        .replace(
            "Final-Recipient: rfc822; nobody@example.test\r\nOriginal-Recipient: rfc822;nobody@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: X-Postfix; User unknown\r\n",
            "Final-Recipient: rfc822;other@example.test\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\nFinal-Recipient: rfc822;Jane@Example.test\r\nAction: failed\r\nStatus: 5.1.10\r\nDiagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found\r\n",
        );
    let b = read_bounce(exchange.as_bytes(), "jane@example.test");
    let Bounce::Failed { status, .. } = &b else {
        panic!("{b:?}")
    };
    assert_eq!(status, "5.1.10");
    assert_eq!(b.reply_code(), Some(550));
}

#[test]
fn delays_successes_and_auto_replies_are_not_failures() {
    let delayed = POSTFIX_DSN
        .replace("Action: failed", "Action: delayed")
        .replace("Status: 5.1.1", "Status: 4.4.1");
    assert!(matches!(
        read_bounce(delayed.as_bytes(), "nobody@example.test"),
        Bounce::NotAFailure(why) if why.contains("delayed")
    ));
    let vacation = "From: jane@example.test\r\nTo: rtn-1-00@bounces.relay.test\r\n\
        Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\n\
        I am away until Monday. 550 reasons to rest.\r\n";
    assert!(matches!(
        read_bounce(vacation.as_bytes(), "jane@example.test"),
        Bounce::NotAFailure(_)
    ));
    let chatty =
        "From: jane@example.test\r\nSubject: Re: results\r\n\r\n5.1.1 is my favourite code\r\n";
    assert!(matches!(
        read_bounce(chatty.as_bytes(), "jane@example.test"),
        Bounce::NotAFailure(_)
    ));
}

#[test]
fn common_non_standard_bounces_are_read_from_their_text() {
    // qmail's "failure notice".
    let qmail = "From: MAILER-DAEMON@mx.example.test\r\nSubject: failure notice\r\n\r\n\
        Hi. This is the qmail-send program at mx.example.test.\r\n\
        I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n\
        <jane@example.test>:\r\n550 sorry, no mailbox here by that name. (#5.1.1)\r\n";
    let b = read_bounce(qmail.as_bytes(), "jane@example.test");
    assert!(
        matches!(&b, Bounce::Failed { status, .. } if status == "5.1.1"),
        "{b:?}"
    );
    assert_eq!(b.reply_code(), Some(550));
    // Exim's, with only a reply code.
    let exim = "From: Mail Delivery System <Mailer-Daemon@mx.example.test>\r\n\
        Subject: Mail delivery failed: returning message to sender\r\n\r\n\
        This message was created automatically by mail delivery software.\r\n\r\n\
        A message that you sent could not be delivered to one or more of its recipients.\r\n\
          jane@example.test\r\n    host mx2.example.test [192.0.2.1]\r\n\
        550 Unrouteable address\r\n";
    let b = read_bounce(exim.as_bytes(), "jane@example.test");
    assert!(
        matches!(&b, Bounce::Failed { status, .. } if status == "5.0.0"),
        "{b:?}"
    );
    // A bounce subject with only a temporary failure is not one.
    let temporary = "Subject: Undeliverable: hello\r\n\r\n451 4.4.1 try later\r\n";
    assert!(matches!(
        read_bounce(temporary.as_bytes(), "jane@example.test"),
        Bounce::NotAFailure(_)
    ));
}
