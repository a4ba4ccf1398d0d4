//! What the store's unit tests share: a migrated store on a fresh database of either backend,
//! and the kinds of the audit rows written so far.

use std::time::Duration;

use sealgate_testkit::db::{TestBackend, TestDb};

use crate::Store;
use crate::model::AuditFilter;

/// A migrated store on a fresh database (dropped with the returned [`TestDb`]).
pub(crate) async fn open(backend: TestBackend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url, 4, Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (db, store)
}

/// The kind of every audit row, oldest first.
pub(crate) async fn audit_kinds(store: &Store) -> Vec<String> {
    store
        .audit_after(0, &AuditFilter::default(), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}
