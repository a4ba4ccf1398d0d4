//! MX routing: the ordered list of hosts to try for a domain (RFC 5321 §5.1).

use crate::{DnsError, MxRecords, Resolver, normalize_name};

/// One candidate mail exchanger for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Host name to resolve and connect to (lowercase, no trailing dot).
    pub host: String,
    /// MX preference; 0 for the implicit MX.
    pub preference: u16,
    /// True when the domain had no MX records and is used as its own host.
    pub implicit: bool,
}

/// Where mail for a domain goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Hosts in the order to try them: by preference, equal preferences shuffled.
    Hosts(Vec<Route>),
    /// The domain publishes a null MX (RFC 7505): bounce without trying.
    NullMx,
}

/// The ordered candidate hosts for `domain`.
///
/// RFC 5321 §5.1: MX hosts are tried in preference order and hosts of equal
/// preference in random order, so `shuffle` is called on each run of equal
/// preference (production passes [`random_shuffle`]; tests pass a fixed order).
/// A domain without MX records routes to itself (implicit MX); a null MX routes
/// nowhere. Address literals (`[192.0.2.1]`) are the caller's business: this
/// function only resolves domain names.
pub async fn route(
    resolver: &dyn Resolver,
    domain: &str,
    mut shuffle: impl FnMut(&mut [Route]),
) -> Result<Routing, DnsError> {
    let hosts = match resolver.mx(domain).await? {
        // Classify again: a `Resolver` may hand back raw records.
        MxRecords::Hosts(hosts) => MxRecords::classify(hosts),
        other => other,
    };
    let mut routes = match hosts {
        MxRecords::NullMx => return Ok(Routing::NullMx),
        MxRecords::Implicit => vec![Route {
            host: normalize_name(domain),
            preference: 0,
            implicit: true,
        }],
        MxRecords::Hosts(hosts) => hosts
            .into_iter()
            .map(|h| Route {
                host: h.exchange,
                preference: h.preference,
                implicit: false,
            })
            .collect(),
    };
    routes.sort_by_key(|r| r.preference);
    for run in routes.chunk_by_mut(|a, b| a.preference == b.preference) {
        if run.len() > 1 {
            shuffle(run);
        }
    }
    Ok(Routing::Hosts(routes))
}

