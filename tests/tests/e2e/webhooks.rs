//! Webhooks end to end: a real relay delivering into the lab posts its events to a Python
//! receiver (`tests/py/webhook_receiver.py`) that verifies every signature with the
//! `standardwebhooks` package from PyPI — an oracle we did not write. Through a receiver that
//! answers 500, 429 with Retry-After, hangs past the timeout, drops connections and answers
//! 410, every event ends delivered exactly as the outbox holds it, a message's events in order;
//! dead events are replayed; a SIGKILLed relay loses no event; two nodes on one PostgreSQL post
//! each event once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealgate_store::OutboxRow;
use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::{Daemon, DaemonOpts, py_send, workspace_root};
use sealgate_types::RecipientState;
use serde_json::{Value, json};

use crate::inspect::{Inspect, fresh_db};
use crate::lab::{Lab, eventually};

const ZONE: (&str, &str) = ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n");
const MX_IP: [u8; 4] = [127, 0, 0, 5];

/// The interpreter of the tests' PyPI venv (`sg_py_env` in scripts/lib.sh).
pub(crate) fn pypi_python() -> PathBuf {
    let p = std::env::var_os("SG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/py-venv/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run `source scripts/lib.sh && sg_py_env` (scripts/test does)",
        p.display()
    );
    p
}

