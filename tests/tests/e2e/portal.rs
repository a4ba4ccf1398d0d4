//! The secure portal end to end, judged by a real browser: the policy engine sends a
//! recipient with neither verified TLS nor a key to the portal, the notice arrives at the
//! recipient's MX, and headless Chromium (Debian's, driven by playwright-core) opens the
//! link, proves the address with the code from a second email, reads, downloads and replies —
//! the reply arriving at the original sender's MX. Security tests (attempt limits, expired and
//! revoked links, another recipient's link, CSRF, XSS) and a sanitizer battery of known
//! webmail bypasses assert on what the browser did: its dialogs, console and every network
//! request, and on a canary server that must never be reached.

mod access;
mod battery;
mod dkim;
mod flow;
mod isolation;
mod recall;
mod returned;
mod xss;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use sealgate_testkit::browser::Browser;
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_testkit::postfix::free_addr;
use sealgate_testkit::smtp_sink::{ReceivedMessage, SmtpSink};
use sealgate_tests::{Daemon, DaemonOpts, py_send};
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db};
use crate::lab::{SecureLab, WITHOUT_AUTHENTICATED, eventually, spki_sha256};

/// Longest wait for one step (a delivery, an email, a page).
const WAIT: Duration = Duration::from_secs(30);
/// The recipient domain's MX: plain SMTP, no STARTTLS, no TLSA, and no key for anyone there,
/// so with protection required the portal is all that is left.
const MX_IP: [u8; 4] = [127, 0, 0, 5];
/// The sender's domain MX: STARTTLS with a lab certificate pinned by DANE, so replies (which
/// carry protected content) can be delivered under the default policy.
const CLINIC_MX_IP: [u8; 4] = [127, 0, 0, 7];
/// The recipient of most tests.
const RCPT: &str = "jane@example.test";
/// A second recipient, for isolation tests.
const OTHER: &str = "bob@example.test";
/// The original sender: where replies go.
const SENDER: &str = "ehr@clinic.test";
/// The organisation named in notices.
const ORGANISATION: &str = "Clinic Test Org";

/// A lab with the recipient's and the sender's domains, their MX sinks, and a daemon whose
/// portal serves HTTPS on a loopback port with a lab certificate.
struct PortalLab {
    lab: SecureLab,
    /// The recipient domain's MX (notices and codes arrive here).
    mx: SmtpSink,
    /// The sender's MX (replies arrive here).
    clinic: SmtpSink,
    daemon: Daemon,
    /// `portal.public_url`: `https://127.0.0.1:PORT`.
    base: String,
    dir: tempfile::TempDir,
    _db: Option<TestDb>,
}

impl PortalLab {
    /// Starts everything; `portal` holds extra `[portal]` keys (TOML lines) such as
    /// `grant_days = 0`.
    fn start(backend: TestBackend, portal: &str) -> Self {
        Self::start_with(backend, portal, "")
    }

