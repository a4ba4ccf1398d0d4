//! Users' sender bindings, on both backends: stored with the user, replaced as a whole,
//! removed with the user, audited in the same transaction, and the upgrade from a schema
//! without them.

use std::borrow::Cow;
use std::time::Duration;

use sealgate_store::{AuditFilter, Store};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_types::{AllowedSenders, AuditRecord};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Executor, SqlSafeStr};

use super::{open, user_event};

fn senders(rules: &[&str]) -> AllowedSenders {
    AllowedSenders::parse_list(rules).expect("rules")
}

fn changed(name: &str) -> AuditRecord {
    user_event("user_senders_changed", name)
}

async fn audit_kinds(store: &Store) -> Vec<String> {
    store
        .audit_after(0, &AuditFilter::default(), 50)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn a_user_keeps_its_senders_across_a_password_change(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let clinic = senders(&["@clinic.example", "billing@hospital.example"]);
    store
        .user_upsert(
            "ehr",
            "$argon2id$one",
            Some((&clinic, &changed("ehr"))),
            &user_event("user_saved", "ehr"),
        )
        .await
        .expect("add");
    store
        .user_upsert(
            "ehr",
            "$argon2id$two",
            None,
            &user_event("user_saved", "ehr"),
        )
        .await
        .expect("new password");
    assert_eq!(
        store.user_senders("ehr").await.expect("read"),
        Some(clinic.clone())
    );
    let listed = store.user_list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].senders, clinic);
    assert_eq!(
        audit_kinds(&store).await,
        ["user_saved", "user_senders_changed", "user_saved"]
    );
}

async fn a_new_user_without_senders_may_send_as_nobody(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    store
        .user_upsert(
            "ehr",
            "$argon2id$one",
            None,
            &user_event("user_saved", "ehr"),
        )
        .await
        .expect("add");
    assert_eq!(
        store.user_senders("ehr").await.expect("read"),
        Some(AllowedSenders::none())
    );
    assert_eq!(store.user_senders("nobody").await.expect("read"), None);
}

async fn senders_are_replaced_only_for_an_existing_user(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let any = AllowedSenders::any();
    store
        .user_upsert(
            "ehr",
            "$argon2id$one",
            Some((&any, &changed("ehr"))),
            &user_event("user_saved", "ehr"),
        )
        .await
        .expect("add");
    let only = senders(&["ehr@clinic.example"]);
    assert!(
        store
            .user_set_senders("ehr", &only, &changed("ehr"))
            .await
            .expect("set")
    );
    assert_eq!(store.user_senders("ehr").await.expect("read"), Some(only));
    assert!(
        !store
            .user_set_senders("ghost", &any, &changed("ghost"))
            .await
            .expect("set for nobody")
    );
    assert_eq!(store.user_senders("ghost").await.expect("read"), None);
    assert_eq!(
        audit_kinds(&store).await,
        ["user_saved", "user_senders_changed", "user_senders_changed"],
        "nothing audited for a user that does not exist"
    );
}

async fn removing_a_user_removes_its_senders(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let any = AllowedSenders::any();
    store
        .user_upsert(
            "ehr",
            "$argon2id$one",
            Some((&any, &changed("ehr"))),
            &user_event("user_saved", "ehr"),
        )
        .await
        .expect("add");
    assert!(
        store
            .user_remove("ehr", &user_event("user_removed", "ehr"))
            .await
            .expect("remove")
    );
    store
        .user_upsert(
            "ehr",
            "$argon2id$two",
            None,
            &user_event("user_saved", "ehr"),
        )
        .await
        .expect("add again");
    assert_eq!(
        store.user_senders("ehr").await.expect("read"),
        Some(AllowedSenders::none()),
        "a user added again does not inherit the old binding"
    );
}

/// Applies every migration before sender binding (version 7) to `db`, as a relay of that
/// version did, and adds a user there.
async fn schema_before_sender_binding_with_a_user(db: &TestDb, backend: TestBackend) {
    let dir = match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres => "postgres",
    };
    let dir = format!("{}/../../migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut migrations = Vec::new();
    for path in files {
        let file = path.file_name().and_then(|n| n.to_str()).expect("name");
        let (version, name) = file.split_once('_').expect("NNNN_name.sql");
        let version: i64 = version.parse().expect("version");
        if version >= 7 {
            continue;
        }
        let sql = std::fs::read_to_string(&path).expect("read migration");
        let name = name.trim_end_matches(".sql").to_owned();
        migrations.push(Migration::new(
            version,
            Cow::Owned(name),
            MigrationType::Simple,
            AssertSqlSafe(sql).into_sql_str(),
            false,
        ));
    }
    // Store::connect creates the SQLite file; its pool is private, so a second one is opened.
    let store = Store::connect(&db.url, 2, Duration::from_secs(10))
        .await
        .expect("connect");
    store.close().await;
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
    Migrator::with_migrations(migrations)
        .run(&pool)
        .await
        .expect("old migrations");
    pool.execute(
        "INSERT INTO users (name, password_hash, created_at) VALUES ('legacy', '$argon2id$x', 1)",
    )
    .await
    .expect("old user");
    pool.close().await;
}

async fn users_from_before_sender_binding_stay_unrestricted(backend: TestBackend) {
    let db = TestDb::new(backend).await;
    schema_before_sender_binding_with_a_user(&db, backend).await;
    let store = Store::connect(&db.url, 2, Duration::from_secs(10))
        .await
        .expect("connect");
    store.migrate().await.expect("upgrade");
    assert_eq!(
        store.user_senders("legacy").await.expect("read"),
        Some(AllowedSenders::any())
    );
}

sealgate_testkit::on_each_backend!(
    a_user_keeps_its_senders_across_a_password_change,
    a_new_user_without_senders_may_send_as_nobody,
    senders_are_replaced_only_for_an_existing_user,
    removing_a_user_removes_its_senders,
    users_from_before_sender_binding_stay_unrestricted,
);
