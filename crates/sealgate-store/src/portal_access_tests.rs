//! Changes after a deposit, on both backends: codes, failed attempts and lockout, sessions,
//! views, replies, revoke and extend, and retention.

use super::*;

/// Two deposits, and a code (`code-hash`, valid until T0 + 900) sent for grant g1 in
/// message c1.
async fn deposit_with_code(store: &Store) {
    deposit_two(store).await;
    let code = outgoing("c1", "jane@example.test", "portal-notice");
    store
        .portal_set_code(
            "g1",
            "code-hash",
            T0 + 900,
            &code,
            &event("portal_code_sent", "g1"),
        )
        .await
        .unwrap();
}

async fn failed_attempts_lock_the_grant_and_clear_the_code(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_with_code(&store).await;
    let g = store.portal_grant("g1").await.unwrap().unwrap();
    assert_eq!(
        (g.code_hash.as_deref(), g.code_expires_at),
        (Some("code-hash"), Some(T0 + 900))
    );
    assert!(store.message("c1").await.unwrap().is_some());

    let lock = T0 + 5_000;
    for n in 1..=2 {
        let g = store
            .portal_fail_attempt("g1", 3, lock, &event("portal_code_failed", "g1"))
            .await
            .unwrap();
        assert_eq!((g.failed_attempts, g.locked_until), (n, None));
        assert_eq!(g.code_hash.as_deref(), Some("code-hash"));
    }
    let locked = store
        .portal_fail_attempt("g1", 3, lock, &event("portal_code_failed", "g1"))
        .await
        .unwrap();
    assert_eq!(
        (locked.failed_attempts, locked.locked_until),
        (0, Some(lock))
    );
    assert_eq!((locked.code_hash, locked.code_expires_at), (None, None));
    let other = store.portal_grant("g2").await.unwrap().unwrap();
    assert_eq!(other.failed_attempts, 0, "another grant is untouched");
    let unknown = store
        .portal_fail_attempt("nope", 3, lock, &event("portal_code_failed", "x"))
        .await;
    assert!(unknown.is_err());
    let kinds = audit_kinds(&store).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "portal_code_failed").count(),
        3
    );
}

async fn a_session_clears_the_code_and_is_read_back(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_with_code(&store).await;
    store
        .portal_fail_attempt("g1", 5, T0, &event("portal_code_failed", "g1"))
        .await
        .unwrap();
    let session = PortalSessionRow {
        id_hash: "s-hash".into(),
        grant_id: "g1".into(),
        csrf: "csrf-token".into(),
        expires_at: T0 + 1800,
    };
    store
        .portal_open_session("g1", &session, &event("portal_verified", "g1"))
        .await
        .unwrap();
    assert_eq!(
        store.portal_session("s-hash").await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.portal_session("other").await.unwrap(), None);
    let g = store.portal_grant("g1").await.unwrap().unwrap();
    assert_eq!((g.code_hash, g.failed_attempts), (None, 0));
    let missing = PortalSessionRow {
        id_hash: "s2".into(),
        grant_id: "nope".into(),
        ..session
    };
    let err = store
        .portal_open_session("nope", &missing, &event("portal_verified", "x"))
        .await;
    assert!(err.is_err());
    assert_eq!(store.portal_session("s2").await.unwrap(), None);

    store
        .portal_record("g1", true, &[event("portal_view", "g1")])
        .await
        .unwrap();
    let first = store
        .portal_grant("g1")
        .await
        .unwrap()
        .unwrap()
        .first_viewed_at;
    assert!(first.is_some());
    store
        .portal_record("g1", true, &[event("portal_view", "g1")])
        .await
        .unwrap();
    let again = store
        .portal_grant("g1")
        .await
        .unwrap()
        .unwrap()
        .first_viewed_at;
    assert_eq!(again, first, "the first view time is kept");
}

