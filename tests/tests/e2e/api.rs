//! The REST API's keys and its first endpoint, as an EHR's integration uses them over real
//! HTTPS (curl): keys made by `sealgate api-keys add` and shown once; `GET
//! /v1/messages/{id}` with a read key; a key without the scope, a key for other sender domains,
//! a wrong secret and a revoked key refused at once; each key's per-minute budget; and every
//! request under a known key id in the audit log, never its secret.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sealgate_testkit::tls::TestCa;
use sealgate_tests::{Daemon, DaemonOpts, py_send};
use serde_json::Value;

use crate::inspect::Inspect;

const HOST: &str = "relay.example.test";

struct Api {
    daemon: Daemon,
    port: u16,
    ca: String,
    _dir: tempfile::TempDir,
}

/// The status, headers and body of one request.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: Value,
    pub(crate) text: String,
}

/// The daemon's API listener: its address and its "api listener bound" log line.
pub(crate) fn api_bound(daemon: &Daemon) -> (std::net::SocketAddr, Value) {
    let bound = daemon.wait_for_log(Duration::from_secs(10), |v| {
        v.pointer("/fields/message").and_then(Value::as_str) == Some("api listener bound")
    });
    let addr = bound
        .pointer("/fields/addr")
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {bound}"));
    (addr, bound)
}

/// One request with curl: `args` are curl's own (more headers, the CA), `body` goes on stdin.
pub(crate) fn curl(
    method: &str,
    url: &str,
    key: Option<&str>,
    args: &[&str],
    body: Option<&str>,
) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-X", method]).args(args);
    if let Some(k) = key {
        cmd.args(["-H", &format!("Authorization: Bearer {k}")]);
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    let out = cmd
        .arg(url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(body.unwrap_or_default().as_bytes())?;
            drop(stdin);
            child.wait_with_output()
        })
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").expect("headers and body");
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Answer {
        status,
        headers: headers.to_ascii_lowercase(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        text: body.to_owned(),
    }
}

impl Api {
    /// A daemon serving the API, each key allowed six requests a minute.
    fn start() -> Self {
        Self::start_with(6)
    }

    fn start_with(per_minute: u32) -> Self {
        Self::start_on(per_minute, None)
    }

