//! The guard in front of every state-changing request: a client over its refusal limit gets
//! 429; a request from another origin gets 403; the rest go on to their handler, which refuses
//! a missing or wrong CSRF token through [`refuse`]. Each refusal is counted against the
//! client and audited (`portal_refused`; `portal_throttled` once when the limit is reached).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sealgate_audit::AuditEvent;
use sealgate_store::GrantRow;
use tracing::{debug, error, warn};

use crate::throttle::ClientKey;
use crate::web::{forbidden, html};
use crate::{Ctx, origin, page};

/// The client of a request, as counted and audited; handlers find it in the extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client(pub ClientKey);

/// Why a handler refused a form: its CSRF token was missing or wrong.
pub(crate) const CSRF: &str = "csrf";

/// Which form a POST is, from its path (`/p/{token}/{action}`); never the token itself.
fn action(path: &str) -> &'static str {
    match path.rsplit('/').next().unwrap_or_default() {
        "code" => "code",
        "verify" => "verify",
        "reply" => "reply",
        "signout" => "signout",
        _ => "other",
    }
}

/// The client's address: the TCP peer, or behind a trusted proxy the right-most
/// `X-Forwarded-For` address that is not a trusted proxy (everything left of that is the
/// client's to write).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.contains(&ClientKey::canonical(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // Garbage: the last trusted hop is all that can be vouched for.
            Err(_) => return client,
        }
    }
    client
}

/// The middleware: safe methods pass untouched; others are throttled and origin-checked.
pub(crate) async fn posts(State(ctx): State<Ctx>, mut req: Request, next: Next) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        error!("portal request without its peer address");
        return html(StatusCode::INTERNAL_SERVER_ERROR, page::unavailable());
    };
    let ip = client_ip(peer.ip(), req.headers(), &ctx.settings.trusted_proxies);
    let client = Client(ClientKey::of(ip));
    let action = action(req.uri().path());
    if let Some(wait) = ctx.throttle.blocked(client.0, Instant::now()) {
        debug!(client = %client.0, action, "portal request throttled");
        return throttled(wait);
    }
    if let Err(refusal) = origin::check(req.headers(), &ctx.settings.public_origin) {
        return refuse(&ctx, client, action, refusal.reason, refusal.seen, None).await;
    }
    req.extensions_mut().insert(client);
    next.run(req).await
}

/// 429 with `Retry-After` (RFC 9110 §10.2.3), in whole seconds, at least 1.
fn throttled(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = html(StatusCode::TOO_MANY_REQUESTS, page::throttled());
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

/// Refuses a state-changing request: counts it against `client`, audits it (and the start
/// of the throttle, when this refusal reaches the limit) and answers 403. `seen` is what the
/// request said of its origin; `grant` the link's grant when the handler found it.
pub(crate) async fn refuse(
    ctx: &Ctx,
    client: Client,
    action: &str,
    reason: &'static str,
    seen: Option<String>,
    grant: Option<&GrantRow>,
) -> Response {
    let counted = ctx.throttle.refuse(client.0, Instant::now());
    warn!(client = %client.0, action, reason, refusals = counted.refusals, "portal request refused");
    let mut audit = vec![
        AuditEvent::PortalRefused {
            client_ip: client.0.to_string(),
            action: action.to_owned(),
            reason: reason.to_owned(),
            origin: seen,
            grant_id: grant.map(|g| g.id.clone()),
            recipient: grant.map(|g| g.recipient.clone()),
        }
        .into_record(),
    ];
    if counted.throttled_now {
        warn!(client = %client.0, refusals = counted.refusals, "portal client throttled");
        audit.push(
            AuditEvent::PortalThrottled {
                client_ip: client.0.to_string(),
                refusals: counted.refusals,
                window_secs: ctx.throttle.window().as_secs(),
            }
            .into_record(),
        );
    }
    if let Err(e) = ctx.store.append_audit_batch(&audit).await {
        // The refusal stands without its record; the log has it.
        warn!(client = %client.0, error = %e, "portal refusal not audited");
    }
    forbidden()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static(value));
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy_and_only_its_right_most_untrusted_hop() {
        let proxy = ip("10.0.0.2");
        let trusted = [proxy, ip("10.0.0.3")];
        let h = forwarded("203.0.113.66, 198.51.100.7, 10.0.0.3");
        assert_eq!(client_ip(proxy, &h, &trusted), ip("198.51.100.7"));
        assert_eq!(
            client_ip(ip("192.0.2.9"), &h, &trusted),
            ip("192.0.2.9"),
            "anyone else's header is ignored"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(
            client_ip(proxy, &forwarded("junk, 10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &h, &trusted),
            ip("198.51.100.7"),
            "a mapped proxy address is the proxy"
        );
    }

    #[test]
    fn actions_are_named_by_the_last_path_segment_only() {
        assert_eq!(action("/p/TOKEN/reply"), "reply");
        assert_eq!(action("/p/TOKEN/signout"), "signout");
        assert_eq!(action("/p/TOKEN"), "other");
    }
}
