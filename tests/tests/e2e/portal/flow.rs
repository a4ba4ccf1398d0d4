//! The whole portal flow in the browser: notice at the recipient's MX (no protected content
//! in it), code by a second email, the message read, the attachment downloaded byte for byte,
//! a reply that reaches the original sender's MX under the normal policy, and the audit trail
//! of every step.

use sealgate_testkit::db::TestBackend;

use super::*;

const SUBJECT: &str = "Lab results for J. Doe";
const TEXT: &str = "Potassium 5.9 mmol/L, please call the patient.\r\n";
const HTML: &str = "<p>Potassium <b>5.9 mmol/L</b>: <i>flow-html-marker</i></p>";
const FILENAME: &str = "result.pdf";
const REPLY_TEXT: &str = "Called the patient, thanks. flow-reply-marker";

fn message() -> Vec<u8> {
    Message {
        to: RCPT,
        subject: SUBJECT,
        text: TEXT,
        html: HTML,
        filename: FILENAME,
        attachment: &attachment_bytes(0),
    }
    .render()
}

fn a_recipient_without_tls_or_key_reads_downloads_and_replies_in_the_browser(backend: TestBackend) {
    let p = PortalLab::start(backend, "");
    let id = p.send(&[RCPT], &message());

    // The MX (plain SMTP) gets a notice, not the message.
    let notice = p.next_mail_for(RCPT, 0);
    assert_notice_carries_no_content(&notice);
    let link = p.link_for(RCPT);
    assert_original_went_to_the_portal(&p, &id);

    let mut b = browser();
    let nav = b.goto(&link).expect("open the link");
    assert_eq!(nav.status, Some(200), "{}", b.content().unwrap_or_default());
    let code = p.request_code(&mut b, RCPT);
    b.fill(CODE_INPUT, &code).expect("fill the code");
    let nav = b.click(VERIFY).expect("submit the code");
    assert_eq!(nav.url, format!("{link}/thread"));

    // The message: headers in the page, the HTML part (the richer alternative) in its
    // sandboxed frame.
    let page = b.text("body").expect("page text");
    assert!(page.contains(SUBJECT), "{page}");
    assert!(page.contains(FILENAME), "{page}");
    wait_body_text(&mut b, "Potassium 5.9 mmol/L: flow-html-marker");
    assert_security_headers(&mut b, &link);

    let dir = tempfile::tempdir().expect("tempdir");
    let got = b
        .download("a[href*=\"/att/\"]", &dir.path().join("download"))
        .expect("download the attachment");
    assert_eq!(
        got.bytes,
        attachment_bytes(0),
        "the downloaded bytes differ"
    );
    assert_eq!(got.filename, FILENAME);

    b.fill(REPLY_INPUT, REPLY_TEXT).expect("fill the reply");
    let nav = b.click(REPLY).expect("send the reply");
    assert!(
        nav.url.starts_with(&format!("{link}/thread")),
        "{}",
        nav.url
    );
    let page = b.text("body").expect("page text");
    assert!(
        page.contains("flow-reply-marker"),
        "the thread shows the reply: {page}"
    );

    sign_out(&p, &mut b, &link);

    assert_reply_reached_the_sender(&p);
    assert_audit_trail(&p);
    assert_nothing_secret_logged(&p, &link, &code);
    assert!(b.dialogs().expect("dialogs").is_empty());
}

on_both_backends!(a_recipient_without_tls_or_key_reads_downloads_and_replies_in_the_browser);

/// The sign-out button ends the session: the browser's `__Host-` session cookie is gone,
/// the thread asks for a code again, and the end is audited.
fn sign_out(p: &PortalLab, b: &mut Browser, link: &str) {
    b.goto(&format!("{link}/thread"))
        .expect("back to the thread");
    let nav = b.click(SIGN_OUT).expect("sign out");
    assert_eq!(nav.status, Some(200), "{}", b.content().unwrap_or_default());
    assert_eq!(nav.url, format!("{link}?signed_out=1"));
    let page = b.text("body").expect("page text");
    assert!(page.contains("You have signed out."), "{page}");
    let cookies = b.cookies().expect("cookies");
    assert!(
        !cookies.iter().any(|c| c["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(SESSION_PREFIX))),
        "the session cookie is gone: {cookies:?}"
    );
    let nav = b.goto(&format!("{link}/thread")).expect("the thread again");
    assert_eq!(nav.url, link, "the verify page, not the thread");
    assert!(b.content().expect("html").contains("id=\"send-code\""));
    let out = &p.wait_events("portal_signed_out", 1)[0];
    assert_eq!(out["recipient"], RCPT, "{out}");
}

/// The notice names the organisation and the link, and nothing of the message.
fn assert_notice_carries_no_content(notice: &ReceivedMessage) {
    let text = mail_text(&notice.data);
    for secret in [SUBJECT, "Potassium", FILENAME, "flow-html-marker"] {
        assert!(!text.contains(secret), "{secret:?} in the notice:\n{text}");
    }
    assert!(text.contains(ORGANISATION), "{text}");
    assert!(!notice.tls, "the MX offers no STARTTLS");
}

/// The original's decision was the portal, and the notice's a PHI-free one.
fn assert_original_went_to_the_portal(p: &PortalLab, id: &str) {
    let db = p.inspect();
    eventually(WAIT, "the original settled", || {
        db.recipients(id) == [(RCPT.to_owned(), "delivered".to_owned())]
    });
    let decision = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "decision" && e.message_id.as_deref() == Some(id))
        .expect("a decision for the original");
    let decision: Value = serde_json::from_str(&decision.data).expect("JSON");
    assert_eq!(decision["method"], "portal", "{decision}");
    assert_eq!(decision["level"], "required", "{decision}");
    let notice = &p.wait_events("portal_notice", 1)[0];
    assert_eq!(notice["recipient"], RCPT, "{notice}");
    let notice_id = notice["notice_id"].as_str().expect("notice_id");
    let decision = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "decision" && e.message_id.as_deref() == Some(notice_id))
        .expect("a decision for the notice");
    let decision: Value = serde_json::from_str(&decision.data).expect("JSON");
    assert_eq!(decision["level"], "none", "{decision}");
}

