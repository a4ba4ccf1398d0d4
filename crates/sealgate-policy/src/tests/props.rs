use proptest::prelude::*;

use super::*;
use crate::{Failed, Level, Method, Override, Source, Unusable, decide};

const ADDR: &str = "pat@clinic.example";

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Required), Just(Level::None)]
}

fn method() -> impl Strategy<Value = Method> {
    proptest::sample::select(Method::ALL.to_vec())
}

fn credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        Just(Credential::Absent),
        "[0-9A-F]{4}".prop_map(|fingerprint| Credential::Usable { fingerprint }),
        (
            "[0-9A-F]{4}",
            proptest::sample::select(vec![
                Unusable::Expired,
                Unusable::Revoked,
                Unusable::SigningOnly,
                Unusable::Invalid,
            ])
        )
            .prop_map(|(fingerprint, reason)| Credential::Unusable {
                fingerprint,
                reason
            }),
    ]
}

fn domain_evidence() -> impl Strategy<Value = DomainEvidence> {
    let dane = proptest::sample::select(vec![
        DaneStatus::Valid,
        DaneStatus::Unusable,
        DaneStatus::SecureNoTlsa,
        DaneStatus::Insecure,
        DaneStatus::Bogus,
        DaneStatus::Unknown,
    ]);
    let sts = proptest::sample::select(vec![
        MtaStsMode::Enforce,
        MtaStsMode::Testing,
        MtaStsMode::None,
        MtaStsMode::Unknown,
    ]);
    (
        dane,
        sts,
        proptest::collection::vec("[0-9a-f]{4}", 0..2),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(dane, mta_sts, pins, starttls_seen, seen_verified_before)| DomainEvidence {
                dane,
                mta_sts,
                pins,
                starttls_seen,
                seen_verified_before,
                route: None,
            },
        )
}

fn recipient_evidence() -> impl Strategy<Value = RecipientEvidence> {
    (credential(), credential()).prop_map(|(pgp, smime)| RecipientEvidence { pgp, smime })
}

fn an_override(key: &'static str) -> impl Strategy<Value = Option<Override>> {
    proptest::option::of(
        (
            proptest::option::of(level()),
            proptest::option::of(method()),
            proptest::collection::vec("[0-9a-f]{4}", 0..2),
            proptest::option::of(proptest::collection::vec(method(), 1..5)),
        )
            .prop_map(move |(level, method, pins, chain)| Override {
                key: key.to_owned(),
                level,
                method,
                pins,
                chain,
            }),
    )
}

/// Generated rules: any default, any preference (including opportunistic TLS, possibly
/// without the portal), optional overrides for the tested address and its domain.
fn rules() -> impl Strategy<Value = Rules> {
    (
        level(),
        proptest::collection::vec(method(), 0..6),
        an_override("clinic.example"),
        an_override(ADDR),
        proptest::sample::subsequence(
            vec![
                Method::TlsVerified,
                Method::Pgp,
                Method::Smime,
                Method::TlsAuthenticated,
            ],
            0..=4,
        ),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(method(), 1..4)),
    )
        .prop_map(
            |(
                default_level,
                preference,
                dom,
                addr,
                mut protecting,
                after_verified,
                content_chain,
            )| {
                protecting.push(Method::Portal);
                let content = crate::ContentTriggers {
                    chain: content_chain.map(|mut c| {
                        c.dedup();
                        c
                    }),
                    ..crate::ContentTriggers::default()
                };
                Rules {
                    content,
                    default_level,
                    preference,
                    protecting,
                    authenticated_after_verified: after_verified,
                    domains: dom.into_iter().collect(),
                    addresses: addr.into_iter().collect(),
                }
            },
        )
}

const HEADER_VALUES: &[&str] = &[
    "required",
    "none",
    "pgp",
    "smime",
    "portal",
    "tls-verified",
    "tls-authenticated",
    "bogus",
];

/// Generated messages, with the content triggers they carry: messages with protected content
/// and phi-free ones (portal notices), with or without REQUIRETLS.
#[derive(Debug, Clone)]
struct Generated {
    tag: bool,
    ssn: bool,
    header: Option<&'static str>,
    tls_required_no: bool,
    requiretls: bool,
    phi_free: bool,
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(proptest::sample::select(HEADER_VALUES.to_vec())),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(tag, ssn, header, tls_required_no, requiretls, phi_free)| Generated {
                tag,
                ssn,
                header,
                tls_required_no,
                requiretls,
                phi_free,
            },
        )
}

