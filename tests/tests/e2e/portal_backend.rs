//! The portal's delivery side end to end, with the policy engine: a recipient domain whose
//! MX offers no STARTTLS, and no key for the recipient, with protection required. The MX
//! receives the portal notice — from `portal.notice_from`, with the link, and nothing of the
//! message — and never the message. The decision says `portal`, the notice itself goes out as
//! phi-free over opportunistic TLS, the sealed copy opens with the portal master key (without
//! the passphrase header), and the operator's `sealgate portal list|extend|revoke|purge` work
//! and are audited.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use sealgate_crypto::KeyRing;
use sealgate_crypto::portal::{link_token_hash, open_message};
use sealgate_store::{GrantRow, PortalMessageRow, Store};
use sealgate_testkit::db::TestBackend;
use sealgate_testkit::postfix::free_addr;
use sealgate_tests::{CliRun, Daemon, py_send};
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db, runtime};
use crate::lab::{SecureLab, eventually};

const WAIT: Duration = Duration::from_secs(30);
const RCPT: &str = "jane@example.test";
const SENDER: &str = "ehr@clinic.test";
const NOTICE_FROM: &str = "notices@clinic.test";
const PUBLIC_URL: &str = "https://portal.clinic.test";
const SUBJECT: &str = "Lab results for J. Doe";
const SECRET_BODY: &str = "Potassium 5.9 mmol/L";
const PASSPHRASE: &str = "horse battery staple";

fn message() -> String {
    format!(
        "From: EHR <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: {SUBJECT}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <portal-1@clinic.test>\r\n\
         X-Sealgate-Passphrase: {PASSPHRASE}\r\n\r\n{SECRET_BODY}, please call the patient.\r\n"
    )
}

/// The events of `kind`, oldest first, as (message id column, data).
fn events(db: &Inspect, kind: &str) -> Vec<(Option<String>, Value)> {
    db.audit()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.message_id, serde_json::from_str(&e.data).expect("JSON")))
        .collect()
}

fn wait_events(db: &Inspect, kind: &str, n: usize) -> Vec<(Option<String>, Value)> {
    eventually(WAIT, &format!("{n} {kind} event(s)"), || {
        events(db, kind).len() >= n
    });
    events(db, kind)
}

/// The grants and the first portal message, read with the store API.
fn portal_rows(url: &str) -> (Vec<GrantRow>, PortalMessageRow) {
    let rt = runtime();
    rt.block_on(async {
        let store = Store::connect(url, 1, Duration::from_secs(10))
            .await
            .expect("connect");
        let grants = store.portal_grants().await.expect("grants");
        let id = &grants.first().expect("a grant").portal_message_id;
        let msg = store.portal_message(id).await.expect("read").expect("row");
        store.close().await;
        (grants, msg)
    })
}

fn cli(d: &Daemon, args: &[&str]) -> CliRun {
    CliRun::of(d.cli(args))
}

