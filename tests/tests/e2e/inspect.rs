//! Reading what the daemon committed, straight from its database and key ring, the way an
//! operator's tools would: rows, audit events, and sealed bodies opened with the key file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sealgate_crypto::KeyRing;
use sealgate_queue::Queue;
use sealgate_store::{AuditFilter, Store};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_types::AuditEntry;
use serde_json::Value;

/// A database for a daemon under test, created on the chosen backend.
pub fn fresh_db(backend: TestBackend) -> TestDb {
    runtime().block_on(TestDb::new(backend))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A synchronous window onto one daemon's store.
pub struct Inspect {
    rt: tokio::runtime::Runtime,
    store: Store,
    queue: Option<Queue>,
}

impl Inspect {
    /// Connects to `url`; with `key_file`, sealed bodies can be opened too.
    pub fn new(url: &str, key_file: Option<&Path>) -> Self {
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
    pub fn message_count(&self) -> i64 {
        self.rt
            .block_on(self.store.count_messages())
            .expect("count")
    }

    /// Whether a message row exists.
    pub fn has_message(&self, id: &str) -> bool {
        self.rt
            .block_on(self.store.message(id))
            .expect("message")
            .is_some()
    }

    /// The recipient addresses and states of a message.
    pub fn recipients(&self, id: &str) -> Vec<(String, String)> {
        let rows = self
            .rt
            .block_on(self.store.recipients_of(id))
            .expect("recipients");
        rows.into_iter()
            .map(|r| (r.rcpt, r.state.to_string()))
            .collect()
    }

    /// Every audit event, oldest first.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.rt
            .block_on(
                self.store
                    .audit_after(0, &AuditFilter::default(), 1_000_000),
            )
            .expect("audit")
    }

    /// The `received` event's data for each message id.
    pub fn received_events(&self) -> HashMap<String, Value> {
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
    pub fn body(&self, id: &str) -> String {
        let queue = self.queue.as_ref().expect("Inspect::new with a key file");
        let bytes = self
            .rt
            .block_on(queue.open(&id.parse().expect("queue id")))
            .expect("open sealed body");
        String::from_utf8(bytes).expect("utf-8 test message")
    }
}
