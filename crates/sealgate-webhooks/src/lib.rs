//! Webhooks: endpoints (added, removed, disabled, rotated and replayed by operators through the
//! CLI or the API, each change audited) and the dispatcher that posts the outbox's events to
//! them.
//!
//! Events are written by the store, in the transaction of the audit row they describe
//! (`sealgate-store`'s `webhooks` module); this crate only delivers them: signed per Standard
//! Webhooks 1.0 (`sealgate_crypto::webhook`), at least once under a stable `webhook-id`, a
//! message's events in order, retried on a schedule of about three days, never following a
//! redirect, and never to a non-public address unless allowed (`guard`).

mod dispatch;
pub mod guard;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealgate_audit::AuditEvent;
use sealgate_crypto::KeyRing;
use sealgate_crypto::webhook::{WebhookSecret, sealing_context};
use sealgate_store::{NewWebhookEndpoint, Store, StoreError, WebhookEndpointRow, WebhookReplay};
use sealgate_types::webhook::{EVENT_TYPES, FINAL_EVENT_TYPES, is_event_type};

pub use dispatch::{Dispatcher, Settings};

/// What went wrong managing endpoints.
#[derive(Debug)]
pub enum WebhookError {
    /// The request was wrong; the text names the field and the problem.
    Invalid(String),
    /// No such endpoint (or it is already in the asked state).
    NotFound(String),
    /// The database failed.
    Store(StoreError),
    /// Sealing or opening a secret failed.
    Crypto(String),
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(why) | Self::NotFound(why) => f.write_str(why),
            Self::Store(e) => write!(f, "{e}"),
            Self::Crypto(e) => write!(f, "sealing the secret failed: {e}"),
        }
    }
}

impl std::error::Error for WebhookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Checks a webhook URL: `https://` (or `http://`, which the dispatcher posts to only in
/// `[webhooks] allow_networks`), a host, no user name or password, no fragment.
pub fn check_url(url: &str) -> Result<reqwest::Url, WebhookError> {
    let bad = |why: &str| WebhookError::Invalid(format!("url: {why}"));
    if url.len() > 2048 {
        return Err(bad("longer than 2048 characters"));
    }
    let u = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(bad(
            "the scheme must be https (or http on an allowed network)",
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "user names and passwords in URLs are not sent; the signature authenticates",
        ));
    }
    if u.fragment().is_some() {
        return Err(bad("a fragment (#...) is never sent to a server"));
    }
    Ok(u)
}

/// Scheme, host and port of a URL: what the audit log records (a path may carry a token).
pub fn target_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => String::from("(unreadable URL)"),
    }
}

/// The event types asked for: names from [`EVENT_TYPES`] (or `*`/`all`), narrowed to the final
/// ones with `final_only`. Unknown names are refused by name.
pub fn event_selection(asked: &[String], final_only: bool) -> Result<Vec<String>, WebhookError> {
    let mut out: Vec<String> = Vec::new();
    let all = asked.is_empty() || asked.iter().any(|a| a == "*" || a == "all");
    if all {
        if !final_only {
            return Ok(vec!["*".to_owned()]);
        }
        return Ok(FINAL_EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect());
    }
    for a in asked {
        if !is_event_type(a) {
            return Err(WebhookError::Invalid(format!(
                "events: unknown event type {a:?} (known: {})",
                EVENT_TYPES.join(", ")
            )));
        }
        if (!final_only || FINAL_EVENT_TYPES.contains(&a.as_str())) && !out.contains(a) {
            out.push(a.clone());
        }
    }
    if out.is_empty() {
        return Err(WebhookError::Invalid(
            "events: none of these is a final event type (--final-only)".into(),
        ));
    }
    Ok(out)
}

/// An endpoint just added: its id and what its receiver verifies with, shown once.
#[derive(Debug)]
pub struct AddedEndpoint {
    /// `wh_` + 16 hex digits.
    pub id: String,
    /// What the receiver verifies with: the shared secret `whsec_…` (`v1`), or the public key
    /// `whpk_…` (`v1a`).
    pub secret: String,
    /// `v1` (HMAC-SHA256) or `v1a` (Ed25519).
    pub scheme: &'static str,
    /// The event types it takes.
    pub events: Vec<String>,
}

