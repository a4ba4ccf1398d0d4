//! Who may open a link, and for how long: wrong codes lock the grant (and while it is locked
//! even the right code is refused), an expired or revoked link shows only "invalid or
//! expired", and the operator's `portal extend` brings an expired link back.

use sealgate_testkit::db::TestBackend;
use sealgate_tests::CliRun;

use super::*;

fn plain_message(to: &str, marker: &str) -> Vec<u8> {
    Message {
        to,
        subject: "Access test",
        text: &format!("Text of the message: {marker}\r\n"),
        html: &format!("<p>{marker}</p>"),
        filename: "a.pdf",
        attachment: &attachment_bytes(1),
    }
    .render()
}

/// A different eight-digit code than `code`.
fn wrong(code: &str, n: u32) -> String {
    let value: u32 = code.parse().expect("digits");
    format!("{:08}", (value + n) % 100_000_000)
}

/// Enters `code` on the verify page at `link`; whether it led to the thread.
fn try_code(b: &mut Browser, link: &str, code: &str) -> bool {
    b.goto(link).expect("open the link");
    b.fill(CODE_INPUT, code).expect("fill the code");
    let nav = b.click(VERIFY).expect("submit the code");
    nav.url == format!("{link}/thread")
}

/// What the page says, in lower case.
fn page_text(b: &mut Browser) -> String {
    b.text("body").expect("page text").to_lowercase()
}

/// The page shows the one message for every unusable link.
fn assert_invalid(b: &mut Browser, url: &str) {
    let nav = b.goto(url).expect("open");
    assert!(
        matches!(nav.status, Some(404 | 410)),
        "{url}: status {:?}",
        nav.status
    );
    let text = page_text(b);
    assert!(
        text.contains("invalid") || text.contains("expired"),
        "{url}: {text}"
    );
    assert!(!text.contains("access-marker"), "{text}");
    let html = b.content().expect("html");
    assert!(
        !html.contains("/verify"),
        "a usable form on a dead link: {html}"
    );
}

#[test]
fn wrong_codes_lock_the_link_and_even_the_right_code_is_refused_until_the_lockout_ends() {
    let lockout = Duration::from_secs(10);
    let p = PortalLab::start(
        TestBackend::Sqlite,
        "max_code_attempts = 3\nlockout = \"10s\"\n",
    );
    p.send(&[RCPT], &plain_message(RCPT, "access-marker"));
    let link = p.link_for(RCPT);
    let mut b = browser();
    b.goto(&link).expect("open the link");
    let code = p.request_code(&mut b, RCPT);

    for n in 1..=3 {
        assert!(
            !try_code(&mut b, &link, &wrong(&code, n)),
            "wrong code {n} accepted"
        );
    }
    let locked_at = Instant::now();
    let failed = p.wait_events("portal_code_failed", 3);
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[0]["locked"], false, "{failed:?}");
    assert_eq!(failed[2]["locked"], true, "{failed:?}");
    assert!(
        !failed.iter().any(|e| e.to_string().contains(&code)),
        "the code is in the audit"
    );

    // Locked: the right code is refused as locked (not as wrong), and no new code is sent.
    assert!(
        !try_code(&mut b, &link, &code),
        "the right code worked while locked"
    );
    assert!(page_text(&mut b).contains("locked"), "no lockout note");
    let before = p.mail_for(RCPT).len();
    b.goto(&link).expect("open the link");
    b.click(SEND_CODE).expect("ask for a code while locked");
    assert!(page_text(&mut b).contains("locked"), "no lockout note");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        p.mail_for(RCPT).len(),
        before,
        "a code was sent while locked"
    );
    assert_eq!(
        p.events("portal_code_failed").len(),
        3,
        "attempts counted while locked"
    );
    assert!(p.events("portal_verified").is_empty());
    let thread = b
        .request("GET", &format!("{link}/thread"), &[])
        .expect("thread");
    assert_ne!(thread.status, 200, "the thread without a session");
    assert!(!thread.body.contains("access-marker"));

    // Once the lockout is over, a new code opens the thread.
    std::thread::sleep(lockout.saturating_sub(locked_at.elapsed()) + Duration::from_secs(1));
    p.verify(&mut b, &link, RCPT);
    wait_body_text(&mut b, "access-marker");
}

fn cli_ok(p: &PortalLab, args: &[&str]) -> CliRun {
    let run = CliRun::of(p.daemon.cli(args));
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.describe());
    run
}

#[test]
fn an_expired_link_is_refused_until_extended_and_a_revoked_one_for_good() {
    let p = PortalLab::start(TestBackend::Sqlite, "grant_days = 0\n");
    p.send(&[RCPT], &plain_message(RCPT, "access-marker"));
    let link = p.link_for(RCPT);
    let grant = p.wait_events("portal_notice", 1)[0]["grant_id"]
        .as_str()
        .expect("grant_id")
        .to_owned();
    let mut b = browser();
    assert_invalid(&mut b, &link);
    let sent = b
        .request("GET", &format!("{link}/thread"), &[])
        .expect("thread");
    assert!(
        matches!(sent.status, 303 | 401 | 403 | 404 | 410),
        "{}",
        sent.status
    );

    let listed = cli_ok(&p, &["portal", "list"]);
    assert!(listed.stdout.contains(&grant), "{}", listed.describe());
    cli_ok(&p, &["portal", "extend", &grant, "1"]);
    assert_eq!(p.events("portal_extended").len(), 1);
    p.verify(&mut b, &link, RCPT);
    wait_body_text(&mut b, "access-marker");

    cli_ok(&p, &["portal", "revoke", &grant]);
    assert_eq!(p.events("portal_revoked").len(), 1);
    // The open session dies with the grant.
    assert_invalid(&mut b, &format!("{link}/thread"));
    assert_invalid(&mut b, &link);
    let att = b
        .request("GET", &format!("{link}/att/0/0"), &[])
        .expect("att");
    assert!(matches!(att.status, 404 | 410), "{}", att.status);
}
