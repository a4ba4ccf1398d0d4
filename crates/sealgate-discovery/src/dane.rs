//! The DANE probe of one recipient domain (RFC 7672 §2.2): per MX host, is the route to it
//! DNSSEC-secure, and what do its TLSA records say?
//!
//! For each host, in the order given (at most [`MAX_CONCURRENT_HOSTS`] at a time):
//! 1. [`Resolver::secure_route`]: RFC 7672 §2.2.1 — DANE applies only to an MX host found
//!    through a secure MX RRset and secure address records. An insecure route makes the
//!    host [`HostDane::Insecure`] and no TLSA lookup is made; a bogus one makes it
//!    [`HostDane::Bogus`] (the route must not be used).
//! 2. [`Resolver::tlsa`] at `_{port}._tcp.{host}`: secure records with at least one
//!    usable for SMTP (RFC 7672 §3.1.3: DANE-TA(2)/DANE-EE(3)) are [`HostDane::Usable`]
//!    and keep only the usable ones; secure records none of which is usable are
//!    [`HostDane::Unusable`] (RFC 7672 §2.2: TLS is then mandatory but unauthenticated);
//!    a secure denial is [`HostDane::NoTlsa`].
//!
//! Lookup failures are [`HostDane::Failed`]: transient, asked again later.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use sealgate_dns::{DnsError, Resolver, TlsaAnswer, TlsaRecord};

/// How many hosts of one domain are probed at the same time.
pub const MAX_CONCURRENT_HOSTS: usize = 4;

/// The DANE state of one recipient domain's MX hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaneProbe {
    /// The MX RRset (or, without MX, the domain's addresses) and the addresses of at least
    /// one host validated as secure (RFC 7672 §2.2.1).
    pub route_secure: bool,
    /// Every host probed, in the order given (duplicates dropped).
    pub hosts: Vec<HostTlsa>,
}

/// The DANE state of one MX host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTlsa {
    /// The host name, lowercase without a trailing dot.
    pub host: String,
    /// What the probe found.
    pub state: HostDane,
}

/// What the DANE probe found for one MX host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostDane {
    /// Secure TLSA records, at least one usable for SMTP; only the usable ones are kept.
    Usable {
        /// The usable records.
        records: Vec<TlsaRecord>,
        /// The TTL of the answer, in seconds.
        ttl: u32,
    },
    /// Secure TLSA records, none usable for SMTP (RFC 7672 §2.2: mandatory but
    /// unauthenticated TLS).
    Unusable,
    /// A secure denial: the host publishes no TLSA records.
    NoTlsa,
    /// An unsigned zone, or the MX or address route to the host is not secure
    /// (RFC 7672 §2.2.1): DANE does not apply.
    Insecure,
    /// DNSSEC validation failed for the route or the TLSA records: this MX must not be
    /// used (RFC 7672 §2.2, §2.2.1).
    Bogus {
        /// What failed.
        reason: String,
    },
    /// A lookup failed (timeout, SERVFAIL, ...): transient.
    Failed {
        /// What failed.
        reason: String,
    },
}

/// The domain-level DANE summary is the policy engine's own word for it.
pub use sealgate_types::security::DaneStatus;

impl DaneProbe {
    /// The domain's summary, decided in this order:
    /// 1. any host [`HostDane::Usable`] → [`DaneStatus::Valid`] (those hosts can be
    ///    authenticated; the per-host states still rule the others out or in);
    /// 2. every host [`HostDane::Bogus`] → [`DaneStatus::Bogus`];
    /// 3. route secure and every host [`HostDane::NoTlsa`] or [`HostDane::Unusable`] →
    ///    [`DaneStatus::Unusable`] when any host is unusable, else
    ///    [`DaneStatus::SecureNoTlsa`];
    /// 4. any host [`HostDane::Failed`] → [`DaneStatus::Unknown`] (ask again soon rather
    ///    than settle on "insecure" from a partial answer);
    /// 5. otherwise (unsigned, or a mix such as one bogus and one insecure host) →
    ///    [`DaneStatus::Insecure`].
    ///
    /// A probe of no hosts is [`DaneStatus::Insecure`].
    pub fn summary(&self) -> DaneStatus {
        let states = || self.hosts.iter().map(|h| &h.state);
        let every = |f: fn(&HostDane) -> bool| !self.hosts.is_empty() && states().all(f);
        if states().any(|s| matches!(s, HostDane::Usable { .. })) {
            DaneStatus::Valid
        } else if every(|s| matches!(s, HostDane::Bogus { .. })) {
            DaneStatus::Bogus
        } else if self.route_secure && every(|s| matches!(s, HostDane::NoTlsa | HostDane::Unusable))
        {
            if states().any(|s| *s == HostDane::Unusable) {
                DaneStatus::Unusable
            } else {
                DaneStatus::SecureNoTlsa
            }
        } else if states().any(|s| matches!(s, HostDane::Failed { .. })) {
            DaneStatus::Unknown
        } else {
            DaneStatus::Insecure
        }
    }

    /// The state of `host` (any case, trailing dot or not), if it was probed.
    pub fn host(&self, host: &str) -> Option<&HostDane> {
        let host = normalize(host);
        self.hosts.iter().find(|h| h.host == host).map(|h| &h.state)
    }