impl Generated {
    fn facts(&self) -> MessageFacts {
        let mut headers = Vec::new();
        if let Some(v) = self.header {
            headers.push(("X-Sealgate-Security".to_owned(), v.to_owned()));
        }
        if self.tls_required_no {
            headers.push(("TLS-Required".to_owned(), "No".to_owned()));
        }
        MessageFacts {
            subject: if self.tag {
                "[Secure] results"
            } else {
                "results"
            }
            .to_owned(),
            headers,
            body_sample: if self.ssn { "ssn 078-05-1120" } else { "fine" }.to_owned(),
            requiretls: self.requiretls,
            phi_free: self.phi_free,
        }
    }

    /// The level the content triggers ask for, worked out independently of the engine.
    fn content_level(&self) -> Option<Level> {
        let header_protects = matches!(self.header, Some(h) if h != "none");
        if self.tag || self.ssn || header_protects {
            Some(Level::Required)
        } else if self.header == Some("none") {
            Some(Level::None)
        } else {
            None
        }
    }

    fn content_method(&self) -> Option<Method> {
        self.header
            .and_then(|h| h.parse().ok())
            .filter(|m| *m != Method::TlsOpportunistic)
    }
}

/// A phi-free chain: TLS only, in order (verified first), opportunistic exactly when allowed,
/// and tls-verified alone only when it is all that is left to wait on.
fn assert_phi_free_chain(
    d: &crate::Decision,
    dom: &DomainEvidence,
    requiretls: bool,
) -> Result<(), TestCaseError> {
    let tls = [Method::TlsVerified, Method::TlsOpportunistic];
    prop_assert!(d.chain.iter().all(|m| tls.contains(m)), "{:?}", d.chain);
    prop_assert!(!d.chain.contains(&Method::Portal));
    let mut sorted = d.chain.clone();
    sorted.sort();
    prop_assert_eq!(&sorted, &d.chain, "verified comes first");
    let opportunistic_allowed = !requiretls && dom.dane != DaneStatus::Bogus;
    prop_assert_eq!(
        d.chain.contains(&Method::TlsOpportunistic),
        opportunistic_allowed
    );
    Ok(())
}