/// Fisher–Yates shuffle from the operating system's random source: the
/// production `shuffle` for [`route`]. If the random source fails the order is
/// left as it is (still a valid order, only less balanced).
pub fn random_shuffle(routes: &mut [Route]) {
    for i in (1..routes.len()).rev() {
        let Ok(r) = getrandom::u64() else { return };
        // `i + 1` is at most the slice length, which fits in u64; the modulo bias
        // over a handful of MX hosts is negligible.
        let j = (r % (i as u64 + 1)) as usize;
        routes.swap(i, j);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use super::*;
    use crate::{BoxFuture, MxHost};

    /// Canned answers keyed by normalised domain; a missing domain is NXDOMAIN.
    #[derive(Debug, Default)]
    struct FakeResolver {
        mx: HashMap<&'static str, Result<MxRecords, &'static str>>,
    }

    impl FakeResolver {
        fn with(mut self, domain: &'static str, answer: MxRecords) -> Self {
            self.mx.insert(domain, Ok(answer));
            self
        }
        fn failing(mut self, domain: &'static str, rcode: &'static str) -> Self {
            self.mx.insert(domain, Err(rcode));
            self
        }
    }

    impl Resolver for FakeResolver {
        fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>> {
            let answer = match self.mx.get(normalize_name(domain).as_str()) {
                Some(Ok(records)) => Ok(records.clone()),
                Some(Err(rcode)) => Err(DnsError::ServerError {
                    name: domain.to_owned(),
                    record_type: "MX",
                    rcode: (*rcode).to_owned(),
                }),
                None => Err(DnsError::NxDomain {
                    name: domain.to_owned(),
                }),
            };
            Box::pin(async move { answer })
        }

        fn ips<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
            Box::pin(async { Ok(vec![]) })
        }

        fn tlsa<'a>(
            &'a self,
            _host: &'a str,
            _port: u16,
        ) -> BoxFuture<'a, Result<crate::TlsaAnswer, DnsError>> {
            Box::pin(async { Ok(crate::TlsaAnswer::Insecure) })
        }

        fn secure_route<'a>(
            &'a self,
            _domain: &'a str,
            _host: &'a str,
        ) -> BoxFuture<'a, Result<bool, DnsError>> {
            Box::pin(async { Ok(false) })
        }

        fn txt<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
            Box::pin(async { Ok(vec![]) })
        }

        fn openpgpkey<'a>(
            &'a self,
            _name: &'a str,
        ) -> BoxFuture<'a, Result<crate::OpenpgpkeyAnswer, DnsError>> {
            Box::pin(async { Ok(crate::Secured::Insecure) })
        }

        fn smimea<'a>(
            &'a self,
            _name: &'a str,
        ) -> BoxFuture<'a, Result<crate::SmimeaAnswer, DnsError>> {
            Box::pin(async { Ok(crate::Secured::Insecure) })
        }
    }

    fn hosts(records: &[(u16, &str)]) -> MxRecords {
        MxRecords::Hosts(records.iter().map(|(p, h)| MxHost::new(*p, h)).collect())
    }

    fn order(routing: &Routing) -> Vec<(u16, &str)> {
        match routing {
            Routing::Hosts(routes) => routes
                .iter()
                .map(|r| (r.preference, r.host.as_str()))
                .collect(),
            Routing::NullMx => panic!("expected hosts, got null MX"),
        }
    }

    async fn route_with(
        fake: &FakeResolver,
        domain: &str,
        shuffle: impl FnMut(&mut [Route]),
    ) -> Result<Routing, DnsError> {
        route(fake, domain, shuffle).await
    }

    #[tokio::test]
    async fn mx_hosts_come_out_in_preference_order() {
        let fake = FakeResolver::default().with(
            "example.test",
            hosts(&[
                (30, "c.example.test"),
                (10, "a.example.test"),
                (20, "b.example.test"),
            ]),
        );
        let got = route_with(&fake, "example.test", |_| {}).await.unwrap();
        let want = vec![
            (10, "a.example.test"),
            (20, "b.example.test"),
            (30, "c.example.test"),
        ];
        assert_eq!(order(&got), want);
        let Routing::Hosts(routes) = got else {
            unreachable!()
        };
        assert!(routes.iter().all(|r| !r.implicit));
    }

    #[tokio::test]
    async fn equal_preferences_are_shuffled_and_only_they() {
        let fake = FakeResolver::default().with(
            "example.test",
            hosts(&[(10, "a"), (10, "b"), (5, "first"), (10, "c"), (20, "last")]),
        );
        let mut calls = 0;
        let got = route_with(&fake, "example.test", |run| {
            calls += 1;
            run.reverse();
        })
        .await
        .unwrap();
        assert_eq!(calls, 1, "singleton runs are not shuffled");
        let want = vec![(5, "first"), (10, "c"), (10, "b"), (10, "a"), (20, "last")];
        assert_eq!(order(&got), want);
    }

    #[tokio::test]
    async fn no_mx_routes_to_the_domain_itself() {
        let fake = FakeResolver::default().with("example.test", MxRecords::Implicit);
        let got = route_with(&fake, "Example.TEST.", |_| {}).await.unwrap();
        let want = Routing::Hosts(vec![Route {
            host: "example.test".into(),
            preference: 0,
            implicit: true,
        }]);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn empty_mx_list_is_treated_as_implicit() {
        let fake = FakeResolver::default().with("example.test", MxRecords::Hosts(vec![]));
        let got = route_with(&fake, "example.test", |_| {}).await.unwrap();
        assert_eq!(order(&got), vec![(0, "example.test")]);
    }

    #[tokio::test]
    async fn null_mx_routes_nowhere() {
        let fake = FakeResolver::default().with("example.test", MxRecords::NullMx);
        let got = route_with(&fake, "example.test", |_| {}).await.unwrap();
        assert_eq!(got, Routing::NullMx);
    }

    #[tokio::test]
    async fn a_lone_dot_record_is_null_mx_even_unclassified() {
        let fake = FakeResolver::default().with("example.test", hosts(&[(0, ".")]));
        let got = route_with(&fake, "example.test", |_| {}).await.unwrap();
        assert_eq!(got, Routing::NullMx);
    }

    #[tokio::test]
    async fn null_mx_mixed_with_real_hosts_is_ignored() {
        let fake = FakeResolver::default()
            .with("example.test", hosts(&[(0, "."), (10, "mx.example.test")]));
        let got = route_with(&fake, "example.test", |_| {}).await.unwrap();
        assert_eq!(order(&got), vec![(10, "mx.example.test")]);
    }

    #[tokio::test]
    async fn nxdomain_is_a_permanent_error() {
        let fake = FakeResolver::default();
        let err = route_with(&fake, "nope.test", |_| {}).await.unwrap_err();
        assert!(matches!(err, DnsError::NxDomain { .. }), "{err:?}");
        assert!(err.is_permanent());
    }

    #[tokio::test]
    async fn servfail_is_a_transient_error() {
        let fake = FakeResolver::default().failing("example.test", "SERVFAIL");
        let err = route_with(&fake, "example.test", |_| {}).await.unwrap_err();
        assert!(!err.is_permanent(), "{err}");
    }

    #[test]
    fn random_shuffle_keeps_every_route() {
        let mut routes: Vec<Route> = (0..8)
            .map(|i| Route {
                host: format!("mx{i}"),
                preference: 10,
                implicit: false,
            })
            .collect();
        random_shuffle(&mut routes);
        let mut hosts: Vec<_> = routes.iter().map(|r| r.host.clone()).collect();
        hosts.sort();
        let want: Vec<_> = (0..8).map(|i| format!("mx{i}")).collect();
        assert_eq!(hosts, want);
    }
}
