//! Two `sealgate serve` processes on one PostgreSQL database share the delivery work: every
//! message reaches the sink exactly once. When one node is SIGKILLed midway, the other takes over
//! its leases once they expire. Nothing is lost; the only duplicates are messages the dead node
//! had begun to send (the remote MTA may have answered 250 before the node could record it:
//! RFC 1047), and each of them is on record as a `possible_duplicate` naming the dead node.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smtp_sink::{SinkScript, SmtpSink};
use sealgate_tests::{Daemon, DaemonOpts, py_send};
use sealgate_types::RecipientState;
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db};
use crate::lab::Lab;

const MESSAGES: usize = 2000;
/// Parallel SMTP clients feeding the nodes (each sends MESSAGES / SENDERS on one connection).
const SENDERS: usize = 8;
/// Everything queued must be delivered within this.
const WAIT: Duration = Duration::from_secs(120);
/// Node 1 is killed once the sink holds this many messages.
const KILL_AFTER: usize = 500;
const ZONE: (&str, &str) = ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n");
const MX_IP: [u8; 4] = [127, 0, 0, 5];

/// A node delivering into `lab`: the lab's settings (lab.rs) with this `lease`, and optionally
/// another node's seal key file, so that bodies sealed by one node open on the other.
fn node(lab: &Lab, db_url: &str, lease: &str, key_file: Option<&Path>) -> Daemon {
    let mut toml = format!(
        "{}retry_first = \"1s\"\nretry_max = \"1s\"\nlease = \"{lease}\"\n",
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
        ..DaemonOpts::with_db(db_url)
    })
}

/// Two nodes on `db_url`; the second uses the first one's seal key.
fn two_nodes(lab: &Lab, db_url: &str, lease: &str) -> (Daemon, Daemon) {
    let first = node(lab, db_url, lease, None);
    let key = first.data_dir().join("seal.key");
    let second = node(lab, db_url, lease, Some(&key));
    (first, second)
}

/// Sends MESSAGES messages over SENDERS parallel connections, spread round-robin over
/// `targets`, and asserts every one was queued.
fn send_all(targets: &[SocketAddr]) {
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let addr = targets[i % targets.len()];
            std::thread::spawn(move || {
                let to = format!("patient{i}@example.test");
                let count = (MESSAGES / SENDERS).to_string();
                py_send(addr, &["--count", &count, "--to", &to])
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender thread").assert_all_queued();
    }
}

/// How many times each Message-ID header arrived at the sink.
fn arrivals(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in sink.received() {
        let id = header_message_id(&m.data).unwrap_or_else(|| {
            panic!(
                "a message without Message-ID arrived:\n{}",
                String::from_utf8_lossy(&m.data)
            )
        });
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

fn header_message_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_owned())
    })
}

/// The Message-ID headers of every message the nodes accepted (their `received` events).
fn queued_message_ids(db_url: &str) -> HashSet<String> {
    Inspect::new(db_url, None)
        .received_events()
        .values()
        .map(|d| {
            d["header_message_id"]
                .as_str()
                .expect("received event names the Message-ID header")
                .to_owned()
        })
        .collect()
}

/// Waits until the sink has every one of `expected` and no recipient is left to deliver.
fn wait_until_all_delivered(sink: &SmtpSink, queue: &Inspect, expected: &HashSet<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = arrivals(sink);
        let missing = expected.iter().filter(|id| !seen.contains_key(*id)).count();
        let delivered = queue.recipients_in(Some(RecipientState::Delivered)).len();
        if missing == 0 && delivered == expected.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {WAIT:?}: {missing} of {} messages never reached the sink, {delivered} \
             recipients delivered",
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The queue ids of the `possible_duplicate` events, with the node each one names.
fn possible_duplicates(queue: &Inspect) -> Vec<(String, String)> {
    queue
        .audit()
        .into_iter()
        .filter(|e| e.kind == "possible_duplicate")
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("audit data is JSON");
            let owner = data["previous_owner"].as_str().expect("previous_owner");
            (e.message_id.expect("about a message"), owner.to_owned())
        })
        .collect()
}

