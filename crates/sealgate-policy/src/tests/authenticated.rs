//! `tls-authenticated` under today's default rules: where it is chosen, where it is withheld
//! (verified TLS offered or once seen, REQUIRETLS, DNSSEC bogus, not in `protecting`), and
//! where the walk goes when it fails at connect time.

use super::*;
use crate::{Decision, Failed, Level, Method, Override, PolicyError, decide};

const BOB: &str = "bob@example.com";

/// The decision for [`BOB`] under `rules`, with no key and a message without triggers.
fn decide_plain(rules: &Rules, dom: &DomainEvidence) -> Decision {
    decide(
        rules,
        BOB,
        dom,
        &RecipientEvidence::default(),
        &plain_message(),
    )
}

fn default_decision(dom: &DomainEvidence) -> Decision {
    decide_plain(&Rules::default(), dom)
}

fn allowing() -> Rules {
    Rules {
        authenticated_after_verified: true,
        ..Rules::default()
    }
}

#[test]
fn a_domain_without_dane_or_mta_sts_gets_authenticated_tls_before_the_portal() {
    let d = default_decision(&plain_domain());
    assert_eq!(d.level, Level::Required);
    assert_eq!(d.chain, vec![Method::TlsAuthenticated, Method::Portal]);
    assert!(d.evidence.contains(
        &"skip tls-verified: no DANE (dane insecure), no MTA-STS enforce (mta-sts none), no pin"
            .to_owned()
    ));
    assert!(
        d.evidence
            .contains(&"skip pgp: no usable OpenPGP key: none found".to_owned())
    );
    assert!(d.alerts.is_empty());
}

#[test]
fn a_usable_key_still_comes_before_authenticated_tls() {
    let d = decide(
        &Rules::default(),
        BOB,
        &plain_domain(),
        &pgp_recipient(),
        &plain_message(),
    );
    assert_eq!(
        d.chain,
        vec![Method::Pgp, Method::TlsAuthenticated, Method::Portal]
    );
}

#[test]
fn a_domain_with_verified_tls_is_not_given_authenticated_tls_unless_allowed() {
    for dom in [
        dane_domain(),
        DomainEvidence {
            mta_sts: MtaStsMode::Enforce,
            ..plain_domain()
        },
    ] {
        let d = default_decision(&dom);
        assert_eq!(
            d.chain,
            vec![Method::TlsVerified, Method::Portal],
            "{dom:?}"
        );
        assert!(
            d.evidence.iter().any(|e| e.starts_with(
                "skip tls-authenticated: the domain offers verified TLS; authenticated TLS is \
                 not its fallback"
            )),
            "{:?}",
            d.evidence
        );
        // After verified TLS fails, the portal: never authenticated or opportunistic TLS.
        let next = d
            .after(&Failed::VerifiedTls {
                why: "TLSA mismatch".into(),
            })
            .map(|n| n.chain);
        assert_eq!(next, Some(vec![Method::Portal]));

        let allowed = decide(
            &allowing(),
            BOB,
            &dom,
            &RecipientEvidence::default(),
            &plain_message(),
        );
        assert_eq!(
            allowed.chain,
            vec![
                Method::TlsVerified,
                Method::TlsAuthenticated,
                Method::Portal
            ]
        );
        let next = allowed
            .after(&Failed::VerifiedTls {
                why: "TLSA mismatch".into(),
            })
            .map(|n| n.chain);
        assert_eq!(
            next,
            Some(vec![Method::TlsAuthenticated, Method::Portal]),
            "allowed: authenticated TLS is the fallback of failed verification"
        );
    }
}

#[test]
fn a_pinned_domain_is_not_given_authenticated_tls_unless_allowed() {
    let rules = Rules {
        domains: vec![Override {
            key: "example.com".into(),
            pins: vec!["ab12".into()],
            ..Override::default()
        }],
        ..Rules::default()
    };
    let d = decide_plain(&rules, &plain_domain());
    assert_eq!(d.chain, vec![Method::TlsVerified, Method::Portal]);
}