    /// On PostgreSQL at `db_url` when given, else SQLite.
    fn start_on(per_minute: u32, db_url: Option<String>) -> Self {
        let ca = TestCa::new();
        let cert = ca.issue(&[HOST, "127.0.0.1"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = ca.write_to(dir.path()).display().to_string();
        let daemon = Daemon::start(DaemonOpts {
            tls: Some(&cert),
            extra_toml: format!(
                "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\nrequests_per_minute = {per_minute}\n"
            ),
            db_url,
            ..DaemonOpts::default()
        });
        let (addr, bound) = api_bound(&daemon);
        assert_eq!(
            bound.pointer("/fields/tls"),
            Some(&Value::Bool(true)),
            "{bound}"
        );
        Self {
            daemon,
            port: addr.port(),
            ca: ca_file,
            _dir: dir,
        }
    }

    /// `sealgate api-keys add NAME ARGS`: the key printed once.
    fn key(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["api-keys", "add", name];
        all.extend_from_slice(args);
        let out = self.daemon.cli(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(token.starts_with("sgk_"), "{token}");
        token
    }

    fn get(&self, path: &str, key: Option<&str>) -> Answer {
        let url = format!("https://{HOST}:{}{path}", self.port);
        let resolve = format!("{HOST}:{}:127.0.0.1", self.port);
        curl(
            "GET",
            &url,
            key,
            &["--cacert", &self.ca, "--resolve", &resolve],
            None,
        )
    }
}

fn message(api: &Api, from: &str) -> String {
    let sent = py_send(
        api.daemon.addr("starttls"),
        &[
            "--starttls",
            "--cafile",
            &api.ca,
            "--servername",
            HOST,
            "--from",
            from,
            "--to",
            "jane@example.org",
        ],
    );
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

fn error_of(a: &Answer) -> String {
    a.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn keys_scopes_sender_domains_revocation_and_budgets_hold_and_every_use_is_audited() {
    let api = Api::start();
    let id = message(&api, "ehr@clinic.test");
    let reader = api.key("ehr-reader", &["--scope", "read"]);
    let sender_only = api.key("ehr-send", &["--scope", "send"]);
    let other_domain = api.key(
        "lab-reader",
        &["--scope", "read", "--sender-domain", "lab.test"],
    );
    let path = format!("/v1/messages/{id}");

    // No key: 401 with the Bearer challenge.
    let none = api.get(&path, None);
    assert_eq!(none.status, 401);
    assert!(
        none.headers.contains("www-authenticate: bearer"),
        "{}",
        none.headers
    );

    // A read key sees the message and its recipient.
    let ok = api.get(&path, Some(&reader));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["id"], id.as_str());
    assert_eq!(ok.body["sender"], "ehr@clinic.test");
    assert_eq!(ok.body["recipients"][0]["address"], "jane@example.org");
    assert!(ok.body["recipients"][0]["state"].is_string(), "{}", ok.body);

    // A key without the scope; a key for other senders (the message is "not found" to it);
    // an id that does not exist.
    let no_scope = api.get(&path, Some(&sender_only));
    assert_eq!(no_scope.status, 403);
    assert!(
        error_of(&no_scope).contains("lacks the read scope"),
        "{}",
        no_scope.body
    );
    assert_eq!(api.get(&path, Some(&other_domain)).status, 404);
    assert_eq!(api.get("/v1/messages/nope", Some(&reader)).status, 404);

    // The right id with a wrong secret opens nothing.
    // sgk_ + 16 hex digits + _ is the public part; the secret follows.
    let forged = format!("{}{}", &reader[..21], "A".repeat(43));
    assert_eq!(api.get(&path, Some(&forged)).status, 401);

    // Revoked: refused from the next request on.
    let revoked = api.daemon.cli(["api-keys", "revoke", "ehr-reader"]);
    assert!(revoked.status.success());
    let after = api.get(&path, Some(&reader));
    assert_eq!(after.status, 401);
    assert!(error_of(&after).contains("revoked"), "{}", after.body);

    // Six requests a minute per key: the seventh is 429 with Retry-After.
    let burst = api.key("burst", &["--scope", "read"]);
    for _ in 0..6 {
        assert_eq!(api.get(&path, Some(&burst)).status, 200);
    }
    let over = api.get(&path, Some(&burst));
    assert_eq!(over.status, 429);
    assert!(over.headers.contains("retry-after: "), "{}", over.headers);

    // The audit log: each request under a known key id, with its answer; never a secret.
    let db = Inspect::new(
        api.daemon.db_url(),
        Some(&api.daemon.data_dir().join("seal.key")),
    );
    let requests: Vec<Value> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "api_request")
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect();
    let statuses: Vec<u64> = requests
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        statuses,
        [
            200, 403, 404, 404, 401, 401, 200, 200, 200, 200, 200, 200, 429
        ]
    );
    assert!(
        requests
            .iter()
            .all(|r| r["path"] == path.as_str() || r["path"] == "/v1/messages/nope")
    );
    let every = db.audit();
    for token in [&reader, &sender_only, &other_domain, &burst] {
        let secret = &token[21..];
        assert!(
            !every.iter().any(|e| e.data.contains(secret)),
            "a secret is in the audit log"
        );
    }
    let kinds: Vec<&str> = every.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "api_key_added").count(), 4);
    assert_eq!(kinds.iter().filter(|k| **k == "api_key_revoked").count(), 1);

