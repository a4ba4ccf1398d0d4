//! Codes, passphrases, attempt limits and lockout, and the pre-session CSRF check.

use axum::http::StatusCode;

use crate::fixture::{Fixture, Link, MESSAGE, settings};

const DAY: i64 = 86_400_000_000;

/// Cookies or form fields.
type Pairs<'a> = &'a [(&'a str, &'a str)];

async fn one(f: &Fixture) -> Link {
    f.deposit(MESSAGE, &["bob@patient.test"], DAY)
        .await
        .remove(0)
}

#[tokio::test]
async fn the_code_flow_queues_a_phi_free_code_email_and_opens_a_scoped_session() {
    let f = Fixture::new().await;
    let link = one(&f).await;
    let csrf = f.ask_code(&link).await;
    let sent = f.audit("portal_code_sent").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["grant_id"], link.grant_id.as_str());
    let (row, text) = f.queued(sent[0]["notice_id"].as_str().expect("id")).await;
    assert_eq!(row.origin.as_deref(), Some("portal-notice"));
    assert_eq!(row.sender, "portal@relay.test");
    assert!(text.contains("To: bob@patient.test\r\n"), "{text}");
    assert!(
        !text.contains("lab results"),
        "no PHI in the code email: {text}"
    );
    let code = f.last_code().await;
    assert_eq!(code.len(), 8);
    assert!(
        !serde_json::to_string(&sent).expect("json").contains(&code),
        "no code in the audit"
    );
    let res = f
        .post(
            &link.path("/verify"),
            &[("sg_csrf", &csrf)],
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.header("location"), link.path("/thread"));
    let cookie = res.set_cookie("sg_portal").expect("session");
    let name = sealgate_portal::cookie_name(sealgate_portal::SESSION_COOKIE, &link.token);
    assert!(
        cookie.starts_with(&format!("{name}=")) && name.starts_with("__Host-sg_portal-"),
        "{cookie}"
    );
    for attr in ["; Path=/;", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(
        !cookie.contains("Domain"),
        "__Host- cookies have none: {cookie}"
    );
    let verified = f.audit("portal_verified").await;
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["how"], "code");
    // A used code is spent.
    let again = f
        .post(
            &link.path("/verify"),
            &[("sg_csrf", &csrf)],
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    // With the session, the link goes straight to the thread.
    let value = res.cookie("sg_portal").expect("value");
    let home = f.get(&link.path(""), &[("sg_portal", &value)]).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_codes_lock_the_link_after_the_limit_and_then_even_the_right_code_fails() {
    let f = Fixture::new().await;
    let link = one(&f).await;
    let csrf = f.ask_code(&link).await;
    let code = f.last_code().await;
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let c = [("sg_csrf", csrf.as_str())];
    for attempt in 1..=3 {
        let res = f
            .post(
                &link.path("/verify"),
                &c,
                &[("csrf", &csrf), ("code", wrong)],
            )
            .await;
        let expected = if attempt < 3 {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(res.status, expected, "attempt {attempt}: {}", res.text());
    }
    let grant = f
        .store
        .portal_grant(&link.grant_id)
        .await
        .expect("read")
        .expect("grant");
    assert!(
        grant
            .locked_until
            .is_some_and(|t| t > sealgate_types::time::now_micros())
    );
    let right = f
        .post(
            &link.path("/verify"),
            &c,
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(right.set_cookie("sg_portal").is_none());
    let more = f.post(&link.path("/code"), &c, &[("csrf", &csrf)]).await;
    assert_eq!(
        more.status,
        StatusCode::TOO_MANY_REQUESTS,
        "no codes while locked"
    );
    let failed = f.audit("portal_code_failed").await;
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[2]["locked"], true);
    assert!(f.audit("portal_verified").await.is_empty());
    let page = f.get(&link.path(""), &[]).await;
    assert!(page.text().contains("locked"), "the page says so");
}

#[tokio::test]
async fn a_code_stops_working_when_it_expires() {
    let mut s = settings();
    s.code_ttl = std::time::Duration::ZERO;
    let f = Fixture::with(s).await;
    let link = one(&f).await;
    let csrf = f.ask_code(&link).await;
    let code = f.last_code().await;
    let c = [("sg_csrf", csrf.as_str())];
    let late = f
        .post(
            &link.path("/verify"),
            &c,
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "expired code");
}

#[tokio::test]
async fn a_code_works_only_for_the_grant_it_was_sent_for() {
    let f = Fixture::new().await;
    let links = f
        .deposit(MESSAGE, &["bob@patient.test", "eve@patient.test"], DAY)
        .await;
    let csrf0 = f.ask_code(&links[0]).await;
    let code0 = f.last_code().await;
    let csrf1 = f.ask_code(&links[1]).await;
    let code1 = f.last_code().await;
    assert_ne!(code0, code1);
    let c1 = [("sg_csrf", csrf1.as_str())];
    let other = f
        .post(
            &links[1].path("/verify"),
            &c1,
            &[("csrf", &csrf1), ("code", &code0)],
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "another grant's code");
    let c0 = [("sg_csrf", csrf0.as_str())];
    let own = f
        .post(
            &links[0].path("/verify"),
            &c0,
            &[("csrf", &csrf0), ("code", &code0)],
        )
        .await;
    assert_eq!(own.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn code_and_verify_posts_without_the_double_submit_token_are_refused() {
    let f = Fixture::new().await;
    let link = one(&f).await;
    let csrf = f
        .get(&link.path(""), &[])
        .await
        .cookie("sg_csrf")
        .expect("cookie");
    let other = sealgate_portal::secret::new_token().expect("token");
    let cases: [(Pairs, Pairs); 4] = [
        (&[], &[("csrf", &csrf)]),                       // no cookie
        (&[("sg_csrf", &csrf)], &[]),                    // no field
        (&[("sg_csrf", &csrf)], &[("csrf", &other)]),    // wrong field
        (&[("sg_csrf", "short")], &[("csrf", "short")]), // not a token
    ];
    for (cookies, form) in cases {
        for path in ["/code", "/verify"] {
            let res = f.post(&link.path(path), cookies, form).await;
            assert_eq!(
                res.status,
                StatusCode::FORBIDDEN,
                "{path} {cookies:?} {form:?}"
            );
        }
    }
    assert!(f.audit("portal_code_sent").await.is_empty());
    assert!(
        f.audit("portal_code_failed").await.is_empty(),
        "refused posts are no attempts"
    );
}

#[tokio::test]
async fn a_passphrase_set_by_the_sender_opens_the_message_and_wrong_ones_count() {
    let f = Fixture::new().await;
    let link = f
        .deposit_with(
            MESSAGE,
            &["bob@patient.test"],
            DAY,
            Some("blue horse staple"),
        )
        .await
        .remove(0);
    let page = f.get(&link.path(""), &[]).await;
    assert!(page.text().contains("id=\"passphrase\""));
    let csrf = page.cookie("sg_csrf").expect("cookie");
    let c = [("sg_csrf", csrf.as_str())];
    let wrong = f
        .post(
            &link.path("/verify"),
            &c,
            &[("csrf", &csrf), ("passphrase", "red horse")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let right = f
        .post(
            &link.path("/verify"),
            &c,
            &[("csrf", &csrf), ("passphrase", "blue horse staple")],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(f.audit("portal_code_failed").await.len(), 1);
    assert_eq!(f.audit("portal_verified").await[0]["how"], "passphrase");
}

#[tokio::test]
async fn codes_cannot_be_asked_for_again_and_again() {
    let mut s = settings();
    s.code_resend_interval = std::time::Duration::from_secs(60);
    let f = Fixture::with(s).await;
    let link = one(&f).await;
    let csrf = f.ask_code(&link).await;
    let again = f
        .post(
            &link.path("/code"),
            &[("sg_csrf", &csrf)],
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(f.audit("portal_code_sent").await.len(), 1, "one email only");
}

#[tokio::test]
async fn an_empty_form_is_not_counted_as_an_attempt() {
    let f = Fixture::new().await;
    let link = one(&f).await;
    let csrf = f
        .get(&link.path(""), &[])
        .await
        .cookie("sg_csrf")
        .expect("cookie");
    let res = f
        .post(
            &link.path("/verify"),
            &[("sg_csrf", &csrf)],
            &[("csrf", &csrf), ("code", " ")],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(f.audit("portal_code_failed").await.is_empty());
}