proptest! {
    #[test]
    fn protection_required_never_resolves_to_plaintext(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        let d = decide(&rules, ADDR, &dom, &rcpt, &msg.facts());
        prop_assert!(!d.chain.is_empty());
        if msg.phi_free {
            assert_phi_free_chain(&d, &dom, msg.requiretls)?;
        } else {
            prop_assert_eq!(d.chain.last(), Some(&Method::Portal));
        }
        if d.level == Level::Required {
            prop_assert!(!d.chain.contains(&Method::TlsOpportunistic), "{:?}", d.chain);
            prop_assert!(d.chain.iter().all(|m| m.protects()));
        }
        // No method appears twice, and the portal only at the end.
        let mut seen = d.chain.clone();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), d.chain.len());
        // A downgraded or bogus domain never gets tls-verified (a phi-free message that can
        // go no other way keeps it only to wait: it cannot connect), and says so.
        if dom.downgraded() || dom.dane == DaneStatus::Bogus {
            let waiting = msg.phi_free && d.chain == [Method::TlsVerified];
            prop_assert!(waiting || !d.chain.contains(&Method::TlsVerified));
            prop_assert!(!d.alerts.is_empty());
        }
    }

    #[test]
    fn rule_precedence_is_address_then_domain_then_content_then_default(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        let d = decide(&rules, ADDR, &dom, &rcpt, &msg.facts());
        if msg.phi_free {
            // No rule applies to a phi-free message; only REQUIRETLS raises its level.
            let expected = if msg.requiretls {
                (Level::Required, Source::Requiretls)
            } else {
                (Level::None, Source::PhiFree)
            };
            prop_assert_eq!((d.level, d.level_source), expected);
            prop_assert_eq!(d.forced, None);
            return Ok(());
        }
        let addr = rules.addresses.first();
        let domain = rules.domains.first();
        let expected_level = addr.and_then(|o| o.level).map(|l| (l, Source::AddressOverride))
            .or(domain.and_then(|o| o.level).map(|l| (l, Source::DomainOverride)))
            .or(msg.content_level().map(|l| (l, Source::ContentTrigger)))
            .unwrap_or((rules.default_level, Source::Default));
        // RFC 8689 §4.2: REQUIRETLS raises a level the rules left at none.
        let expected_level = match expected_level {
            (Level::None, _) if msg.requiretls => (Level::Required, Source::Requiretls),
            other => other,
        };
        prop_assert_eq!((d.level, d.level_source), expected_level);
        let expected_forced = addr.and_then(|o| o.method).map(|m| (m, Source::AddressOverride))
            .or(domain.and_then(|o| o.method).map(|m| (m, Source::DomainOverride)))
            .or(msg.content_method().map(|m| (m, Source::ContentTrigger)));
        prop_assert_eq!(d.forced, expected_forced);
        // A forced method leads the chain whenever it was allowed into it.
        if let Some((m, _)) = d.forced {
            if d.chain.contains(&m) {
                prop_assert_eq!(d.chosen(), m);
            } else {
                let expected = format!("skip {m}: forced but unavailable");
                prop_assert!(d.evidence.iter().any(|l| l.starts_with(&expected)));
            }
        }
    }

    #[test]
    fn decisions_are_deterministic(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        let facts = msg.facts();
        let a = decide(&rules, ADDR, &dom, &rcpt, &facts);
        let b = decide(&rules.clone(), ADDR, &dom.clone(), &rcpt.clone(), &facts.clone());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn tls_required_no_never_lowers_a_required_level(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        let without = Generated { tls_required_no: false, ..msg.clone() };
        let with = Generated { tls_required_no: true, ..msg };
        let a = decide(&rules, ADDR, &dom, &rcpt, &without.facts());
        let b = decide(&rules, ADDR, &dom, &rcpt, &with.facts());
        prop_assert_eq!(a.level, b.level);
        prop_assert_eq!(&a.chain, &b.chain);
        if b.level == Level::Required {
            prop_assert!(!b.chain.contains(&Method::TlsOpportunistic));
        }
    }

    /// The walk down the chain after delivery-time failures ([`crate::Decision::after`]):
    /// protection required never resolves to plaintext or opportunistic TLS after any
    /// sequence of failures; the chain only shrinks, keeping its order; after a failed
    /// verification neither TLS method comes back; a method the rules left out (not in the
    /// preference, not forced) is never chosen; the level never changes.
    #[test]
    fn failures_walk_down_the_chain_and_never_to_weaker_protection(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
        failures in proptest::collection::vec((0..3u8, method()), 0..6),
    ) {
        let first = decide(&rules, ADDR, &dom, &rcpt, &msg.facts());
        let allowed: Vec<Method> = rules
            .preference
            .iter()
            .copied()
            .chain(first.forced.map(|(m, _)| m))
            .chain([Method::Portal, Method::TlsOpportunistic])
            // A phi-free message's chain is verified TLS then opportunistic, whatever the rules.
            .chain(msg.phi_free.then_some(Method::TlsVerified))
            // A rule's own chain replaces the preference for its recipients.
            .chain(
                rules
                    .addresses
                    .iter()
                    .chain(&rules.domains)
                    .flat_map(|o| o.chain.clone().unwrap_or_default()),
            )
            // So does the content triggers' chain.
            .chain(rules.content.chain.clone().unwrap_or_default())
            .collect();
        let mut d = first.clone();
        let mut verification_failed = false;
        for (kind, other) in failures {
            let verified = kind == 0;
            let failed = if verified {
                Failed::VerifiedTls { why: "no MX host passed".into() }
            } else if kind == 1 {
                Failed::AuthenticatedTls { why: "no MX host had a valid certificate".into() }
            } else {
                // Mostly the chosen method fails; sometimes one that is not chosen.
                let method = if matches!(d.chosen(), Method::Pgp | Method::Smime) {
                    d.chosen()
                } else {
                    other
                };
                Failed::Encryption { method, why: format!("{method} failed: no key") }
            };
            let Some(next) = d.after(&failed) else {
                break;
            };
            prop_assert!(!next.chain.is_empty());
            prop_assert!(next.chain.len() <= d.chain.len(), "{:?} -> {:?}", d.chain, next.chain);
            let mut rest = d.chain.iter();
            prop_assert!(
                next.chain.iter().all(|m| rest.any(|n| n == m)),
                "not a subsequence: {:?} -> {:?}", d.chain, next.chain
            );
            if let Failed::Encryption { method, .. } = &failed {
                prop_assert!(!next.chain.contains(method));
            }
            verification_failed |= verified;
            if verification_failed {
                prop_assert!(!next.chain.contains(&Method::TlsOpportunistic), "{:?}", next.chain);
                prop_assert!(!next.chain.contains(&Method::TlsVerified), "{:?}", next.chain);
            }
            if kind == 1 {
                prop_assert!(!next.chain.contains(&Method::TlsOpportunistic), "{:?}", next.chain);
                prop_assert!(!next.chain.contains(&Method::TlsAuthenticated), "{:?}", next.chain);
            }
            prop_assert_eq!(next.level, first.level);
            if next.level == Level::Required && !msg.phi_free {
                prop_assert!(next.chain.iter().all(|m| m.protects()), "{:?}", next.chain);
                // A method the org does not count as protection is never chosen.
                prop_assert!(
                    next.chain.iter().all(|m| rules.satisfies_required(*m)),
                    "{:?} with protecting {:?}", next.chain, rules.protecting
                );
            }
            prop_assert!(first.chain.contains(&next.chosen()));
            prop_assert!(allowed.contains(&next.chosen()), "{:?} not allowed: {:?}", next.chosen(), rules.preference);
            prop_assert_eq!(next.evidence.len(), d.evidence.len() + 1);
            d = next;
        }
    }
}

