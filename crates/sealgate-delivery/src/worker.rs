//! The delivery loop: claim due recipients, deliver them domain by domain with bounded
//! concurrency, settle every attempt. On shutdown, finish what is running and hand back what
//! is still claimed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealgate_queue::Claim;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::context::DeliveryContext;

/// Runs delivery until `shutdown` turns true.
pub async fn run(ctx: Arc<DeliveryContext>, mut shutdown: watch::Receiver<bool>) {
    let total = Arc::new(Semaphore::new(ctx.max_connections.max(1)));
    let per_domain: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let recorder = ctx.recorder.clone();
    let mut failures = ClaimFailures::new(ctx.poll_interval);
    info!(owner = %ctx.owner, "delivery started");
    while !*shutdown.borrow() {
        while tasks.try_join_next().is_some() {}
        // Claim only what we can start now: claimed work waits on nothing but a connection slot.
        let free = i64::try_from(total.available_permits()).unwrap_or(0);
        let (claims, idle) = if free == 0 {
            (Vec::new(), ctx.poll_interval)
        } else {
            match claim(&ctx, free * 4, &mut failures).await {
                Ok(claims) => (claims, ctx.poll_interval),
                Err(back_off) => (Vec::new(), back_off),
            }
        };
        if claims.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.wait_for(|d| *d) => {}
            }
            continue;
        }
        for (domain, group) in by_domain(claims, ctx.max_connections_per_domain) {
            let Ok(slot) = total.clone().acquire_owned().await else {
                break;
            };
            let domain_slots =
                domain_semaphore(&per_domain, &domain, ctx.max_connections_per_domain);
            let ctx = ctx.clone();
            let recorder = recorder.clone();
            let span = info_span!("deliver", domain = %domain, rcpts = group.len());
            tasks.spawn(
                async move {
                    let _slot = slot;
                    let Ok(_domain_slot) = domain_slots.acquire_owned().await else {
                        return;
                    };
                    crate::attempt::deliver_domain(&ctx, &recorder, &domain, group).await;
                }
                .instrument(span),
            );
        }
    }
    info!(
        running = tasks.len(),
        "delivery stopping: finishing running transactions"
    );
    let finished = tokio::time::timeout(ctx.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    });
    if finished.await.is_err() {
        warn!(
            running = tasks.len(),
            "grace period over: cutting off running transactions"
        );
        tasks.shutdown().await;
    }
    ctx.connections.close_all().await;
    match ctx.queue.release(&ctx.owner).await {
        Ok(n) => info!(released = n, "delivery stopped"),
        Err(e) => warn!(error = %e, "could not release leases; they expire on their own"),
    }
}

/// Claims up to `limit` recipients. On failure (database unreachable, its disk full, ...)
/// returns how long to wait before trying again; the condition is logged once per
/// [`CLAIM_FAILURE_LOG_PERIOD`], and its end once.
async fn claim(
    ctx: &DeliveryContext,
    limit: i64,
    failures: &mut ClaimFailures,
) -> Result<Vec<Claim>, Duration> {
    match ctx.queue.claim(&ctx.owner, ctx.lease, limit).await {
        Ok(c) => {
            if let Some(n) = failures.succeeded() {
                info!(failures = n, "claiming works again");
            }
            if !c.is_empty() {
                debug!(claimed = c.len(), "claimed recipients");
            }
            Ok(c)
        }
        Err(e) => {
            let (back_off, report) = failures.failed(Instant::now());
            if let Some(n) = report {
                warn!(error = %e, storage_full = e.is_full(), failures = n, back_off = ?back_off,
                    "claiming failed; retrying with back-off");
            }
            Err(back_off)
        }
    }
}

/// The longest wait between claims while claiming fails: the wait doubles from the poll
/// interval up to this, so delivery resumes within it once the database can write again.
const CLAIM_BACK_OFF_MAX: Duration = Duration::from_secs(2);

/// While claiming keeps failing, one log line per this period (with the count of failures).
const CLAIM_FAILURE_LOG_PERIOD: Duration = Duration::from_secs(60);

/// The claim loop's memory of a run of failed claims: its back-off and when it last said so.
#[derive(Debug)]
struct ClaimFailures {
    poll: Duration,
    /// Consecutive failures.
    run: u32,
    /// Failures since the last log line.
    unreported: u64,
    reported_at: Option<Instant>,
}

impl ClaimFailures {
    fn new(poll: Duration) -> Self {
        Self {
            poll,
            run: 0,
            unreported: 0,
            reported_at: None,
        }
    }

    /// Counts a failure at `now`: the wait before the next claim, and the number of failures
    /// to log now (none when the last line is younger than [`CLAIM_FAILURE_LOG_PERIOD`]).
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        self.run = self.run.saturating_add(1);
        self.unreported += 1;
        let doubled = self.poll.saturating_mul(1 << (self.run - 1).min(16));
        let back_off = doubled.min(CLAIM_BACK_OFF_MAX.max(self.poll));
        let due = self
            .reported_at
            .is_none_or(|at| now.duration_since(at) >= CLAIM_FAILURE_LOG_PERIOD);
        if !due {
            return (back_off, None);
        }
        self.reported_at = Some(now);
        (back_off, Some(std::mem::take(&mut self.unreported)))
    }

    /// Counts a success: the length of the run of failures it ends, if there was one.
    fn succeeded(&mut self) -> Option<u32> {
        self.unreported = 0;
        self.reported_at = None;
        let run = std::mem::take(&mut self.run);
        (run > 0).then_some(run)
    }
}

