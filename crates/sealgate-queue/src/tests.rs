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
        requiretls: false,
        origin: None,
        tenant: None,
        api_key: None,
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

/// RFC 8689: REQUIRETLS given at ingress reaches the claim a delivery worker acts on.
/// RFC 5322 §3.6.3: what is sealed (and so what every method delivers) has no `Bcc:`;
/// the audit keeps the digest and size of the data as the client sent it.
#[tokio::test]
async fn the_sealed_message_has_no_bcc_and_the_audit_keeps_the_client_digest() {
    let (q, _db, _dir) = queue(TestBackend::Sqlite).await;
    let body = b"To: a@x.example\r\nBcc: b@y.example\r\nSubject: s\r\n\r\nBcc: in body\r\n";
    let id = q.accept(incoming(body)).await.expect("accept");
    let opened = q.open(&id).await.expect("open");
    assert_eq!(
        opened,
        b"To: a@x.example\r\nSubject: s\r\n\r\nBcc: in body\r\n"
    );
    let row = q
        .store()
        .message(&id.to_string())
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.size, opened.len() as i64);
    let filter = sealgate_store::AuditFilter {
        message_id: Some(id.to_string()),
        ..Default::default()
    };
    let events = q.store().audit_after(0, &filter, 10).await.expect("audit");
    let data: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
    assert_eq!(data["body_sha256"], data_digest(body));
    assert_eq!(data["size"], body.len());
}