#[test]
fn downgrade_memory_withholds_authenticated_tls_and_raises_the_alert() {
    let dom = DomainEvidence {
        seen_verified_before: true,
        ..plain_domain()
    };
    let d = default_decision(&dom);
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(
        d.evidence.iter().any(|e| e
            .starts_with("skip tls-authenticated: possible downgrade: verified TLS seen before")),
        "{:?}",
        d.evidence
    );
    assert_eq!(d.alerts.len(), 1, "{:?}", d.alerts);
    assert!(d.alerts[0].starts_with("downgrade: example.com was seen with verified TLS"));

    // Allowed by the operator: authenticated TLS, and still the alert (never silent).
    let allowed = decide(
        &allowing(),
        BOB,
        &dom,
        &RecipientEvidence::default(),
        &plain_message(),
    );
    assert_eq!(
        allowed.chain,
        vec![Method::TlsAuthenticated, Method::Portal]
    );
    assert_eq!(allowed.alerts, d.alerts);
}

#[test]
fn requiretls_bogus_dnssec_and_the_protecting_list_rule_it_out() {
    let requiretls = MessageFacts {
        requiretls: true,
        ..plain_message()
    };
    let d = decide(
        &Rules::default(),
        BOB,
        &plain_domain(),
        &RecipientEvidence::default(),
        &requiretls,
    );
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(d.evidence.iter().any(|e| {
        e.starts_with("skip tls-authenticated: REQUIRETLS asks for an MX found securely")
    }));

    let bogus = DomainEvidence {
        dane: DaneStatus::Bogus,
        ..plain_domain()
    };
    assert_eq!(default_decision(&bogus).chain, vec![Method::Portal]);

    let strict = Rules {
        protecting: vec![Method::TlsVerified, Method::Pgp, Method::Portal],
        ..Rules::default()
    };
    let d = decide_plain(&strict, &plain_domain());
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(
        d.evidence.contains(
            &"skip tls-authenticated: does not satisfy protection level required here \
          ([policy] protecting)"
                .to_owned()
        )
    );
    // At level none the protecting list does not apply.
    let none = Rules {
        default_level: Level::None,
        ..strict
    };
    let d = decide_plain(&none, &plain_domain());
    assert_eq!(
        d.chain,
        vec![
            Method::TlsOpportunistic,
            Method::TlsAuthenticated,
            Method::Portal
        ]
    );
}

#[test]
fn after_authenticated_tls_fails_the_recipient_goes_on_never_to_opportunistic_tls() {
    let d = default_decision(&plain_domain());
    let next = d
        .after(&Failed::AuthenticatedTls {
            why: "mx.example.com: certificate expired".into(),
        })
        .expect("the portal is left");
    assert_eq!(next.chain, vec![Method::Portal]);
    assert_eq!(
        next.evidence.last().map(String::as_str),
        Some(
            "tls-authenticated failed: mx.example.com: certificate expired; falls to the next \
             method: portal"
        )
    );
    // At level none as well: a failed authentication is not answered by plaintext.
    let none = Rules {
        default_level: Level::None,
        preference: vec![Method::TlsAuthenticated, Method::Portal],
        domains: vec![Override {
            key: "example.com".into(),
            chain: Some(vec![
                Method::TlsAuthenticated,
                Method::TlsOpportunistic,
                Method::Portal,
            ]),
            ..Override::default()
        }],
        ..Rules::default()
    };
    let d = decide_plain(&none, &plain_domain());
    assert_eq!(
        d.chain,
        vec![
            Method::TlsAuthenticated,
            Method::TlsOpportunistic,
            Method::Portal
        ]
    );
    let next = d.after(&Failed::AuthenticatedTls { why: "x".into() });
    assert_eq!(next.map(|n| n.chain), Some(vec![Method::Portal]));
}