/// The verifying receiver, killed on drop.
pub(crate) struct Receiver {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port_file = dir.path().join("port");
        let log = dir.path().join("log.jsonl");
        let child = Command::new(pypi_python())
            .arg(workspace_root().join("tests/py/webhook_receiver.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .expect("start webhook_receiver.py");
        let mut port = None;
        eventually(Duration::from_secs(20), "the receiver's port", || {
            port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            port.is_some()
        });
        Self {
            child,
            port: port.unwrap_or_default(),
            log,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/sealgate", self.port)
    }

    /// POST /_control with `body`.
    pub(crate) fn control(&self, body: Value) {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-X", "POST", "--data-binary"])
            .arg(body.to_string())
            .arg(format!("http://127.0.0.1:{}/_control", self.port))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every request so far, in the order answered.
    pub(crate) fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The verified requests answered 2xx.
    pub(crate) fn accepted(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| {
                e["verified"] == true
                    && e["status"]
                        .as_u64()
                        .is_some_and(|s| (200..300).contains(&s))
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[webhooks]` for tests: loopback allowed, short waits (`schedule` after each failure).
fn webhooks_toml(schedule: &str, timeout: &str) -> String {
    format!(
        "[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\nretry_schedule = {schedule}\n\
         timeout = \"{timeout}\"\npoll_interval = \"100ms\"\n"
    )
}

/// A lab daemon with `webhooks` settings, on PostgreSQL at `db_url` or else SQLite.
fn daemon(
    lab: &Lab,
    db_url: Option<&str>,
    webhooks: &str,
    key_file: Option<&std::path::Path>,
) -> Daemon {
    let mut toml = format!(
        "{}retry_first = \"1s\"\nretry_max = \"1s\"\nlease = \"10s\"\n{webhooks}",
        lab.config()
    );
    if let Some(key) = key_file {
        toml.push_str(&format!(
            "[storage]\nseal_key_file = {}\n",
            toml::Value::from(key.display().to_string())
        ));
    }
    Daemon::start(DaemonOpts {
        extra_toml: toml,
        db_url: db_url.map(str::to_owned),
        ..DaemonOpts::default()
    })
}

/// Waits until `n` recipients are delivered and then every event is: a message's events are
/// all written once its recipients are settled.
fn all_posted(db: &Inspect, n: usize, limit: Duration, what: &str) {
    eventually(limit, what, || {
        db.recipients_in(Some(RecipientState::Delivered)).len() == n
            && outbox(db).iter().all(|r| r.state == "delivered")
    });
}

/// `sealgate webhooks add URL ARGS`: the endpoint id and its secret.
pub(crate) fn add_endpoint(d: &Daemon, url: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["webhooks", "add", url];
    all.extend_from_slice(args);
    let out = d.cli(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = stderr
        .split_whitespace()
        .find(|w| w.starts_with("wh_"))
        .expect("endpoint id")
        .to_owned();
    (id, secret)
}

fn outbox(db: &Inspect) -> Vec<OutboxRow> {
    db.webhook_events(None)
}

/// Every outbox row delivered, and the receiver holds each exactly as the outbox does: the
/// same webhook-id, the same body byte for byte, verified; and each message's events arrived
/// (first accepted) in the order of their audit rows.
fn assert_receiver_matches_outbox(db: &Inspect, rx: &Receiver) {
    let rows = outbox(db);
    assert!(!rows.is_empty());
    let pending: Vec<_> = rows.iter().filter(|r| r.state != "delivered").collect();
    assert!(pending.is_empty(), "not delivered: {pending:?}");
    let accepted = rx.accepted();
    let mut first: HashMap<String, (usize, Value)> = HashMap::new();
    for (i, e) in accepted.iter().enumerate() {
        let id = e["id"].as_str().unwrap_or_default().to_owned();
        first.entry(id).or_insert((i, e["body"].clone()));
    }
    for r in &rows {
        let (_, body) = first.get(&r.event_id).unwrap_or_else(|| {
            panic!(
                "the receiver never accepted {} ({})",
                r.event_id, r.event_type
            )
        });
        let stored: Value = serde_json::from_str(&r.payload).expect("payload");
        assert_eq!(body, &stored, "{}", r.event_id);
        assert_eq!(body["type"], r.event_type.as_str());
    }
    let ours: BTreeSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    let theirs: BTreeSet<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        ours, theirs,
        "the receiver accepted events the outbox does not hold"
    );
    // Per message: arrival order is audit order.
    let mut by_message: BTreeMap<&str, Vec<&OutboxRow>> = BTreeMap::new();
    for r in &rows {
        if let Some(m) = r.message_id.as_deref() {
            by_message.entry(m).or_default().push(r);
        }
    }
    for (m, mut evs) in by_message {
        evs.sort_by_key(|r| r.seq);
        let order: Vec<usize> = evs.iter().map(|r| first[&r.event_id].0).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "message {m}: events arrived out of order");
    }
}

/// How many events the audit log announces (the kinds the outbox takes for `*`).
fn announced(db: &Inspect) -> usize {
    db.audit()
        .iter()
        .filter(|e| sealgate_types::webhook::event_of(e, None).is_some())
        .count()
}

#[test]
fn signed_events_reach_a_receiver_through_500_429_hangs_and_drops_in_order() {
    let lab = Lab::new(&[ZONE]);
    let sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let schedule = "[\"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]";
    let d = daemon(&lab, None, &webhooks_toml(schedule, "2s"), None);
    let (id, secret) = add_endpoint(&d, &rx.url(), &[]);
    rx.control(json!({ "secrets": [secret] }));
    let db = Inspect::new(d.db_url(), None);

    // 500 three times, then 429 with Retry-After: 3 twice, a hang past the 2 s timeout, a
    // dropped connection: the receiver's modes apply to the requests in arrival order.
    rx.control(json!({ "mode": "status", "status": 500, "count": 3 }));
    let smtp = d.addr("starttls");
    py_send(
        smtp,
        &["--to", "pat@example.test", "--to", "doc@example.test"],
    )
    .assert_all_queued();
    all_posted(
        &db,
        2,
        Duration::from_secs(30),
        "the first message's events",
    );
    rx.control(json!({ "mode": "status", "status": 429, "retry_after": 3, "count": 2 }));
    py_send(smtp, &["--to", "pat@example.test"]).assert_all_queued();
    all_posted(&db, 3, Duration::from_secs(30), "the 429s to pass");
    assert_eq!(rx.log().iter().filter(|e| e["status"] == 429).count(), 2);
    rx.control(json!({ "mode": "hang", "seconds": 4, "count": 1 }));
    py_send(smtp, &["--to", "doc@example.test"]).assert_all_queued();
    all_posted(&db, 4, Duration::from_secs(30), "the hang to pass");
    rx.control(json!({ "mode": "down", "count": 2 }));
    py_send(smtp, &["--to", "pat@example.test"]).assert_all_queued();
    all_posted(&db, 5, Duration::from_secs(30), "the drops to pass");
    // received + decided + delivered per recipient: 5 + 3 + 3 + 3.
    assert_eq!(outbox(&db).len(), 14);
    assert_eq!(sink.received().len(), 4);
    assert_eq!(outbox(&db).len(), announced(&db));
    assert_receiver_matches_outbox(&db, &rx);

    // The waits were honoured: a 429 with Retry-After: 3 is not tried again within 3 s.
    let log = rx.log();
    for (i, e) in log.iter().enumerate() {
        if e["status"] == 429 {
            let next = log[i + 1..]
                .iter()
                .find(|n| n["id"] == e["id"])
                .expect("tried again");
            let gap = next["at"].as_f64().unwrap_or(0.0) - e["at"].as_f64().unwrap_or(0.0);
            assert!(
                gap >= 2.9,
                "retried {gap:.2} s after a 429 with Retry-After: 3"
            );
        }
    }
    // Failed tries are on record with what the receiver answered; the hang as a timeout.
    let statuses: Vec<String> = db
        .webhook_events(None)
        .iter()
        .filter(|r| r.attempts > 1)
        .filter_map(|r| r.last_status.clone())
        .collect();
    assert!(statuses.iter().all(|s| s.starts_with("20")), "{statuses:?}");
    let payload: Value = serde_json::from_str(
        &outbox(&db)
            .iter()
            .find(|r| r.event_type == "recipient.delivered")
            .expect("a delivery")
            .payload,
    )
    .expect("json");
    let data = &payload["data"];
    assert_eq!(data["reply_code"], 250, "{payload}");
    assert!(
        data["message_id"].is_string() && data["recipient"].is_string(),
        "{payload}"
    );
    assert!(
        data["audit_hash"].as_str().is_some_and(|h| h.len() == 64),
        "{payload}"
    );
    // Thin: nothing of the message.
    let text = payload.to_string();
    for leak in ["Subject", "subject", "body", "attachment"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }

    // 410 Gone disables the endpoint (audited); nothing is written for it while disabled, its
    // waiting event goes once it is enabled again.
    rx.control(json!({ "mode": "status", "status": 410, "count": 1 }));
    py_send(smtp, &["--to", "pat@example.test"]).assert_all_queued();
    eventually(
        Duration::from_secs(20),
        "the endpoint to be disabled",
        || db.audit().iter().any(|e| e.kind == "webhook_disabled"),
    );
    let list = String::from_utf8_lossy(&d.cli(["webhooks", "list"]).stdout).into_owned();
    assert!(
        list.contains(&id) && list.contains("disabled") && list.contains("410"),
        "{list}"
    );
    // A message sent while it is disabled has no events.
    let later = py_send(smtp, &["--to", "doc@example.test"]);
    later.assert_all_queued();
    let later_id = later.queue_ids().pop().expect("queue id");
    eventually(
        Duration::from_secs(20),
        "the later message delivered",
        || db.recipients_in(Some(RecipientState::Delivered)).len() == 7,
    );
    assert!(
        outbox(&db)
            .iter()
            .all(|r| r.message_id.as_deref() != Some(later_id.as_str())),
        "events were written for a disabled endpoint"
    );
    assert!(outbox(&db).iter().any(|r| r.state == "pending"));
    assert!(d.cli(["webhooks", "enable", &id]).status.success());
    all_posted(
        &db,
        7,
        Duration::from_secs(20),
        "the waiting events after enable",
    );
    assert_receiver_matches_outbox(&db, &rx);
}

#[test]
fn dead_events_are_listed_and_replayed_by_time_range() {
    let lab = Lab::new(&[ZONE]);
    let _sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let d = daemon(&lab, None, &webhooks_toml("[\"500ms\"]", "2s"), None);
    let (_, secret) = add_endpoint(
        &d,
        &rx.url(),
        &["--events", "message.received,recipient.delivered"],
    );
    rx.control(json!({ "secrets": [secret] }));
    rx.control(json!({ "mode": "status", "status": 503 }));
    let db = Inspect::new(d.db_url(), None);
    py_send(d.addr("starttls"), &["--to", "pat@example.test"]).assert_all_queued();
    eventually(Duration::from_secs(30), "both events dead", || {
        let rows = outbox(&db);
        rows.len() == 2 && rows.iter().all(|r| r.state == "dead")
    });
    // Two attempts each: the first and one retry.
    assert!(outbox(&db).iter().all(|r| r.attempts == 2 && r.last_status.as_deref() == Some("503 Service Unavailable")));
    let dead = d.cli(["webhooks", "events"]);
    let listed = String::from_utf8_lossy(&dead.stdout).into_owned();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("recipient.delivered") && listed.contains("dead"),
        "{listed}"
    );

    rx.control(json!({ "mode": "ok" }));
    // A range that holds nothing replays nothing.
    let none = d.cli([
        "webhooks",
        "replay",
        "--since",
        "2020-01-01T00:00:00Z",
        "--until",
        "2020-01-02T00:00:00Z",
    ]);
    assert!(String::from_utf8_lossy(&none.stdout).contains("0 events"));
    let out = d.cli(["webhooks", "replay", "--since", "10m"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 events are due again"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(20), "the replayed events", || {
        outbox(&db).iter().all(|r| r.state == "delivered")
    });
    assert_receiver_matches_outbox(&db, &rx);
    let replayed = db
        .audit()
        .into_iter()
        .filter(|e| e.kind == "webhook_replayed")
        .collect::<Vec<_>>();
    assert_eq!(replayed.len(), 2);
    assert!(
        replayed[1].data.contains("\"events\":2"),
        "{}",
        replayed[1].data
    );
    // The endpoint's URL path is not in the audit log (it may carry a token), its host is.
    let added = db
        .audit()
        .into_iter()
        .find(|e| e.kind == "webhook_added")
        .expect("added");
    assert!(
        !added.data.contains("/hooks/sealgate") && added.data.contains("http://127.0.0.1"),
        "{}",
        added.data
    );
}

#[test]
fn a_relay_killed_mid_delivery_loses_no_event() {
    let lab = Lab::new(&[ZONE]);
    let _sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let mut d = daemon(
        &lab,
        None,
        &webhooks_toml("[\"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]", "5s"),
        None,
    );
    let (_, secret) = add_endpoint(&d, &rx.url(), &[]);
    rx.control(json!({ "secrets": [secret] }));
    // Slow answers keep posts in flight when the relay dies.
    rx.control(json!({ "mode": "hang", "seconds": 0.5 }));
    let db = Inspect::new(d.db_url(), None);
    py_send(
        d.addr("starttls"),
        &["--count", "30", "--to", "pat@example.test"],
    )
    .assert_all_queued();
    eventually(Duration::from_secs(30), "some events posted", || {
        rx.accepted().len() >= 10
    });
    d.kill9();
    let in_flight = outbox(&db).iter().filter(|r| r.state == "pending").count();
    assert!(in_flight > 0, "the kill came too late to test anything");
    rx.control(json!({ "mode": "ok" }));
    d.restart();
    let started = Instant::now();
    all_posted(
        &db,
        30,
        Duration::from_secs(90),
        "every event delivered after the restart",
    );
    assert_eq!(outbox(&db).len(), announced(&db));
    // 30 messages: received, decided and delivered each.
    assert_eq!(outbox(&db).len(), 90, "after {:?}", started.elapsed());
    assert_receiver_matches_outbox(&db, &rx);
}

#[test]
fn two_nodes_on_postgres_post_each_event_once() {
    let lab = Lab::new(&[ZONE]);
    let _sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let db_handle = fresh_db(TestBackend::Postgres);
    let url = db_handle.url.clone();
    let toml = webhooks_toml("[\"1s\", \"1s\", \"1s\"]", "5s");
    let first = daemon(&lab, Some(&url), &toml, None);
    let key = first.data_dir().join("seal.key");
    let second = daemon(&lab, Some(&url), &toml, Some(&key));
    let (_, secret) = add_endpoint(&first, &rx.url(), &[]);
    rx.control(json!({ "secrets": [secret] }));
    let db = Inspect::new(&url, None);
    let senders: Vec<_> = [first.addr("starttls"), second.addr("starttls")]
        .into_iter()
        .map(|addr| {
            std::thread::spawn(move || {
                py_send(addr, &["--count", "60", "--to", "pat@example.test"])
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender").assert_all_queued();
    }
    all_posted(&db, 120, Duration::from_secs(120), "every event delivered");
    assert_eq!(outbox(&db).len(), 360);
    assert_receiver_matches_outbox(&db, &rx);
    // Each exactly once: no node crashed, so no event was posted twice.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in rx.log() {
        *seen
            .entry(e["id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    drop((first, second));
}

/// Endpoints managed over the API (scope admin, not limited to senders), the SSRF guard on
/// the address connected to, and redirects not followed.
#[test]
fn endpoints_over_the_api_and_the_guard_against_ssrf_and_redirects() {
    use sealgate_testkit::tls::TestCa;

    use crate::api::{api_bound, curl};

    let lab = Lab::new(&[ZONE]);
    let _sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let ca = TestCa::new();
    let cert = ca.issue(&["relay.example.test", "127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_to(dir.path()).display().to_string();
    // Only 127.0.0.1 is allowed: 127.0.0.2 is loopback like it, but not allowed.
    let toml = format!(
        "{}retry_first = \"1s\"\nretry_max = \"1s\"\n[webhooks]\nallow_networks = [\"127.0.0.1/32\"]\n\
         retry_schedule = [\"1s\", \"1s\", \"1s\"]\ntimeout = \"2s\"\npoll_interval = \"100ms\"\n\
         [api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n",
        lab.config()
    );
    let d = Daemon::start(DaemonOpts {
        tls: Some(&cert),
        extra_toml: toml,
        ..DaemonOpts::default()
    });
    let (addr, _) = api_bound(&d);
    let key = |name: &str, args: &[&str]| {
        let mut all = vec!["api-keys", "add", name];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&d.cli(&all).stdout)
            .trim()
            .to_owned()
    };
    let admin = key("ops", &["--scope", "admin"]);
    let reader = key("ehr", &["--scope", "read,send"]);
    let limited = key(
        "clinic-ops",
        &["--scope", "admin", "--sender-domain", "clinic.example"],
    );
    let base = format!("https://relay.example.test:{}", addr.port());
    let resolve = format!("relay.example.test:{}:127.0.0.1", addr.port());
    let call = |method: &str, path: &str, k: &str, body: Option<&str>| {
        curl(
            method,
            &format!("{base}{path}"),
            Some(k),
            &[
                "--cacert",
                &ca_file,
                "--resolve",
                &resolve,
                "-H",
                "content-type: application/json",
            ],
            body,
        )
    };

    // Who may: an admin key for every sender only.
    let hook = json!({ "url": rx.url(), "events": ["message.received", "recipient.delivered"] })
        .to_string();
    assert_eq!(
        call("POST", "/v1/webhooks", &reader, Some(&hook)).status,
        403
    );
    let limited_answer = call("POST", "/v1/webhooks", &limited, Some(&hook));
    assert_eq!(limited_answer.status, 403, "{}", limited_answer.text);
    // Bad input names the field and writes nothing.
    for (body, field) in [
        (json!({ "url": "ftp://x.example/" }), "url"),
        (
            json!({ "url": rx.url(), "events": ["recipient.teleported"] }),
            "events",
        ),
        (json!({ "url": "https://u:p@x.example/" }), "url"),
    ] {
        let a = call("POST", "/v1/webhooks", &admin, Some(&body.to_string()));
        assert_eq!(a.status, 422, "{}", a.text);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{}",
            a.text
        );
    }
    let unknown_field = call(
        "POST",
        "/v1/webhooks",
        &admin,
        Some(r#"{"url": "https://x.example/", "secret": "mine"}"#),
    );
    assert!(
        unknown_field.status == 422 || unknown_field.status == 400,
        "{}",
        unknown_field.text
    );
    let listed = call("GET", "/v1/webhooks", &admin, None);
    assert_eq!(
        listed.body["endpoints"].as_array().map(Vec::len),
        Some(0),
        "{}",
        listed.text
    );

    // Added over the API: 201 with the secret once; the receiver verifies with it.
    let added = call("POST", "/v1/webhooks", &admin, Some(&hook));
    assert_eq!(added.status, 201, "{}", added.text);
    let id = added.body["id"].as_str().expect("id").to_owned();
    rx.control(json!({ "secrets": [added.body["secret"]] }));
    let listed = call("GET", "/v1/webhooks", &admin, None);
    assert!(
        !listed.text.contains("whsec_"),
        "a listing shows no secret: {}",
        listed.text
    );
    assert_eq!(listed.body["endpoints"][0]["id"], id.as_str());

    // A redirect is a failure, and its target is never asked.
    rx.control(json!({ "mode": "status", "status": 302, "count": 1,
        "location": format!("http://127.0.0.1:{}/elsewhere", rx.port) }));
    let db = Inspect::new(d.db_url(), None);
    py_send(d.addr("starttls"), &["--to", "pat@example.test"]).assert_all_queued();
    all_posted(&db, 1, Duration::from_secs(30), "events past a redirect");
    assert_receiver_matches_outbox(&db, &rx);
    assert!(rx.log().iter().all(|e| e["path"] != "/elsewhere"));
    assert!(rx.log().iter().any(|e| e["status"] == 302));

    // Endpoints the guard refuses: a loopback address outside allow_networks, plain http
    // there, and the cloud metadata address. Their events fail without a connection.
    let rx2 = Receiver::start();
    for url in [
        format!("http://127.0.0.2:{}/h", rx2.port),
        "https://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let body = json!({ "url": url, "events": ["message.received"] }).to_string();
        assert_eq!(
            call("POST", "/v1/webhooks", &admin, Some(&body)).status,
            201
        );
    }
    py_send(d.addr("starttls"), &["--to", "pat@example.test"]).assert_all_queued();
    eventually(
        Duration::from_secs(30),
        "the refused endpoints' events to be dead",
        || {
            let dead = db.webhook_events(Some("dead"));
            dead.len() == 2
        },
    );
    for r in db.webhook_events(Some("dead")) {
        let status = r.last_status.unwrap_or_default();
        assert!(status.starts_with("refused by the SSRF guard"), "{status}");
    }
    assert!(
        rx2.log().is_empty(),
        "the guard let a request through: {:?}",
        rx2.log()
    );
    let dead = call("GET", "/v1/webhooks/events?state=dead", &admin, None);
    assert_eq!(
        dead.body["events"].as_array().map(Vec::len),
        Some(2),
        "{}",
        dead.text
    );

    // Disable, enable, rotate (both secrets sign for the overlap), replay, remove: each audited
    // under the key's id.
    assert_eq!(
        call("POST", &format!("/v1/webhooks/{id}/disable"), &admin, None).status,
        200
    );
    assert_eq!(
        call("POST", &format!("/v1/webhooks/{id}/disable"), &admin, None).status,
        404
    );
    assert_eq!(
        call("POST", &format!("/v1/webhooks/{id}/enable"), &admin, None).status,
        200
    );
    let rotated = call("POST", &format!("/v1/webhooks/{id}/rotate"), &admin, None);
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    // The receiver knows only the new secret: the old one's signature rides along, unused.
    rx.control(json!({ "secrets": [rotated.body["secret"]] }));
    py_send(d.addr("starttls"), &["--to", "doc@example.test"]).assert_all_queued();
    eventually(
        Duration::from_secs(30),
        "events signed with the new secret",
        || {
            db.recipients_in(Some(RecipientState::Delivered)).len() == 3
                && db
                    .webhook_events(None)
                    .iter()
                    .filter(|r| r.endpoint_id == id)
                    .all(|r| r.state == "delivered")
        },
    );
    let last = rx.log().pop().expect("a request");
    assert_eq!(last["verified"], true, "{last}");
    assert_eq!(
        last["signature"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .count(),
        2,
        "two signatures during the rotation: {last}"
    );
    let replay = call(
        "POST",
        "/v1/webhooks/replay",
        &admin,
        Some(r#"{"since": "2020-01-01T00:00:00Z"}"#),
    );
    assert_eq!(replay.body["events"], 2, "{}", replay.text);
    let bad_replay = call(
        "POST",
        "/v1/webhooks/replay",
        &admin,
        Some(r#"{"since": "yesterday"}"#),
    );
    assert_eq!(bad_replay.status, 422, "{}", bad_replay.text);
    assert_eq!(
        call("DELETE", &format!("/v1/webhooks/{id}"), &admin, None).status,
        204
    );
    assert_eq!(
        call("DELETE", &format!("/v1/webhooks/{id}"), &admin, None).status,
        404
    );
    let kinds: Vec<(String, String)> = db
        .audit()
        .into_iter()
        .filter(|e| e.kind.starts_with("webhook_"))
        .map(|e| (e.kind, e.data))
        .collect();
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "webhook_added",
            "webhook_added",
            "webhook_added",
            "webhook_disabled",
            "webhook_enabled",
            "webhook_rotated",
            "webhook_replayed",
            "webhook_removed",
        ]
    );
    let admin_id = admin.split('_').nth(1).unwrap_or_default();
    assert!(
        kinds
            .iter()
            .all(|(_, data)| data.contains(&format!("api:{admin_id}"))),
        "{kinds:?}"
    );
}

/// `v1a`: Ed25519 signatures, checked by OpenSSL with the public key `webhooks add --signature
/// v1a` printed (the receiver's Python library knows only v1, so it answers 401 and the event
/// stays pending; what matters here is the signature on the wire).
#[test]
fn v1a_signatures_verify_with_the_printed_public_key_under_openssl() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    let lab = Lab::new(&[ZONE]);
    let _sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let d = daemon(&lab, None, &webhooks_toml("[\"1s\"]", "2s"), None);
    let (_, public) = {
        let out = d.cli([
            "webhooks",
            "add",
            &rx.url(),
            "--events",
            "message.received",
            "--signature",
            "v1a",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ((), String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let raw = B64
        .decode(public.strip_prefix("whpk_").expect("a whpk_ public key"))
        .expect("base64");
    assert_eq!(raw.len(), 32);
    let db = Inspect::new(d.db_url(), None);
    py_send(d.addr("starttls"), &["--to", "pat@example.test"]).assert_all_queued();
    eventually(Duration::from_secs(20), "a signed request", || {
        !rx.log().is_empty()
    });
    let req = rx.log().remove(0);
    let id = req["id"].as_str().expect("webhook-id").to_owned();
    let ts = req["timestamp"]
        .as_str()
        .expect("webhook-timestamp")
        .to_owned();
    let sig = req["signature"]
        .as_str()
        .expect("webhook-signature")
        .to_owned();
    assert!(sig.starts_with("v1a,") && !sig.contains(' '), "{sig}");
    let payload = outbox(&db)
        .into_iter()
        .find(|r| r.event_id == id)
        .expect("the event")
        .payload;
    let dir = tempfile::tempdir().expect("tempdir");
    // SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): a fixed prefix and the 32 bytes.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(&raw);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        B64.encode(&spki)
    );
    std::fs::write(dir.path().join("pub.pem"), pem).expect("write key");
    std::fs::write(
        dir.path().join("sig"),
        B64.decode(&sig["v1a,".len()..]).expect("base64 signature"),
    )
    .expect("write sig");
    let verify = |message: &str| {
        std::fs::write(dir.path().join("msg"), message).expect("write msg");
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(dir.path().join("pub.pem"))
            .arg("-in")
            .arg(dir.path().join("msg"))
            .arg("-sigfile")
            .arg(dir.path().join("sig"))
            .output()
            .expect("openssl")
    };
    let good = verify(&format!("{id}.{ts}.{payload}"));
    assert!(
        good.status.success(),
        "{}{}",
        String::from_utf8_lossy(&good.stdout),
        String::from_utf8_lossy(&good.stderr)
    );
    let tampered = verify(&format!("{id}.{ts}.{payload} "));
    assert!(!tampered.status.success());
}

/// An endpoint that keeps failing is an `alert` in the audit log once `alert_after` has passed
/// without a success (once per streak); a success ends the streak.
#[test]
fn an_endpoint_failing_past_alert_after_is_audited_as_an_alert_once() {
    let lab = Lab::new(&[ZONE]);
    let _sink = lab.sink(MX_IP, SinkScript::default());
    let rx = Receiver::start();
    let toml = format!(
        "{}alert_after = \"2s\"\n",
        webhooks_toml(
            "[\"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]",
            "2s"
        )
    );
    let d = daemon(&lab, None, &toml, None);
    let (id, secret) = add_endpoint(&d, &rx.url(), &["--events", "message.received"]);
    rx.control(json!({ "secrets": [secret] }));
    rx.control(json!({ "mode": "status", "status": 500 }));
    let db = Inspect::new(d.db_url(), None);
    py_send(d.addr("starttls"), &["--to", "pat@example.test"]).assert_all_queued();
    let alerts = || {
        db.audit()
            .into_iter()
            .filter(|e| e.kind == "alert" && e.data.contains(&id))
            .collect::<Vec<_>>()
    };
    eventually(
        Duration::from_secs(20),
        "the failing endpoint's alert",
        || !alerts().is_empty(),
    );
    let alert = &alerts()[0];
    assert!(
        alert.message_id.is_none(),
        "an alert about the relay, not a message"
    );
    assert!(alert.data.contains("127.0.0.1"), "{}", alert.data);
    // Still failing: no second alert for the same streak.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(alerts().len(), 1);
    // Not announced to the endpoints themselves (no message): a relay alert is not a
    // security.downgrade_alert.
    assert!(
        outbox(&db)
            .iter()
            .all(|r| r.event_type == "message.received")
    );
    // A success ends the streak.
    rx.control(json!({ "mode": "ok" }));
    eventually(Duration::from_secs(20), "the event delivered", || {
        outbox(&db).iter().all(|r| r.state == "delivered")
    });
    let list = String::from_utf8_lossy(&d.cli(["webhooks", "list"]).stdout).into_owned();
    assert!(list.contains(&id) && list.contains(" ok"), "{list}");
}
