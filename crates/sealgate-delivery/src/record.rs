//! Group commit for `decision` and `alert` events. Every delivery task must have its
//! decisions on record before it sends; recording them one transaction per task would add a
//! durable commit per message. Tasks hand their events to one recorder, which writes whatever
//! has gathered while the previous commit ran in a single transaction and then answers every
//! task that contributed.

use sealgate_audit::AuditEvent;
use sealgate_queue::Queue;
use tokio::sync::{mpsc, oneshot};

/// Events of one task and where to say whether they were committed.
type Job = (Vec<AuditEvent>, oneshot::Sender<Result<(), String>>);

/// How many tasks' events one transaction takes at most.
const MAX_JOBS: usize = 64;

/// The handle delivery tasks record through. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    jobs: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the recorder over `queue`; it stops when every handle is dropped.
    pub(crate) fn start(queue: Queue) -> Self {
        let (jobs, rx) = mpsc::channel(MAX_JOBS * 4);
        tokio::spawn(run(queue, rx));
        Self { jobs }
    }

    /// Returns once `events` are committed, or why they could not be.
    pub(crate) async fn record(&self, events: Vec<AuditEvent>) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send((events, done))
            .await
            .map_err(|_| "the audit recorder has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the audit recorder has stopped".to_owned())?
    }
}

async fn run(queue: Queue, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let events = jobs.iter_mut().flat_map(|(e, _)| e.drain(..)).collect();
        let result = queue.record(events).await.map_err(|e| e.to_string());
        for (_, done) in jobs {
            // A task that gave up waiting no longer needs the answer.
            let _ = done.send(result.clone());
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
        let recorder = Recorder::start(Queue::new(store.clone(), Arc::new(keys)));
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