/// The `message` of a JSON log line.
fn log_message(v: &Value) -> Option<&str> {
    v.pointer("/fields/message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
}

/// How many recipients this node settled (its "attempt settled" log lines).
fn settled_by(d: &Daemon) -> usize {
    d.log_events()
        .iter()
        .filter(|v| log_message(v) == Some("attempt settled"))
        .count()
}

/// The lease owner name this node claims under (its "delivery started" log line).
fn lease_owner(d: &Daemon) -> String {
    let line = d.wait_for_log(Duration::from_secs(10), |v| {
        log_message(v) == Some("delivery started")
    });
    line.pointer("/fields/owner")
        .or_else(|| line.get("owner"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no owner in {line}"))
        .to_owned()
}

/// Every recipient delivered, one `delivered` audit event each, and `audit verify` passes.
fn assert_settled_once(d: &Daemon, queue: &Inspect) {
    let all = queue.recipients_in(None);
    assert_eq!(all.len(), MESSAGES, "one recipient per message");
    let left: Vec<_> = all
        .iter()
        .filter(|r| r.state != RecipientState::Delivered)
        .map(|r| (&r.message_id, r.state))
        .collect();
    assert!(left.is_empty(), "not delivered: {left:?}");
    let audit = Inspect::new(d.db_url(), None).audit();
    let delivered = audit.iter().filter(|e| e.kind == "delivered").count();
    assert_eq!(delivered, MESSAGES, "one delivered event per recipient");
    let verify = d.cli(["audit", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && text.contains("audit log ok"),
        "{text}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn two_nodes_deliver_2000_messages_exactly_once() {
    let db = fresh_db(TestBackend::Postgres);
    let lab = Lab::new(&[ZONE]);
    let sink = lab.sink(MX_IP, SinkScript::default());
    let (first, second) = two_nodes(&lab, &db.url, "30s");
    let queue = Inspect::new(&db.url, None);

    send_all(&[first.addr("starttls"), second.addr("starttls")]);
    let expected = queued_message_ids(&db.url);
    assert_eq!(expected.len(), MESSAGES, "distinct Message-IDs queued");
    wait_until_all_delivered(&sink, &queue, &expected);

    let seen = arrivals(&sink);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(possible_duplicates(&queue), Vec::new());
    assert_eq!(sink.received().len(), MESSAGES);
    assert!(sink.violations().is_empty(), "{:?}", sink.violations());
    assert_settled_once(&second, &queue);
    let (a, b) = (settled_by(&first), settled_by(&second));
    eprintln!("node 1 settled {a}, node 2 settled {b}");
    assert!(a > 0 && b > 0, "one node did all the work: {a} and {b}");
    assert_eq!(a + b, MESSAGES, "settled once each");
}

#[test]
fn a_sigkilled_node_loses_nothing_and_every_duplicate_is_on_record() {
    let db = fresh_db(TestBackend::Postgres);
    let lab = Lab::new(&[ZONE]);
    let sink = lab.sink(MX_IP, SinkScript::default());
    // The lease must cover the slowest transaction ([delivery] data_timeout = 3s in the lab).
    let (mut victim, survivor) = two_nodes(&lab, &db.url, "5s");
    let victim_owner = lease_owner(&victim);
    let queue = Inspect::new(&db.url, None);

    // Clients talk to the survivor only: this test is about delivery (ingress under SIGKILL is
    // durability.rs). Both nodes claim from the shared queue.
    let target = survivor.addr("starttls");
    let feeder = std::thread::spawn(move || send_all(&[target]));
    let deadline = Instant::now() + WAIT;
    while sink.received().len() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the sink never got {KILL_AFTER}");
        std::thread::sleep(Duration::from_millis(5));
    }
    victim.kill9();
    let in_flight = queue
        .recipients_in(Some(RecipientState::Inflight))
        .iter()
        .filter(|r| r.lease_owner.as_deref() == Some(victim_owner.as_str()))
        .count();
    let settled_before = settled_by(&victim);
    feeder.join().expect("feeder thread");

    let expected = queued_message_ids(&db.url);
    assert_eq!(expected.len(), MESSAGES, "distinct Message-IDs queued");
    wait_until_all_delivered(&sink, &queue, &expected);

    let seen = arrivals(&sink);
    let strangers: Vec<_> = seen.keys().filter(|id| !expected.contains(*id)).collect();
    assert!(strangers.is_empty(), "never queued: {strangers:?}");
    let duplicates = seen.values().filter(|n| **n > 1).count();
    let extra: usize = seen.values().map(|n| n - 1).sum();
    let recorded = possible_duplicates(&queue);
    eprintln!(
        "killed node: settled {settled_before}, held {in_flight} in flight at the kill; \
         duplicates at the sink: {duplicates} message(s), {extra} extra cop(ies); \
         recorded as possible duplicates: {}",
        recorded.len()
    );
    assert!(settled_before > 0, "the killed node had delivered nothing");
    // Every copy delivered twice is accounted for: the dead node had been cleared to send it,
    // and the survivor recorded that when it took the recipient over.
    let header_of: HashMap<String, String> = queue
        .received_events()
        .into_iter()
        .map(|(id, d)| (id, d["header_message_id"].as_str().unwrap_or("").to_owned()))
        .collect();
    let flagged: HashSet<&str> = recorded
        .iter()
        .map(|(id, _)| header_of[id].as_str())
        .collect();
    let unaccounted: Vec<_> = seen
        .iter()
        .filter(|(id, n)| **n > 1 && !flagged.contains(id.as_str()))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "duplicates not on record: {unaccounted:?}"
    );
    assert!(
        extra <= recorded.len(),
        "{extra} extra copies, {} recorded",
        recorded.len()
    );
    // Only the dead node's unfinished sends are recorded, and no more than it held.
    assert!(
        recorded.iter().all(|(_, owner)| *owner == victim_owner),
        "{recorded:?} (dead node: {victim_owner})"
    );
    assert!(
        recorded.len() <= in_flight,
        "{} recorded but only {in_flight} recipients were in flight on the killed node",
        recorded.len()
    );
    assert!(sink.violations().is_empty(), "{:?}", sink.violations());
    assert_settled_once(&survivor, &queue);
}
