//! The browser harness proven on static pages before it judges the portal: navigation,
//! forms, downloads, the request log, dialogs and console messages, cookies — and the
//! positive controls the portal's security tests rely on (a script that runs is seen, a
//! remote load is seen by both the browser's log and the server it reached).

use std::net::SocketAddr;
use std::time::Duration;

use sealgate_testkit::browser::{Browser, BrowserError, Page, TestSite};

fn start_site() -> TestSite {
    TestSite::start(SocketAddr::from(([127, 0, 0, 1], 0))).expect("start a test site")
}

fn browser() -> Browser {
    Browser::start().unwrap_or_else(|e| panic!("cannot start the browser: {e}"))
}

/// Bytes of every value, several times over: a download must keep them all.
fn attachment() -> Vec<u8> {
    (0..=255u8).cycle().take(5000).collect()
}

const INDEX: &str = r#"<!doctype html>
<html><head><title>Harness</title><link rel="stylesheet" href="/style.css"></head>
<body>
<h1 id="title">A static page</h1>
<form action="/next" method="post">
  <input name="who" id="who"><button id="send" type="submit">Send</button>
</form>
<a id="file" href="/file.bin">the file</a>
<iframe id="boxed" sandbox src="/framed.html"></iframe>
</body></html>"#;

const FRAMED: &str = r#"<!doctype html><p id="inner">framed text</p>
<script>alert("from-the-sandbox"); console.log("sandbox-marker")</script>"#;

fn serve_index(site: &TestSite) {
    site.serve("/index.html", Page::html(INDEX));
    site.serve("/style.css", Page::new("text/css", "h1 { color: teal }"));
    site.serve("/framed.html", Page::html(FRAMED));
    site.serve(
        "/next",
        Page {
            status: 303,
            ..Page::html("")
        }
        .with_header("Location", "/done.html"),
    );
    site.serve("/done.html", Page::html("<p id=\"done\">thank you</p>"));
    site.serve(
        "/file.bin",
        Page::new("application/octet-stream", attachment())
            .with_header("Content-Disposition", "attachment; filename=\"result.pdf\""),
    );
}

#[test]
fn the_browser_fills_a_form_follows_a_redirect_after_post_and_downloads_bytes_intact() {
    let site = start_site();
    serve_index(&site);
    let mut b = browser();
    let nav = b.goto(&site.url("/index.html")).expect("goto");
    assert_eq!(nav.status, Some(200));
    assert_eq!(b.text("#title").expect("text"), "A static page");

    let dir = tempfile::tempdir().expect("tempdir");
    let got = b
        .download("#file", &dir.path().join("file.bin"))
        .expect("download");
    assert_eq!(got.filename, "result.pdf");
    assert_eq!(got.bytes, attachment(), "the downloaded bytes differ");

    b.fill("#who", "Jane Doe").expect("fill");
    let nav = b.click("#send").expect("click");
    assert_eq!(nav.url, site.url("/done.html"));
    assert_eq!(nav.status, Some(200), "the status after the redirect");
    assert_eq!(b.text("#done").expect("text"), "thank you");
    let posted = site
        .hits()
        .into_iter()
        .find(|h| h.method == "POST")
        .expect("the form was posted");
    assert_eq!(posted.target, "/next");
    assert_eq!(posted.body, b"who=Jane+Doe");

    let requests = b.requests().expect("requests");
    let urls: Vec<&str> = requests.iter().map(|r| r.url.as_str()).collect();
    for path in [
        "/index.html",
        "/style.css",
        "/framed.html",
        "/file.bin",
        "/next",
        "/done.html",
    ] {
        assert!(
            urls.contains(&site.url(path).as_str()),
            "{path} not logged: {urls:?}"
        );
    }
    let framed = requests
        .iter()
        .find(|r| r.url.ends_with("/framed.html"))
        .expect("the frame's request");
    assert!(framed.navigation, "{framed:?}");
    b.quit().expect("quit");
}

#[test]
fn a_script_that_runs_is_seen_and_one_in_a_sandboxed_frame_does_not_run() {
    let site = start_site();
    serve_index(&site);
    site.serve(
        "/alert.html",
        Page::html(
            "<script>alert('harness-alert'); console.log('harness-marker'); \
             window.ran = 42;</script><p>x</p>",
        ),
    );
    let mut b = browser();
    b.goto(&site.url("/alert.html")).expect("goto");
    let dialogs = b.dialogs().expect("dialogs");
    assert_eq!(dialogs.len(), 1, "{dialogs:?}");
    assert_eq!(dialogs[0].kind, "alert");
    assert_eq!(dialogs[0].message, "harness-alert");
    let console = b.console().expect("console");
    assert!(
        console.iter().any(|m| m.text == "harness-marker"),
        "{console:?}"
    );
    assert_eq!(b.eval("window.ran").expect("eval"), 42);

    b.clear().expect("clear");
    assert!(b.dialogs().expect("dialogs").is_empty());
    b.goto(&site.url("/index.html")).expect("goto");
    // The frame's document is there and readable, but its script never ran.
    let frames = b
        .eval_in_frames("document.body ? document.body.innerText : ''")
        .expect("eval in frames");
    let inner = frames
        .iter()
        .find(|f| f.url.ends_with("/framed.html"))
        .unwrap_or_else(|| panic!("no sandboxed frame in {frames:?}"));
    assert_eq!(
        inner.value.as_ref().ok().and_then(|v| v.as_str()),
        Some("framed text")
    );
    assert!(b.dialogs().expect("dialogs").is_empty());
    let console = b.console().expect("console");
    assert!(
        !console.iter().any(|m| m.text == "sandbox-marker"),
        "{console:?}"
    );
}

