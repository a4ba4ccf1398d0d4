//! Outbound delivery (layer L4): takes claimed recipients from the queue, delivers each as
//! its policy decision says, and settles them back into the queue. Must not depend on the
//! ingress side (they meet only in the queue), and never initialises tracing or reads the
//! environment. The binary builds a [`DeliveryContext`] and runs [`run`]; `sealgate check`
//! uses [`check`]. Nothing else is public.
//!
//! The modules, in the order one claim meets them (docs/flow.md walks it step by step):
//!
//! - `worker`: the loop: claim due recipients, group them by domain, bounded concurrency.
//! - `context`: what every part shares ([`DeliveryContext`]).
//! - `attempt` (and `attempt/outcome`): one domain's run: route, probe, decide per
//!   recipient, send each message window as decided (verified, opportunistic, encrypted
//!   copy, portal, or held by policy), turn what happened into reports and settle them.
//! - `route`: MX routing to the addresses to try.
//! - `plan`: discovery's findings as policy evidence, the decision per recipient, the peer
//!   authentication each MX host owes.
//! - `facts`: what content triggers see, and the header rewrite a decision asks for.
//! - `encrypt`: OpenPGP and S/MIME copies ([`Encryption`]).
//! - `portal`: sealing a message on the portal and notifying the recipient ([`PortalSettings`]).
//! - `connect`: opening verified or opportunistic sessions to a domain's hosts.
//! - `verify`: certificate verifiers for DANE, MTA-STS and pins ([`Verifiers`]).
//! - `client`: the SMTP client, one session with one MX host ([`ClientConfig`], [`TlsPolicy`]).
//! - `pool`: idle sessions kept briefly for reuse.

mod attempt;
mod client;
mod connect;
mod context;
mod encrypt;
mod facts;
mod plan;
mod pool;
mod portal;
mod route;
mod verify;
mod worker;

pub use client::{ClientConfig, TlsPolicy};
pub use context::DeliveryContext;
pub use encrypt::{Encryption, SmimeOut};
pub use plan::{CheckReport, check};
pub use portal::PortalSettings;
pub use route::{HopTls, NextHop, Routes};
pub use verify::Verifiers;
pub use worker::run;
