//! Recipient keys on both backends: written with their audit row, read back by address, listed
//! in order, replaced, removed.

use sealgate_testkit::db::TestBackend;
use sealgate_types::AuditRecord;
use serde_json::json;

use super::*;
use crate::test_support::{audit_kinds, open};

const PGP_FPR: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
const SMIME_FPR: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn key(kind: &str, fingerprint: &str, address: &str, material: &[u8]) -> StoredKey {
    StoredKey {
        kind: kind.into(),
        fingerprint: fingerprint.into(),
        address: address.into(),
        material: material.to_vec(),
        source: "import".into(),
        expires: None,
        added_at: 1_795_521_600_000_000,
    }
}

fn event(kind: &str, fingerprint: &str) -> AuditRecord {
    AuditRecord {
        kind: kind.into(),
        message_id: None,
        recipient: None,
        data: json!({ "fingerprint": fingerprint }),
    }
}

async fn keys_are_stored_with_one_audit_row_and_read_back_by_address(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    // Binary material with bytes that are not valid UTF-8, and NUL.
    let tpk = [0x99, 0x00, 0x0d, 0xff, 0x00, 0x80];
    let mut expiring = key("smime", SMIME_FPR, "Bob@Example.NET", &[0x30, 0x82, 0x00]);
    expiring.expires = Some(1_900_000_000);
    let keys = [
        key("pgp", PGP_FPR, "Bob@Example.NET", &tpk),
        expiring.clone(),
        key("pgp", PGP_FPR, "bob.alias@example.net", &tpk),
    ];
    let written = store
        .keys_put(&keys, &event("key_imported", PGP_FPR))
        .await
        .unwrap();
    assert_eq!(written, 3);
    assert_eq!(audit_kinds(&store).await, ["key_imported"]);

    let bob = store.keys_for("BOB@example.net").await.unwrap();
    let lowered = |k: &StoredKey| StoredKey {
        address: k.address.to_lowercase(),
        ..k.clone()
    };
    assert_eq!(bob, [lowered(&keys[0]), lowered(&expiring)]);
    assert!(
        store
            .keys_for("carol@example.net")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .keys_put(&[], &event("key_imported", ""))
            .await
            .unwrap()
            == 0
            && audit_kinds(&store).await.len() == 1,
        "an empty put writes no audit row"
    );
}

async fn list_is_ordered_by_address_then_kind(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let keys = [
        key("smime", SMIME_FPR, "zed@example.net", b"z"),
        key("smime", SMIME_FPR, "amy@example.net", b"a2"),
        key("pgp", PGP_FPR, "amy@example.net", b"a1"),
    ];
    store
        .keys_put(&keys, &event("key_imported", "x"))
        .await
        .unwrap();
    let order: Vec<(String, String)> = store
        .keys_list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.address, k.kind))
        .collect();
    let expected = [
        ("amy@example.net", "pgp"),
        ("amy@example.net", "smime"),
        ("zed@example.net", "smime"),
    ]
    .map(|(a, k)| (a.to_owned(), k.to_owned()));
    assert_eq!(order, expected);
}

async fn importing_again_replaces_the_row(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let first = key("pgp", PGP_FPR, "bob@example.net", b"old");
    store
        .keys_put(&[first], &event("key_imported", PGP_FPR))
        .await
        .unwrap();
    let mut second = key("pgp", PGP_FPR, "BOB@example.net", b"refreshed");
    second.expires = Some(2_000_000_000);
    second.added_at += 1;
    store
        .keys_put(&[second.clone()], &event("key_imported", PGP_FPR))
        .await
        .unwrap();
    second.address = "bob@example.net".into();
    assert_eq!(store.keys_list().await.unwrap(), [second]);
    assert_eq!(audit_kinds(&store).await, ["key_imported", "key_imported"]);
}

/// Makes the database refuse rows for `refused@example.net`.
async fn refuse_one_address(store: &Store, backend: TestBackend) {
    let sql = match backend {
        TestBackend::Sqlite => {
            "CREATE TRIGGER refuse_key BEFORE INSERT ON recipient_keys \
             WHEN NEW.address = 'refused@example.net' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;"
        }
        TestBackend::Postgres => {
            "CREATE FUNCTION refuse_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.address = 'refused@example.net' THEN RAISE EXCEPTION 'refused'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_key BEFORE INSERT ON recipient_keys \
             FOR EACH ROW EXECUTE FUNCTION refuse_key();"
        }
    };
    store.execute_raw(sql).await.unwrap();
}

async fn a_failed_put_writes_neither_keys_nor_audit(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    refuse_one_address(&store, backend).await;
    let keys = [
        key("pgp", PGP_FPR, "fine@example.net", b"k"),
        key("pgp", PGP_FPR, "refused@example.net", b"k"),
    ];
    let err = store
        .keys_put(&keys, &event("key_imported", PGP_FPR))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Keys { op: "put", .. }), "{err:?}");
    assert!(store.keys_list().await.unwrap().is_empty());
    assert!(audit_kinds(&store).await.is_empty());
}

async fn remove_deletes_the_matching_rows_and_audits_only_a_change(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    let keys = [
        key("pgp", PGP_FPR, "bob@example.net", b"k"),
        key("pgp", PGP_FPR, "bob.alias@example.net", b"k"),
        key("smime", SMIME_FPR, "bob@example.net", b"c"),
    ];
    store
        .keys_put(&keys, &event("key_imported", PGP_FPR))
        .await
        .unwrap();

    let none = store
        .keys_remove(
            PGP_FPR,
            Some("carol@example.net"),
            &event("key_removed", "x"),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(audit_kinds(&store).await, ["key_imported"]);

    let lower = PGP_FPR.to_lowercase();
    let one = store
        .keys_remove(
            &lower,
            Some("Bob.Alias@example.net"),
            &event("key_removed", "1"),
        )
        .await
        .unwrap();
    assert_eq!(one, [keys[1].clone()]);
    let rest = store
        .keys_remove(&SMIME_FPR.to_uppercase(), None, &event("key_removed", "2"))
        .await
        .unwrap();
    assert_eq!(rest, [keys[2].clone()]);
    assert_eq!(store.keys_list().await.unwrap(), [keys[0].clone()]);
    assert_eq!(
        audit_kinds(&store).await,
        ["key_imported", "key_removed", "key_removed"]
    );
}

sealgate_testkit::on_each_backend!(
    keys_are_stored_with_one_audit_row_and_read_back_by_address,
    list_is_ordered_by_address_then_kind,
    importing_again_replaces_the_row,
    a_failed_put_writes_neither_keys_nor_audit,
    remove_deletes_the_matching_rows_and_audits_only_a_change,
);
