//! The guard of state-changing requests: the origin check (even with a valid CSRF token),
//! per-client throttling of refusals with its audit, and sign-out.

use axum::http::StatusCode;

use crate::fixture::{CLIENT, Fixture, Link, MESSAGE, ORIGIN, SAME_ORIGIN, settings};

const DAY: i64 = 86_400_000_000;

/// A verified link: the link, the session cookie's value and the session's CSRF token.
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

/// Headers of a post from somewhere else, and the reason the audit must give.
const FOREIGN: [(&[(&str, &str)], &str); 6] = [
    (
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.test"),
        ],
        "cross-site",
    ),
    (&[("origin", "https://evil.test")], "foreign-origin"),
    (&[("origin", "http://portal.test")], "foreign-origin"),
    (&[("origin", "null")], "null-origin"),
    (
        &[("sec-fetch-site", "same-site"), ("origin", ORIGIN)],
        "cross-site",
    ),
    (&[], "no-origin"),
];

#[tokio::test]
async fn a_reply_from_another_origin_is_refused_even_with_a_valid_csrf_token() {
    let f = Fixture::new().await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let form = [("csrf", csrf.as_str()), ("body", "forged but well-formed")];
    for (headers, _) in FOREIGN {
        let res = f
            .post_with(&link.path("/reply"), &c, &form, headers, CLIENT)
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(
            res.text().contains("refused"),
            "a clear page: {}",
            res.text()
        );
    }
    assert!(f.audit("portal_reply").await.is_empty(), "nothing was sent");
    let refused = f.audit("portal_refused").await;
    let reasons: Vec<&str> = refused
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    let expected: Vec<&str> = FOREIGN.iter().map(|(_, why)| *why).collect();
    assert_eq!(reasons, expected);
    assert!(refused.iter().all(|r| r["action"] == "reply"));
    assert!(refused.iter().all(|r| r["client_ip"] == "192.0.2.10"));
    assert_eq!(refused[1]["origin"], "https://evil.test");
    let all = serde_json::to_string(&refused).expect("json");
    assert!(
        !all.contains(&csrf) && !all.contains(&link.token),
        "no secrets: {all}"
    );
    // The very same post from the portal's own page goes through.
    let ok = f.post(&link.path("/reply"), &c, &form).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert_eq!(f.audit("portal_reply").await.len(), 1);
}

#[tokio::test]
async fn code_and_verify_posts_from_another_origin_are_refused_with_a_valid_double_submit() {
    let f = Fixture::new().await;
    let link = f
        .deposit(MESSAGE, &["bob@patient.test"], DAY)
        .await
        .remove(0);
    let csrf = f.ask_code(&link).await;
    let code = f.last_code().await;
    let c = [("sg_csrf", csrf.as_str())];
    for (headers, _) in &FOREIGN[..4] {
        let sent = f
            .post_with(&link.path("/code"), &c, &[("csrf", &csrf)], headers, CLIENT)
            .await;
        assert_eq!(sent.status, StatusCode::FORBIDDEN, "{headers:?}");
        let verify = [("csrf", csrf.as_str()), ("code", code.as_str())];
        let res = f
            .post_with(&link.path("/verify"), &c, &verify, headers, CLIENT)
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(
            res.set_cookie("sg_portal").is_none(),
            "no session: {headers:?}"
        );
    }
    assert_eq!(
        f.audit("portal_code_sent").await.len(),
        1,
        "only ask_code's"
    );
    assert!(f.audit("portal_verified").await.is_empty());
    assert!(
        f.audit("portal_code_failed").await.is_empty(),
        "refused posts are no attempts"
    );
    let refused = f.audit("portal_refused").await;
    assert_eq!(refused.len(), 8);
    let res = f
        .post(
            &link.path("/verify"),
            &c,
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::SEE_OTHER,
        "the same post, same-origin"
    );
}

#[tokio::test]
async fn an_older_browser_without_origin_passes_on_a_same_origin_referer_only() {
    let f = Fixture::new().await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let form = [("csrf", csrf.as_str()), ("body", "from an old browser")];
    let elsewhere = [("referer", "https://evil.test/p/x")];
    let res = f
        .post_with(&link.path("/reply"), &c, &form, &elsewhere, CLIENT)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let thread = format!("{ORIGIN}{}", link.path("/thread"));
    let own = [("referer", thread.as_str())];
    let res = f
        .post_with(&link.path("/reply"), &c, &form, &own, CLIENT)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
}