    /// The smallest TTL of the usable TLSA answers: how long this probe may be cached.
    pub fn min_ttl(&self) -> Option<u32> {
        self.hosts
            .iter()
            .filter_map(|h| match h.state {
                HostDane::Usable { ttl, .. } => Some(ttl),
                _ => None,
            })
            .min()
    }
}

/// Probe `hosts` (the MX hosts of `domain`, or the domain itself for an implicit MX) for
/// DANE at `port`, at most [`MAX_CONCURRENT_HOSTS`] at a time. Never fails: lookup errors
/// are [`HostDane::Failed`].
pub async fn probe(
    resolver: &dyn Resolver,
    domain: &str,
    hosts: &[String],
    port: u16,
) -> DaneProbe {
    let mut names: Vec<String> = Vec::with_capacity(hosts.len());
    for host in hosts.iter().map(|h| normalize(h)) {
        if !names.contains(&host) {
            names.push(host);
        }
    }
    let probes = names
        .iter()
        .map(|host| -> HostFuture<'_> { Box::pin(probe_host(resolver, domain, host, port)) })
        .collect();
    let results = join_bounded(probes, MAX_CONCURRENT_HOSTS).await;
    let route_secure = results.iter().any(|(secure, _)| *secure);
    let hosts = names
        .into_iter()
        .zip(results)
        .map(|(host, (_, state))| HostTlsa { host, state })
        .collect();
    DaneProbe {
        route_secure,
        hosts,
    }
}

/// The probe of one host: whether its route is secure, and its DANE state.
type HostFuture<'a> = Pin<Box<dyn Future<Output = (bool, HostDane)> + Send + 'a>>;

/// One host: whether its route is secure, and its DANE state.
async fn probe_host(
    resolver: &dyn Resolver,
    domain: &str,
    host: &str,
    port: u16,
) -> (bool, HostDane) {
    match resolver.secure_route(domain, host).await {
        Ok(true) => {}
        Ok(false) => return (false, HostDane::Insecure),
        Err(e @ DnsError::DnssecBogus { .. }) => {
            return (
                false,
                HostDane::Bogus {
                    reason: describe(&e),
                },
            );
        }
        Err(e) => {
            return (
                false,
                HostDane::Failed {
                    reason: describe(&e),
                },
            );
        }
    }
    let state = host_tlsa(resolver, host, port).await;
    if let HostDane::Bogus { reason } | HostDane::Failed { reason } = &state {
        tracing::debug!(domain = %domain, host = %host, reason = %reason, "dane probe: mx host bogus or lookup failed");
    }
    (true, state)
}

/// The DANE state of `host` from its TLSA records at `_{port}._tcp.{host}` alone, for a host
/// whose name is trusted as it is (an MX host reached by a secure route, or a host the
/// operator configured as a route's next hop).
pub async fn host_tlsa(resolver: &dyn Resolver, host: &str, port: u16) -> HostDane {
    match resolver.tlsa(host, port).await {
        Ok(TlsaAnswer::Secure { records, ttl }) => usable(records, ttl),
        Ok(TlsaAnswer::SecureNone) => HostDane::NoTlsa,
        Ok(TlsaAnswer::Insecure) => HostDane::Insecure,
        Ok(TlsaAnswer::Bogus { reason }) => HostDane::Bogus { reason },
        Err(e) => HostDane::Failed {
            reason: describe(&e),
        },
    }
}

/// Keep the records usable for SMTP (RFC 7672 §3.1.3), dropping any whose association
/// data cannot match (a digest of the wrong length, RFC 6698 §2.1.3, or none at all).
fn usable(records: Vec<TlsaRecord>, ttl: u32) -> HostDane {
    let records: Vec<TlsaRecord> = records
        .into_iter()
        .filter(|r| r.is_usable_for_smtp() && data_fits(r))
        .collect();
    if records.is_empty() {
        HostDane::Unusable
    } else {
        HostDane::Usable { records, ttl }
    }
}

fn data_fits(r: &TlsaRecord) -> bool {
    match r.matching {
        0 => !r.data.is_empty(),
        1 => r.data.len() == 32,
        2 => r.data.len() == 64,
        _ => false,
    }
}

/// An error and its sources, for the evidence.
fn describe(e: &DnsError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn normalize(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Run `futures` with at most `limit` in progress at once; the outputs in input order.
async fn join_bounded<F: Future + Unpin>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    let total = futures.len();
    let mut queued = futures.into_iter().enumerate();
    let mut running: Vec<(usize, F)> = Vec::new();
    let mut outputs: Vec<Option<F::Output>> = (0..total).map(|_| None).collect();
    let mut done = 0;
    poll_fn(|cx| {
        loop {
            while running.len() < limit.max(1) {
                match queued.next() {
                    Some(next) => running.push(next),
                    None => break,
                }
            }
            let before = done;
            running.retain_mut(|(index, future)| match Pin::new(future).poll(cx) {
                Poll::Ready(output) => {
                    outputs[*index] = Some(output);
                    done += 1;
                    false
                }
                Poll::Pending => true,
            });
            if done == total {
                return Poll::Ready(());
            }
            // Something finished: start the next ones now rather than on the next wake-up.
            if done == before {
                return Poll::Pending;
            }
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;
