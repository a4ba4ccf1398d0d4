//! The thread, bodies and attachments after verification; sessions and IDOR.

use axum::http::StatusCode;

use crate::fixture::{ATTACHMENT, Fixture, MESSAGE};

const DAY: i64 = 86_400_000_000;

#[tokio::test]
async fn the_thread_shows_headers_a_sandboxed_body_frame_and_attachment_links() {
    let f = Fixture::new().await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let session = f.verified(link).await;
    let res = f
        .get(&link.path("/thread"), &[("sg_portal", &session)])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let text = res.text();
    for part in [
        "id=\"thread\"",
        "class=\"message\"",
        "Your lab results",
        "Dr. Ada &lt;ada@clinic.test&gt;",
        &format!(
            "<iframe class=\"body\" sandbox=\"\" src=\"/p/{}/body/0\"",
            link.token
        ),
        &format!(
            "class=\"attachment\" id=\"attachment-0-0\" href=\"/p/{}/att/0/0\"",
            link.token
        ),
        "results.pdf",
        "id=\"reply-body\"",
        "id=\"reply-send\"",
    ] {
        assert!(text.contains(part), "{part:?} missing in {text}");
    }
    assert!(!text.contains("<script"), "{text}");
    let views = f.audit("portal_view").await;
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["grant_id"], link.grant_id.as_str());
    let grant = f
        .store
        .portal_grant(&link.grant_id)
        .await
        .expect("read")
        .expect("grant");
    assert!(grant.first_viewed_at.is_some());
}

#[tokio::test]
async fn the_body_frame_is_sanitized_and_served_under_the_sandbox_csp() {
    let f = Fixture::new().await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let session = f.verified(link).await;
    let res = f
        .get(&link.path("/body/0"), &[("sg_portal", &session)])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let csp = res.header("content-security-policy");
    assert!(
        csp.starts_with("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"),
        "{csp}"
    );
    assert_eq!(res.header("cache-control"), "no-store");
    let text = res.text();
    assert!(text.contains("<b>results</b>"), "{text}");
    assert!(
        !text.contains("tracker.test") && !text.contains("<script"),
        "{text}"
    );
}

#[tokio::test]
async fn attachments_download_with_their_bytes_as_octet_stream_and_are_audited() {
    let f = Fixture::new().await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let session = f.verified(link).await;
    let res = f
        .get(&link.path("/att/0/0"), &[("sg_portal", &session)])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, ATTACHMENT);
    assert_eq!(res.header("content-type"), "application/octet-stream");
    assert!(
        res.header("content-disposition")
            .starts_with("attachment; filename=\"results.pdf\"")
    );
    assert_eq!(res.header("x-content-type-options"), "nosniff");
    let downloads = f.audit("portal_download").await;
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0]["attachment"], "0/0");
    assert_eq!(downloads[0]["size"], ATTACHMENT.len());
}

#[tokio::test]
async fn without_a_session_nothing_of_the_message_is_served() {
    let f = Fixture::new().await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let forged = sealgate_portal::secret::new_token().expect("token");
    for cookies in [&[][..], &[("sg_portal", forged.as_str())][..]] {
        for path in ["/thread", "/body/0", "/att/0/0"] {
            let res = f.get(&link.path(path), cookies).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(res.header("location"), link.path(""));
            assert!(res.body.is_empty());
        }
    }
    assert!(f.audit("portal_view").await.is_empty());
}

#[tokio::test]
async fn another_grants_session_opens_nothing_on_this_link() {
    let f = Fixture::new().await;
    let a = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let b = &f.deposit(MESSAGE, &["eve@patient.test"], DAY).await[0];
    let session_a = f.verified(a).await;
    let c = [("sg_portal", session_a.as_str())];
    for path in ["/thread", "/body/0", "/att/0/0"] {
        let res = f.get(&b.path(path), &c).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.header("location"), b.path(""), "{path}");
    }
    let home = f.get(&b.path(""), &c).await;
    assert_eq!(
        home.status,
        StatusCode::OK,
        "B's verify page, not B's thread"
    );
    let csrf = f.get(&a.path("/thread"), &c).await.csrf_field();
    let reply = f
        .post(&b.path("/reply"), &c, &[("csrf", &csrf), ("body", "hi")])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(f.audit("portal_reply").await.is_empty());
}

#[tokio::test]
async fn indexes_outside_this_grants_thread_are_not_found() {
    let f = Fixture::new().await;
    let links = f
        .deposit(MESSAGE, &["bob@patient.test", "eve@patient.test"], DAY)
        .await;
    let (bob, eve) = (&links[0], &links[1]);
    // Eve replies: her reply joins the thread, but only Eve may see it.
    let eve_session = f.verified(eve).await;
    let ce = [("sg_portal", eve_session.as_str())];
    let csrf = f.get(&eve.path("/thread"), &ce).await.csrf_field();
    let sent = f
        .post(
            &eve.path("/reply"),
            &ce,
            &[("csrf", &csrf), ("body", "eve's private reply")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(
        f.store
            .portal_thread(&bob.thread_id)
            .await
            .expect("thread")
            .len(),
        2
    );
    let bob_session = f.verified(bob).await;
    let cb = [("sg_portal", bob_session.as_str())];
    for path in ["/body/1", "/att/1/0", "/att/0/1", "/body/99", "/att/99/0"] {
        let res = f.get(&bob.path(path), &cb).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
    }
    let thread = f.get(&bob.path("/thread"), &cb).await.text();
    assert!(
        !thread.contains("private reply") && !thread.contains("message-1"),
        "{thread}"
    );
    let eves = f.get(&eve.path("/thread"), &ce).await.text();
    assert!(
        eves.contains("eve&#39;s private reply") && eves.contains("message-1"),
        "{eves}"
    );
}

#[tokio::test]
async fn the_first_view_sends_one_read_receipt_when_configured() {
    let mut s = crate::fixture::settings();
    s.read_receipts = true;
    let f = Fixture::with(s).await;
    let link = &f.deposit(MESSAGE, &["bob@patient.test"], DAY).await[0];
    let session = f.verified(link).await;
    for _ in 0..2 {
        let res = f
            .get(&link.path("/thread"), &[("sg_portal", &session)])
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let all = f
        .store
        .audit_after(0, &Default::default(), 1000)
        .await
        .expect("audit");
    let receipts: Vec<String> = all
        .iter()
        .filter(|e| {
            e.kind == "received"
                && e.data
                    .contains(&format!("\"recipients\":[\"{}\"]", crate::fixture::SENDER))
        })
        .filter_map(|e| e.message_id.clone())
        .collect();
    assert_eq!(receipts.len(), 1, "one receipt, on the first view");
    let queue_id = &receipts[0];
    let (row, text) = f.queued(queue_id).await;
    assert_eq!(row.origin.as_deref(), Some("portal-notice"));
    assert!(text.contains("bob@patient.test opened"), "{text}");
    assert!(
        !text.contains("lab results"),
        "no PHI in the receipt: {text}"
    );
    assert_eq!(
        f.audit("portal_view").await.len(),
        2,
        "every view is audited"
    );
}