/// Groups claims by recipient domain (lowercase), then splits each domain's claims into up to
/// `parallel` chunks (whole messages stay together) so a backlog to one domain uses the
/// connections it is allowed instead of one.
pub(crate) fn by_domain(claims: Vec<Claim>, parallel: usize) -> Vec<(String, Vec<Claim>)> {
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<Claim>>> = BTreeMap::new();
    for c in claims {
        let domain = c
            .recipient
            .rcpt
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        groups
            .entry(domain)
            .or_default()
            .entry(c.recipient.message_id.clone())
            .or_default()
            .push(c);
    }
    let mut out = Vec::new();
    for (domain, messages) in groups {
        let n = parallel.clamp(1, messages.len().max(1));
        let mut chunks: Vec<Vec<Claim>> = vec![Vec::new(); n];
        for (i, (_, claims)) in messages.into_iter().enumerate() {
            chunks[i % n].extend(claims);
        }
        out.extend(
            chunks
                .into_iter()
                .filter(|c| !c.is_empty())
                .map(|c| (domain.clone(), c)),
        );
    }
    out
}

fn domain_semaphore(
    map: &Mutex<HashMap<String, Arc<Semaphore>>>,
    domain: &str,
    max: usize,
) -> Arc<Semaphore> {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    // Drop semaphores nobody holds, so the map does not grow with every domain ever seen.
    m.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < max);
    m.entry(domain.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(max.max(1))))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealgate_store::RecipientRow;
    use sealgate_types::RecipientState;

    fn claim(id: i64, msg: &str, rcpt: &str) -> Claim {
        Claim {
            recipient: RecipientRow {
                id,
                message_id: msg.into(),
                rcpt: rcpt.into(),
                state: RecipientState::Inflight,
                attempts: 0,
                next_attempt_at: 0,
                last_reply: None,
                lease_owner: Some("n".into()),
                lease_until: Some(i64::MAX),
                updated_at: 0,
                warned_at: None,
                sending_owner: None,
                sending_since: None,
                held: None,
            },
            sender: "s@x.test".into(),
            received_at: 0,
            requiretls: false,
            phi_free: false,
        }
    }

    #[test]
    fn failed_claims_back_off_up_to_a_bound_and_are_logged_once_per_period() {
        let start = Instant::now();
        let mut f = ClaimFailures::new(Duration::from_millis(100));
        let mut waits = Vec::new();
        let mut reports = Vec::new();
        // One failure per back-off, for three minutes.
        let mut now = start;
        while now < start + Duration::from_secs(180) {
            let (wait, report) = f.failed(now);
            waits.push(wait);
            reports.extend(report.map(|n| (now - start, n)));
            now += wait;
        }
        let ms: Vec<u128> = waits.iter().take(6).map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000]);
        assert!(waits.iter().all(|w| *w <= CLAIM_BACK_OFF_MAX));
        // At the first failure, then once a minute with the failures since the last line.
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_eq!(reports[0], (Duration::ZERO, 1));
        assert!(reports[1].0 >= CLAIM_FAILURE_LOG_PERIOD && reports[1].1 >= 29);
        let total: u64 = reports.iter().map(|r| r.1).sum();
        assert!(total <= waits.len() as u64);
    }

    #[test]
    fn a_claim_that_works_again_ends_the_run_and_restarts_the_back_off() {
        let now = Instant::now();
        let mut f = ClaimFailures::new(Duration::from_millis(100));
        assert_eq!(f.succeeded(), None, "nothing to report without failures");
        for _ in 0..5 {
            f.failed(now);
        }
        assert_eq!(f.succeeded(), Some(5));
        assert_eq!(
            f.failed(now),
            (Duration::from_millis(100), Some(1)),
            "a new run starts from the poll interval and is logged at once"
        );
    }

    #[test]
    fn a_slow_poll_interval_is_never_shortened_by_the_back_off() {
        let mut f = ClaimFailures::new(Duration::from_secs(5));
        assert_eq!(f.failed(Instant::now()).0, Duration::from_secs(5));
        assert_eq!(f.failed(Instant::now()).0, Duration::from_secs(5));
    }

    #[test]
    fn a_domain_backlog_is_split_across_its_connections_keeping_messages_whole() {
        let mut claims = Vec::new();
        for m in 0..7 {
            claims.push(claim(m * 2, &format!("m{m}"), "a@Big.test"));
            claims.push(claim(m * 2 + 1, &format!("m{m}"), "b@big.test"));
        }
        claims.push(claim(100, "m9", "c@small.test"));
        let groups = by_domain(claims, 3);
        let big: Vec<&Vec<Claim>> = groups
            .iter()
            .filter(|(d, _)| d == "big.test")
            .map(|(_, c)| c)
            .collect();
        assert_eq!(big.len(), 3, "at most the per-domain connection limit");
        assert_eq!(big.iter().map(|c| c.len()).sum::<usize>(), 14);
        for chunk in &big {
            for c in chunk.iter() {
                let same_msg = chunk
                    .iter()
                    .filter(|o| o.recipient.message_id == c.recipient.message_id)
                    .count();
                assert_eq!(
                    same_msg, 2,
                    "a message's recipients stay in one transaction"
                );
            }
        }
        assert_eq!(groups.iter().filter(|(d, _)| d == "small.test").count(), 1);
    }
}
