//! The delivery loop: claim due recipients, deliver them domain by domain with bounded
//! concurrency, settle every attempt. On shutdown, finish what is running and hand back what
//! is still claimed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealgate_dns::Resolver;
use sealgate_queue::{Claim, Queue, RetryPolicy};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::client::{ClientConfig, TlsPolicy};

/// Everything the workers share.
pub struct DeliveryContext {
    /// The queue to claim from and settle into.
    pub queue: Queue,
    /// MX and address lookups.
    pub resolver: Arc<dyn Resolver>,
    /// SMTP client settings (EHLO name, timeouts).
    pub client: ClientConfig,
    /// How to use STARTTLS for opportunistic delivery (`tls-opportunistic`).
    pub tls: TlsPolicy,
    /// The operator's per-recipient security rules.
    pub rules: Arc<sealgate_policy::Rules>,
    /// The probes (DANE, MTA-STS, downgrade memory) and their caches.
    pub discovery: Arc<sealgate_discovery::Discovery>,
    /// Certificate verification for verified TLS (DANE, WebPKI for MTA-STS, pins).
    pub verifiers: Arc<crate::verify::Verifiers>,
    /// How PGP/MIME and S/MIME messages are made (a method is off when its part is `None`).
    pub encryption: Arc<crate::encrypt::Encryption>,
    /// The secure portal (`[portal] enabled`); `None`: portal recipients are held.
    pub portal: Option<Arc<crate::portal::PortalSettings>>,
    /// Port of remote MX hosts (25 on the internet).
    pub smtp_port: u16,
    /// Retry schedule and give-up age.
    pub retry: RetryPolicy,
    /// How long claims are held.
    pub lease: Duration,
    /// This node's lease owner name (unique per process).
    pub owner: String,
    /// Our host name, for DSNs.
    pub hostname: String,
    /// Outbound connections at once.
    pub max_connections: usize,
    /// Outbound connections at once per domain.
    pub max_connections_per_domain: usize,
    /// Idle poll interval.
    pub poll_interval: Duration,
    /// On shutdown, how long running transactions may take before they are cut off (their
    /// recipients are handed back to the queue and retried: at-least-once).
    pub shutdown_grace: Duration,
    /// Idle connections kept for reuse.
    pub connections: crate::pool::ConnectionCache,
}

impl std::fmt::Debug for DeliveryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryContext")
            .field("owner", &self.owner)
            .field("smtp_port", &self.smtp_port)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Runs delivery until `shutdown` turns true.
pub async fn run(ctx: Arc<DeliveryContext>, mut shutdown: watch::Receiver<bool>) {
    let total = Arc::new(Semaphore::new(ctx.max_connections.max(1)));
    let per_domain: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let recorder = crate::record::Recorder::start(ctx.queue.clone(), ctx.owner.clone());
    info!(owner = %ctx.owner, "delivery started");
    while !*shutdown.borrow() {
        while tasks.try_join_next().is_some() {}
        // Claim only what we can start now: claimed work waits on nothing but a connection slot.
        let free = i64::try_from(total.available_permits()).unwrap_or(0);
        let claims = if free == 0 {
            Vec::new()
        } else {
            claim(&ctx, free * 4).await
        };
        if claims.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(ctx.poll_interval) => {}
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

async fn claim(ctx: &DeliveryContext, limit: i64) -> Vec<Claim> {
    match ctx.queue.claim(&ctx.owner, ctx.lease, limit).await {
        Ok(c) => {
            if !c.is_empty() {
                debug!(claimed = c.len(), "claimed recipients");
            }
            c
        }
        Err(e) => {
            warn!(error = %e, "claiming failed; retrying after the poll interval");
            Vec::new()
        }
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
            },
            sender: "s@x.test".into(),
            received_at: 0,
            requiretls: false,
            phi_free: false,
        }
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