    // `api-keys list` shows ids and states, never secrets.
    let listed = api.daemon.cli(["api-keys", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed
            .lines()
            .any(|l| l.contains("ehr-reader") && l.ends_with("revoked")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.contains("lab-reader") && l.contains("@lab.test")),
        "{listed}"
    );
    assert!(!listed.contains(&reader[21..]));
    let _ = Path::new(&api.ca);
}

/// `curl` with a JSON body to the plain-HTTP loopback API at `port`: status and body.
fn post(port: u16, key: &str, body: &str) -> (u16, Value) {
    let (status, _, body) = post_full(port, key, body, &["Content-Type: application/json"]);
    (status, body)
}

#[test]
fn a_json_message_is_built_queued_and_delivered_and_bad_input_is_refused_by_field_with_nothing_written()
 {
    use sealgate_testkit::db::TestBackend;
    use sealgate_testkit::smtp_sink::SinkScript;

    use crate::lab::{Lab, eventually};
    use crate::trail::first;

    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let store = crate::inspect::fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(
        &store.url,
        "1s",
        "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
         [smtp]\nmax_recipients = 4\nmax_message_size = \"32KiB\"\n",
    );
    let port = api_bound(&daemon).0.port();
    let add = |name: &str, args: &[&str]| {
        let mut all = vec!["api-keys", "add", name];
        all.extend_from_slice(args);
        let out = daemon.cli(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let sender = add(
        "ehr",
        &["--scope", "send,read", "--sender-domain", "clinic.test"],
    );
    let reader = add("viewer", &["--scope", "read"]);

    let good = serde_json::json!({
        "from": {"name": "Dr Grey", "address": "grey@clinic.test"},
        "to": ["jane@example.test"],
        "cc": [{"name": "Joe", "address": "joe@example.test"}],
        "bcc": ["audit@example.test"],
        "subject": "Your results",
        "text": "Your results are ready.",
        "html": "<p>Your results are ready.</p>",
        "attachments": [{"filename": "results.pdf", "content_type": "application/pdf",
                         "content": "JVBERi0xLjQKJcfsj6IK"}],
        "headers": {"X-Ehr-Order": "A-1234"}
    });
    let (status, body) = post(port, &sender, &good.to_string());
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("queue id").to_owned();
    assert_eq!(
        body["recipients"],
        serde_json::json!([
            "jane@example.test",
            "joe@example.test",
            "audit@example.test"
        ])
    );
    // Each recipient's method as it would be decided now (the lab: no protection required, an
    // MX without verified TLS).
    let preview = body["preview"].as_array().expect("preview");
    assert_eq!(preview.len(), 3, "{body}");
    for (p, rcpt) in preview.iter().zip([
        "jane@example.test",
        "joe@example.test",
        "audit@example.test",
    ]) {
        assert_eq!(p["recipient"], rcpt, "{body}");
        assert!(p["method"].is_string(), "{body}");
        assert_eq!(p["level"], "none", "{body}");
    }
    eventually(Duration::from_secs(30), "delivery to the sink", || {
        !sink.received().is_empty()
    });
    let got = &sink.received()[0];
    let text = String::from_utf8_lossy(&got.data).into_owned();
    assert_eq!(got.rcpts.len(), 3, "{:?}", got.rcpts);
    assert!(text.contains("X-Ehr-Order: A-1234"), "{text}");
    assert!(text.contains("results.pdf"), "{text}");
    assert!(text.contains("Dr Grey"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("audit@example.test"),
        "a blind copy shows:\n{text}"
    );
    assert!(text.contains("with HTTPS"), "{text}");
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    let received = first(&db, &id, "received");
    assert_eq!(received["origin"], "api", "{received}");
    assert_eq!(
        received["api_key"].as_str(),
        Some(&sender[4..20]),
        "{received}"
    );

    // Refusals: each names the field (or the scope), and nothing is queued.
    let with = |patch: Value| {
        let mut m = good.clone();
        for (k, v) in patch.as_object().expect("object") {
            m[k] = v.clone();
        }
        m.to_string()
    };
    let attachment = "A".repeat(40 * 1024);
    let cases: Vec<(String, String, u16, &str)> = vec![
        (sender.clone(), "{not json".to_owned(), 400, "the body"),
        (
            sender.clone(),
            with(serde_json::json!({"priority": "high"})),
            422,
            "priority",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"subject": "a\r\nBcc: x@evil.test"})),
            422,
            "subject: control characters",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"headers": {"X-A": "b\u{0}c"}})),
            422,
            "headers.X-A",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"headers": {"Bcc": "x@evil.test"}})),
            422,
            "headers.Bcc",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"to": ["jane%evil.test@example.test"]})),
            422,
            "to[0]",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"to": ["a@example.test\r\nRCPT TO:<x@evil.test>"]})),
            422,
            "to[0]",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"to": ["a@x.test", "b@x.test", "c@x.test", "d@x.test"]})),
            422,
            "at most 4 recipients",
        ),
        (
            sender.clone(),
            with(
                serde_json::json!({"attachments": [{"filename": "a", "content_type": "text/plain", "content": "**"}]}),
            ),
            422,
            "attachments[0].content: is not base64",
        ),
        (
            sender.clone(),
            with(
                serde_json::json!({"attachments": [{"filename": "a", "content_type": "application/octet-stream", "content": attachment}]}),
            ),
            413,
            "bytes; at most",
        ),
        (
            sender.clone(),
            with(serde_json::json!({"from": "grey@other.test"})),
            403,
            "from: this key may not send as grey@other.test",
        ),
        (
            reader.clone(),
            good.to_string(),
            403,
            "lacks the send scope",
        ),
    ];
    for (key, body, want, needle) in cases {
        let (status, answer) = post(port, &key, &body);
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(status, want, "{body}\n{answer}");
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    let received: Vec<_> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "received")
        .collect();
    assert_eq!(received.len(), 1, "a refused request queued something");
}