/// A message is opened by its stored id; an id that is not a queue id is named as such,
/// never read as some other message (it once parsed to a default id).
#[tokio::test]
async fn a_stored_id_that_is_not_a_queue_id_is_refused_by_name() {
    let (q, _db, _dir) = queue(TestBackend::Sqlite).await;
    let id = q
        .accept(incoming(b"Subject: s\r\n\r\nhi\r\n"))
        .await
        .expect("accept");
    let opened = q
        .open_stored(&id.to_string())
        .await
        .expect("open by stored id");
    assert_eq!(opened, q.open(&id).await.expect("open"));
    let err = q.open_stored("not-a-uuid").await.expect_err("a bad id");
    assert!(matches!(err, QueueError::BadId { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("message id \"not-a-uuid\" is not a queue id: "),
        "{err}"
    );
    assert!(!err.is_transient());
}

async fn requiretls_is_kept_from_accept_to_claim_and_audited(backend: TestBackend) {
    let (q, _db, _dir) = queue(backend).await;
    let body = b"Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n";
    let tls = Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".to_owned());
    let strict = q
        .accept(IncomingMessage {
            requiretls: true,
            tls: tls.clone(),
            ..incoming(body)
        })
        .await
        .expect("accept");
    let plain = q.accept(incoming(body)).await.expect("accept");
    let row = q.store().message(&strict.to_string()).await.expect("read");
    assert!(row.expect("row").requiretls);
    // RFC 8689 §5: REQUIRETLS wins over `TLS-Required: No`, which is kept as it came.
    assert_eq!(q.open(&strict).await.expect("open"), body);
    let claims = q
        .claim("node-a", std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claims.len(), 4);
    for c in &claims {
        let expected = c.recipient.message_id == strict.to_string();
        assert_eq!(c.requiretls, expected, "{c:?}");
    }
    for (id, expected) in [(strict, Some(true)), (plain, None)] {
        let filter = sealgate_store::AuditFilter {
            message_id: Some(id.to_string()),
            ..Default::default()
        };
        let events = q.store().audit_after(0, &filter, 10).await.expect("audit");
        let data: serde_json::Value = serde_json::from_str(&events[0].data).expect("json");
        assert_eq!(data["requiretls"].as_bool(), expected, "{data}");
    }
}

#[tokio::test]
async fn requiretls_is_kept_from_accept_to_claim_and_audited_on_sqlite() {
    requiretls_is_kept_from_accept_to_claim_and_audited(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn requiretls_is_kept_from_accept_to_claim_and_audited_on_postgres() {
    requiretls_is_kept_from_accept_to_claim_and_audited(TestBackend::Postgres).await;
}

/// Only messages Sealgate wrote as notices are phi-free; a portal reply and a client's
/// message are not.
async fn the_notice_origin_makes_a_claim_phi_free(backend: TestBackend) {
    let (q, _db, _dir) = queue(backend).await;
    let with = |origin: Option<&str>| IncomingMessage {
        origin: origin.map(str::to_owned),
        recipients: vec!["a@x.example".into()],
        ..incoming(b"Subject: x\r\n\r\nbody\r\n")
    };
    let notice = q.accept(with(Some(ORIGIN_NOTICE))).await.expect("accept");
    let reply = q.accept(with(Some(ORIGIN_REPLY))).await.expect("accept");
    let client = q.accept(with(None)).await.expect("accept");
    let row = q.store().message(&notice.to_string()).await.expect("read");
    assert_eq!(row.expect("row").origin.as_deref(), Some("portal-notice"));
    let claims = q
        .claim("node-a", std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claims.len(), 3);
    for c in &claims {
        let expected = c.recipient.message_id == notice.to_string();
        assert_eq!(c.phi_free, expected, "{c:?}");
    }
    assert!([reply, client].iter().all(|id| {
        claims
            .iter()
            .any(|c| c.recipient.message_id == id.to_string())
    }));
}

#[tokio::test]
async fn the_notice_origin_makes_a_claim_phi_free_on_sqlite() {
    the_notice_origin_makes_a_claim_phi_free(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn the_notice_origin_makes_a_claim_phi_free_on_postgres() {
    the_notice_origin_makes_a_claim_phi_free(TestBackend::Postgres).await;
}

/// A node cleared to send that stopped before settling leaves its mark; the next claim
/// records one `possible_duplicate` per recipient, clears the mark, and may then send.
async fn a_claim_records_an_unfinished_send_as_a_possible_duplicate(backend: TestBackend) {
    let (q, _db, _dir) = queue(backend).await;
    let id = q
        .accept(incoming(b"Subject: x\r\n\r\nbody\r\n"))
        .await
        .expect("accept");
    let lease = std::time::Duration::from_millis(300);
    let claims = q.claim("node-a", lease, 10).await.expect("claim");
    assert_eq!(claims.len(), 2);
    let first = vec![claims[0].recipient.id];
    let marked = q
        .commit_batch("node-a", Vec::new(), std::slice::from_ref(&first))
        .await
        .expect("mark");
    assert_eq!(marked, [true]);
    // node-a dies here. Its second recipient was claimed but never cleared to send.
    tokio::time::sleep(lease + std::time::Duration::from_millis(100)).await;
    let taken = q
        .claim("node-b", std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|c| c.recipient.sending_owner.is_none()));
    let filter = sealgate_store::AuditFilter {
        message_id: Some(id.to_string()),
        ..Default::default()
    };
    let events = q.store().audit_after(0, &filter, 10).await.expect("audit");
    let dups: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "possible_duplicate")
        .collect();
    assert_eq!(dups.len(), 1, "{events:?}");
    assert_eq!(
        dups[0].recipient.as_deref(),
        Some(claims[0].recipient.rcpt.as_str())
    );
    let data: serde_json::Value = serde_json::from_str(&dups[0].data).expect("json");
    assert_eq!(data["previous_owner"], "node-a");
    assert_eq!(
        q.commit_batch("node-b", Vec::new(), &[first])
            .await
            .expect("mark"),
        [true]
    );
}

sealgate_testkit::on_each_backend!(a_claim_records_an_unfinished_send_as_a_possible_duplicate,);

mod delivery {
    use std::collections::HashSet;
    use std::time::Duration;

    use sealgate_audit::AttemptEvidence;
    use sealgate_testkit::db::TestBackend;
    use sealgate_types::RecipientState;

    use super::{incoming, queue};
    use crate::{RetryPolicy, Settled};
    use sealgate_types::Outcome;

    const LEASE: Duration = Duration::from_secs(60);

    fn evidence(outcome: Outcome, reply: &str) -> AttemptEvidence {
        AttemptEvidence {
            mx: Some("mx1.example.test".into()),
            ip: Some("127.0.0.2".into()),
            reply_code: reply.get(..3).and_then(|c| c.parse().ok()),
            reply: Some(reply.into()),
            outcome,
            ..AttemptEvidence::default()
        }
    }

    /// A hold is settled as a deferral that says it is a hold (row and audit); the next
    /// settlement that is not a hold clears it; a hold past the queue lifetime bounces.
    async fn a_hold_is_recorded_as_a_hold_until_the_next_settlement(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        let id = q.accept(incoming(b"x\r\n")).await.expect("accept");
        let policy = RetryPolicy {
            first_retry: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let hold = Outcome::Held(sealgate_types::HoldReason::PortalDisabled);
        let claims = q.claim("n", LEASE, 10).await.expect("claim");
        let settled = q
            .settle(&claims[0], "n", evidence(hold, "4.7.0 waits"), &policy, 0.5)
            .await
            .expect("settle");
        assert!(
            matches!(
                settled,
                Settled::Deferred {
                    held: Some(sealgate_types::HoldReason::PortalDisabled),
                    ..
                }
            ),
            "{settled:?}"
        );
        let held = q.store().list_held(10).await.expect("held");
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].rcpt, claims[0].recipient.rcpt);
        assert_eq!(held[0].state, RecipientState::Deferred);
        assert_eq!(held[0].held.as_deref(), Some("portal-disabled"));
        let filter = sealgate_store::AuditFilter {
            message_id: Some(id.to_string()),
            ..Default::default()
        };
        let audit = q.store().audit_after(0, &filter, 10).await.expect("audit");
        let deferred = audit
            .iter()
            .find(|e| e.kind == "deferred")
            .expect("deferred");
        let data: serde_json::Value = serde_json::from_str(&deferred.data).expect("json");
        assert_eq!(data["held"], "portal-disabled", "{data}");

        // A remote 4xx next time: still deferred, no longer a hold.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let again = q.claim("n", LEASE, 10).await.expect("claim");
        let same = again
            .iter()
            .find(|c| c.recipient.id == claims[0].recipient.id)
            .expect("the held recipient is due again");
        q.settle(
            same,
            "n",
            evidence(Outcome::Temporary, "451 busy"),
            &policy,
            0.5,
        )
        .await
        .expect("settle");
        assert!(q.store().list_held(10).await.expect("held").is_empty());

        // Past the queue lifetime a hold bounces like any other wait.
        let old = RetryPolicy {
            max_age: Duration::ZERO,
            ..RetryPolicy::default()
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let last = q.claim("n", LEASE, 10).await.expect("claim");
        let again = last
            .iter()
            .find(|c| c.recipient.id == claims[0].recipient.id)
            .expect("due again");
        let bounced = q
            .settle(again, "n", evidence(hold, "4.7.0 waits"), &old, 0.5)
            .await
            .expect("settle");
        assert!(matches!(bounced, Settled::Bounced { .. }), "{bounced:?}");
    }

    #[tokio::test]
    async fn a_hold_is_recorded_as_a_hold_until_the_next_settlement_on_sqlite() {
        a_hold_is_recorded_as_a_hold_until_the_next_settlement(TestBackend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_hold_is_recorded_as_a_hold_until_the_next_settlement_on_postgres() {
        a_hold_is_recorded_as_a_hold_until_the_next_settlement(TestBackend::Postgres).await;
    }

    async fn outcomes_settle_into_the_right_states_with_their_audit(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        let id = q
            .accept(incoming(b"Subject: x\r\n\r\nbody\r\n"))
            .await
            .expect("accept");
        let claims = q.claim("node-a", LEASE, 10).await.expect("claim");
        assert_eq!(claims.len(), 2);
        assert!(
            q.claim("node-b", LEASE, 10)
                .await
                .expect("claim")
                .is_empty(),
            "claimed twice"
        );
        let policy = RetryPolicy::default();
        let delivered = q
            .settle(
                &claims[0],
                "node-a",
                evidence(Outcome::Delivered, "250 2.0.0 ok"),
                &policy,
                0.5,
            )
            .await
            .expect("settle");
        assert_eq!(delivered, Settled::Delivered);
        let deferred = q
            .settle(
                &claims[1],
                "node-a",
                evidence(Outcome::Temporary, "451 4.3.0 later"),
                &policy,
                0.5,
            )
            .await
            .expect("settle");
        let Settled::Deferred {
            next_attempt_at,
            warn_sender,
            ..
        } = deferred
        else {
            panic!("{deferred:?}")
        };
        assert!(
            !warn_sender,
            "a fresh message is not yet due a delay warning"
        );
        let wait = next_attempt_at - sealgate_types::time::now_micros();
        assert!(
            (4 * 60_000_000..=6 * 60_000_000).contains(&wait),
            "first retry in ~5 min, got {wait} µs"
        );
        assert!(
            q.claim("node-a", LEASE, 10)
                .await
                .expect("claim")
                .is_empty(),
            "deferred is not due yet"
        );

        let rows = q
            .store()
            .recipients_of(&id.to_string())
            .await
            .expect("rows");
        assert_eq!(rows[0].state, RecipientState::Delivered);
        assert_eq!(rows[1].state, RecipientState::Deferred);
        assert_eq!((rows[0].attempts, rows[1].attempts), (1, 1));
        assert_eq!(rows[1].last_reply.as_deref(), Some("451 4.3.0 later"));
        let filter = sealgate_store::AuditFilter {
            message_id: Some(id.to_string()),
            ..Default::default()
        };
        let kinds: Vec<(String, Option<String>)> = q
            .store()
            .audit_after(0, &filter, 10)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| (e.kind, e.recipient))
            .collect();
        let a = Some("a@x.example".to_owned());
        let b = Some("b@y.example".to_owned());
        assert_eq!(
            kinds,
            [
                ("received".into(), None),
                ("attempt".into(), a.clone()),
                ("delivered".into(), a),
                ("attempt".into(), b.clone()),
                ("deferred".into(), b)
            ]
        );
    }

    #[tokio::test]
    async fn outcomes_settle_into_the_right_states_with_their_audit_on_sqlite() {
        outcomes_settle_into_the_right_states_with_their_audit(TestBackend::Sqlite).await;
    }

    #[tokio::test]
    async fn outcomes_settle_into_the_right_states_with_their_audit_on_postgres() {
        outcomes_settle_into_the_right_states_with_their_audit(TestBackend::Postgres).await;
    }

    async fn permanent_and_expired_failures_bounce(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        q.accept(incoming(b"x\r\n")).await.expect("accept");
        let claims = q.claim("n", LEASE, 10).await.expect("claim");
        let expired = RetryPolicy {
            max_age: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let p = q
            .settle(
                &claims[0],
                "n",
                evidence(Outcome::Permanent, "550 5.1.1 no such user"),
                &RetryPolicy::default(),
                0.5,
            )
            .await
            .expect("settle");
        assert_eq!(
            p,
            Settled::Bounced {
                reason: "550 5.1.1 no such user".into()
            }
        );
        let t = q
            .settle(
                &claims[1],
                "n",
                evidence(Outcome::Temporary, "421 4.4.2 busy"),
                &expired,
                0.5,
            )
            .await
            .expect("settle");
        let Settled::Bounced { reason } = t else {
            panic!("{t:?}")
        };
        assert!(
            reason.contains("gave up after 1 attempts") && reason.contains("421 4.4.2 busy"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn permanent_and_expired_failures_bounce_on_sqlite() {
        permanent_and_expired_failures_bounce(TestBackend::Sqlite).await;
    }

    #[tokio::test]
    async fn permanent_and_expired_failures_bounce_on_postgres() {
        permanent_and_expired_failures_bounce(TestBackend::Postgres).await;
    }

    async fn the_sender_is_warned_of_a_delay_once(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        let id = q.accept(incoming(b"x\r\n")).await.expect("accept");
        // Warn at once, retry at once: each deferral is claimable again immediately.
        let policy = RetryPolicy {
            delay_warning: Duration::from_micros(1),
            first_retry: Duration::from_micros(1),
            max_delay: Duration::from_micros(1),
            jitter_percent: 0,
            ..RetryPolicy::default()
        };
        let mut warnings = Vec::new();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let claims = q.claim("n", LEASE, 10).await.expect("claim");
            assert_eq!(claims.len(), 2, "both recipients due again");
            let mut round = Vec::new();
            for claim in &claims {
                let s = q
                    .settle(
                        claim,
                        "n",
                        evidence(Outcome::Temporary, "451 later"),
                        &policy,
                        0.5,
                    )
                    .await
                    .expect("settle");
                let Settled::Deferred { warn_sender, .. } = s else {
                    panic!("{s:?}")
                };
                round.push(warn_sender);
            }
            warnings.push(round);
        }
        assert_eq!(
            warnings,
            [[true, true], [false, false], [false, false]],
            "each recipient warned exactly once"
        );
        let rows = q
            .store()
            .recipients_of(&id.to_string())
            .await
            .expect("rows");
        assert!(rows.iter().all(|r| r.warned_at.is_some()));
        let off = RetryPolicy {
            delay_warning: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert!(!off.warning_due(0, i64::MAX), "zero turns warnings off");
    }

    #[tokio::test]
    async fn the_sender_is_warned_of_a_delay_once_on_sqlite() {
        the_sender_is_warned_of_a_delay_once(TestBackend::Sqlite).await;
    }

    #[tokio::test]
    async fn the_sender_is_warned_of_a_delay_once_on_postgres() {
        the_sender_is_warned_of_a_delay_once(TestBackend::Postgres).await;
    }

    fn notice(req: &crate::NoticeRequest<'_>) -> crate::NoticeContent {
        let lines: Vec<String> = req
            .recipients
            .iter()
            .map(|r| format!("{}: {}", r.recipient, r.reason))
            .collect();
        crate::NoticeContent {
            content: format!(
                "Subject: {:?} for {}\r\n\r\n{}\r\n",
                req.kind,
                req.original_id,
                lines.join("\r\n")
            )
            .into_bytes(),
            header_message_id: None,
            hostname: "relay.test".into(),
        }
    }

    async fn a_bounce_and_its_notice_are_written_together_or_not_at_all(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        let id = q
            .accept(incoming(b"Subject: s\r\n\r\nbody\r\n"))
            .await
            .expect("accept");
        let policy = RetryPolicy::default();
        let reports = |claims: &[crate::Claim]| -> Vec<crate::AttemptReport> {
            claims
                .iter()
                .map(|c| crate::AttemptReport {
                    claim: c.clone(),
                    evidence: evidence(Outcome::Permanent, "550 5.1.1 no such user"),
                })
                .collect()
        };
        // A lost lease: nothing at all is written, not even the notice.
        let stale = q.claim("old", Duration::ZERO, 10).await.expect("claim");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let fresh = q.claim("new", LEASE, 10).await.expect("reclaim");
        let lost = q
            .settle_group("old", reports(&stale).into(), &policy, &|| 0.5, &notice)
            .await
            .expect("settle");
        assert!(lost.iter().all(|s| *s == Settled::LeaseLost));
        assert_eq!(
            q.store().count_messages().await.expect("count"),
            1,
            "no notice without the settlement"
        );
        // The owner's settlement writes both bounces and one notice for the message.
        let settled = q
            .settle_group("new", reports(&fresh).into(), &policy, &|| 0.5, &notice)
            .await
            .expect("settle");
        assert_eq!(settled.len(), 2);
        assert!(settled.iter().all(|s| matches!(s, Settled::Bounced { .. })));
        assert_eq!(
            q.store().count_messages().await.expect("count"),
            2,
            "exactly one notice for the message"
        );
        let notices = q
            .store()
            .list_recipients(Some(RecipientState::Queued), 10)
            .await
            .expect("list");
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].rcpt, "ehr@clinic.example");
        let dsn = q
            .open(&notices[0].message_id.parse().expect("id"))
            .await
            .expect("open");
        let dsn = String::from_utf8(dsn).expect("utf-8");
        assert!(
            dsn.starts_with(&format!("Subject: Failure for {id}")),
            "{dsn}"
        );
        assert!(
            dsn.contains("a@x.example: 550 5.1.1") && dsn.contains("b@y.example: 550 5.1.1"),
            "{dsn}"
        );
        let notice_row = q
            .store()
            .message(&notices[0].message_id)
            .await
            .expect("row")
            .expect("exists");
        assert_eq!(notice_row.sender, "", "notices come from the null sender");
    }

    #[tokio::test]
    async fn a_bounce_and_its_notice_are_written_together_or_not_at_all_on_sqlite() {
        a_bounce_and_its_notice_are_written_together_or_not_at_all(TestBackend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_bounce_and_its_notice_are_written_together_or_not_at_all_on_postgres() {
        a_bounce_and_its_notice_are_written_together_or_not_at_all(TestBackend::Postgres).await;
    }

    async fn an_expired_lease_is_reclaimed_and_the_old_owner_writes_nothing(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        let id = q.accept(incoming(b"x\r\n")).await.expect("accept");
        let stale = q.claim("crashed", Duration::ZERO, 10).await.expect("claim");
        assert_eq!(stale.len(), 2);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let fresh = q.claim("survivor", LEASE, 10).await.expect("reclaim");
        assert_eq!(fresh.len(), 2, "expired leases are claimable");
        let (head_before, _) = q.store().audit_head().await.expect("head");
        let late = q
            .settle(
                &stale[0],
                "crashed",
                evidence(Outcome::Delivered, "250 ok"),
                &RetryPolicy::default(),
                0.5,
            )
            .await
            .expect("settle");
        assert_eq!(late, Settled::LeaseLost);
        assert_eq!(
            q.store().audit_head().await.expect("head").0,
            head_before,
            "no audit for a lost lease"
        );
        assert_eq!(q.release("survivor").await.expect("release"), 2);
        let rows = q
            .store()
            .recipients_of(&id.to_string())
            .await
            .expect("rows");
        assert!(
            rows.iter()
                .all(|r| r.state == RecipientState::Queued && r.attempts == 0),
            "{rows:?}"
        );
    }

    #[tokio::test]
    async fn an_expired_lease_is_reclaimed_and_the_old_owner_writes_nothing_on_sqlite() {
        an_expired_lease_is_reclaimed_and_the_old_owner_writes_nothing(TestBackend::Sqlite).await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_reclaimed_and_the_old_owner_writes_nothing_on_postgres() {
        an_expired_lease_is_reclaimed_and_the_old_owner_writes_nothing(TestBackend::Postgres).await;
    }

    async fn concurrent_claimers_never_share_a_recipient(backend: TestBackend) {
        let (q, _db, _dir) = queue(backend).await;
        for _ in 0..60 {
            q.accept(incoming(b"x\r\n")).await.expect("accept");
        }
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let owner = format!("w{worker}");
                let mut got = Vec::new();
                loop {
                    let batch = q.claim(&owner, LEASE, 7).await.expect("claim");
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|c| c.recipient.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 120, "every recipient claimed");
        assert_eq!(unique.len(), 120, "no recipient claimed twice");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claimers_never_share_a_recipient_on_sqlite() {
        concurrent_claimers_never_share_a_recipient(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claimers_never_share_a_recipient_on_postgres() {
        concurrent_claimers_never_share_a_recipient(TestBackend::Postgres).await;
    }
}
