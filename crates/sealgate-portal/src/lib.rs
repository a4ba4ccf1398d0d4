//! Sealgate secure portal web (layer L4): where a recipient whose mail could not be protected
//! in transit reads it in a browser.
//!
//! Owns the portal's HTTP(S) server (axum, server-rendered HTML that works without
//! JavaScript): checking link tokens and grants, sending one-time codes and verifying them (or
//! a passphrase) with attempt limits and lockout, sessions and CSRF tokens, showing the thread
//! (headers, escaped text, HTML sanitized by ammonia inside a sandboxed frame), attachments as
//! downloads, replies queued to the original sender, read receipts, and the audit events of
//! all of these. Every response carries a strict Content-Security-Policy, `no-store`,
//! `nosniff` and `Referrer-Policy: same-origin`. Every state-changing request must come from
//! the portal's own origin and carry its CSRF token; refusals are audited and throttled per
//! client network. Cookies are `__Host-` cookies; a recipient can sign out.
//!
//! Depends on store, queue, audit, crypto, config and types; never on delivery or ingress
//! (siblings meet in the queue). Never logs tokens, codes, cookies, passphrases or content.

mod access;
pub mod compose;
mod error;
mod guard;
pub mod mime;
pub mod origin;
mod page;
mod read;
mod reply;
pub mod sanitize;
pub mod secret;
mod server;
mod signout;
pub mod throttle;
mod verify;
mod web;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use sealgate_crypto::KeyRing;
use sealgate_queue::Queue;
use sealgate_store::Store;

pub use error::PortalError;
pub use server::{PortalListener, bind, check_tls, run, serve};
pub use web::{CSRF_COOKIE, SESSION_COOKIE, cookie_name};

/// The portal's settings, from `[portal]` and `[server]`.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// Where the web server listens.
    pub listen: SocketAddr,
    /// PEM certificate chain and key: with both, the portal serves HTTPS itself.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How long a one-time code works.
    pub code_ttl: Duration,
    /// Failed codes or passphrases before the grant locks.
    pub max_code_attempts: u32,
    /// How long a locked grant stays locked.
    pub lockout: Duration,
    /// How long a session lasts after verification.
    pub session_ttl: Duration,
    /// The sending organisation named in code emails and receipts.
    pub organisation: String,
    /// From and envelope sender of code emails and read receipts.
    pub notice_from: String,
    /// Tell the sender when a recipient first reads.
    pub read_receipts: bool,
    /// Shortest time between two code emails for one grant (a link holder cannot flood the
    /// recipient's mailbox).
    pub code_resend_interval: Duration,
    /// Longest time the server waits for open connections at shutdown.
    pub shutdown_grace: Duration,
    /// The origin recipients' browsers see the portal at ([`origin::serialize`] of
    /// `portal.public_url`): the only one whose pages may post to it.
    pub public_origin: String,
    /// Refused state-changing requests a client may make within `refusal_window`.
    pub refusal_limit: u32,
    /// The sliding window of `refusal_limit`.
    pub refusal_window: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
}

impl PortalSettings {
    /// The settings in `cfg`.
    pub fn from_config(cfg: &sealgate_config::Config) -> Self {
        let p = &cfg.portal;
        Self {
            listen: p.listen,
            tls: p.tls_cert_file.clone().zip(p.tls_key_file.clone()),
            code_ttl: p.code_ttl.0,
            max_code_attempts: p.max_code_attempts,
            lockout: p.lockout.0,
            session_ttl: p.session_ttl.0,
            organisation: p.organisation.clone(),
            notice_from: cfg.portal_notice_from(),
            read_receipts: p.read_receipts,
            code_resend_interval: Duration::from_secs(30),
            shutdown_grace: cfg.server.shutdown_grace.0,
            public_origin: origin::serialize(&p.public_url),
            refusal_limit: p.refusal_limit,
            refusal_window: p.refusal_window.0,
            trusted_proxies: p.trusted_proxies.clone(),
        }
    }
}

/// What the portal works with: passed explicitly, no globals.
#[derive(Debug, Clone)]
pub struct PortalContext {
    /// The database.
    pub store: Store,
    /// The queue that seals and queues code emails, replies and receipts.
    pub queue: Queue,
    /// The portal master key ring (opens each portal message's own key).
    pub master: Arc<KeyRing>,
    /// The settings.
    pub settings: PortalSettings,
    /// This relay's host name (HELO of queued messages, right side of Message-IDs).
    pub hostname: String,
}

/// What the handlers share: the context, and the refusal counter of this portal.
#[derive(Debug)]
pub(crate) struct Shared {
    ctx: PortalContext,
    /// Refused state-changing requests per client.
    pub throttle: throttle::Throttle,
}

impl std::ops::Deref for Shared {
    type Target = PortalContext;

    fn deref(&self) -> &PortalContext {
        &self.ctx
    }
}

/// Shared state of the handlers.
pub(crate) type Ctx = Arc<Shared>;

/// The portal's routes, with the request guard (origin check and throttle on every
/// state-changing request) and the security headers on every response. Served by [`serve`];
/// public so tests can drive it without a socket (they put the peer address in each request
/// as [`axum::extract::ConnectInfo`], as [`serve`] does).
pub fn router(ctx: PortalContext) -> Router {
    let s = &ctx.settings;
    let throttle = throttle::Throttle::new(s.refusal_limit, s.refusal_window);
    let ctx: Ctx = Arc::new(Shared { ctx, throttle });
    Router::new()
        .route("/portal.css", get(web::stylesheet))
        .route("/favicon.ico", get(web::no_icon))
        .route("/p/{token}", get(verify::index))
        .route("/p/{token}/code", post(verify::send_code))
        .route("/p/{token}/verify", post(verify::verify))
        .route("/p/{token}/thread", get(read::thread))
        .route("/p/{token}/body/{n}", get(read::body))
        .route("/p/{token}/att/{n}/{m}", get(read::attachment))
        .route("/p/{token}/reply", post(reply::reply))
        .route("/p/{token}/signout", post(signout::signout))
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            guard::posts,
        ))
        .layer(axum::middleware::map_response_with_state(
            ctx.clone(),
            web::security_headers,
        ))
        .with_state(ctx)
}

#[cfg(test)]
mod ct_tests;
