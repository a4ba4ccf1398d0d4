//! A portal over a fresh SQLite store, driven without a socket (`tower::ServiceExt::oneshot`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use sealgate_audit::AuditEvent;
use sealgate_crypto::KeyRing;
use sealgate_crypto::portal::{link_token_hash, new_link_token, seal_message};
use sealgate_portal::{CSRF_COOKIE, PortalContext, PortalSettings, SESSION_COOKIE, router};
use sealgate_queue::{IncomingMessage, ORIGIN_NOTICE, Queue, data_digest};
use sealgate_store::{AuditFilter, GrantRow, PortalMessageRow, Store};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_types::{MessageId, time};
use tower::ServiceExt;

/// Who sent the original messages.
pub(crate) const SENDER: &str = "ada@clinic.test";

/// A message with an HTML body, a text alternative and one attachment.
pub(crate) const MESSAGE: &[u8] = b"From: Dr. Ada <ada@clinic.test>\r\n\
To: bob@patient.test\r\n\
Subject: Your lab results\r\n\
Date: Tue, 3 Jun 2025 10:00:00 +0000\r\n\
Message-ID: <orig-1@clinic.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\
\r\n\
--XX\r\n\
Content-Type: multipart/alternative; boundary=YY\r\n\
\r\n\
--YY\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Your results are attached.\r\n\
--YY\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Your <b>results</b> are attached.<img src=\"https://tracker.test/p.gif\"><script>alert(1)</script></p>\r\n\
--YY--\r\n\
--XX\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"results.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKcmVzdWx0cwo=\r\n\
--XX--\r\n";

/// The portal's public origin in the test settings.
pub(crate) const ORIGIN: &str = "https://portal.test";

/// The client address of requests unless a test names another.
pub(crate) const CLIENT: &str = "192.0.2.10:40000";

/// What Chromium sends with a form post from the portal's own page.
pub(crate) const SAME_ORIGIN: &[(&str, &str)] =
    &[("sec-fetch-site", "same-origin"), ("origin", ORIGIN)];

/// Test shorthands for the link's own cookies: `sg_portal` is the session cookie and
/// `sg_csrf` the pre-session CSRF cookie of the link a request or response is about (their
/// real names are `__Host-` names with a tag of the link, see `cookie_name`).
const ALIASES: [(&str, &str); 2] = [("sg_portal", SESSION_COOKIE), ("sg_csrf", CSRF_COOKIE)];

/// The real cookie name behind `name` for a request to `path` (`/p/{token}...`).
fn real_cookie_name(name: &str, path: &str) -> String {
    let token = path
        .strip_prefix("/p/")
        .and_then(|rest| rest.split(['/', '?']).next())
        .unwrap_or_default();
    match ALIASES.iter().find(|(alias, _)| *alias == name) {
        Some((_, kind)) => sealgate_portal::cookie_name(kind, token),
        None => name.to_owned(),
    }
}

/// The attachment's bytes.
pub(crate) const ATTACHMENT: &[u8] = b"%PDF-1.4\nresults\n";

/// A link as the notice would carry it.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub token: String,
    pub grant_id: String,
    pub thread_id: String,
}

impl Link {
    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/p/{}{rest}", self.token)
    }
}

/// A response, collected.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The full Set-Cookie line for cookie `name` (or the link's cookie an alias names), if
    /// set.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        let prefix = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(format!("{name}="), |(_, kind)| (*kind).to_owned());
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&prefix))
            .map(str::to_owned)
    }

    /// The value of cookie `name` as set.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let first = line.split(';').next()?;
        Some(first.split_once('=')?.1.to_owned())
    }

    /// The value of the hidden `csrf` field of the page.
    pub(crate) fn csrf_field(&self) -> String {
        let text = self.text();
        let at = text.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        text[at..].split('"').next().unwrap_or_default().to_owned()
    }
}

