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
struct Answer {
    status: u16,
    headers: String,
    body: Value,
}

impl Api {
    fn start() -> Self {
        let ca = TestCa::new();
        let cert = ca.issue(&[HOST, "127.0.0.1"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = ca.write_to(dir.path()).display().to_string();
        let daemon = Daemon::start(DaemonOpts {
            tls: Some(&cert),
            extra_toml:
                "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\nrequests_per_minute = 6\n"
                    .to_owned(),
            ..DaemonOpts::default()
        });
        let bound = daemon.wait_for_log(Duration::from_secs(10), |v| {
            v.pointer("/fields/message").and_then(Value::as_str) == Some("api listener bound")
        });
        let addr: std::net::SocketAddr = bound
            .pointer("/fields/addr")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {bound}"));
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
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-D",
            "-",
            "--cacert",
            &self.ca,
            "--resolve",
            &resolve,
        ]);
        if let Some(k) = key {
            cmd.args(["-H", &format!("Authorization: Bearer {k}")]);
        }
        let out = cmd.arg(&url).output().expect("run curl");
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
        }
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
