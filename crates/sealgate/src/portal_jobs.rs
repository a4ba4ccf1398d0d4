//! The portal's background work: retention, which empties the sealed content of portal
//! messages whose grants have all ended (expired or revoked). The grants and the audit stay.
//! `serve` runs it hourly; `sealgate portal purge` runs it once.

use sealgate_audit::AuditEvent;
use sealgate_store::{PortalMessageRow, Store};
use tracing::info;

/// One retention pass at `now` (micros): purges every portal message whose thread's grants
/// all ended before `now`, each with a `portal_purged` audit record. Returns how many.
pub(crate) async fn retention_once(store: &Store, now: i64) -> anyhow::Result<u64> {
    let audit_for = |m: &PortalMessageRow| {
        AuditEvent::PortalPurged {
            portal_message_id: m.id.clone(),
        }
        .into_record()
    };
    let purged = store.portal_purge(now, now, &audit_for).await?;
    if purged > 0 {
        info!(
            purged,
            "portal retention emptied messages whose links all ended"
        );
    }
    Ok(purged)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: i64 = 86_400_000_000;

    #[tokio::test]
    async fn retention_empties_messages_once_their_links_expired_and_audits_it() {
        // One connection: an in-memory SQLite database lives as long as its connection.
        let store = Store::connect("sqlite::memory:", 1, Duration::from_secs(5))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let rows = format!(
            "INSERT INTO portal_messages (id, thread_id, author, sender, key_sealed, \
             content_sealed, size, created_at) VALUES ('p1', 'p1', 'a', 'a', x'01', x'02', 1, 0); \
             INSERT INTO portal_grants (id, token_hash, portal_message_id, thread_id, recipient, \
             sender, expires_at, created_at) VALUES ('g1', 'h1', 'p1', 'p1', 'r', 'a', {}, 0);",
            10 * DAY
        );
        store.execute_raw(&rows).await.unwrap();
        assert_eq!(retention_once(&store, 5 * DAY).await.unwrap(), 0);
        assert_eq!(retention_once(&store, 11 * DAY).await.unwrap(), 1);
        let purged = store.portal_message("p1").await.unwrap().unwrap();
        assert!(purged.content_sealed.is_empty() && purged.key_sealed.is_empty());
        assert_eq!(purged.purged_at, Some(11 * DAY));
        let audit = store
            .audit_last(&sealgate_store::AuditFilter::default(), 10)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].kind, "portal_purged");
        assert_eq!(audit[0].data, r#"{"portal_message_id":"p1"}"#);
        assert_eq!(retention_once(&store, 12 * DAY).await.unwrap(), 0);
    }
}