#[test]
fn a_remote_load_shows_in_the_request_log_and_at_the_canary() {
    let site = start_site();
    let canary = start_site();
    site.serve(
        "/leaky.html",
        Page::html(&format!(
            "<p>x</p><img src=\"{}\">",
            canary.url("/pixel.png?from=img")
        )),
    );
    let mut b = browser();
    b.goto(&site.url("/leaky.html")).expect("goto");
    let requests = b.requests().expect("requests");
    let to_canary: Vec<_> = requests
        .iter()
        .filter(|r| r.url.starts_with(&canary.url("/")))
        .collect();
    assert_eq!(to_canary.len(), 1, "{requests:?}");
    assert_eq!(to_canary[0].resource_type, "image");
    let hits = canary.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].target, "/pixel.png?from=img");
}

#[test]
fn requests_carry_the_browsers_http_only_cookies() {
    let site = start_site();
    site.serve(
        "/login.html",
        Page::html("<p>in</p>").with_header(
            "Set-Cookie",
            "sid=s3cret; HttpOnly; SameSite=Strict; Path=/",
        ),
    );
    let mut b = browser();
    b.goto(&site.url("/login.html")).expect("goto");
    let cookies = b.cookies().expect("cookies");
    let sid = cookies
        .iter()
        .find(|c| c["name"] == "sid")
        .unwrap_or_else(|| panic!("no sid cookie in {cookies:?}"));
    assert_eq!(sid["httpOnly"], true);
    assert_eq!(b.eval("document.cookie").expect("eval"), "");

    let reply = b
        .request("POST", &site.url("/echo"), &[("body", "hello there")])
        .expect("request");
    assert_eq!(reply.status, 404);
    let hit = site.hits().pop().expect("the POST arrived");
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.body, b"body=hello+there");
    let cookie = hit.headers.iter().find(|(k, _)| k == "cookie");
    assert_eq!(cookie.map(|(_, v)| v.as_str()), Some("sid=s3cret"));

    // An explicit Cookie header goes with them.
    b.request_with("GET", &site.url("/echo"), &[], &[("Cookie", "other=1")])
        .expect("request with a header");
    let hit = site.hits().pop().expect("the GET arrived");
    let cookie = hit.headers.iter().find(|(k, _)| k == "cookie");
    assert!(
        cookie.is_some_and(|(_, v)| v.contains("other=1")),
        "{:?}",
        hit.headers
    );
}

#[test]
fn a_step_that_cannot_succeed_fails_within_its_timeout_and_the_browser_goes_on() {
    let site = start_site();
    serve_index(&site);
    let mut b = browser();
    b.goto(&site.url("/index.html")).expect("goto");
    b.set_timeout(Duration::from_secs(4));
    let started = std::time::Instant::now();
    let err = b.text("#absent").expect_err("no such element");
    assert!(
        matches!(&err, BrowserError::Command { cmd, .. } if cmd == "text"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(4), "{err}");
    let err = b.call(serde_json::json!({"cmd": "no-such-command"}));
    assert!(err.is_err());
    assert_eq!(b.text("#title").expect("still usable"), "A static page");
}

#[test]
fn an_https_site_with_a_test_certificate_is_opened_and_its_connections_counted() {
    let ca = sealgate_testkit::tls::TestCa::new();
    let cert = ca.issue(&["127.0.0.1"]);
    let site = TestSite::start_tls(SocketAddr::from(([127, 0, 0, 1], 0)), cert.server_config())
        .expect("start an https site");
    site.serve("/secure.html", Page::html("<p id=\"s\">over tls</p>"));
    assert!(site.url("/").starts_with("https://"));
    let mut b = browser();
    let nav = b.goto(&site.url("/secure.html")).expect("goto");
    assert_eq!(nav.status, Some(200));
    assert_eq!(b.text("#s").expect("text"), "over tls");
    assert!(site.connections() >= 1);
    assert_eq!(site.hits()[0].target, "/secure.html");
}

#[test]
fn a_browser_dropped_in_the_middle_of_a_step_closes_at_once_and_leaves_no_profile() {
    let mut b = browser();
    let profile = b
        .profile()
        .expect("the driver names its profile")
        .to_path_buf();
    assert!(profile.is_dir());
    b.set_timeout(Duration::from_secs(2));
    let stuck = b.call(serde_json::json!({
        "cmd": "eval",
        "expr": "new Promise(() => {})",
        "timeout_ms": 60_000,
    }));
    assert!(
        matches!(stuck, Err(BrowserError::Timeout { .. })),
        "{stuck:?}"
    );
    let started = std::time::Instant::now();
    drop(b);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(!profile.exists(), "{} left behind", profile.display());
}