#[test]
fn authenticated_tls_never_goes_ahead_of_verified_tls_even_when_forced() {
    let rules = Rules {
        authenticated_after_verified: true,
        domains: vec![Override {
            key: "example.com".into(),
            method: Some(Method::TlsAuthenticated),
            ..Override::default()
        }],
        ..Rules::default()
    };
    let d = decide_plain(&rules, &dane_domain());
    assert_eq!(d.chain, vec![Method::TlsVerified, Method::Portal]);
    assert!(
        d.evidence.contains(
            &"skip tls-authenticated: forced but unavailable: the domain offers verified TLS, \
          which comes first; falling back"
                .to_owned()
        )
    );
    // Not forced, it follows verified TLS as the allowed fallback.
    let rules = Rules {
        preference: vec![
            Method::TlsAuthenticated,
            Method::TlsVerified,
            Method::Portal,
        ],
        ..allowing()
    };
    let d = decide_plain(&rules, &dane_domain());
    assert_eq!(
        d.chain,
        vec![
            Method::TlsVerified,
            Method::TlsAuthenticated,
            Method::Portal
        ]
    );
}

#[test]
fn configuration_errors_name_the_problem() {
    let rules: Rules = toml::from_str(
        r#"
        preference = ["tls-authenticated", "tls-verified", "portal"]
        protecting = ["tls-opportunistic", "tls-verified"]
        [[domains]]
        key = "lab.example"
        chain = ["tls-authenticated", "tls-verified"]
        "#,
    )
    .expect("parses");
    let errors: Vec<String> = rules.validate().iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        vec![
            "protecting: tls-opportunistic never satisfies protection level required",
            "protecting: the portal must be listed: it closes every chain and always satisfies \
             protection level required",
            "preference: tls-authenticated must come after tls-verified (authenticated TLS is \
             never preferred to verified TLS)",
            "domain override \"lab.example\": tls-authenticated must come after tls-verified \
             (authenticated TLS is never preferred to verified TLS)",
        ]
    );
    assert!(matches!(
        "tls-authenticated".parse::<Method>(),
        Ok(Method::TlsAuthenticated)
    ));
    assert!(matches!(
        "tls-authentic".parse::<Method>(),
        Err(PolicyError::UnknownMethod(_))
    ));
    assert!(Rules::default().validate().is_empty());
}

#[test]
fn a_content_trigger_gives_its_own_chain_below_the_operators_rules() {
    let mut rules = Rules::default();
    rules.content.chain = Some(vec![Method::Pgp, Method::Portal]);
    let tagged = message("[secure] results", &[], "nothing sensitive");
    // A subject tag fired: the content chain replaces the preference (no TLS-only copy).
    let d = decide(&rules, BOB, &plain_domain(), &pgp_recipient(), &tagged);
    assert_eq!(d.chain, vec![Method::Pgp, Method::Portal]);
    assert!(
        d.evidence
            .contains(&"order: pgp > portal (the rule's own chain)".to_owned()),
        "{:?}",
        d.evidence
    );
    // No trigger fired: the preference.
    let d = decide(
        &rules,
        BOB,
        &plain_domain(),
        &pgp_recipient(),
        &plain_message(),
    );
    assert_eq!(
        d.chain,
        vec![Method::Pgp, Method::TlsAuthenticated, Method::Portal]
    );
    // A domain rule's chain beats it.
    rules.domains.push(Override {
        key: "example.com".into(),
        chain: Some(vec![Method::Smime, Method::TlsAuthenticated]),
        ..Override::default()
    });
    let d = decide(&rules, BOB, &plain_domain(), &pgp_recipient(), &tagged);
    assert_eq!(d.chain, vec![Method::TlsAuthenticated, Method::Portal]);
    // Shown by config check, and refused when it repeats a method.
    assert!(
        rules
            .effective_chains()
            .iter()
            .any(|(rule, chain, _)| rule == "content triggers"
                && *chain == [Method::Pgp, Method::Portal])
    );
    rules.content.chain = Some(vec![Method::Pgp, Method::Pgp]);
    let errors: Vec<String> = rules.validate().iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        vec!["content chain must name at least one method, each once"]
    );
}
