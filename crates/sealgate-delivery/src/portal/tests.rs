//! The portal worker against a real store, on both backends: what it seals, the grants and
//! notices it writes, that a retry writes nothing twice, and that a failure defers.

use std::time::Duration;

use sealgate_crypto::portal::{link_token_hash, open_message};
use sealgate_policy::{DaneStatus, DomainEvidence, MessageFacts, Method, RecipientEvidence, Rules};
use sealgate_store::{AuditFilter, Store};
use sealgate_testkit::db::{TestBackend, TestDb};

use super::*;

const SENDER: &str = "ehr@clinic.test";
const RCPTS: [&str; 2] = ["jane@example.test", "joe@example.test"];
const SUBJECT: &str = "Lab results for J. Doe";
const CONTENT: &[u8] = b"From: ehr@clinic.test\r\nSubject: Lab results for J. Doe\r\n\r\n\
Potassium 5.9 mmol/L\r\n";

struct Setup {
    queue: Queue,
    settings: PortalSettings,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(backend: TestBackend) -> Setup {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url, 4, Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (seal, _) = KeyRing::load_or_create(&dir.path().join("seal.key")).unwrap();
    let (master, _) = KeyRing::load_or_create(&dir.path().join("portal.key")).unwrap();
    let settings = PortalSettings {
        master: Arc::new(master),
        public_url: "https://portal.clinic.test".into(),
        grant_days: 30,
        organisation: "Clinic".into(),
        notice_from: "portal@relay.clinic.test".into(),
        notice_subject: "A secure message is waiting for you".into(),
        hostname: "relay.clinic.test".into(),
    };
    Setup {
        queue: Queue::new(store, Arc::new(seal)),
        settings,
        _db: db,
        _dir: dir,
    }
}

/// Queues the original and claims its recipients, each decided (for the portal).
async fn claimed(queue: &Queue) -> (String, Vec<(Claim, Decision)>) {
    let id = queue
        .accept(IncomingMessage {
            id: MessageId::new(),
            sender: SENDER.into(),
            recipients: RCPTS.iter().map(|r| (*r).to_owned()).collect(),
            content: CONTENT.to_vec(),
            client_data_sha256: data_digest(CONTENT),
            client_data_size: CONTENT.len() as u64,
            header_message_id: None,
            client_ip: "192.0.2.7".into(),
            helo: "ehr.clinic.test".into(),
            auth_user: None,
            tls: None,
            requiretls: false,
            origin: None,
            tenant: None,
            api_key: None,
        })
        .await
        .unwrap();
    let claims = queue
        .claim("node", Duration::from_secs(60), 10)
        .await
        .unwrap();
    let plain = DomainEvidence {
        dane: DaneStatus::Insecure,
        ..DomainEvidence::default()
    };
    let part = claims
        .into_iter()
        .map(|c| {
            // The preference before tls-authenticated: nothing but the portal is left here.
            let rules = Rules {
                preference: vec![
                    Method::TlsVerified,
                    Method::Pgp,
                    Method::Smime,
                    Method::Portal,
                ],
                ..Rules::default()
            };
            let d = sealgate_policy::decide(
                &rules,
                &c.recipient.rcpt,
                &plain,
                &RecipientEvidence::default(),
                &MessageFacts::default(),
            );
            assert_eq!(d.chosen(), Method::Portal);
            (c, d)
        })
        .collect();
    (id.to_string(), part)
}

/// The link token in a notice.
fn token_in(notice: &str) -> String {
    let at = notice
        .find("https://portal.clinic.test/p/")
        .expect("a link")
        + 29;
    notice[at..].lines().next().unwrap_or_default().to_owned()
}

async fn recipients_are_sealed_on_the_portal_and_each_gets_a_notice(backend: TestBackend) {
    let s = setup(backend).await;
    let (queue_id, part) = claimed(&s.queue).await;
    let reports = deposit(&s.queue, &s.settings, &part, CONTENT, Some("correct horse")).await;
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r.outcome(), Outcome::Delivered);
        assert_eq!(r.evidence.method.as_deref(), Some("portal"));
        let reply = r.evidence.reply.as_deref().unwrap_or_default();
        assert!(
            reply.starts_with("stored in the secure portal; notice queued as "),
            "{reply}"
        );
    }
    let store = s.queue.store();
    let grants = store.portal_grants().await.unwrap();
    assert_eq!(grants.len(), 2);
    let msg = store
        .portal_message(&grants[0].portal_message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (msg.message_id.as_deref(), msg.sender.as_str()),
        (Some(queue_id.as_str()), SENDER)
    );
    let opened = open_message(
        &s.settings.master,
        &msg.key_sealed,
        &msg.content_sealed,
        msg.id.as_bytes(),
    );
    assert_eq!(opened.unwrap(), CONTENT);
    let month = 30 * DAY_MICROS;
    for grant in &grants {
        let report = reports
            .iter()
            .find(|r| r.claim.recipient.rcpt == grant.recipient)
            .unwrap();
        assert_eq!(grant.portal_message_id, msg.id, "one sealed copy for both");
        assert_eq!(grant.expires_at - grant.created_at, month);
        let hash = grant.passphrase_hash.as_deref().unwrap();
        assert!(sealgate_crypto::verify_password("correct horse", hash));
        let notice_id = report
            .evidence
            .reply
            .as_deref()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap();
        assert_notice(&s, notice_id, grant).await;
    }
    let audit = store
        .audit_after(0, &AuditFilter::default(), 100)
        .await
        .unwrap();
    let notices: Vec<_> = audit.iter().filter(|e| e.kind == "portal_notice").collect();
    assert_eq!(notices.len(), 2);
    assert!(
        notices
            .iter()
            .all(|e| e.message_id.as_deref() == Some(queue_id.as_str()))
    );
    assert!(
        audit
            .iter()
            .all(|e| !e.data.contains("correct horse") && !e.data.contains("Potassium"))
    );
}

