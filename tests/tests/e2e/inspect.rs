//! Reading what the daemon committed, straight from its database and key ring, the way an
//! operator's tools would: rows, audit events, and sealed bodies opened with the key file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sealgate_crypto::KeyRing;
use sealgate_queue::Queue;
use sealgate_store::{AuditFilter, MessageRow, RecipientRow, Store};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_types::{AuditEntry, RecipientState};
use serde_json::Value;

/// A database for a daemon under test, created on the chosen backend.
pub(crate) fn fresh_db(backend: TestBackend) -> TestDb {
    runtime().block_on(TestDb::new(backend))
}

/// A current-thread runtime for the synchronous tests.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

/// An error with all its sources, "outer: inner: innermost".
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A synchronous window onto one daemon's store.
pub(crate) struct Inspect {
    rt: tokio::runtime::Runtime,
    store: Store,
    queue: Option<Queue>,
}

impl Inspect {
    /// Connects to `url`; with `key_file`, sealed bodies can be opened too.
    pub(crate) fn new(url: &str, key_file: Option<&Path>) -> Self {
        let rt = runtime();
        let store = rt
            .block_on(Store::connect(url, 2, Duration::from_secs(10)))
            .expect("connect");
        let queue = key_file.map(|k| {
            let keys = KeyRing::load(k).expect("key ring");
            Queue::new(store.clone(), Arc::new(keys))
        });
        Self { rt, store, queue }
    }

    /// Messages in the queue.
    pub(crate) fn message_count(&self) -> i64 {
        self.rt
            .block_on(self.store.count_messages())
            .expect("count")
    }

    /// Whether a message row exists.
    pub(crate) fn has_message(&self, id: &str) -> bool {
        self.rt
            .block_on(self.store.message(id))
            .expect("message")
            .is_some()
    }

    /// The recipient addresses and states of a message.
    pub(crate) fn recipients(&self, id: &str) -> Vec<(String, String)> {
        let rows = self
            .rt
            .block_on(self.store.recipients_of(id))
            .expect("recipients");
        rows.into_iter()
            .map(|r| (r.rcpt, r.state.to_string()))
            .collect()
    }

    /// One message row (panics if it is missing).
    pub(crate) fn message(&self, id: &str) -> MessageRow {
        self.rt
            .block_on(self.store.message(id))
            .unwrap_or_else(|e| panic!("read message {id}: {}", chain(&e)))
            .unwrap_or_else(|| panic!("no message {id}"))
    }

    /// The recipient addresses of a message, in order.
    pub(crate) fn addresses(&self, id: &str) -> Vec<String> {
        self.recipients(id).into_iter().map(|(r, _)| r).collect()
    }

    /// Every recipient row, optionally only those in `state`, oldest first.
    pub(crate) fn recipients_in(&self, state: Option<RecipientState>) -> Vec<RecipientRow> {
        self.rt
            .block_on(self.store.list_recipients(state, 1_000_000))
            .unwrap_or_else(|e| panic!("list recipients: {}", chain(&e)))
    }

    /// Runs `sql` as-is; the error text includes the database's own message.
    pub(crate) fn execute(&self, sql: &str) -> Result<u64, String> {
        self.rt
            .block_on(self.store.execute_raw(sql))
            .map_err(|e| chain(&e))
    }

    /// The webhook outbox's rows in `state` (all when `None`), oldest first.
    pub(crate) fn webhook_events(&self, state: Option<&str>) -> Vec<sealgate_store::OutboxRow> {
        self.rt
            .block_on(self.store.webhook_events(state, None, 0, 1_000_000))
            .expect("webhook events")
    }

    /// Every audit event, oldest first.
    pub(crate) fn audit(&self) -> Vec<AuditEntry> {
        self.rt
            .block_on(
                self.store
                    .audit_after(0, &AuditFilter::default(), 1_000_000),
            )
            .expect("audit")
    }

    /// The `received` event's data for each message id.
    pub(crate) fn received_events(&self) -> HashMap<String, Value> {
        self.audit()
            .into_iter()
            .filter(|e| e.kind == "received")
            .map(|e| {
                let data: Value = serde_json::from_str(&e.data).expect("audit data is JSON");
                (e.message_id.expect("received has a message id"), data)
            })
            .collect()
    }

    /// The stored message, opened with the key ring.
    pub(crate) fn body(&self, id: &str) -> String {
        let queue = self.queue.as_ref().expect("Inspect::new with a key file");
        let bytes = self
            .rt
            .block_on(queue.open(&id.parse().expect("queue id")))
            .expect("open sealed body");
        String::from_utf8(bytes).expect("utf-8 test message")
    }
}
