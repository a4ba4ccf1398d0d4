use super::*;
use sealgate_testkit::db::{TestBackend, TestDb};

async fn queue(backend: TestBackend) -> (Queue, TestDb, tempfile::TempDir) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url, 4, std::time::Duration::from_secs(5))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let dir = tempfile::tempdir().expect("tempdir");
    let (keys, _) = KeyRing::load_or_create(&dir.path().join("seal.key")).expect("keys");
    (Queue::new(store, Arc::new(keys)), db, dir)
}

fn incoming(body: &[u8]) -> IncomingMessage {
    IncomingMessage {
        id: MessageId::new(),
        sender: "ehr@clinic.example".into(),
        recipients: vec!["a@x.example".into(), "b@y.example".into()],
        content: body.to_vec(),
        client_data_sha256: data_digest(body),
        client_data_size: body.len() as u64,
        header_message_id: Some("<1@clinic.example>".into()),
        client_ip: "127.0.0.1".into(),
        helo: "ehr.clinic.example".into(),
        auth_user: None,
        tls: None,
    }
}

async fn accepted_message_is_sealed_queued_and_audited(backend: TestBackend) {
    let (q, _db, _dir) = queue(backend).await;
    let body = b"Subject: lab results\r\n\r\nPatient MRN 1234567\r\n";
    let id = q.accept(incoming(body)).await.expect("accept");
    let row = q
        .store()
        .message(&id.to_string())
        .await
        .expect("query")
        .expect("row");
    assert!(
        !row.sealed_body.windows(11).any(|w| w == b"MRN 1234567"),
        "body stored in clear"
    );
    assert_eq!(q.open(&id).await.expect("open"), body);
    let rcpts = q
        .store()
        .recipients_of(&id.to_string())
        .await
        .expect("rcpts");
    assert_eq!(rcpts.len(), 2);
    assert!(
        rcpts
            .iter()
            .all(|r| r.state == sealgate_types::RecipientState::Queued)
    );
    let filter = sealgate_store::AuditFilter {
        message_id: Some(id.to_string()),
        ..Default::default()
    };
    let events = q.store().audit_after(0, &filter, 10).await.expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "received");
    let data: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
    assert_eq!(data["body_sha256"], data_digest(body));
    assert_eq!(data["recipients"].as_array().map(Vec::len), Some(2));
    assert_eq!(data["size"], body.len());
}

#[tokio::test]
async fn accepted_message_is_sealed_queued_and_audited_on_sqlite() {
    accepted_message_is_sealed_queued_and_audited(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn accepted_message_is_sealed_queued_and_audited_on_postgres() {
    accepted_message_is_sealed_queued_and_audited(TestBackend::Postgres).await;
}