/// `curl` POST with extra request headers: status, response headers (lowercase) and body.
fn post_full(port: u16, key: &str, body: &str, extra: &[&str]) -> (u16, String, Value) {
    post_to(port, "", key, body, extra)
}

/// [`post_full`] with a query string (`?from=…&to=…`, or empty).
fn post_to(port: u16, query: &str, key: &str, body: &str, extra: &[&str]) -> (u16, String, Value) {
    let args: Vec<&str> = extra.iter().flat_map(|h| ["-H", h]).collect();
    let url = format!("http://127.0.0.1:{port}/v1/messages{query}");
    let a = curl("POST", &url, Some(key), &args, Some(body));
    (a.status, a.headers, a.body)
}

#[test]
fn an_idempotency_key_makes_retries_and_concurrent_duplicates_one_message() {
    use sealgate_testkit::db::TestBackend;

    use crate::lab::Lab;

    let lab = Lab::new(&[]);
    let store = crate::inspect::fresh_db(TestBackend::Postgres);
    let daemon = lab.daemon_with(
        &store.url,
        "1h",
        "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n",
    );
    let port = api_bound(&daemon).0.port();
    let out = daemon.cli(["api-keys", "add", "ehr", "--scope", "send"]);
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let json = "Content-Type: application/json";
    let body = |subject: &str| {
        serde_json::json!({"from": "ehr@clinic.test", "to": ["jane@example.test"],
                           "subject": subject, "text": "x"})
        .to_string()
    };

    // A retry after a lost answer: the first answer again, and nothing new.
    let (s1, h1, b1) = post_full(
        port,
        &key,
        &body("one"),
        &[json, "Idempotency-Key: order-1"],
    );
    let (s2, h2, b2) = post_full(
        port,
        &key,
        &body("one"),
        &[json, "Idempotency-Key: order-1"],
    );
    assert_eq!((s1, s2), (202, 202), "{b1} {b2}");
    assert_eq!(b1["id"], b2["id"]);
    assert!(!h1.contains("idempotent-replayed"), "{h1}");
    assert!(h2.contains("idempotent-replayed: true"), "{h2}");

    // The same key with another body: refused, nothing written.
    let (s3, _, b3) = post_full(
        port,
        &key,
        &body("two"),
        &[json, "Idempotency-Key: order-1"],
    );
    assert_eq!(s3, 422, "{b3}");
    assert!(
        b3["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Idempotency-Key:")),
        "{b3}"
    );

    // Eight concurrent requests with one new key: one message, eight equal answers.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let (s, _, b) = post_full(
                        port,
                        &key,
                        &body("three"),
                        &[json, "Idempotency-Key: order-3"],
                    );
                    (s, b)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(answers.iter().all(|(s, _)| *s == 202), "{answers:?}");
    assert!(
        answers.iter().all(|(_, b)| b["id"] == answers[0].1["id"]),
        "{answers:?}"
    );

    // Not JSON: 415; a malformed key: 400.
    assert_eq!(
        post_full(port, &key, &body("x"), &["Content-Type: text/plain"]).0,
        415
    );
    assert_eq!(
        post_full(
            port,
            &key,
            &body("x"),
            &[json, "Idempotency-Key: two words"]
        )
        .0,
        400
    );

    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    let received = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "received")
        .count();
    assert_eq!(received, 2, "one message per idempotency key");
}

