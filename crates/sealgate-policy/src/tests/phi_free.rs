//! Messages Sealgate writes itself without protected content (portal notices and codes):
//! level none whatever the rules say, TLS only, never the portal.

use super::*;
use crate::{Level, Method, Override, Source, decide};

const JANE: &str = "jane@example.test";

fn notice() -> MessageFacts {
    MessageFacts {
        phi_free: true,
        ..message("A secure message is waiting for you", &[], "open the link")
    }
}

/// Rules that would send everything for this recipient to the portal.
fn portal_everything() -> Rules {
    Rules {
        addresses: vec![Override {
            key: JANE.to_owned(),
            level: Some(Level::Required),
            method: Some(Method::Portal),
            pins: Vec::new(),
            chain: None,
        }],
        ..Rules::default()
    }
}

#[test]
fn a_notice_to_a_domain_without_verified_tls_goes_opportunistic_whatever_the_rules_say() {
    let d = decide(
        &portal_everything(),
        JANE,
        &plain_domain(),
        &pgp_recipient(),
        &notice(),
    );
    assert_eq!((d.level, d.level_source), (Level::None, Source::PhiFree));
    assert_eq!(d.chain, [Method::TlsOpportunistic]);
    assert_eq!(d.forced, None);
    assert_eq!(
        d.evidence[..3],
        [
            "recipient: jane@example.test (domain example.test)".to_owned(),
            "phi-free: a Sealgate notice without protected content".to_owned(),
            "level: none (phi-free)".to_owned(),
        ]
    );
    assert!(d.evidence.contains(&"chain: tls-opportunistic".to_owned()));
}

#[test]
fn a_notice_uses_verified_tls_first_when_the_domain_offers_it() {
    let d = decide(
        &Rules::default(),
        JANE,
        &dane_domain(),
        &rcpt_none(),
        &notice(),
    );
    assert_eq!(d.chain, [Method::TlsVerified, Method::TlsOpportunistic]);
    assert_eq!(d.chosen(), Method::TlsVerified);
}

#[test]
fn a_notice_to_a_bogus_domain_waits_and_alerts() {
    let bogus = DomainEvidence {
        dane: DaneStatus::Bogus,
        ..plain_domain()
    };
    let d = decide(&Rules::default(), JANE, &bogus, &rcpt_none(), &notice());
    assert_eq!(d.chain, [Method::TlsVerified]);
    assert!(
        d.evidence
            .contains(&"phi-free: no method can be used now; the message waits".to_owned()),
        "{}",
        d.explain()
    );
    assert!(!d.alerts.is_empty());
}

#[test]
fn requiretls_keeps_a_notice_off_opportunistic_tls() {
    let facts = MessageFacts {
        requiretls: true,
        ..notice()
    };
    let d = decide(
        &Rules::default(),
        JANE,
        &plain_domain(),
        &rcpt_none(),
        &facts,
    );
    assert_eq!(
        (d.level, d.level_source),
        (Level::Required, Source::Requiretls)
    );
    assert_eq!(d.chain, [Method::TlsVerified]);
    let d = decide(
        &Rules::default(),
        JANE,
        &dane_domain(),
        &rcpt_none(),
        &facts,
    );
    assert_eq!(d.chain, [Method::TlsVerified]);
}

#[test]
fn the_same_message_without_the_flag_goes_to_the_portal() {
    let mut facts = notice();
    facts.phi_free = false;
    let d = decide(
        &portal_everything(),
        JANE,
        &plain_domain(),
        &rcpt_none(),
        &facts,
    );
    assert_eq!(d.chosen(), Method::Portal);
    assert_eq!(d.level, Level::Required);
}

fn rcpt_none() -> RecipientEvidence {
    RecipientEvidence::default()
}