/// Every portal response is no-store with the strict CSP; the session cookie is locked down;
/// the body frame is sandboxed by CSP; attachments are downloads.
fn assert_security_headers(b: &mut Browser, link: &str) {
    let thread = b
        .request("GET", &format!("{link}/thread"), &[])
        .expect("thread");
    assert_eq!(thread.status, 200);
    assert_strict(&thread.headers, "thread");
    let csp = thread.header("content-security-policy").unwrap_or("");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    let body = b
        .request("GET", &format!("{link}/body/0"), &[])
        .expect("body");
    assert_eq!(body.status, 200);
    assert_strict(&body.headers, "body");
    let csp = body.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("sandbox"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let att = b
        .request("GET", &format!("{link}/att/0/0"), &[])
        .expect("att");
    assert_eq!(att.status, 200);
    assert_strict(&att.headers, "att");
    let disposition = att.header("content-disposition").unwrap_or("");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(att.header("content-type"), Some("application/octet-stream"));

    // Chromium kept the session cookie under its `__Host-` name (it would have dropped a
    // `__Host-` cookie with a Domain, another Path or without Secure) and sends it: the
    // thread above was served with it.
    let cookies = b.cookies().expect("cookies");
    let session = cookies
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(SESSION_PREFIX))
        })
        .unwrap_or_else(|| panic!("no {SESSION_PREFIX} cookie: {cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(session["path"], "/", "{session}");
    assert_eq!(
        session["domain"], "127.0.0.1",
        "a host-only cookie: {session}"
    );
}

fn assert_strict(headers: &[(String, String)], what: &str) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    assert!(
        get("cache-control").contains("no-store"),
        "{what}: {headers:?}"
    );
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert!(!get("content-security-policy").is_empty(), "{what}: no CSP");
}

/// The reply went to the original sender's MX, over DANE-verified TLS.
fn assert_reply_reached_the_sender(p: &PortalLab) {
    assert!(
        p.lab.rt.block_on(p.clinic.wait_for(1, WAIT)),
        "the sender's MX received no reply\n{}",
        p.daemon.output_report()
    );
    let reply = &p.clinic.received()[0];
    assert_eq!(reply.rcpts, [SENDER]);
    assert!(reply.tls, "a reply carries protected content: TLS required");
    let text = mail_text(&reply.data);
    assert!(text.contains("flow-reply-marker"), "{text}");
    let event = &p.wait_events("portal_reply", 1)[0];
    let reply_id = event["reply_id"].as_str().expect("reply_id");
    let db = p.inspect();
    let decision = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "decision" && e.message_id.as_deref() == Some(reply_id))
        .expect("a decision for the reply");
    let decision: Value = serde_json::from_str(&decision.data).expect("JSON");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
}

/// Notice, code, verification, view, download and reply are all audited, in that order.
fn assert_audit_trail(p: &PortalLab) {
    let kinds: Vec<String> = p
        .inspect()
        .audit()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| k.starts_with("portal_"))
        .collect();
    let expected = [
        "portal_notice",
        "portal_code_sent",
        "portal_verified",
        "portal_view",
        "portal_download",
        "portal_reply",
        "portal_signed_out",
    ];
    let mut at = 0;
    for kind in expected {
        let found = kinds[at..].iter().position(|k| k == kind);
        assert!(
            found.is_some(),
            "{kind} missing or out of order in {kinds:?}"
        );
        at += found.unwrap_or(0) + 1;
    }
    let verified = &p.events("portal_verified")[0];
    assert_eq!(verified["how"], "code", "{verified}");
}

/// Neither the token, nor the code, nor message content reaches the daemon's logs or audit.
fn assert_nothing_secret_logged(p: &PortalLab, link: &str, code: &str) {
    let token = link.rsplit('/').next().unwrap_or(link);
    let logs = p.daemon.all_logs().join("\n");
    let audit: Vec<String> = p.inspect().audit().into_iter().map(|e| e.data).collect();
    let audit = audit.join("\n");
    // The code is eight digits: only a match that is not part of a longer number counts.
    let code_in = |hay: &str| {
        hay.match_indices(code).any(|(i, _)| {
            let before = hay[..i].chars().next_back();
            let after = hay[i + code.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    };
    assert!(!code_in(&logs), "the code is in the logs");
    assert!(!code_in(&audit), "the code is in the audit");
    for (what, secret) in [
        ("token", token),
        ("subject", SUBJECT),
        ("text", "Potassium"),
        ("reply", "flow-reply-marker"),
    ] {
        assert!(!logs.contains(secret), "the {what} is in the logs");
        assert!(!audit.contains(secret), "the {what} is in the audit");
    }
}