fn send(d: &Daemon, dir: &Path) -> String {
    let file = dir.join("message.eml");
    std::fs::write(&file, message()).expect("write message");
    let path = file.display().to_string();
    let sent = py_send(
        d.addr("starttls"),
        &["--from", SENDER, "--to", RCPT, "--body-file", &path],
    );
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

fn a_recipient_without_tls_or_key_gets_the_portal_notice_not_the_message(backend: TestBackend) {
    let lab = SecureLab::builder()
        .unsigned("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
        .start();
    // No STARTTLS offered, no TLSA, no MTA-STS, no key: with protection required (the
    // default policy) only the portal is left.
    let mx = lab.sink_with([127, 0, 0, 5], |_| {});
    let db = fresh_db(backend);
    let portal = format!(
        "[portal]\nenabled = true\nlisten = \"{}\"\npublic_url = \"{PUBLIC_URL}\"\n\
         organisation = \"St. Mary's Clinic\"\nnotice_from = \"{NOTICE_FROM}\"\n",
        free_addr(Ipv4Addr::LOCALHOST)
    );
    let daemon = lab.daemon_with(&db.url, crate::lab::WITHOUT_AUTHENTICATED, &portal);
    let dir = tempfile::tempdir().expect("tempdir");
    let id = send(&daemon, dir.path());

    assert!(
        lab.rt.block_on(mx.wait_for(1, WAIT)),
        "the MX received nothing\n{}",
        daemon.output_report()
    );
    let notice = mx.received().remove(0);
    assert_eq!(notice.mail_from, NOTICE_FROM);
    assert_eq!(notice.rcpts, [RCPT]);
    let text = String::from_utf8_lossy(&notice.data).into_owned();
    assert!(
        text.contains(&format!("From: \"St. Mary's Clinic\" <{NOTICE_FROM}>\r\n")),
        "{text}"
    );
    for secret in [SUBJECT, SECRET_BODY, PASSPHRASE, SENDER, "please call"] {
        assert!(!text.contains(secret), "{secret:?} in the notice:\n{text}");
    }
    let link_at = text
        .find(&format!("{PUBLIC_URL}/p/"))
        .unwrap_or_else(|| panic!("no link in the notice:\n{text}"));
    let token = text[link_at + PUBLIC_URL.len() + 3..]
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(token.len(), 43, "{token:?}");

    let db_view = Inspect::new(daemon.db_url(), None);
    assert_original_went_to_the_portal(&db_view, &id);
    assert_notice_went_out_phi_free(&db_view);
    assert_sealed_copy(&daemon, &token);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(mx.received().len(), 1, "only the notice reaches the MX");
    operator_commands(&daemon, &db_view);
}

/// The original: decided `portal`, stored there (delivered, method portal), one
/// `portal_notice` naming the grant and the notice.
fn assert_original_went_to_the_portal(db: &Inspect, id: &str) {
    let decision = wait_events(db, "decision", 1)
        .into_iter()
        .find(|(m, _)| m.as_deref() == Some(id))
        .expect("the original's decision")
        .1;
    assert_eq!(decision["method"], "portal", "{decision}");
    assert_eq!(decision["level"], "required", "{decision}");
    let notices = wait_events(db, "portal_notice", 1);
    assert_eq!(notices.len(), 1);
    let (about, data) = &notices[0];
    assert_eq!(about.as_deref(), Some(id));
    assert!(
        data["grant_id"].is_string() && data["notice_id"].is_string(),
        "{data}"
    );
    assert!(
        data["expires"].as_str().is_some_and(|e| e.ends_with('Z')),
        "{data}"
    );
    eventually(WAIT, "the original settled", || {
        db.recipients(id) == [(RCPT.to_owned(), "delivered".to_owned())]
    });
    let attempt = events(db, "attempt")
        .into_iter()
        .find(|(m, _)| m.as_deref() == Some(id))
        .expect("the original's attempt")
        .1;
    assert_eq!(attempt["method"], "portal", "{attempt}");
    let reply = attempt["reply"].as_str().unwrap_or_default();
    let notice_id = data["notice_id"].as_str().unwrap_or_default();
    assert_eq!(
        reply,
        format!("stored in the secure portal; notice queued as {notice_id}")
    );
}

/// The notice: phi-free, so level none and opportunistic TLS (the MX has none), delivered.
fn assert_notice_went_out_phi_free(db: &Inspect) {
    let notice_id = events(db, "portal_notice")[0].1["notice_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eventually(WAIT, "the notice delivered", || {
        db.recipients(&notice_id) == [(RCPT.to_owned(), "delivered".to_owned())]
    });
    let decision = events(db, "decision")
        .into_iter()
        .find(|(m, _)| m.as_deref() == Some(notice_id.as_str()))
        .expect("the notice's decision")
        .1;
    assert_eq!(decision["method"], "tls-opportunistic", "{decision}");
    assert_eq!(decision["level"], "none", "{decision}");
    assert_eq!(decision["level_source"], "phi-free", "{decision}");
    assert_eq!(decision["chain"], serde_json::json!(["tls-opportunistic"]));
    assert_eq!(
        db.message(&notice_id).origin.as_deref(),
        Some("portal-notice")
    );
}

/// The sealed copy: the link's token is the grant's, the content opens with the master key
/// and is the message without the passphrase header, whose hash the grant keeps.
fn assert_sealed_copy(daemon: &Daemon, token: &str) {
    let (grants, msg) = portal_rows(daemon.db_url());
    assert_eq!(grants.len(), 1);
    let grant = &grants[0];
    assert_eq!(grant.token_hash, link_token_hash(token));
    assert_eq!(
        (grant.recipient.as_str(), grant.sender.as_str()),
        (RCPT, SENDER)
    );
    let hash = grant.passphrase_hash.as_deref().expect("a passphrase hash");
    assert!(sealgate_crypto::verify_password(PASSPHRASE, hash));
    let master = KeyRing::load(&daemon.data_dir().join("portal.key")).expect("portal.key");
    let opened = open_message(
        &master,
        &msg.key_sealed,
        &msg.content_sealed,
        msg.id.as_bytes(),
    )
    .expect("the sealed copy opens with the master key");
    let opened = String::from_utf8(opened).expect("utf-8");
    assert!(
        opened.contains(&format!("Subject: {SUBJECT}\r\n")),
        "{opened}"
    );
    assert!(opened.contains(SECRET_BODY), "{opened}");
    assert!(
        !opened
            .to_ascii_lowercase()
            .contains("x-sealgate-passphrase"),
        "{opened}"
    );
    assert!(!String::from_utf8_lossy(&msg.content_sealed).contains(SECRET_BODY));
}

/// `sealgate portal list|extend|revoke|purge`, each change audited with its operator.
fn operator_commands(daemon: &Daemon, db: &Inspect) {
    let grant = events(db, "portal_notice")[0].1["grant_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let list = cli(daemon, &["portal", "list"]);
    assert_eq!(list.code, Some(0), "{}", list.describe());
    let line = list.lines().into_iter().find(|l| l.starts_with(&grant));
    let line = line.unwrap_or_else(|| panic!("grant missing: {}", list.describe()));
    assert!(line.contains("\tactive\t") && line.contains(RCPT), "{line}");
    let json = cli(daemon, &["portal", "list", "--json"]);
    let row: Value = serde_json::from_str(json.lines()[0]).expect("one JSON line");
    assert_eq!(
        (row["id"].as_str(), row["passphrase"].as_bool()),
        (Some(grant.as_str()), Some(true))
    );
    for secret in [SUBJECT, SECRET_BODY, PASSPHRASE] {
        assert!(!json.stdout.contains(secret) && !list.stdout.contains(secret));
    }

    let extend = cli(daemon, &["portal", "extend", &grant, "5"]);
    assert_eq!(extend.code, Some(0), "{}", extend.describe());
    let extended = &events(db, "portal_extended")[0].1;
    assert_eq!(extended["grant_id"], grant.as_str());
    assert!(extended["operator"].is_string(), "{extended}");
    let (grants, _) = portal_rows(daemon.db_url());
    assert_eq!(
        extended["expires"].as_str(),
        Some(sealgate_types::time::rfc3339_micros(grants[0].expires_at).as_str())
    );

    let revoke = cli(daemon, &["portal", "revoke", &grant]);
    assert_eq!(revoke.code, Some(0), "{}", revoke.describe());
    assert_eq!(
        events(db, "portal_revoked")[0].1["grant_id"],
        grant.as_str()
    );
    assert_eq!(cli(daemon, &["portal", "revoke", &grant]).code, Some(1));
    assert_eq!(
        cli(daemon, &["portal", "extend", &grant, "1"]).code,
        Some(1)
    );
    assert_eq!(
        cli(daemon, &["portal", "revoke", "no-such-grant"]).code,
        Some(1)
    );
    assert_eq!(events(db, "portal_revoked").len(), 1);
    assert_eq!(events(db, "portal_extended").len(), 1);
    let list = cli(daemon, &["portal", "list"]);
    assert!(list.stdout.contains("\trevoked\t"), "{}", list.describe());

    let purge = cli(daemon, &["portal", "purge"]);
    assert_eq!(
        purge.stdout.trim(),
        "purged 1 portal messages",
        "{}",
        purge.describe()
    );
    let (_, msg) = portal_rows(daemon.db_url());
    assert!(msg.content_sealed.is_empty() && msg.key_sealed.is_empty());
    assert_eq!(
        events(db, "portal_purged")[0].1["portal_message_id"],
        msg.id.as_str()
    );
}

on_both_backends!(a_recipient_without_tls_or_key_gets_the_portal_notice_not_the_message);