proptest! {
    /// An operator's rule that forces an end-to-end method without a chain of its own marks
    /// the recipient "end-to-end only": its chain holds no transport-only method, so no
    /// sequence of failures can reach one. A rule's own chain bounds what can be chosen.
    #[test]
    fn operator_rules_bound_the_chain(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        prop_assume!(!msg.phi_free);
        let d = decide(&rules, ADDR, &dom, &rcpt, &msg.facts());
        let addr = rules.address_override(ADDR);
        let domain = rules.domain_override("clinic.example");
        let by_rule = matches!(
            d.forced,
            Some((_, Source::AddressOverride | Source::DomainOverride))
        );
        let override_chain = addr
            .and_then(|o| o.chain.clone())
            .or_else(|| domain.and_then(|o| o.chain.clone()));
        // The content triggers' chain, when one of them required protection and no rule forced.
        let content_chain = (msg.content_level() == Some(Level::Required) && !by_rule)
            .then(|| rules.content.chain.clone())
            .flatten();
        let own_chain = override_chain.clone().or(content_chain);
        if let Some((m, _)) = d.forced
            && by_rule
            && override_chain.is_none()
            && !m.transport_only()
        {
            prop_assert!(
                d.chain.iter().all(|c| !c.transport_only()),
                "{:?} forced by a rule, chain {:?}", m, d.chain
            );
        }
        if let Some(own) = own_chain {
            let forced = d.forced.map(|(m, _)| m);
            prop_assert!(
                d.chain
                    .iter()
                    .all(|c| own.contains(c) || *c == Method::Portal || Some(*c) == forced),
                "own chain {:?}, decided {:?}", own, d.chain
            );
        }
    }
}

proptest! {
    /// Delivery looks up only the keys [`crate::Prepared::keys_that_matter`] names and decides once:
    /// that never misses the key of the method that would be chosen, and the choice is the
    /// same as if every key were known.
    #[test]
    fn looking_up_only_the_keys_that_matter_chooses_the_same(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        let facts = msg.facts();
        let want = crate::prepare(&rules, ADDR, &dom, &facts).keys_that_matter();
        let knowing_all = decide(&rules, ADDR, &dom, &rcpt, &facts);
        match knowing_all.chosen() {
            Method::Pgp => prop_assert!(want.pgp),
            Method::Smime => prop_assert!(want.smime),
            _ => {}
        }
        let looked_up = RecipientEvidence {
            pgp: if want.pgp { rcpt.pgp.clone() } else { Credential::Absent },
            smime: if want.smime { rcpt.smime.clone() } else { Credential::Absent },
        };
        let once = decide(&rules, ADDR, &dom, &looked_up, &facts);
        prop_assert_eq!(once.chosen(), knowing_all.chosen());
        prop_assert_eq!(once.level, knowing_all.level);
    }
}

proptest! {
    /// `tls-authenticated` never goes ahead of `tls-verified`, and never serves a domain that
    /// shows verified TLS (or a pin), or once did, unless the operator allowed it
    /// (`authenticated_after_verified`); REQUIRETLS never goes by it. A method the org does not
    /// count as protection is never in a required chain.
    #[test]
    fn authenticated_tls_never_replaces_verified_tls_unless_allowed(
        rules in rules(),
        dom in domain_evidence(),
        rcpt in recipient_evidence(),
        msg in generated(),
    ) {
        let d = decide(&rules, ADDR, &dom, &rcpt, &msg.facts());
        let at = |m| d.chain.iter().position(|x| *x == m);
        if let (Some(a), Some(v)) = (at(Method::TlsAuthenticated), at(Method::TlsVerified)) {
            prop_assert!(v < a, "{:?}", d.chain);
        }
        let pinned = !d.pins.is_empty();
        if !rules.authenticated_after_verified
            && (dom.shows_verified_tls() || dom.seen_verified_before || pinned)
        {
            prop_assert!(!d.chain.contains(&Method::TlsAuthenticated), "{:?} {:?}", dom, d.chain);
        }
        if msg.requiretls {
            prop_assert!(!d.chain.contains(&Method::TlsAuthenticated), "{:?}", d.chain);
        }
        if d.level == Level::Required && !msg.phi_free {
            prop_assert!(
                d.chain.iter().all(|m| rules.satisfies_required(*m)),
                "{:?} with protecting {:?}", d.chain, rules.protecting
            );
        }
    }
}
