//! Session dialogs for the message and envelope edges of issue #20: NUL in DATA,
//! `<Postmaster>`, quoted local parts with quoted-pairs, duplicate MAIL parameters.

use sealgate_smtp_proto::Reply;

use super::tests::{LOCAL, OUTSIDE, POSTMASTER, World, codes, dialog, messages, world};
use crate::SessionLimits;

/// The queue id in the `n`th "queued as" reply of `t`.
fn queued(t: &str, n: usize) -> String {
    t.split("queued as ")
        .nth(n + 1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no queue id #{n} in {t}"))
        .to_owned()
}

async fn recipients(w: &World, id: &str) -> Vec<String> {
    let rows = w.store.recipients_of(id).await.expect("recipients");
    rows.into_iter().map(|r| r.rcpt).collect()
}

#[tokio::test]
async fn a_nul_before_a_dot_line_refuses_the_message_and_the_session_stays_in_step() {
    let w = world(SessionLimits::default()).await;
    // A next hop that drops NULs would see CRLF "." CRLF and then a second message.
    let t = dialog(
        &w,
        LOCAL,
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n\
Subject: one\r\n\r\nfirst\r\n\x00.\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n\
Subject: smuggled\r\n\r\nsecond\r\n.\r\n\
MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: fine\r\n\r\nok\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        [220, 250, 250, 250, 354, 550, 250, 250, 354, 250, 221],
        "{t}"
    );
    let refusal = Reply::new(
        550,
        Some((5, 6, 0)),
        "Message refused: NUL character in DATA (RFC 5322 2.3)",
    );
    assert!(t.contains(&refusal.to_string()), "{t}");
    assert_eq!(messages(&w).await, 1, "only the good message is queued");
    assert_eq!(recipients(&w, &queued(&t, 0)).await, ["b@y.test"]);
}

#[tokio::test]
async fn postmaster_goes_to_the_operator_address_from_any_client_and_opens_no_relay() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(
        &w,
        OUTSIDE,
        b"EHLO x\r\nMAIL FROM:<someone@x.test>\r\nRCPT TO:<Postmaster>\r\n\
RCPT TO:<postmaster@RELAY.test>\r\nRCPT TO:<victim@y.test>\r\nRCPT TO:<postmaster@y.test>\r\n\
RCPT TO:<\"postmaster\"@relay.test>\r\nDATA\r\nSubject: your relay\r\n\r\nhello\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        [220, 250, 250, 250, 250, 554, 554, 554, 354, 250, 221],
        "{t}"
    );
    assert_eq!(recipients(&w, &queued(&t, 0)).await, [POSTMASTER]);
}

#[tokio::test]
async fn postmaster_is_case_insensitive_and_counted_once() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(
        &w,
        LOCAL,
        b"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<POSTMASTER>\r\n\
RCPT TO:<postmaster>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        [220, 250, 250, 250, 250, 250, 354, 250, 221],
        "{t}"
    );
    assert_eq!(
        recipients(&w, &queued(&t, 0)).await,
        [POSTMASTER, "b@y.test"]
    );
}

#[tokio::test]
async fn a_quoted_local_part_with_an_escaped_quote_is_queued_in_canonical_form() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(
        &w,
        LOCAL,
        b"EHLO x\r\nMAIL FROM:<\"q\\\"s\"@x.test>\r\n\
RCPT TO:<\"a\\\"b\"@Y.test>\r\nRCPT TO:<\"a@b\"@y.test>\r\nRCPT TO:<\"a\\%b\"@y.test>\r\n\
DATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        [220, 250, 250, 250, 553, 553, 354, 250, 221],
        "{t}"
    );
    let id = queued(&t, 0);
    assert_eq!(recipients(&w, &id).await, ["\"a\\\"b\"@y.test"]);
    let row = w.store.message(&id).await.expect("query").expect("row");
    assert_eq!(row.sender, "\"q\\\"s\"@x.test");
}

#[tokio::test]
async fn a_mail_parameter_given_twice_gets_501() {
    let w = world(SessionLimits::default()).await;
    let t = dialog(
        &w,
        LOCAL,
        b"EHLO x\r\nMAIL FROM:<a@x.test> BODY=8BITMIME BODY=7BIT\r\n\
MAIL FROM:<a@x.test> body=8BITMIME BODY=8BITMIME\r\nMAIL FROM:<a@x.test> BODY=8BITMIME\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(codes(&t), [220, 250, 501, 501, 250, 221], "{t}");
    assert!(t.contains("501 5.5.4 Duplicate MAIL/RCPT parameter"), "{t}");
}