/// Endpoint management, shared by the CLI and the API; `operator` is who acts (an OS user, or
/// `api:<key id>`).
pub struct Endpoints<'a> {
    /// The store.
    pub store: &'a Store,
    /// The node key ring (secrets are sealed under it).
    pub ring: &'a KeyRing,
    /// Who acts.
    pub operator: &'a str,
}

impl Endpoints<'_> {
    /// Adds an endpoint taking `events` (see [`event_selection`]).
    pub async fn add(
        &self,
        url: &str,
        events: &[String],
        final_only: bool,
        scheme: &str,
    ) -> Result<AddedEndpoint, WebhookError> {
        check_url(url)?;
        let events = event_selection(events, final_only)?;
        let generate = match scheme {
            "v1" => WebhookSecret::generate,
            "v1a" => WebhookSecret::generate_ed25519,
            other => {
                return Err(WebhookError::Invalid(format!(
                    "signature: {other:?} is not v1 (HMAC-SHA256) or v1a (Ed25519)"
                )));
            }
        };
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| WebhookError::Crypto(e.to_string()))?;
        let id = format!("wh_{}", hex_of(&raw));
        let secret = generate().map_err(|e| WebhookError::Crypto(e.to_string()))?;
        let secret_sealed = self.seal(&id, &secret)?;
        let audit = AuditEvent::WebhookAdded {
            endpoint_id: id.clone(),
            target: target_of(url),
            events: events.clone(),
            operator: self.operator.to_owned(),
        }
        .into_record();
        let endpoint = NewWebhookEndpoint {
            id: id.clone(),
            url: url.to_owned(),
            events: events.clone(),
            secret_sealed,
        };
        self.store.webhook_add(&endpoint, &audit).await?;
        Ok(AddedEndpoint {
            id,
            secret: secret.for_receiver(),
            scheme: secret.scheme(),
            events,
        })
    }

    fn seal(&self, id: &str, secret: &WebhookSecret) -> Result<String, WebhookError> {
        let sealed = self
            .ring
            .seal(secret.display().as_bytes(), &sealing_context(id))
            .map_err(|e| WebhookError::Crypto(e.to_string()))?;
        Ok(B64.encode(sealed.blob))
    }

    /// Every endpoint.
    pub async fn list(&self) -> Result<Vec<WebhookEndpointRow>, WebhookError> {
        Ok(self.store.webhook_endpoints().await?)
    }

    /// Removes an endpoint and its undelivered events.
    pub async fn remove(&self, id: &str) -> Result<(), WebhookError> {
        let audit = AuditEvent::WebhookRemoved {
            endpoint_id: id.to_owned(),
            operator: self.operator.to_owned(),
        }
        .into_record();
        if self.store.webhook_remove(id, &audit).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound(format!("no webhook endpoint {id}")))
        }
    }

    /// Disables an endpoint (its events wait) or, with `reason` `None`, enables it again.
    pub async fn set_disabled(&self, id: &str, reason: Option<&str>) -> Result<(), WebhookError> {
        let audit = match reason {
            Some(r) => AuditEvent::WebhookDisabled {
                endpoint_id: id.to_owned(),
                reason: r.to_owned(),
                operator: self.operator.to_owned(),
            },
            None => AuditEvent::WebhookEnabled {
                endpoint_id: id.to_owned(),
                operator: self.operator.to_owned(),
            },
        }
        .into_record();
        if self.store.webhook_set_disabled(id, reason, &audit).await? {
            Ok(())
        } else {
            let state = if reason.is_some() {
                "enabled"
            } else {
                "disabled"
            };
            Err(WebhookError::NotFound(format!(
                "no {state} webhook endpoint {id}"
            )))
        }
    }

    /// Gives an endpoint a new secret (returned, shown once); the old one signs too for
    /// `overlap`.
    pub async fn rotate(
        &self,
        id: &str,
        overlap: std::time::Duration,
    ) -> Result<String, WebhookError> {
        let Some(ep) = self.store.webhook_endpoint(id).await? else {
            return Err(WebhookError::NotFound(format!("no webhook endpoint {id}")));
        };
        let current = open_secrets(self.ring, &ep, 0)?;
        let secret = current[0]
            .regenerate()
            .map_err(|e| WebhookError::Crypto(e.to_string()))?;
        let sealed = self.seal(id, &secret)?;
        let until = sealgate_types::time::now_micros()
            .saturating_add(i64::try_from(overlap.as_micros()).unwrap_or(i64::MAX));
        let audit = AuditEvent::WebhookRotated {
            endpoint_id: id.to_owned(),
            previous_until: until,
            operator: self.operator.to_owned(),
        }
        .into_record();
        if self
            .store
            .webhook_rotate(id, &sealed, until, &audit)
            .await?
        {
            Ok(secret.for_receiver())
        } else {
            Err(WebhookError::NotFound(format!("no webhook endpoint {id}")))
        }
    }

    /// Makes the selected events due again; returns how many.
    pub async fn replay(&self, sel: &WebhookReplay) -> Result<u64, WebhookError> {
        if sel.until <= sel.since {
            return Err(WebhookError::Invalid(
                "until: must be later than since".into(),
            ));
        }
        if let Some(id) = &sel.endpoint_id
            && self.store.webhook_endpoint(id).await?.is_none()
        {
            return Err(WebhookError::NotFound(format!("no webhook endpoint {id}")));
        }
        let operator = self.operator.to_owned();
        let n = self
            .store
            .webhook_replay(sel, |events| {
                AuditEvent::WebhookReplayed {
                    endpoint_id: sel.endpoint_id.clone(),
                    since: sel.since,
                    until: sel.until,
                    include_delivered: sel.include_delivered,
                    events,
                    operator,
                }
                .into_record()
            })
            .await?;
        Ok(n)
    }
}

