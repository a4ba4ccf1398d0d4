//! Unknown, expired and revoked links, and the headers on every response.

use axum::http::StatusCode;
use sealgate_audit::AuditEvent;
use sealgate_types::time;

use crate::fixture::{Fixture, MESSAGE};

const DAY: i64 = 86_400_000_000;

#[tokio::test]
async fn unknown_expired_and_revoked_links_all_get_the_same_invalid_page() {
    let f = Fixture::new().await;
    let expired = &f.deposit(MESSAGE, &["old@patient.test"], -1).await[0];
    let revoked = &f.deposit(MESSAGE, &["gone@patient.test"], DAY).await[0];
    let audit = AuditEvent::PortalRevoked {
        grant_id: revoked.grant_id.clone(),
        operator: "test".into(),
        expires: time::now_micros() + DAY,
    }
    .into_record();
    assert!(
        f.store
            .portal_revoke(&revoked.grant_id, time::now_micros(), &audit)
            .await
            .expect("revoke")
    );
    let unknown = format!("/p/{}", "A".repeat(43));
    let paths = [
        unknown.clone(),
        "/p/short".to_owned(),
        expired.path(""),
        revoked.path(""),
        expired.path("/thread"),
        revoked.path("/att/0/0"),
    ];
    let mut bodies = Vec::new();
    for path in &paths {
        let res = f.get(path, &[]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(res.text().contains("invalid or has expired"), "{path}");
        assert!(
            res.set_cookie("sg_csrf").is_none(),
            "no cookie for a dead link"
        );
        bodies.push(res.text());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "no hint which case it is"
    );
    let post = f.post(&expired.path("/code"), &[], &[]).await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_live_link_shows_the_verify_page_with_a_strict_csrf_cookie() {
    let f = Fixture::new().await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let res = f.get(&link.path(""), &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    let text = res.text();
    for id in ["id=\"send-code\"", "id=\"code\"", "id=\"verify\""] {
        assert!(text.contains(id), "{id} in {text}");
    }
    assert!(!text.contains("id=\"passphrase\""), "no passphrase was set");
    assert!(
        !text.contains("lab results"),
        "nothing of the message before verification"
    );
    let cookie = res.set_cookie("sg_csrf").expect("csrf cookie");
    let name = sealgate_portal::cookie_name(sealgate_portal::CSRF_COOKIE, &link.token);
    assert!(cookie.starts_with(&format!("{name}=")), "{cookie}");
    assert!(name.starts_with("__Host-"), "{name}");
    for attr in ["; Path=/;", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let f = Fixture::new().await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let session = f.verified(link).await;
    let c = [("sg_portal", session.as_str())];
    let responses = [
        f.get(&link.path(""), &[]).await,
        f.get(&link.path("/thread"), &c).await,
        f.get(&link.path("/att/0/0"), &c).await,
        f.get("/p/x/nowhere/at/all", &[]).await,
        f.get("/portal.css", &[]).await,
        f.post(&link.path("/reply"), &c, &[]).await,
        f.get(&link.path("/reply"), &c).await,
        f.get("/favicon.ico", &[]).await,
    ];
    for res in &responses {
        assert_eq!(res.header("cache-control"), "no-store", "{:?}", res.status);
        assert_eq!(res.header("x-content-type-options"), "nosniff");
        assert_eq!(res.header("referrer-policy"), "same-origin");
        let csp = res.header("content-security-policy");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("script-src"),
            "no script source at all: {csp}"
        );
    }
    assert_eq!(
        responses[1].header("content-security-policy"),
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(responses[1].header("x-frame-options"), "DENY");
    assert_eq!(responses[6].status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(responses[7].status, StatusCode::NO_CONTENT);
}
