//! Sealgate test kit (dev only): the pieces tests share — a throwaway test CA
//! ([`tls`]), throwaway databases, loopback peers, and a headless browser ([`browser`]).
//!
//! Production crates may list this crate only under `[dev-dependencies]`; the
//! layering test in `tests/` enforces that. It may depend on any production
//! crate, and on rustls, rcgen and sqlx, but nothing may depend on it normally.

pub mod tls;

pub mod db;

pub mod dns;
pub mod gpg;
pub mod https;
pub mod smime;
pub mod smtp_sink;

pub mod postfix;

pub mod browser;
