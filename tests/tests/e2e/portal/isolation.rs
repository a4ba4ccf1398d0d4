//! One recipient's session opens nothing of another's (IDOR), indexes beyond the grant's own
//! thread are 404, and a state-changing POST without the session's CSRF token is refused
//! with 403 — while the same POST with the token goes through (so the 403 is the token's).

use sealgate_testkit::db::TestBackend;

use super::*;

fn message_for(to: &str, marker: &str, seed: u8) -> Vec<u8> {
    Message {
        to,
        subject: &format!("For {to}"),
        text: &format!("Only for {to}: {marker}\r\n"),
        html: &format!("<p>{marker}</p>"),
        filename: &format!("{marker}.pdf"),
        attachment: &attachment_bytes(seed),
    }
    .render()
}

/// The name (`__Host-sg_portal-{tag}`) and value of the session cookie the browser holds.
fn session_cookie(b: &mut Browser) -> (String, String) {
    let cookies = b.cookies().expect("cookies");
    let found = cookies
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(SESSION_PREFIX))
        })
        .unwrap_or_else(|| panic!("no session cookie: {cookies:?}"));
    let text = |k: &str| found[k].as_str().unwrap_or_default().to_owned();
    (text("name"), text("value"))
}

/// The tag of the other link whose pre-session CSRF cookie the browser holds (its cookie
/// names end in it): not `own`.
fn other_tag(b: &mut Browser, own: &str) -> String {
    let cookies = b.cookies().expect("cookies");
    cookies
        .iter()
        .filter_map(|c| c["name"].as_str()?.strip_prefix("__Host-sg_csrf-"))
        .find(|tag| *tag != own)
        .unwrap_or_else(|| panic!("no CSRF cookie of another link: {cookies:?}"))
        .to_owned()
}