#[test]
fn an_smtp_retry_with_the_same_idempotency_key_after_a_lost_reply_queues_nothing_new() {
    use sealgate_testkit::db::TestBackend;
    use sealgate_testkit::smtp_sink::SinkScript;

    use crate::lab::{Lab, eventually};

    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let store = crate::inspect::fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&store.url);
    // The EHR's message, byte for byte the same on a retry (its Message-ID and Date too).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, subject: &str, key: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "From: ehr@clinic.test\r\nTo: jane@example.test\r\nSubject: {subject}\r\n\
                 Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{name}@clinic.test>\r\n\
                 Sealgate-Idempotency-Key: {key}\r\n\r\nbody\r\n"
            ),
        )
        .expect("write");
        path.display().to_string()
    };
    let send = |path: &str| {
        py_send(
            daemon.addr("starttls"),
            &[
                "--from",
                "ehr@clinic.test",
                "--to",
                "jane@example.test",
                "--body-file",
                path,
            ],
        )
    };
    let results = file("m1", "results", "ehr-msg-42");
    let other_file = file("m2", "other", "ehr-msg-42");
    let bad_file = file("m3", "bad", "two words");
    // The EHR sent, lost the 250 and sends the very same message again.
    let first = send(&results);
    let again = send(&results);
    first.assert_all_queued();
    again.assert_all_queued();
    assert_eq!(first.queue_ids(), again.queue_ids());
    let text = again.results[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains("(already, by its Sealgate-Idempotency-Key)"),
        "{text}"
    );
    // The key with another message is refused; a malformed one too.
    let other = send(&other_file);
    assert_eq!(other.results[0]["code"], 554, "{:?}", other.results);
    let bad = send(&bad_file);
    assert_eq!(bad.results[0]["code"], 550, "{:?}", bad.results);
    eventually(Duration::from_secs(30), "delivery", || {
        !sink.received().is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.received().len(), 1, "delivered twice");
    let delivered = String::from_utf8_lossy(&sink.received()[0].data).into_owned();
    assert!(
        !delivered.contains("ehr-msg-42"),
        "the key left Sealgate:\n{delivered}"
    );
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    let received = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "received")
        .count();
    assert_eq!(received, 1);
}

