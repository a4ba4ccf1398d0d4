//! The dispatcher: leases due outbox rows, posts each signed, and writes what became of it.
//!
//! Posts run concurrently (up to `concurrency`); their outcomes are written in small batches by
//! one settling task. A row stays leased while it is posted, so another node does not post it
//! too; a node that dies between the post and the write leaves the lease to run out, and the
//! event is posted again under the same `webhook-id` (the documented crash window: receivers
//! deduplicate on the id).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::StatusCode;
use sealgate_audit::AuditEvent;
use sealgate_crypto::KeyRing;
use sealgate_crypto::webhook::{WebhookSecret, signature_header};
use sealgate_store::{OutboxRow, Store, WebhookOutcome};
use sealgate_types::time::now_micros;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::guard::{Guard, GuardedResolver};
use crate::{open_secrets, target_of};

/// How the dispatcher works (from `[webhooks]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// One post, connect to last byte.
    pub timeout: Duration,
    /// The waits after each failed attempt; past the last the event is dead.
    pub schedule: Vec<Duration>,
    /// A failure streak this long is audited as an alert.
    pub alert_after: Duration,
    /// Networks posted to although not public.
    pub allow_networks: Vec<IpNet>,
    /// Posts in flight at once.
    pub concurrency: usize,
    /// How long settled events are kept: delivered, dead.
    pub keep_delivered: Duration,
    /// How long dead events are kept.
    pub keep_dead: Duration,
    /// How often an idle node looks for due events.
    pub poll_interval: Duration,
}

impl Settings {
    /// From the configuration.
    pub fn from_config(c: &sealgate_config::WebhooksConfig) -> Self {
        Self {
            timeout: c.timeout.0,
            schedule: c.retry_schedule.iter().map(|d| d.0).collect(),
            alert_after: c.alert_after.0,
            allow_networks: c.allow_networks.clone(),
            concurrency: c.concurrency.max(1),
            keep_delivered: c.keep_delivered.0,
            keep_dead: c.keep_dead.0,
            poll_interval: c.poll_interval.0,
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// An endpoint as the dispatcher posts to it.
struct Target {
    url: String,
    secrets: Vec<WebhookSecret>,
}

/// Posts the outbox's events for one node.
pub struct Dispatcher {
    store: Store,
    ring: Arc<KeyRing>,
    settings: Settings,
    owner: String,
    https: reqwest::Client,
    http: reqwest::Client,
}

fn client(guard: Guard, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(guard)))
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("Sealgate-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Dispatcher {
    /// A dispatcher posting as lease owner `owner`.
    pub fn new(
        store: Store,
        ring: Arc<KeyRing>,
        settings: Settings,
        owner: String,
    ) -> Result<Self, reqwest::Error> {
        let https = client(Guard::https(&settings.allow_networks), settings.timeout)?;
        let http = client(Guard::http(&settings.allow_networks), settings.timeout)?;
        Ok(Self {
            store,
            ring,
            settings,
            owner,
            https,
            http,
        })
    }

    /// Posts due events until `shutdown` turns true; posts in flight then finish (bounded by
    /// the timeout) and their outcomes are written.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let permits = Arc::new(Semaphore::new(me.settings.concurrency));
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let settler = tokio::spawn(me.clone().settle_loop(done_rx));
        // A post takes at most the timeout; its outcome is written right after.
        let lease = me.settings.timeout + Duration::from_secs(10);
        // Failing endpoints are looked at every minute, or more often when an alert is due sooner.
        let every = (me.settings.alert_after / 2)
            .clamp(Duration::from_millis(500), Duration::from_secs(60));
        let mut housekeeping = tokio::time::interval(every);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = 0i64;
        info!(owner = %me.owner, "webhook dispatcher started");
        loop {
            let stopping = *shutdown.borrow();
            if stopping {
                break;
            }
            let free = permits.available_permits();
            let mut claimed = Vec::new();
            if free > 0 {
                let now = now_micros();
                let limit = i64::try_from(free.min(256)).unwrap_or(256);
                match me
                    .store
                    .claim_webhooks(&me.owner, now, now + micros(lease), limit)
                    .await
                {
                    Ok(rows) => claimed = rows,
                    Err(e) => warn!(error = %e, "claiming webhook events failed; trying again"),
                }
            }
            if !claimed.is_empty() {
                let full = claimed.len() >= free.min(256);
                me.start_posts(claimed, &permits, &done_tx).await;
                if full {
                    continue;
                }
            }
            let chores = tokio::select! {
                _ = shutdown.wait_for(|d| *d) => break,
                _ = tokio::time::sleep(me.settings.poll_interval) => false,
                _ = housekeeping.tick() => true,
            };
            if chores {
                me.alert_failing().await;
                let now = now_micros();
                if now - last_prune > 3_600_000_000 {
                    last_prune = now;
                    me.prune(now).await;
                }
            }
        }
        // Let posts in flight finish, then the settler writes their outcomes.
        let all = u32::try_from(me.settings.concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(
            me.settings.timeout + Duration::from_secs(5),
            permits.acquire_many(all),
        )
        .await;
        drop(done_tx);
        let _ = settler.await;
        info!("webhook dispatcher stopped");
    }

    /// Starts one post per row (each holding a permit); rows whose endpoint is gone are left
    /// to their lease (the endpoint's removal deleted them).
    async fn start_posts(
        self: &Arc<Self>,
        rows: Vec<OutboxRow>,
        permits: &Arc<Semaphore>,
        done: &mpsc::UnboundedSender<(OutboxRow, WebhookOutcome)>,
    ) {
        let targets = self.targets().await;
        for row in rows {
            let Some(target) = targets.get(&row.endpoint_id).cloned() else {
                debug!(endpoint = %row.endpoint_id, "endpoint gone; event dropped with it");
                continue;
            };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let outcome = me.post(&row, &target).await;
                let _ = done.send((row, outcome));
                drop(permit);
            });
        }
    }

