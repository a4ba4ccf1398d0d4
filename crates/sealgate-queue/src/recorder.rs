//! Group commit for what tasks must have on record before they go on: an SMTP session's
//! `auth_succeeded` (before it answers 235), a delivery task's `decision` and `alert` events,
//! and the mark that this node is about to send a transaction's message data (see
//! [`Recorder::clear_to_send`]). Committing these one transaction per task would add a
//! durable commit per message. Tasks hand them to one recorder per node, which writes whatever
//! has gathered while the previous commit ran in a single transaction and then answers every
//! task that contributed.

use sealgate_audit::AuditEvent;
use tokio::sync::{mpsc, oneshot};

use crate::Queue;

/// What one task hands the recorder.
struct Job {
    /// Events to append.
    events: Vec<AuditEvent>,
    /// Recipient ids to mark as being sent by this node (empty: none).
    marks: Vec<i64>,
    /// Where to say whether it was committed, and whether the ids were marked.
    done: oneshot::Sender<Result<bool, String>>,
}

/// How many tasks' jobs one transaction takes at most.
const MAX_JOBS: usize = 64;

/// The handle sessions and delivery tasks record through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Recorder {
    jobs: mpsc::Sender<Job>,
    owner: std::sync::Arc<str>,
}

impl Recorder {
    /// Starts the recorder over `queue` for the node whose leases are `owner`'s (on the
    /// current Tokio runtime); it stops when every handle is dropped.
    pub fn start(queue: Queue, owner: String) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_JOBS * 4);
        let handle = Self {
            jobs,
            owner: owner.as_str().into(),
        };
        tokio::spawn(run(queue, owner, rx));
        handle
    }

    /// The lease owner whose sends [`Recorder::clear_to_send`] marks.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Returns once `events` are committed, or why they could not be.
    pub async fn record(&self, events: Vec<AuditEvent>) -> Result<(), String> {
        self.submit(events, Vec::new()).await.map(|_| ())
    }

    /// Returns once it is on record that this node is about to send the message data of the
    /// recipients `ids` (so a node that takes them over after a crash knows the remote server
    /// may hold the message already), or why they must not be sent: their lease was lost or
    /// has run out, or the mark could not be written.
    pub async fn clear_to_send(&self, ids: Vec<i64>) -> Result<(), String> {
        if self.submit(Vec::new(), ids).await? {
            Ok(())
        } else {
            Err("the lease on these recipients was lost or ran out".to_owned())
        }
    }

    async fn submit(&self, events: Vec<AuditEvent>, marks: Vec<i64>) -> Result<bool, String> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                events,
                marks,
                done,
            })
            .await
            .map_err(|_| "the audit recorder has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the audit recorder has stopped".to_owned())?
    }
}

async fn run(queue: Queue, owner: String, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let events = jobs.iter_mut().flat_map(|j| j.events.drain(..)).collect();
        let marks: Vec<Vec<i64>> = jobs
            .iter_mut()
            .map(|j| std::mem::take(&mut j.marks))
            .collect();
        let result = queue
            .commit_batch(&owner, events, &marks)
            .await
            .map_err(|e| e.to_string());
        for (i, Job { done, .. }) in jobs.into_iter().enumerate() {
            let answer = match &result {
                Ok(marked) => Ok(marked.get(i).copied().unwrap_or(false)),
                Err(e) => Err(e.clone()),
            };
            // A task that gave up waiting no longer needs the answer.
            let _ = done.send(answer);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sealgate_crypto::KeyRing;
    use sealgate_store::{AuditFilter, Store};
    use sealgate_testkit::db::{TestBackend, TestDb};

    use super::*;

    fn alert(n: usize) -> AuditEvent {
        AuditEvent::Alert {
            message_id: Some(format!("m{n}")),
            recipient: None,
            domain: "example.test".to_owned(),
            alert: format!("alert {n}"),
        }
    }

    /// A recorder over a fresh SQLite queue, with the store to read back (and the database and
    /// key directory to keep alive).
    async fn recorder_over_sqlite() -> (Recorder, Store, TestDb, tempfile::TempDir) {
        let db = TestDb::new(TestBackend::Sqlite).await;
        let store = Store::connect(&db.url, 4, Duration::from_secs(5))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = KeyRing::load_or_create(&dir.path().join("seal.key")).unwrap();
        let recorder =
            Recorder::start(Queue::new(store.clone(), Arc::new(keys)), "node".to_owned());
        (recorder, store, db, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tasks_all_get_their_events_committed_in_order() {
        let (recorder, store, _db, _dir) = recorder_over_sqlite().await;
        let mut tasks = Vec::new();
        for n in 0..40 {
            let r = recorder.clone();
            tasks.push(tokio::spawn(async move {
                r.record(vec![alert(n * 2), alert(n * 2 + 1)]).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let rows = store
            .audit_after(0, &AuditFilter::default(), 1000)
            .await
            .unwrap();
        assert_eq!(rows.len(), 80);
        // Each task's events stay together and in their order.
        for n in 0..40 {
            let at = |m: usize| {
                rows.iter()
                    .position(|r| r.message_id.as_deref() == Some(&format!("m{m}")))
                    .unwrap()
            };
            assert_eq!(at(n * 2) + 1, at(n * 2 + 1));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn only_recipients_under_this_nodes_lease_are_cleared_to_send() {
        let (recorder, store, _db, _dir) = recorder_over_sqlite().await;
        let msg = sealgate_store::NewMessage {
            id: "m1".into(),
            received_at: 0,
            sender: "s@x.test".into(),
            size: 1,
            body_sha256: String::new(),
            header_message_id: None,
            client_ip: "127.0.0.1".into(),
            helo: "x".into(),
            auth_user: None,
            tls: None,
            requiretls: false,
            key_id: "k".into(),
            sealed_body: vec![0],
            origin: None,
        };
        let rcpts = vec!["a@y.test".to_owned(), "b@y.test".to_owned()];
        store
            .enqueue(&msg, &rcpts, &alert(0).into_record())
            .await
            .unwrap();
        let now = sealgate_types::time::now_micros();
        let mine = store
            .claim_due("node", now, now + 60_000_000, 1)
            .await
            .unwrap();
        let theirs = store
            .claim_due("other", now, now + 60_000_000, 1)
            .await
            .unwrap();
        let (a, b) = (
            recorder.clear_to_send(vec![mine[0].id]),
            recorder.clear_to_send(vec![theirs[0].id]),
        );
        let (a, b) = tokio::join!(a, b);
        assert_eq!(a, Ok(()));
        assert!(b.unwrap_err().contains("lease"));
        let rows = store.recipients_of("m1").await.unwrap();
        let mark = |id| {
            rows.iter()
                .find(|r| r.id == id)
                .unwrap()
                .sending_owner
                .clone()
        };
        assert_eq!(mark(mine[0].id).as_deref(), Some("node"));
        assert_eq!(mark(theirs[0].id), None);
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported_to_every_task() {
        let (recorder, store, _db, _dir) = recorder_over_sqlite().await;
        store.close().await;
        let (a, b) = tokio::join!(
            recorder.record(vec![alert(1)]),
            recorder.record(vec![alert(2)])
        );
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
    }
}
