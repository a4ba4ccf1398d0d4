//! The default URL form, relative to the working directory. Its own test binary (own process),
//! because it changes the working directory.

use std::time::Duration;

use sealgate_store::Store;

#[tokio::test]
async fn relative_sqlite_url_creates_data_directory_under_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::env::set_current_dir(dir.path()).expect("chdir");
    let store = Store::connect("sqlite://./data/sealgate.db", 2, Duration::from_secs(5))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    assert_eq!(store.audit_head().await.expect("head").0, 0);
    store.close().await;
    assert!(dir.path().join("data/sealgate.db").is_file());
}