#[test]
fn the_audit_log_reads_page_by_page_as_json_lines_for_an_admin_key_only() {
    let api = Api::start_with(1000);
    let first = message(&api, "ehr@clinic.test");
    let _second = message(&api, "ehr@clinic.test");
    let admin = api.key("auditor", &["--scope", "admin"]);
    let reader = api.key("viewer", &["--scope", "read"]);
    let limited = api.key(
        "clinic-admin",
        &["--scope", "admin", "--sender-domain", "clinic.test"],
    );

    // Page by page: each page's cursor leads to the next, sequence numbers rise without gaps.
    let mut seqs = Vec::new();
    let mut after = 0;
    for _ in 0..50 {
        let page = api.get(&format!("/v1/audit?after={after}&limit=2"), Some(&admin));
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(
            page.headers.contains("content-type: application/x-ndjson"),
            "{}",
            page.headers
        );
        let lines: Vec<Value> = page
            .text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        seqs.extend(lines.iter().map(|l| l["seq"].as_i64().expect("seq")));
        match page
            .headers
            .lines()
            .find_map(|l| l.strip_prefix("sealgate-next-after: "))
        {
            Some(next) => after = next.trim().parse().expect("cursor"),
            None => break,
        }
    }
    assert!(seqs.len() >= 5, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // A filter by message; a bad time is named.
    let one = api.get(&format!("/v1/audit?message={first}"), Some(&admin));
    let kinds: Vec<String> = one
        .text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["kind"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(kinds.first().is_some_and(|k| k == "received"), "{kinds:?}");
    assert!(one.text.lines().all(|l| l.contains(&first)), "{}", one.text);
    let bad = api.get("/v1/audit?since=yesterday", Some(&admin));
    assert_eq!(bad.status, 422);
    assert!(error_of(&bad).starts_with("since:"), "{}", bad.body);

    // Not for a read key, nor for a key limited to some senders.
    assert_eq!(api.get("/v1/audit", Some(&reader)).status, 403);
    assert_eq!(api.get("/v1/audit", Some(&limited)).status, 403);
}

#[test]
fn messages_are_listed_page_by_page_and_a_sender_limited_key_sees_only_its_senders() {
    let db = crate::inspect::fresh_db(sealgate_testkit::db::TestBackend::Postgres);
    let api = Api::start_on(1000, Some(db.url.clone()));
    let clinic: Vec<String> = (0..3).map(|_| message(&api, "ehr@clinic.test")).collect();
    let lab = message(&api, "results@lab.test");
    let reader = api.key("viewer", &["--scope", "read"]);
    let lab_key = api.key("lab", &["--scope", "read", "--sender-domain", "lab.test"]);

    let mut seen = Vec::new();
    let mut after = 0;
    for _ in 0..10 {
        let page = api.get(
            &format!("/v1/messages?after={after}&limit=2"),
            Some(&reader),
        );
        assert_eq!(page.status, 200, "{}", page.text);
        for r in page.body["recipients"].as_array().expect("recipients") {
            seen.push(r["message_id"].as_str().expect("id").to_owned());
            assert_eq!(r["address"], "jane@example.org", "{r}");
        }
        match page
            .headers
            .lines()
            .find_map(|l| l.strip_prefix("sealgate-next-after: "))
        {
            Some(next) => after = next.trim().parse().expect("cursor"),
            None => break,
        }
    }
    let mut all = clinic.clone();
    all.push(lab.clone());
    assert_eq!(seen, all, "every message once, in order");

    let only_lab = api.get("/v1/messages", Some(&lab_key));
    let ids: Vec<&str> = only_lab.body["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter_map(|r| r["message_id"].as_str())
        .collect();
    assert_eq!(ids, [lab.as_str()], "{}", only_lab.text);

    let bad = api.get("/v1/messages?state=lost", Some(&reader));
    assert_eq!(bad.status, 422);
    assert!(error_of(&bad).starts_with("state:"), "{}", bad.body);
    let unknown = api.get("/v1/messages?colour=red", Some(&reader));
    assert_eq!(unknown.status, 400, "{}", unknown.text);
}

#[test]
fn a_raw_message_with_its_envelope_in_the_query_is_queued_as_it_is_and_held_to_the_keys_senders() {
    use sealgate_testkit::db::TestBackend;
    use sealgate_testkit::smtp_sink::SinkScript;

    use crate::lab::{Lab, eventually};

    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let store = crate::inspect::fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(
        &store.url,
        "1s",
        "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n",
    );
    let port = api_bound(&daemon).0.port();
    let out = daemon.cli([
        "api-keys",
        "add",
        "ehr",
        "--scope",
        "send",
        "--sender-domain",
        "clinic.test",
    ]);
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let rfc822 = "Content-Type: message/rfc822";
    let message = |from: &str| {
        format!(
            "From: {from}\r\nTo: jane@example.test\r\nSubject: raw\r\n\
             Message-ID: <raw-1@clinic.test>\r\nX-Ehr-Batch: 7\r\n\r\nAs the EHR wrote it.\r\n"
        )
    };
    let envelope = "?from=ehr%40clinic.test&to=jane%40example.test";
    let (status, _, body) = post_to(
        port,
        envelope,
        &key,
        &message("Dr Grey <grey@clinic.test>"),
        &[rfc822],
    );
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    eventually(Duration::from_secs(30), "delivery", || {
        !sink.received().is_empty()
    });
    let got = &sink.received()[0];
    assert_eq!(got.rcpts, ["jane@example.test"]);
    let text = String::from_utf8_lossy(&got.data).into_owned();
    assert!(
        text.contains("X-Ehr-Batch: 7\r\n\r\nAs the EHR wrote it."),
        "{text}"
    );
    assert!(text.contains(&format!("id {id}")), "{text}");

    let refused: Vec<(String, String, u16, &str)> = vec![
        (
            envelope.to_owned(),
            message("someone@other.test"),
            403,
            "message: this key may not send as someone@other.test",
        ),
        (
            "?from=x%40other.test&to=jane%40example.test".to_owned(),
            message("grey@clinic.test"),
            403,
            "from: this key may not send",
        ),
        (
            "?from=ehr%40clinic.test".to_owned(),
            message("grey@clinic.test"),
            422,
            "to: at least one recipient",
        ),
        (
            format!("{envelope}&cc=x%40example.test"),
            message("grey@clinic.test"),
            422,
            "cc: unknown parameter",
        ),
        (
            envelope.to_owned(),
            message("grey@clinic.test").replace("\r\nSubject", "\nSubject"),
            422,
            "message: a bare CR or LF",
        ),
        (
            envelope.to_owned(),
            "no header at all".to_owned(),
            422,
            "message:",
        ),
    ];
    for (query, msg, want, needle) in refused {
        let (status, _, answer) = post_to(port, &query, &key, &msg, &[rfc822]);
        let said = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(status, want, "{query} {answer}");
        assert!(said.contains(needle), "{needle:?} not in {said:?}");
    }
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    assert_eq!(
        db.audit()
            .into_iter()
            .filter(|e| e.kind == "received")
            .count(),
        1
    );
}

#[test]
fn post_check_answers_what_sealgate_check_does_for_many_addresses_and_sends_nothing() {
    use sealgate_testkit::db::TestBackend;
    use sealgate_testkit::smtp_sink::SinkScript;

    use crate::lab::Lab;

    let lab = Lab::new(&[
        ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n"),
        ("other.test", "@ IN MX 0 .\n"),
    ]);
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let store = crate::inspect::fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(
        &store.url,
        "1s",
        "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n",
    );
    let port = api_bound(&daemon).0.port();
    let key = |name: &str, scope: &str| {
        let out = daemon.cli(["api-keys", "add", name, "--scope", scope]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let reader = key("viewer", "read");
    let sender = key("ehr", "send");
    let check = |key: &str, body: &str| -> (u16, Value) {
        let url = format!("http://127.0.0.1:{port}/v1/check");
        let args = ["-H", "Content-Type: application/json"];
        let a = curl("POST", &url, Some(key), &args, Some(body));
        (a.status, a.body)
    };
    let (status, body) = check(
        &reader,
        r#"{"addresses": ["jane@example.test", "x@other.test"], "subject": "hello"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let reports = body["reports"].as_array().expect("reports");
    assert_eq!(reports[0]["address"], "jane@example.test");
    assert_eq!(reports[0]["decision"]["level"], "none", "{}", reports[0]);
    assert_eq!(
        reports[0]["hosts"][0][0], "mx1.example.test",
        "{}",
        reports[0]
    );
    assert!(
        reports[1]["route_error"]
            .as_str()
            .is_some_and(|e| e.contains("null MX")),
        "{}",
        reports[1]
    );

    let (status, body) = check(
        &reader,
        r#"{"addresses": ["jane@example.test", "not an address"]}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("addresses[1]")),
        "{body}"
    );
    assert_eq!(
        check(&sender, r#"{"addresses": ["jane@example.test"]}"#).0,
        403
    );
    assert!(
        sink.received().is_empty() && sink.connections() == 0,
        "a check sent something"
    );
}

#[test]
fn a_client_that_keeps_failing_to_authenticate_is_answered_429_before_the_database() {
    let api = Api::start();
    let good = api.key("ehr", &["--scope", "read"]);
    let unknown = format!("sgk_0123456789abcdef_{}", "A".repeat(43));
    for i in 0..30 {
        let a = api.get("/v1/messages/x", Some(&unknown));
        assert_eq!(a.status, 401, "request {i}: {}", a.text);
    }
    // The 31st failure within the minute: 429 with Retry-After, for any key from that address.
    let a = api.get("/v1/messages/x", Some(&unknown));
    assert_eq!(a.status, 429, "{}", a.text);
    assert!(a.headers.contains("retry-after:"), "{}", a.headers);
    let a = api.get("/v1/messages/x", Some(&good));
    assert_eq!(a.status, 429, "{}", a.text);
    // Nothing of it reached the audit log: no key id was known.
    let db = crate::inspect::Inspect::new(api.daemon.db_url(), None);
    assert!(db.audit().iter().all(|e| e.kind != "api_request"));
}

#[test]
fn recipients_keys_are_imported_listed_and_removed_over_the_api_as_with_the_cli() {
    use sealgate_testkit::gpg::{GpgHome, KeySpec};

    let api = Api::start_with(100);
    let admin = api.key("ops", &["--scope", "admin,read"]);
    let reader = api.key("ehr", &["--scope", "read"]);
    let gpg = GpgHome::new();
    let bob = gpg.gen_key("Bob@Example.NET", KeySpec::Default);
    let armored = String::from_utf8(gpg.export_public(&bob, true)).expect("armored key");
    let url = |path: &str| format!("https://{HOST}:{}{path}", api.port);
    let resolve = format!("{HOST}:{}:127.0.0.1", api.port);
    let call = |method: &str, path: &str, key: &str, body: Option<&str>| {
        curl(
            method,
            &url(path),
            Some(key),
            &["--cacert", &api.ca, "--resolve", &resolve],
            body,
        )
    };
    // A read key may list, not import.
    assert_eq!(
        call("POST", "/v1/keys", &reader, Some(&armored)).status,
        403
    );
    // Bad input names what is wrong and stores nothing.
    let junk = call("POST", "/v1/keys", &admin, Some("not a key"));
    assert_eq!(junk.status, 422, "{}", junk.text);
    assert!(junk.text.contains("the body"), "{}", junk.text);
    let unbound = call(
        "POST",
        "/v1/keys?address=carol@example.net",
        &admin,
        Some(&armored),
    );
    assert_eq!(unbound.status, 422, "{}", unbound.text);
    assert!(
        unbound.text.contains("carol@example.net"),
        "{}",
        unbound.text
    );
    let bad = call(
        "POST",
        "/v1/keys?address=not-an-address",
        &admin,
        Some(&armored),
    );
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(
        call("GET", "/v1/keys", &reader, None).body["keys"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    let imported = call("POST", "/v1/keys", &admin, Some(&armored));
    assert_eq!(imported.status, 201, "{}", imported.text);
    assert_eq!(imported.body["imported"][0]["address"], "bob@example.net");
    assert_eq!(imported.body["imported"][0]["fingerprint"], bob.as_str());
    let listed = call("GET", "/v1/keys?address=BOB@example.net", &reader, None);
    assert_eq!(listed.body["keys"][0]["usable"], true, "{}", listed.text);
    assert_eq!(listed.body["keys"][0]["source"], "import");

    let gone = call("DELETE", &format!("/v1/keys/{bob}"), &admin, None);
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.body["removed"][0]["address"], "bob@example.net");
    assert_eq!(
        call("DELETE", &format!("/v1/keys/{bob}"), &admin, None).status,
        404
    );
    // Audited as the CLI's changes are, under the key's id.
    let db = crate::inspect::Inspect::new(api.daemon.db_url(), None);
    let admin_id = admin.split('_').nth(1).unwrap_or_default().to_owned();
    let changes: Vec<_> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "key_imported" || e.kind == "key_removed")
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|e| e.data.contains(&format!("api:{admin_id}"))),
        "{changes:?}"
    );
}

#[test]
fn the_openapi_document_is_served_without_a_key_and_is_the_committed_one() {
    let api = Api::start();
    let served = api.get("/v1/openapi.json", None);
    assert_eq!(served.status, 200, "{}", served.text);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(sealgate_tests::workspace_root().join("docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .expect("json");
    assert_eq!(served.body, committed);
    assert_eq!(served.body["openapi"], "3.1.0");
    assert!(served.body["webhooks"]["recipient.returned"].is_object());
    // Everything else still needs a key.
    assert_eq!(api.get("/v1/webhooks", None).status, 401);
}

/// Schemathesis (PyPI) generates requests from the served OpenAPI document and fails on any 5xx
/// and any answer the document does not describe. Delivery is on (the lab's DNS answers
/// nothing, so queued messages go nowhere) so that `/v1/check` can answer.
#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    use crate::lab::Lab;

    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let store = crate::inspect::fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon_with(
        &store.url,
        "1s",
        "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\nrequests_per_minute = 1000000\n",
    );
    let port = api_bound(&daemon).0.port();
    let out = daemon.cli(["api-keys", "add", "fuzz", "--scope", "send,read,admin"]);
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        key.starts_with("sgk_"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = crate::webhooks::pypi_python()
        .parent()
        .expect("the venv's bin")
        .join("schemathesis");
    let run = Command::new(&st)
        .args(["run", &format!("http://127.0.0.1:{port}/v1/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args(["--max-examples", "15", "--seed", "20261208"])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("run schemathesis (the tests' venv: sg_py_env)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{text}");
    assert!(text.contains("Tested: 15"), "{text}");
}