/// The hidden fields of the form whose action ends in `action`, as (name, value).
fn hidden_fields(b: &mut Browser, action: &str) -> Vec<(String, String)> {
    let expr = format!(
        "Array.from(document.querySelectorAll('form[action$=\"{action}\"] input[type=hidden]'))\
         .map(i => [i.name, i.value])"
    );
    let value = b.eval(&expr).expect("read hidden fields");
    value
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or_default().to_owned(),
                        p[1].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_session_for_one_link_opens_nothing_of_another_recipients_message() {
    let p = PortalLab::start(TestBackend::Sqlite, "");
    p.send(&[RCPT], &message_for(RCPT, "alpha-secret", 1));
    p.send(&[OTHER], &message_for(OTHER, "bravo-secret", 2));
    let link_a = p.link_for(RCPT);
    let link_b = p.link_for(OTHER);
    assert_ne!(link_a, link_b);
    let mut b = browser();
    p.verify(&mut b, &link_a, RCPT);
    assert!(b.text("body").expect("text").contains("alpha-secret"));
    let (name_a, value_a) = session_cookie(&mut b);

    // B's link in A's browser (which sends A's `Path=/` cookie along): B's verify page at
    // most.
    b.goto(&format!("{link_b}/thread"))
        .expect("open B's thread");
    let html = b.content().expect("html");
    assert!(!html.contains("bravo-secret"), "{html}");
    // A's session sent explicitly to each of B's resources, under B's cookie name.
    let tag_b = other_tag(&mut b, name_a.trim_start_matches(SESSION_PREFIX));
    let cookie = format!("{SESSION_PREFIX}{tag_b}={value_a}");
    for path in ["/thread", "/body/0", "/att/0/0"] {
        let url = format!("{link_b}{path}");
        let got = b
            .request_with("GET", &url, &[], &[("Cookie", &cookie)])
            .expect("request");
        assert_ne!(got.status, 200, "{path} of B's link served to A's session");
        assert!(!got.body.contains("bravo-secret"), "{path}: {}", got.body);
    }
    assert!(!b.content().expect("html").contains("bravo"));

    // Within A's own link: what the page links to works, anything beyond is 404.
    let ok = b
        .request("GET", &format!("{link_a}/att/0/0"), &[])
        .expect("own attachment");
    assert_eq!(ok.status, 200);
    for path in ["/body/1", "/body/99", "/att/1/0", "/att/0/1", "/att/0/99"] {
        let got = b
            .request("GET", &format!("{link_a}{path}"), &[])
            .expect("request");
        assert_eq!(got.status, 404, "{path}: {}", got.body);
    }
    for path in ["/body/-1", "/body/x", "/att/0/-1"] {
        let got = b
            .request("GET", &format!("{link_a}{path}"), &[])
            .expect("request");
        assert!(matches!(got.status, 400 | 404), "{path}: {}", got.status);
    }
    // Downloads of B's attachment through A's session never happened.
    let downloads = p.events("portal_download");
    assert!(
        downloads.iter().all(|d| d["recipient"] == RCPT),
        "{downloads:?}"
    );
}

#[test]
fn a_reply_without_the_csrf_token_is_refused_and_with_it_goes_through() {
    let p = PortalLab::start(TestBackend::Sqlite, "");
    p.send(&[RCPT], &message_for(RCPT, "csrf-marker", 3));
    let link = p.link_for(RCPT);
    let mut b = browser();

    // Posts below carry the portal's own origin, as its pages' posts do: what is refused is
    // the token (without the origin they would be refused for that alone).
    let own = [("Origin", p.base.as_str())];
    // Before a session: the code and verify forms want their token too.
    b.goto(&link).expect("open the link");
    for action in ["/code", "/verify"] {
        let got = b
            .request_with(
                "POST",
                &format!("{link}{action}"),
                &[("code", "12345678")],
                &own,
            )
            .expect("post without a token");
        assert_eq!(got.status, 403, "{action} without a CSRF token");
    }
    p.verify(&mut b, &link, RCPT);
    let fields = hidden_fields(&mut b, "/reply");
    assert!(!fields.is_empty(), "the reply form has no CSRF field");
    let reply_url = format!("{link}/reply");

    let none = b
        .request_with("POST", &reply_url, &[("body", "forged reply one")], &own)
        .expect("post");
    assert_eq!(none.status, 403, "no token: {}", none.body);
    let mut forged: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, _)| (k.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .collect();
    forged.push(("body", "forged reply two"));
    let wrong = b
        .request_with("POST", &reply_url, &forged, &own)
        .expect("post");
    assert_eq!(wrong.status, 403, "a wrong token: {}", wrong.body);

    // The form itself, submitted by the browser with its token removed.
    b.eval("document.querySelectorAll('form[action$=\"/reply\"] input[type=hidden]').forEach(i => i.remove())")
        .expect("remove the token");
    b.fill(REPLY_INPUT, "forged reply three").expect("fill");
    let nav = b.click(REPLY).expect("submit without the token");
    assert_eq!(nav.status, Some(403));

    // The same request with the token is accepted: the refusals were the token's.
    let mut right: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    right.push(("body", "the genuine reply csrf-ok"));
    let foreign = [("Origin", "https://evil.test")];
    let elsewhere = b
        .request_with("POST", &reply_url, &right, &foreign)
        .expect("post");
    assert_eq!(elsewhere.status, 403, "the right token from another origin");
    let ok = b
        .request_with("POST", &reply_url, &right, &own)
        .expect("post");
    assert_eq!(ok.status, 303, "{}", ok.body);

    assert!(
        p.lab.rt.block_on(p.clinic.wait_for(1, WAIT)),
        "the genuine reply never arrived\n{}",
        p.daemon.output_report()
    );
    std::thread::sleep(Duration::from_secs(2));
    let replies = p.clinic.received();
    assert_eq!(replies.len(), 1, "only the genuine reply is sent");
    let text = mail_text(&replies[0].data);
    assert!(text.contains("csrf-ok"), "{text}");
    assert!(!text.contains("forged"), "{text}");
    assert_eq!(p.events("portal_reply").len(), 1);
    // Every refusal is on record, the browser's own form post (same origin, no token) too.
    let reasons: Vec<Value> = p
        .events("portal_refused")
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        ["csrf", "csrf", "csrf", "csrf", "csrf", "foreign-origin"],
        "{:?}",
        p.events("portal_refused")
    );
}
