//! A domain carried by an operator's route (`[[delivery.route]]`): verified TLS means what the
//! route demands of its hosts, the MX facts (DANE, MTA-STS, downgrade memory) do not count,
//! and `tls-authenticated` is never chosen.

use super::*;
use crate::{Level, Method, RouteEvidence, decide};

const BOB: &str = "bob@partner.example";

fn routed(unverified: Option<&str>) -> DomainEvidence {
    DomainEvidence {
        route: Some(RouteEvidence {
            name: "partner".to_owned(),
            tls: "pinned TLS to [192.0.2.7]:25".to_owned(),
            unverified: unverified.map(str::to_owned),
        }),
        ..plain_domain()
    }
}

#[test]
fn a_route_that_verifies_its_hosts_gives_verified_tls_and_says_so() {
    let d = decide(
        &Rules::default(),
        BOB,
        &routed(None),
        &RecipientEvidence::default(),
        &plain_message(),
    );
    assert_eq!(d.level, Level::Required);
    assert_eq!(d.chosen(), Method::TlsVerified);
    assert!(
        !d.chain.contains(&Method::TlsAuthenticated),
        "{:?}",
        d.chain
    );
    assert!(
        d.evidence.contains(
            &"route: partner (pinned TLS to [192.0.2.7]:25); the domain's MX hosts are not used"
                .to_owned()
        ),
        "{:?}",
        d.evidence
    );
    assert!(
        d.evidence
            .contains(&"route gives verified tls: yes".to_owned())
    );
    // Neither the unprobed DANE state nor MTA-STS appears as if it had been looked at.
    assert!(
        !d.evidence.iter().any(|e| e.starts_with("dane:")),
        "{:?}",
        d.evidence
    );
}

#[test]
fn a_route_without_verified_tls_sends_protected_mail_to_the_next_method_never_in_the_clear() {
    let d = decide(
        &Rules::default(),
        BOB,
        &routed(Some("tls = \"opportunistic\"")),
        &RecipientEvidence::default(),
        &plain_message(),
    );
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(
        d.evidence
            .contains(&"skip tls-verified: route partner: tls = \"opportunistic\"".to_owned()),
        "{:?}",
        d.evidence
    );
    assert!(
        d.evidence
            .iter()
            .any(|e| e
                .starts_with("skip tls-authenticated: the domain's mail goes by route partner")),
        "{:?}",
        d.evidence
    );
}

#[test]
fn a_routed_domain_seen_verified_before_is_no_downgrade() {
    let dom = DomainEvidence {
        seen_verified_before: true,
        ..routed(None)
    };
    assert!(!dom.downgraded());
    let d = decide(
        &Rules::default(),
        BOB,
        &dom,
        &RecipientEvidence::default(),
        &plain_message(),
    );
    assert!(d.alerts.is_empty(), "{:?}", d.alerts);
    assert_eq!(d.chosen(), Method::TlsVerified);
}