/// The default test settings: three attempts, no resend throttle, no receipts.
pub(crate) fn settings() -> PortalSettings {
    PortalSettings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls: None,
        code_ttl: Duration::from_secs(900),
        max_code_attempts: 3,
        lockout: Duration::from_secs(900),
        session_ttl: Duration::from_secs(1800),
        organisation: "Clinic".to_owned(),
        notice_from: "portal@relay.test".to_owned(),
        read_receipts: false,
        code_resend_interval: Duration::ZERO,
        shutdown_grace: Duration::from_secs(1),
        public_origin: ORIGIN.to_owned(),
        refusal_limit: 10,
        refusal_window: Duration::from_secs(60),
        trusted_proxies: Vec::new(),
    }
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The portal under test and what is behind it.
pub(crate) struct Fixture {
    pub app: Router,
    pub ctx: PortalContext,
    pub store: Store,
    pub queue: Queue,
    pub master: Arc<KeyRing>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        Self::with(settings()).await
    }

    pub(crate) async fn with(settings: PortalSettings) -> Self {
        let db = TestDb::new(TestBackend::Sqlite).await;
        let store = Store::connect(&db.url, 4, Duration::from_secs(5))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let dir = tempfile::tempdir().expect("tempdir");
        let (keys, _) = KeyRing::load_or_create(&dir.path().join("seal.key")).expect("seal key");
        let (master, _) =
            KeyRing::load_or_create(&dir.path().join("portal.key")).expect("portal key");
        let master = Arc::new(master);
        let queue = Queue::new(store.clone(), Arc::new(keys));
        let ctx = PortalContext {
            store: store.clone(),
            queue: queue.clone(),
            master: master.clone(),
            settings,
            hostname: "relay.test".to_owned(),
        };
        Self {
            app: router(ctx.clone()),
            ctx,
            store,
            queue,
            master,
            _db: db,
            _dir: dir,
        }
    }

    /// Stores `content` for `recipients` (one grant each) like the portal worker would.
    pub(crate) async fn deposit(
        &self,
        content: &[u8],
        recipients: &[&str],
        valid_micros: i64,
    ) -> Vec<Link> {
        self.deposit_with(content, recipients, valid_micros, None)
            .await
    }

    pub(crate) async fn deposit_with(
        &self,
        content: &[u8],
        recipients: &[&str],
        valid_micros: i64,
        passphrase: Option<&str>,
    ) -> Vec<Link> {
        let now = time::now_micros();
        let id = uuid::Uuid::new_v4().to_string();
        let (key_sealed, content_sealed) =
            seal_message(&self.master, content, id.as_bytes()).expect("seal");
        let msg = PortalMessageRow {
            id: id.clone(),
            thread_id: id.clone(),
            message_id: Some(MessageId::new().to_string()),
            author: SENDER.to_owned(),
            sender: SENDER.to_owned(),
            key_sealed,
            content_sealed,
            size: content.len() as i64,
            created_at: now,
            purged_at: None,
        };
        let mut links = Vec::new();
        let (mut grants, mut notices, mut audit) = (Vec::new(), Vec::new(), Vec::new());
        for rcpt in recipients {
            let token = new_link_token().expect("token");
            let grant = GrantRow {
                id: uuid::Uuid::new_v4().to_string(),
                token_hash: link_token_hash(&token),
                portal_message_id: id.clone(),
                thread_id: id.clone(),
                recipient: (*rcpt).to_owned(),
                sender: SENDER.to_owned(),
                expires_at: now + valid_micros,
                revoked_at: None,
                passphrase_hash: passphrase
                    .map(|p| sealgate_crypto::hash_password(p).expect("hash")),
                code_hash: None,
                code_expires_at: None,
                failed_attempts: 0,
                locked_until: None,
                first_viewed_at: None,
                created_at: now,
            };
            let notice = self.notice(rcpt);
            audit.push(
                AuditEvent::PortalNotice {
                    message_id: msg.message_id.clone().unwrap_or_default(),
                    recipient: (*rcpt).to_owned(),
                    grant_id: grant.id.clone(),
                    expires: grant.expires_at,
                    notice_id: notice.0.id.clone(),
                }
                .into_record(),
            );
            links.push(Link {
                token,
                grant_id: grant.id.clone(),
                thread_id: id.clone(),
            });
            grants.push(grant);
            notices.push(notice);
        }
        self.store
            .portal_deposit(&msg, &grants, &notices, &audit)
            .await
            .expect("deposit");
        links
    }

    fn notice(&self, rcpt: &str) -> sealgate_store::PortalOutgoing {
        let content =
            format!("From: portal@relay.test\r\nTo: {rcpt}\r\nSubject: notice\r\n\r\nA link.\r\n");
        let content = content.into_bytes();
        self.queue
            .prepare(IncomingMessage {
                id: MessageId::new(),
                sender: "portal@relay.test".to_owned(),
                recipients: vec![rcpt.to_owned()],
                client_data_sha256: data_digest(&content),
                client_data_size: content.len() as u64,
                header_message_id: None,
                content,
                client_ip: "127.0.0.1".to_owned(),
                helo: "relay.test".to_owned(),
                auth_user: None,
                tls: None,
                requiretls: false,
                origin: Some(ORIGIN_NOTICE.to_owned()),
                tenant: None,
                api_key: None,
            })
            .expect("prepare")
            .into_parts()
    }

    pub(crate) async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 16 << 20)
            .await
            .expect("body")
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    fn request(method: &str, path: &str, cookies: &[(&str, &str)]) -> axum::http::request::Builder {
        let client: SocketAddr = CLIENT.parse().expect("addr");
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .extension(ConnectInfo(client));
        if !cookies.is_empty() {
            let c: Vec<String> = cookies
                .iter()
                .map(|(k, v)| format!("{}={v}", real_cookie_name(k, path)))
                .collect();
            b = b.header(header::COOKIE, c.join("; "));
        }
        b
    }

    pub(crate) async fn get(&self, path: &str, cookies: &[(&str, &str)]) -> Resp {
        let req = Self::request("GET", path, cookies)
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// A form post from the portal's own page (the headers a browser sends with it).
    pub(crate) async fn post(
        &self,
        path: &str,
        cookies: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Resp {
        self.post_with(path, cookies, form, SAME_ORIGIN, CLIENT)
            .await
    }

    /// A form post with exactly `headers`, from `client`.
    pub(crate) async fn post_with(
        &self,
        path: &str,
        cookies: &[(&str, &str)],
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
        client: &str,
    ) -> Resp {
        let client: SocketAddr = client.parse().expect("client addr");
        let mut b = Self::request("POST", path, cookies)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .extension(ConnectInfo(client));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(form_encode(form))).expect("request");
        self.send(req).await
    }

    /// Audit rows of `kind`, as (recipient, data).
    pub(crate) async fn audit(&self, kind: &str) -> Vec<serde_json::Value> {
        self.store
            .audit_after(0, &AuditFilter::default(), 10_000)
            .await
            .expect("audit")
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| serde_json::from_str(&e.data).expect("json"))
            .collect()
    }

    /// The queued message `id`, opened.
    pub(crate) async fn queued(&self, id: &str) -> (sealgate_store::MessageRow, String) {
        let row = self.store.message(id).await.expect("read").expect("queued");
        let raw = self
            .queue
            .open(&id.parse().expect("id"))
            .await
            .expect("open");
        (row, String::from_utf8_lossy(&raw).into_owned())
    }

    /// The code in the last code email sent.
    pub(crate) async fn last_code(&self) -> String {
        let sent = self.audit("portal_code_sent").await;
        let id = sent.last().expect("a code was sent")["notice_id"]
            .as_str()
            .expect("notice id")
            .to_owned();
        let (_, text) = self.queued(&id).await;
        let line = text
            .lines()
            .find(|l| l.starts_with("Code: "))
            .expect("a Code: line");
        line["Code: ".len()..].trim().to_owned()
    }

    /// GET the link for the CSRF cookie, then POST a code request. Returns the CSRF token.
    pub(crate) async fn ask_code(&self, link: &Link) -> String {
        let page = self.get(&link.path(""), &[]).await;
        let csrf = page.cookie("sg_csrf").expect("csrf cookie");
        assert_eq!(page.csrf_field(), csrf, "double submit: field = cookie");
        let sent = self
            .post(
                &link.path("/code"),
                &[("sg_csrf", &csrf)],
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        csrf
    }

    /// The whole code flow; returns the session cookie's value.
    pub(crate) async fn verified(&self, link: &Link) -> String {
        let csrf = self.ask_code(link).await;
        let code = self.last_code().await;
        let res = self
            .post(
                &link.path("/verify"),
                &[("sg_csrf", &csrf)],
                &[("csrf", &csrf), ("code", &code)],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
        res.cookie("sg_portal").expect("session cookie")
    }
}
