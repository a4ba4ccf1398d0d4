//! Replies: CSRF bound to the session, queued to the sender, kept in the thread.

use axum::http::StatusCode;

use crate::fixture::{Fixture, Link, MESSAGE, SENDER};

const DAY: i64 = 86_400_000_000;

async fn session(f: &Fixture) -> (Link, String, String) {
    let link = f
        .deposit(MESSAGE, &["bob@patient.test"], DAY)
        .await
        .remove(0);
    let session = f.verified(&link).await;
    let csrf = f
        .get(&link.path("/thread"), &[("sg_portal", &session)])
        .await
        .csrf_field();
    (link, session, csrf)
}

#[tokio::test]
async fn a_reply_without_or_with_a_wrong_csrf_token_is_refused() {
    let f = Fixture::new().await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let pre_session = f
        .get(&link.path(""), &[])
        .await
        .cookie("sg_csrf")
        .expect("cookie");
    for form in [
        vec![("body", "no token")],
        vec![("csrf", ""), ("body", "empty token")],
        vec![
            ("csrf", pre_session.as_str()),
            ("body", "pre-session token"),
        ],
        vec![("csrf", &csrf[..42]), ("body", "truncated token")],
    ] {
        let res = f.post(&link.path("/reply"), &c, &form).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{form:?}");
    }
    let no_session = f
        .post(&link.path("/reply"), &[], &[("csrf", &csrf), ("body", "x")])
        .await;
    assert_eq!(no_session.status, StatusCode::FORBIDDEN);
    assert!(f.audit("portal_reply").await.is_empty());
}

#[tokio::test]
async fn a_reply_is_queued_to_the_sender_and_joins_the_thread() {
    let f = Fixture::new().await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let res = f
        .post(
            &link.path("/reply"),
            &c,
            &[("csrf", &csrf), ("body", "Thank you, doctor.\nBob")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    assert_eq!(res.header("location"), link.path("/thread?sent=1"));
    let replies = f.audit("portal_reply").await;
    assert_eq!(replies.len(), 1);
    let (row, text) = f.queued(replies[0]["reply_id"].as_str().expect("id")).await;
    assert_eq!(row.origin.as_deref(), Some("portal-reply"));
    assert_eq!(row.sender, "bob@patient.test");
    assert_eq!(
        f.store.recipients_of(&row.id).await.expect("rcpts")[0].rcpt,
        SENDER
    );
    for line in [
        "From: bob@patient.test\r\n",
        "To: ada@clinic.test\r\n",
        "Subject: Re: Your lab results\r\n",
        "In-Reply-To: <orig-1@clinic.test>\r\n",
        "\r\nThank you, doctor.\r\nBob\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in {text}");
    }
    let thread = f.get(&link.path("/thread?sent=1"), &c).await.text();
    assert!(thread.contains("Thank you, doctor."), "{thread}");
    assert!(thread.contains("reply was sent"), "{thread}");
}

#[tokio::test]
async fn empty_and_oversized_replies_are_refused_without_queueing() {
    let f = Fixture::new().await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let empty = f
        .post(
            &link.path("/reply"),
            &c,
            &[("csrf", &csrf), ("body", "  \n ")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let big = "x".repeat(100_001);
    let huge = f
        .post(&link.path("/reply"), &c, &[("csrf", &csrf), ("body", &big)])
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(f.audit("portal_reply").await.is_empty());
}