/// The queued notice for `grant`: phi-free origin, from `notice_from`, to the recipient, its
/// link's token hashing to the grant's, and nothing of the original in it.
async fn assert_notice(s: &Setup, notice_id: &str, grant: &GrantRow) {
    let row = s.queue.store().message(notice_id).await.unwrap().unwrap();
    assert_eq!(row.origin.as_deref(), Some(ORIGIN_NOTICE));
    assert_eq!(row.sender, "portal@relay.clinic.test");
    let rcpts = s.queue.store().recipients_of(notice_id).await.unwrap();
    assert_eq!(
        rcpts.iter().map(|r| r.rcpt.as_str()).collect::<Vec<_>>(),
        [grant.recipient.as_str()]
    );
    let text = String::from_utf8(s.queue.open(&notice_id.parse().unwrap()).await.unwrap()).unwrap();
    assert_eq!(link_token_hash(&token_in(&text)), grant.token_hash);
    for secret in [SUBJECT, "Potassium", "correct horse", SENDER] {
        assert!(!text.contains(secret), "{secret:?} in the notice:\n{text}");
    }
    assert!(text.contains("or enter the passphrase agreed with the sender"));
}

async fn a_retried_deposit_makes_no_second_grant_or_notice(backend: TestBackend) {
    let s = setup(backend).await;
    let (_, part) = claimed(&s.queue).await;
    deposit(&s.queue, &s.settings, &part, CONTENT, None).await;
    let messages = s.queue.store().count_messages().await.unwrap();
    let again = deposit(&s.queue, &s.settings, &part, CONTENT, None).await;
    for r in &again {
        assert_eq!(r.outcome(), Outcome::Delivered);
        let reply = r.evidence.reply.as_deref().unwrap_or_default();
        assert_eq!(reply, "stored in the secure portal; notice queued earlier");
    }
    let store = s.queue.store();
    assert_eq!(
        store.count_messages().await.unwrap(),
        messages,
        "no new notice"
    );
    let grants = store.portal_grants().await.unwrap();
    assert_eq!(grants.len(), 2);
    assert!(grants.iter().all(|g| g.passphrase_hash.is_none()));
    let thread = store.portal_thread(&grants[0].thread_id).await.unwrap();
    assert_eq!(thread.len(), 1, "one sealed copy");
}

async fn a_store_failure_defers_every_recipient(backend: TestBackend) {
    let s = setup(backend).await;
    let (_, part) = claimed(&s.queue).await;
    s.queue.store().close().await;
    let reports = deposit(&s.queue, &s.settings, &part, CONTENT, None).await;
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r.outcome(), Outcome::Temporary);
        let reply = r.evidence.reply.as_deref().unwrap_or_default();
        assert!(
            reply.starts_with("4.3.0 local error: cannot store in the secure portal"),
            "{reply}"
        );
    }
}

#[test]
fn the_passphrase_comes_from_its_header_only_when_usable() {
    let h = |v: &str| {
        vec![
            ("X-Other".to_owned(), "x".to_owned()),
            ("x-sealgate-passphrase".to_owned(), v.to_owned()),
        ]
    };
    assert_eq!(
        passphrase(&h(" open sesame ")).as_deref(),
        Some("open sesame")
    );
    assert_eq!(passphrase(&h("")), None);
    assert_eq!(passphrase(&h(&"x".repeat(300))), None);
    assert_eq!(passphrase(&[]), None);
}

sealgate_testkit::on_each_backend!(
    recipients_are_sealed_on_the_portal_and_each_gets_a_notice,
    a_retried_deposit_makes_no_second_grant_or_notice,
    a_store_failure_defers_every_recipient,
);