    /// [`PortalLab::start`] with `more` (whole TOML tables, such as `[api]`) in the
    /// configuration too.
    fn start_with(backend: TestBackend, portal: &str, more: &str) -> Self {
        let builder = SecureLab::builder();
        let clinic_cert = builder.issue(&["mx.clinic.test"]);
        let tlsa = format!(
            "_{}._tcp.mx IN TLSA 3 1 1 {}\n",
            builder.port(),
            spki_sha256(&clinic_cert)
        );
        let lab = builder
            .signed("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
            .signed(
                "clinic.test",
                &format!("@ IN MX 10 mx\nmx IN A 127.0.0.7\n{tlsa}"),
            )
            .start();
        let mx = lab.sink_with(MX_IP, |_| {});
        let clinic = lab.tls_sink(CLINIC_MX_IP, &clinic_cert);
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = free_addr(Ipv4Addr::LOCALHOST);
        let base = format!("https://{listen}");
        let extra = format!(
            "{}{more}",
            portal_table(&lab, dir.path(), listen, &base, portal)
        );
        let db = match backend {
            TestBackend::Sqlite => None,
            TestBackend::Postgres => Some(fresh_db(backend)),
        };
        let opts = match &db {
            Some(db) => DaemonOpts::with_db(&db.url),
            None => DaemonOpts::default(),
        };
        let daemon = Daemon::start(DaemonOpts {
            extra_toml: lab.config_with(WITHOUT_AUTHENTICATED, &extra),
            ..opts
        });
        wait_listening(listen, &daemon);
        Self {
            lab,
            mx,
            clinic,
            daemon,
            base,
            dir,
            _db: db,
        }
    }

    /// Sends `message` from [`SENDER`] to `to`; its queue id.
    fn send(&self, to: &[&str], message: &[u8]) -> String {
        let file = self
            .dir
            .path()
            .join(format!("message-{}.eml", uuid::Uuid::new_v4()));
        std::fs::write(&file, message).expect("write message");
        let path = file.display().to_string();
        let mut args = vec!["--from", SENDER, "--body-file", &path];
        for rcpt in to {
            args.extend(["--to", rcpt]);
        }
        let sent = py_send(self.daemon.addr("starttls"), &args);
        sent.assert_all_queued();
        sent.queue_ids().remove(0)
    }

    /// What the daemon committed.
    fn inspect(&self) -> Inspect {
        Inspect::new(
            self.daemon.db_url(),
            Some(&self.daemon.data_dir().join("seal.key")),
        )
    }

    /// The messages the recipient domain's MX accepted for `rcpt`, oldest first.
    fn mail_for(&self, rcpt: &str) -> Vec<ReceivedMessage> {
        self.mx
            .received()
            .into_iter()
            .filter(|m| m.rcpts.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .collect()
    }

    /// Waits until the MX holds more than `seen` messages for `rcpt`; the newest.
    fn next_mail_for(&self, rcpt: &str, seen: usize) -> ReceivedMessage {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut mail = self.mail_for(rcpt);
            if mail.len() > seen {
                return mail.remove(mail.len() - 1);
            }
            assert!(
                Instant::now() < deadline,
                "no mail #{} for {rcpt} at the MX\n{}",
                seen + 1,
                self.daemon.output_report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The portal link in the first mail to `rcpt` (its notice), once it arrived.
    fn link_for(&self, rcpt: &str) -> String {
        let notice = self.next_mail_for(rcpt, 0);
        link_in(&mail_text(&notice.data), &self.base)
            .unwrap_or_else(|| panic!("no portal link in the notice:\n{}", show(&notice)))
    }

    /// Clicks "send a code" on the verify page the browser shows for `rcpt`, and returns the
    /// code from the email that follows.
    fn request_code(&self, b: &mut Browser, rcpt: &str) -> String {
        let before = self.mail_for(rcpt).len();
        b.click(SEND_CODE).expect("click send-code");
        let mail = self.next_mail_for(rcpt, before);
        code_in(&mail_text(&mail.data))
            .unwrap_or_else(|| panic!("no 8-digit code in:\n{}", show(&mail)))
    }

    /// Opens `link`, has a code sent and enters it: the browser ends on the thread page.
    fn verify(&self, b: &mut Browser, link: &str, rcpt: &str) {
        b.goto(link).expect("open the link");
        let code = self.request_code(b, rcpt);
        b.fill(CODE_INPUT, &code).expect("fill the code");
        let nav = b.click(VERIFY).expect("submit the code");
        assert_eq!(
            nav.url,
            format!("{link}/thread"),
            "not on the thread after a right code:\n{}",
            b.content().unwrap_or_default()
        );
    }

    /// The data of every audit event of `kind`, oldest first, with the row's `message_id`
    /// and `recipient` columns added where the data has no such key.
    fn events(&self, kind: &str) -> Vec<Value> {
        self.inspect()
            .audit()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| {
                let mut data: Value = serde_json::from_str(&e.data).expect("audit data is JSON");
                if let Value::Object(map) = &mut data {
                    for (key, column) in [("message_id", e.message_id), ("recipient", e.recipient)]
                    {
                        if let Some(v) = column {
                            map.entry(key).or_insert(Value::String(v));
                        }
                    }
                }
                data
            })
            .collect()
    }

    /// Waits until there are at least `n` audit events of `kind`; returns them all.
    fn wait_events(&self, kind: &str, n: usize) -> Vec<Value> {
        eventually(WAIT, &format!("{n} {kind} event(s)"), || {
            self.events(kind).len() >= n
        });
        self.events(kind)
    }
}

/// The `[portal]` table: HTTPS with a lab certificate for 127.0.0.1, then `extra` keys.
fn portal_table(
    lab: &SecureLab,
    dir: &Path,
    listen: SocketAddr,
    base: &str,
    extra: &str,
) -> String {
    let (cert, key) = lab.ca.issue(&["127.0.0.1"]).write_to(dir, "portal");
    let mut table: toml::Table = format!(
        "enabled = true\nlisten = \"{listen}\"\npublic_url = \"{base}\"\n\
         tls_cert_file = {:?}\ntls_key_file = {:?}\norganisation = \"{ORGANISATION}\"\n",
        cert.display().to_string(),
        key.display().to_string()
    )
    .parse()
    .expect("the portal table is TOML");
    let extra: toml::Table = extra.parse().expect("extra portal keys are TOML");
    table.extend(extra);
    let mut root = toml::Table::new();
    root.insert("portal".into(), toml::Value::Table(table));
    toml::to_string(&root).expect("serialise the portal table")
}

/// Waits until the portal accepts connections on `addr`.
fn wait_listening(addr: SocketAddr, daemon: &Daemon) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the portal does not listen on {addr}\n{}",
            daemon.output_report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The verify page's button that has a code sent.
const SEND_CODE: &str = "form[action$=\"/code\"] button";
/// The verify page's code field.
const CODE_INPUT: &str = "form[action$=\"/verify\"] input[name=\"code\"]";
/// The verify page's submit button.
const VERIFY: &str = "form[action$=\"/verify\"] button";
/// The thread page's reply field and button.
const REPLY_INPUT: &str = "form[action$=\"/reply\"] textarea[name=\"body\"]";
const REPLY: &str = "form[action$=\"/reply\"] button";
/// The thread page's sign-out button.
const SIGN_OUT: &str = "form[action$=\"/signout\"] button";
/// The name of a session cookie, before the tag of its link.
const SESSION_PREFIX: &str = "__Host-sg_portal-";

/// A started browser (panics with the reason when Chromium or node is missing).
fn browser() -> Browser {
    Browser::start().unwrap_or_else(|e| panic!("cannot start the browser: {e}"))
}

/// Waits until a sanitized body frame of the page shows `marker` (body frames load lazily).
fn wait_body_text(b: &mut Browser, marker: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let frames = b
            .eval_in_frames("document.body ? document.body.innerText : ''")
            .expect("read the frames");
        let shown = frames.iter().any(|f| {
            f.url.contains("/body/")
                && f.value
                    .as_ref()
                    .is_ok_and(|v| v.as_str().is_some_and(|t| t.contains(marker)))
        });
        if shown {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no body frame shows {marker:?}: {frames:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text of a mail as a reader would see it: quoted-printable soft breaks joined and
/// `=3D` decoded, or a base64 body decoded.
fn mail_text(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let lower = head.to_ascii_lowercase();
    if lower.contains("content-transfer-encoding: base64") {
        use base64::Engine as _;
        let joined: String = body.split_whitespace().collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(joined) {
            return format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&bytes));
        }
    }
    text.replace("=\r\n", "").replace("=3D", "=")
}

/// The first `{base}/p/{token}` in `text`.
fn link_in(text: &str, base: &str) -> Option<String> {
    let prefix = format!("{base}/p/");
    let start = text.find(&prefix)? + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (token.len() >= 22).then(|| format!("{prefix}{token}"))
}

/// The first run of exactly eight digits in the body of `text`.
fn code_in(text: &str) -> Option<String> {
    let body = text.split_once("\r\n\r\n").map_or(text, |(_, b)| b);
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 8)
        .map(str::to_owned)
}

/// A received mail, for failure messages.
fn show(m: &ReceivedMessage) -> String {
    format!(
        "from {} to {:?}:\n{}",
        m.mail_from,
        m.rcpts,
        String::from_utf8_lossy(&m.data)
    )
}

/// `text` with CRLF line ends and lines folded to stay short, as base64 for a MIME part.
fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// A message with a text part, an HTML part (base64, so any markup survives transport) and
/// an attachment.
struct Message<'a> {
    to: &'a str,
    subject: &'a str,
    text: &'a str,
    html: &'a str,
    filename: &'a str,
    attachment: &'a [u8],
}

impl Message<'_> {
    fn render(&self) -> Vec<u8> {
        format!(
            "From: EHR <{SENDER}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
             Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@clinic.test>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
             --mixed\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
             --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{text}\
             --alt\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{html}--alt--\r\n\
             --mixed\r\nContent-Type: application/pdf; name=\"{filename}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"{filename}\"\r\n\r\n{attachment}\
             --mixed--\r\n",
            to = self.to,
            subject = self.subject,
            id = uuid::Uuid::new_v4(),
            text = base64_lines(self.text.as_bytes()),
            html = base64_lines(self.html.as_bytes()),
            filename = self.filename,
            attachment = base64_lines(self.attachment),
        )
        .into_bytes()
    }
}

/// Every byte value, several times over: a download must keep them all.
fn attachment_bytes(seed: u8) -> Vec<u8> {
    (0..=255u8).cycle().skip(seed.into()).take(3000).collect()
}

#[test]
fn links_and_codes_are_found_in_mail_text() {
    let base = "https://127.0.0.1:8443";
    let qp =
        "Open=\r\n https://127.0.0.1:8443/p/abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE=\r\nFG now";
    assert_eq!(
        link_in(&mail_text(qp.as_bytes()), base).as_deref(),
        Some("https://127.0.0.1:8443/p/abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFG")
    );
    assert_eq!(link_in("https://127.0.0.1:8443/p/short", base), None);
    let code = "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nYour code: 01234567 (valid 15 min)";
    assert_eq!(code_in(code).as_deref(), Some("01234567"));
    assert_eq!(code_in("Subject: x\r\n\r\nno 123456789 code"), None);
}