    /// The enabled endpoints with their secrets opened.
    async fn targets(&self) -> HashMap<String, Arc<Target>> {
        let now = now_micros();
        let mut out = HashMap::new();
        match self.store.webhook_endpoints().await {
            Ok(eps) => {
                for ep in eps.into_iter().filter(|e| e.disabled_at.is_none()) {
                    match open_secrets(&self.ring, &ep, now) {
                        Ok(secrets) => {
                            out.insert(
                                ep.id.clone(),
                                Arc::new(Target {
                                    url: ep.url.clone(),
                                    secrets,
                                }),
                            );
                        }
                        Err(e) => warn!(endpoint = %ep.id, error = %e,
                            "cannot open the endpoint's secret (another node key ring?); its events wait"),
                    }
                }
            }
            Err(e) => warn!(error = %e, "reading webhook endpoints failed"),
        }
        out
    }

    /// Posts one event and says what became of it.
    async fn post(&self, row: &OutboxRow, target: &Target) -> WebhookOutcome {
        let attempt = row.attempts + 1;
        let failure = |status: String, wait_at_least: Option<Duration>| {
            self.after_failure(attempt, status, wait_at_least)
        };
        let url = match reqwest::Url::parse(&target.url) {
            Ok(u) => u,
            Err(e) => return failure(format!("unreadable URL: {e}"), None),
        };
        // An address literal never reaches the resolver: check it here.
        let guard = if url.scheme() == "http" {
            Guard::http(&self.settings.allow_networks)
        } else {
            Guard::https(&self.settings.allow_networks)
        };
        let literal = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok());
        if let Some(why) = literal.and_then(|ip| guard.refusal(ip)) {
            return failure(format!("refused by the SSRF guard: {why}"), None);
        }
        let client = if url.scheme() == "http" {
            &self.http
        } else {
            &self.https
        };
        let timestamp = now_micros() / 1_000_000;
        let signature = signature_header(
            &target.secrets,
            &row.event_id,
            timestamp,
            row.payload.as_bytes(),
        );
        let sent = client
            .post(url)
            .header("webhook-id", &row.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("content-type", "application/json")
            .body(row.payload.clone())
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return failure(describe(&e), None),
        };
        let status = resp.status();
        let retry_after = retry_after(&resp);
        // Read (and drop) the answer so that the connection can be reused.
        let _ = resp.bytes().await;
        let shown = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned();
        if status.is_success() {
            WebhookOutcome::Delivered { status: shown }
        } else if status == StatusCode::GONE {
            warn!(endpoint = %row.endpoint_id, "endpoint answered 410 Gone: disabled");
            WebhookOutcome::Gone { status: shown }
        } else if status.is_redirection() {
            failure(format!("{shown} (redirects are not followed)"), None)
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            failure(shown, retry_after)
        } else {
            failure(shown, None)
        }
    }

    /// A failed attempt `attempt`: retried after the schedule's wait (at least
    /// `wait_at_least`, a `Retry-After`), with ±10 % jitter, or dead past the schedule.
    fn after_failure(
        &self,
        attempt: i64,
        status: String,
        wait_at_least: Option<Duration>,
    ) -> WebhookOutcome {
        let index = usize::try_from(attempt - 1).unwrap_or(usize::MAX);
        let Some(wait) = self.settings.schedule.get(index).copied() else {
            return WebhookOutcome::Dead { status };
        };
        let wait = jitter(wait).max(wait_at_least.unwrap_or_default());
        WebhookOutcome::Retry {
            status,
            next_attempt_at: now_micros().saturating_add(micros(wait)),
        }
    }

    async fn settle_loop(
        self: Arc<Self>,
        mut done: mpsc::UnboundedReceiver<(OutboxRow, WebhookOutcome)>,
    ) {
        let gone_audit = |id: &str, status: &str| {
            AuditEvent::WebhookDisabled {
                endpoint_id: id.to_owned(),
                reason: format!("the endpoint answered {status}"),
                operator: "dispatcher".to_owned(),
            }
            .into_record()
        };
        while let Some(first) = done.recv().await {
            let mut batch = vec![first];
            while batch.len() < 256 {
                match done.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            for (row, outcome) in &batch {
                if let WebhookOutcome::Dead { status } = outcome {
                    warn!(endpoint = %row.endpoint_id, event = %row.event_id, %status,
                        "webhook event dead after its last attempt (list: sealgate webhooks events --state dead)");
                }
            }
            // A failed write leaves the rows leased: they are posted again when the lease
            // runs out (at least once).
            let mut tries = 0;
            loop {
                match self
                    .store
                    .settle_webhooks(&self.owner, &batch, gone_audit)
                    .await
                {
                    Ok(_) => break,
                    Err(e) if tries < 3 => {
                        tries += 1;
                        warn!(error = %e, "writing webhook outcomes failed; trying again");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        warn!(error = %e, "writing webhook outcomes failed; the events are posted again after their lease");
                        break;
                    }
                }
            }
        }
    }

    /// Audits each endpoint failing for `alert_after` without a success (once per streak).
    async fn alert_failing(&self) {
        let cut_off = now_micros() - micros(self.settings.alert_after);
        let failing = match self.store.webhook_failing_since(cut_off).await {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "reading failing webhook endpoints failed");
                return;
            }
        };
        for ep in failing {
            let since = ep.failing_since.unwrap_or_default();
            let alert = AuditEvent::Alert {
                message_id: None,
                recipient: None,
                domain: target_of(&ep.url),
                alert: format!(
                    "webhook endpoint {} has failed since {} without a success; its events are being retried",
                    ep.id,
                    sealgate_types::time::rfc3339_micros(since)
                ),
            }
            .into_record();
            match self.store.webhook_mark_alerted(&ep.id, &alert).await {
                Ok(true) => warn!(endpoint = %ep.id, "webhook endpoint failing: alert audited"),
                Ok(false) => {}
                Err(e) => warn!(error = %e, "auditing a failing webhook endpoint failed"),
            }
        }
    }

    async fn prune(&self, now: i64) {
        let delivered = now - micros(self.settings.keep_delivered);
        let dead = now - micros(self.settings.keep_dead);
        match self.store.webhook_prune(delivered, dead).await {
            Ok(0) => {}
            Ok(n) => info!(rows = n, "old webhook events removed"),
            Err(e) => warn!(error = %e, "removing old webhook events failed"),
        }
    }
}

/// A `Retry-After` in seconds or as an HTTP date, capped at a day.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let d = match v.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v.trim())
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(d.min(Duration::from_secs(86_400)))
}

/// ±10 %.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
    } else {
        0.5
    };
    d.mul_f64(0.9 + 0.2 * r)
}

/// A transport error for operators, without the URL (its path may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
