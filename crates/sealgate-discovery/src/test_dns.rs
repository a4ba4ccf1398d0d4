//! A resolver for unit tests that need no real DNS server: canned OPENPGPKEY and SMIMEA
//! answers by owner name (anything else is a secure denial), NXDOMAIN for every other lookup.
//! Counts key lookups. (Tests that need real DNS use `sealgate_testkit::dns::TestDns`.)

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sealgate_dns::{
    BoxFuture, DnsError, MxRecords, OpenpgpkeyAnswer, Resolver, Secured, SmimeaAnswer, TlsaAnswer,
};

#[derive(Debug, Default)]
pub(crate) struct FakeDns {
    pub(crate) openpgpkey: Mutex<HashMap<String, OpenpgpkeyAnswer>>,
    pub(crate) smimea: Mutex<HashMap<String, SmimeaAnswer>>,
    lookups: AtomicUsize,
}

impl FakeDns {
    /// OPENPGPKEY and SMIMEA lookups so far.
    pub(crate) fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

fn nx<T>(name: &str) -> Result<T, DnsError> {
    Err(DnsError::NxDomain { name: name.into() })
}

impl Resolver for FakeDns {
    fn mx<'a>(&'a self, d: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>> {
        Box::pin(async move { nx(d) })
    }
    fn ips<'a>(&'a self, h: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(async move { nx(h) })
    }
    fn tlsa<'a>(&'a self, h: &'a str, _: u16) -> BoxFuture<'a, Result<TlsaAnswer, DnsError>> {
        Box::pin(async move { nx(h) })
    }
    fn secure_route<'a>(&'a self, d: &'a str, _: &'a str) -> BoxFuture<'a, Result<bool, DnsError>> {
        Box::pin(async move { nx(d) })
    }
    fn txt<'a>(&'a self, n: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        Box::pin(async move { nx(n) })
    }
    fn openpgpkey<'a>(&'a self, n: &'a str) -> BoxFuture<'a, Result<OpenpgpkeyAnswer, DnsError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self.openpgpkey.lock().unwrap().get(n).cloned();
        Box::pin(async move { Ok(answer.unwrap_or(Secured::SecureNone)) })
    }
    fn smimea<'a>(&'a self, n: &'a str) -> BoxFuture<'a, Result<SmimeaAnswer, DnsError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self.smimea.lock().unwrap().get(n).cloned();
        Box::pin(async move { Ok(answer.unwrap_or(Secured::SecureNone)) })
    }
}