async fn a_reply_joins_the_thread_and_is_queued(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_two(&store).await;
    let mut reply = portal_message("r1", "p1", None);
    reply.author = "jane@example.test".into();
    reply.created_at = T0 + 10;
    let out = outgoing("q2", "ehr@clinic.test", "portal-reply");
    store
        .portal_reply(&reply, &out, &event("portal_reply", "g1"))
        .await
        .unwrap();
    let thread: Vec<String> = store
        .portal_thread("p1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(thread, ["p1", "r1"]);
    let q2 = store.message("q2").await.unwrap().unwrap();
    assert_eq!(q2.origin.as_deref(), Some("portal-reply"));
    assert_eq!(
        audit_kinds(&store).await[4..],
        ["received".to_owned(), "portal_reply".to_owned()]
    );
}

async fn revoke_and_extend_change_only_live_grants(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_two(&store).await;
    let session = PortalSessionRow {
        id_hash: "s1".into(),
        grant_id: "g1".into(),
        csrf: "c".into(),
        expires_at: T0 + 1800,
    };
    store
        .portal_open_session("g1", &session, &event("portal_verified", "g1"))
        .await
        .unwrap();
    let ext = event("portal_extended", "g1");
    assert!(store.portal_extend("g1", T0 + 9 * DAY, &ext).await.unwrap());
    assert_eq!(
        store.portal_grant("g1").await.unwrap().unwrap().expires_at,
        T0 + 9 * DAY
    );
    let rev = event("portal_revoked", "g1");
    assert!(store.portal_revoke("g1", T0 + 5, &rev).await.unwrap());
    assert_eq!(
        store.portal_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(T0 + 5)
    );
    assert_eq!(
        store.portal_session("s1").await.unwrap(),
        None,
        "sessions end"
    );
    let before = audit_kinds(&store).await.len();
    assert!(!store.portal_revoke("g1", T0 + 6, &rev).await.unwrap());
    assert!(!store.portal_extend("g1", T0 + DAY, &ext).await.unwrap());
    assert!(!store.portal_revoke("nope", T0, &rev).await.unwrap());
    assert!(!store.portal_extend("nope", T0, &ext).await.unwrap());
    assert_eq!(
        audit_kinds(&store).await.len(),
        before,
        "no change, no audit"
    );
}

async fn purge_empties_threads_whose_grants_all_ended(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_two(&store).await; // p1: g1, g2 expire at T0 + DAY
    let grants = [grant("g9", "p9", "amy@example.test", T0 + 3 * DAY)];
    let notices = [outgoing("n9", "amy@example.test", "portal-notice")];
    store
        .portal_deposit(
            &portal_message("p9", "p9", Some("q9")),
            &grants,
            &notices,
            &[event("portal_notice", "g9")],
        )
        .await
        .unwrap();
    let mut reply = portal_message("r1", "p1", None);
    reply.created_at = T0 + 1;
    store
        .portal_reply(
            &reply,
            &outgoing("q2", "ehr@clinic.test", "portal-reply"),
            &event("portal_reply", "g1"),
        )
        .await
        .unwrap();
    let audit_for = |m: &PortalMessageRow| {
        assert!(m.content_sealed.is_empty() && m.key_sealed.is_empty());
        event("portal_purged", &m.id)
    };
    // g1 revoked early, g2 still live at the cutoff: nothing ends yet.
    assert!(
        store
            .portal_revoke("g1", T0, &event("portal_revoked", "g1"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .portal_purge(T0 + DAY, T0 + DAY, &audit_for)
            .await
            .unwrap(),
        0
    );
    // Past g2's expiry both grants of thread p1 ended: p1 and its reply go. g9 is revoked
    // too, but after the cutoff: p9 stays.
    let now = T0 + 2 * DAY;
    let rev9 = event("portal_revoked", "g9");
    assert!(store.portal_revoke("g9", now + 5, &rev9).await.unwrap());
    assert_eq!(
        store.portal_purge(now, now + 10, &audit_for).await.unwrap(),
        2
    );
    for id in ["p1", "r1"] {
        let m = store.portal_message(id).await.unwrap().unwrap();
        assert!(
            m.content_sealed.is_empty() && m.key_sealed.is_empty(),
            "{id}"
        );
        assert_eq!(m.purged_at, Some(now + 10));
    }
    let p9 = store.portal_message("p9").await.unwrap().unwrap();
    assert_eq!((p9.content_sealed.len(), p9.purged_at), (4, None));
    // Revoked before a later cutoff (and not yet expired): p9 goes by revocation alone.
    let later = now + 20;
    assert_eq!(
        store.portal_purge(later, later, &audit_for).await.unwrap(),
        1
    );
    assert!(
        store
            .portal_message("p9")
            .await
            .unwrap()
            .unwrap()
            .content_sealed
            .is_empty()
    );
    assert_eq!(
        store.portal_purge(later, later, &audit_for).await.unwrap(),
        0,
        "once only"
    );
    let kinds = audit_kinds(&store).await;
    assert_eq!(kinds.iter().filter(|k| *k == "portal_purged").count(), 3);
    assert_eq!(store.portal_grants().await.unwrap().len(), 3, "grants stay");
    assert!(
        !store
            .portal_extend("g2", now + DAY, &event("portal_extended", "g2"))
            .await
            .unwrap()
    );
}

async fn purge_drops_sessions_past_their_end_and_keeps_live_ones(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_two(&store).await;
    for (id, grant, ends) in [("old", "g1", T0 + 10), ("live", "g2", T0 + 1000)] {
        let session = PortalSessionRow {
            id_hash: id.into(),
            grant_id: grant.into(),
            csrf: "csrf".into(),
            expires_at: ends,
        };
        store
            .portal_open_session(grant, &session, &event("portal_verified", grant))
            .await
            .unwrap();
    }
    let audit_for = |m: &PortalMessageRow| event("portal_purged", &m.id);
    // Nothing to purge (the grants live on), but the ended session goes.
    assert_eq!(
        store.portal_purge(T0, T0 + 10, &audit_for).await.unwrap(),
        0
    );
    assert_eq!(store.portal_session("old").await.unwrap(), None);
    assert!(store.portal_session("live").await.unwrap().is_some());
}

async fn ending_a_session_deletes_only_it_and_audits_once(backend: TestBackend) {
    let (_db, store) = open(backend).await;
    deposit_two(&store).await;
    for (id, grant) in [("s1", "g1"), ("s2", "g1")] {
        let row = PortalSessionRow {
            id_hash: id.into(),
            grant_id: grant.into(),
            csrf: "csrf-token".into(),
            expires_at: T0 + 1800,
        };
        store
            .portal_open_session(grant, &row, &event("portal_verified", grant))
            .await
            .unwrap();
    }
    let out = event("portal_signed_out", "g1");
    assert!(store.portal_end_session("s1", &out).await.unwrap());
    assert_eq!(store.portal_session("s1").await.unwrap(), None);
    assert!(
        store.portal_session("s2").await.unwrap().is_some(),
        "another session of the grant lives on"
    );
    assert!(
        !store.portal_end_session("s1", &out).await.unwrap(),
        "ended already"
    );
    let kinds = audit_kinds(&store).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "portal_signed_out").count(),
        1,
        "no record for a session that was not there"
    );
}

sealgate_testkit::on_each_backend!(
    ending_a_session_deletes_only_it_and_audits_once,
    purge_drops_sessions_past_their_end_and_keeps_live_ones,
    failed_attempts_lock_the_grant_and_clear_the_code,
    a_session_clears_the_code_and_is_read_back,
    a_reply_joins_the_thread_and_is_queued,
    revoke_and_extend_change_only_live_grants,
    purge_empties_threads_whose_grants_all_ended,
);