#[tokio::test]
async fn invalid_tokens_are_throttled_per_client_with_429_and_audited() {
    let mut s = settings();
    s.refusal_limit = 4;
    let f = Fixture::with(s).await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let wrong = sealgate_portal::secret::new_token().expect("token");
    let attacker = "198.51.100.7:5000";
    for n in 1..=4 {
        let res = f
            .post_with(
                &link.path("/reply"),
                &c,
                &[("csrf", &wrong), ("body", "guess")],
                SAME_ORIGIN,
                attacker,
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "refusal {n}");
    }
    // Over the limit: 429 for anything this client posts, even with the right token.
    let right = [("csrf", csrf.as_str()), ("body", "right token, too late")];
    let res = f
        .post_with(&link.path("/reply"), &c, &right, SAME_ORIGIN, attacker)
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    let retry: u64 = res
        .header("retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Another client is not held back.
    let ok = f.post(&link.path("/reply"), &c, &right).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    let refused = f.audit("portal_refused").await;
    assert_eq!(refused.len(), 4, "the 429 is not another row");
    for r in &refused {
        assert_eq!(r["client_ip"], "198.51.100.7", "{r}");
        assert_eq!(r["reason"], "csrf", "{r}");
        assert_eq!(r["grant_id"], link.grant_id.as_str(), "{r}");
    }
    let throttled = f.audit("portal_throttled").await;
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    assert_eq!(throttled[0]["client_ip"], "198.51.100.7");
    assert_eq!(throttled[0]["refusals"], 4);
    assert_eq!(throttled[0]["window_secs"], 60);
    let all = serde_json::to_string(&refused).expect("json");
    assert!(
        !all.contains(&wrong) && !all.contains(&link.token),
        "no secrets"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_for() {
    let mut s = settings();
    s.refusal_limit = 2;
    s.trusted_proxies = vec!["10.0.0.2".parse().expect("ip")];
    let f = Fixture::with(s).await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let via = |who: &'static str| {
        [
            ("sec-fetch-site", "same-origin"),
            ("origin", ORIGIN),
            ("x-forwarded-for", who),
        ]
    };
    for _ in 0..3 {
        f.post_with(
            &link.path("/reply"),
            &c,
            &[("csrf", "wrong"), ("body", "x")],
            &via("203.0.113.5"),
            "10.0.0.2:443",
        )
        .await;
    }
    let right = [("csrf", csrf.as_str()), ("body", "through the proxy")];
    let other = f
        .post_with(
            &link.path("/reply"),
            &c,
            &right,
            &via("203.0.113.6"),
            "10.0.0.2:443",
        )
        .await;
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.text());
    let same = f
        .post_with(
            &link.path("/reply"),
            &c,
            &right,
            &via("203.0.113.5"),
            "10.0.0.2:443",
        )
        .await;
    assert_eq!(same.status, StatusCode::TOO_MANY_REQUESTS);
    let refused = f.audit("portal_refused").await;
    assert!(
        refused.iter().all(|r| r["client_ip"] == "203.0.113.5"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session_so_the_old_cookie_opens_nothing() {
    let f = Fixture::new().await;
    let (link, session, csrf) = session(&f).await;
    let c = [("sg_portal", session.as_str())];
    let thread = f.get(&link.path("/thread"), &c).await.text();
    assert!(
        thread.contains(&format!("action=\"/p/{}/signout\"", link.token))
            && thread.contains("id=\"signout\""),
        "a sign-out button: {thread}"
    );
    // A forged sign-out (wrong token, or from elsewhere) ends nothing.
    let forged = f
        .post(&link.path("/signout"), &c, &[("csrf", "AAAA")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let elsewhere = [("origin", "https://evil.test")];
    let res = f
        .post_with(
            &link.path("/signout"),
            &c,
            &[("csrf", &csrf)],
            &elsewhere,
            CLIENT,
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.get(&link.path("/thread"), &c).await.status,
        StatusCode::OK
    );

    let out = f.post(&link.path("/signout"), &c, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text());
    assert_eq!(
        out.header("location"),
        format!("{}?signed_out=1", link.path(""))
    );
    let cleared = out.set_cookie("sg_portal").expect("the cookie is cleared");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Path=/;"),
        "{cleared}"
    );
    let signed_out = f.audit("portal_signed_out").await;
    assert_eq!(signed_out.len(), 1);
    assert_eq!(signed_out[0]["grant_id"], link.grant_id.as_str());

    // The old cookie, kept by someone: no thread, no reply, the verify page again.
    let again = f.get(&link.path("/thread"), &c).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.header("location"), link.path(""));
    let reply = f
        .post(
            &link.path("/reply"),
            &c,
            &[("csrf", &csrf), ("body", "after sign-out")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(f.audit("portal_reply").await.is_empty());
    let home = f.get(&format!("{}?signed_out=1", link.path("")), &c).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.text().contains("You have signed out."),
        "{}",
        home.text()
    );
}
