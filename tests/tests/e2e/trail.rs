//! Reading what the audit log says about a message, for the end-to-end tests: its events by
//! kind, the first one once it exists, a recipient's first outcome, and the string arrays
//! (evidence, alerts) events carry.

use std::time::Duration;

use sealgate_tests::Daemon;
use serde_json::Value;

use crate::inspect::Inspect;
use crate::lab::{eventually, kinds_for};

/// Longest wait for an event to appear.
const WAIT: Duration = Duration::from_secs(30);

/// The daemon's database, with its sealing key (to open stored messages).
pub(crate) fn inspect(d: &Daemon) -> Inspect {
    Inspect::new(d.db_url(), Some(&d.data_dir().join("seal.key")))
}

/// The data of every `kind` event about message `id`, oldest first.
pub(crate) fn events(db: &Inspect, id: &str, kind: &str) -> Vec<Value> {
    db.audit()
        .into_iter()
        .filter(|e| e.kind == kind && e.message_id.as_deref() == Some(id))
        .map(|e| serde_json::from_str(&e.data).expect("audit data is JSON"))
        .collect()
}

/// The first `kind` event about `id`, once it exists.
pub(crate) fn first(db: &Inspect, id: &str, kind: &str) -> Value {
    eventually(WAIT, &format!("a {kind} event for {id}"), || {
        !events(db, id, kind).is_empty()
    });
    events(db, id, kind).remove(0)
}

/// Waits for the first outcome of `rcpt` of `id` and asserts it is `kind` (delivered,
/// deferred, bounced): a wrong outcome fails at once, naming every event so far.
pub(crate) fn wait_for(db: &Inspect, id: &str, rcpt: &str, kind: &str) {
    const OUTCOMES: [&str; 3] = ["delivered", "deferred", "bounced"];
    let outcome = || {
        kinds_for(db, id, rcpt)
            .into_iter()
            .find(|k| OUTCOMES.contains(&k.as_str()))
    };
    eventually(WAIT, &format!("an outcome for {rcpt}"), || {
        outcome().is_some()
    });
    assert_eq!(
        outcome().as_deref(),
        Some(kind),
        "first outcome for {rcpt}; events so far: {:?}",
        kinds_for(db, id, rcpt)
    );
}

/// The strings of the array `key` of an event.
pub(crate) fn lines(event: &Value, key: &str) -> Vec<String> {
    event[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array in {event}"))
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Whether some string of the array `key` of `event` contains `needle`.
pub(crate) fn mentions(event: &Value, key: &str, needle: &str) -> bool {
    lines(event, key).iter().any(|l| l.contains(needle))
}