/// The secrets an endpoint signs with now: its own, and the previous one while its rotation
/// lasts.
pub fn open_secrets(
    ring: &KeyRing,
    ep: &WebhookEndpointRow,
    now: i64,
) -> Result<Vec<WebhookSecret>, WebhookError> {
    let open = |sealed: &str| -> Result<WebhookSecret, WebhookError> {
        let blob = B64
            .decode(sealed)
            .map_err(|e| WebhookError::Crypto(format!("endpoint {}: {e}", ep.id)))?;
        let plain = ring
            .open(&blob, &sealing_context(&ep.id))
            .map_err(|e| WebhookError::Crypto(format!("endpoint {}: {e}", ep.id)))?;
        std::str::from_utf8(&plain)
            .ok()
            .and_then(WebhookSecret::parse)
            .ok_or_else(|| WebhookError::Crypto(format!("endpoint {}: malformed secret", ep.id)))
    };
    let mut out = vec![open(&ep.secret_sealed)?];
    if let (Some(prev), Some(until)) = (&ep.previous_sealed, ep.previous_until)
        && until > now
    {
        out.push(open(prev)?);
    }
    Ok(out)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_event_names_are_checked_by_name() {
        assert!(check_url("https://ehr.clinic.example/hooks/sealgate?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/h").is_ok());
        for (bad, why) in [
            ("ftp://x.example/", "scheme"),
            ("https://user:pw@x.example/", "passwords"),
            ("https://x.example/#frag", "fragment"),
            ("not a url", "not a URL"),
        ] {
            let err = check_url(bad).map(|_| ()).unwrap_err().to_string();
            assert!(
                err.starts_with("url: ") && err.contains(why),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            target_of("https://h.example/secret/path"),
            "https://h.example:443"
        );
        assert_eq!(event_selection(&[], false).ok(), Some(vec!["*".to_owned()]));
        let fin = event_selection(&["all".into()], true).unwrap_or_default();
        assert!(fin.contains(&"recipient.delivered".to_owned()));
        assert!(!fin.contains(&"recipient.deferred".to_owned()));
        let err = event_selection(&["recipient.teleported".into()], false).unwrap_err();
        assert!(err.to_string().contains("recipient.teleported"), "{err}");
        let err = event_selection(&["recipient.deferred".into()], true).unwrap_err();
        assert!(err.to_string().contains("final"), "{err}");
    }
}
