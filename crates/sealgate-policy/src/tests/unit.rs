use super::*;
use crate::{Decision, Level, Method, Override, Source, Unusable, decide};

const BOB: &str = "bob@example.com";

fn rcpt_none() -> RecipientEvidence {
    RecipientEvidence::default()
}

/// An address rule forcing pgp for [`BOB`] (the preference before tls-authenticated).
fn bob_forced_pgp() -> Rules {
    Rules {
        addresses: vec![Override {
            key: BOB.to_owned(),
            method: Some(Method::Pgp),
            ..Override::default()
        }],
        ..classic()
    }
}

/// A recipient whose only key, an OpenPGP one, is revoked.
fn revoked_pgp() -> RecipientEvidence {
    RecipientEvidence {
        pgp: Credential::Unusable {
            fingerprint: "BBBB2222".to_owned(),
            reason: Unusable::Revoked,
        },
        smime: Credential::Absent,
    }
}

#[test]
fn dane_domain_under_default_rules_chooses_tls_verified_and_explains_why() {
    let d = decide(
        &classic(),
        BOB,
        &dane_domain(),
        &rcpt_none(),
        &plain_message(),
    );
    assert_eq!(d.level, Level::Required);
    assert_eq!(d.level_source, Source::Default);
    assert_eq!(d.chosen(), Method::TlsVerified);
    assert_eq!(d.chain, vec![Method::TlsVerified, Method::Portal]);
    assert_eq!(
        d.explain(),
        "recipient: bob@example.com (domain example.com)\n\
         level: required (org default)\n\
         dane: valid (DNSSEC-secure usable TLSA)\n\
         mta-sts: none\n\
         pins: 0\n\
         starttls: seen\n\
         verified tls seen before: no\n\
         pgp key: none found\n\
         smime certificate: none found\n\
         skip pgp: no usable OpenPGP key: none found\n\
         skip smime: no usable S/MIME certificate: none found\n\
         chain: tls-verified > portal\n"
    );
    assert!(d.alerts.is_empty());
}

#[test]
fn unsigned_zone_without_mta_sts_falls_to_pgp_and_says_why_tls_was_skipped() {
    let d = decide(
        &classic(),
        BOB,
        &plain_domain(),
        &pgp_recipient(),
        &plain_message(),
    );
    assert_eq!(d.chain, vec![Method::Pgp, Method::Portal]);
    assert!(d.evidence.contains(
        &"skip tls-verified: no DANE (dane insecure), no MTA-STS enforce (mta-sts none), no pin"
            .to_owned()
    ));
    assert!(
        d.evidence
            .contains(&"pgp key: usable (AAAA1111)".to_owned())
    );
}

#[test]
fn nothing_available_and_protection_required_resolves_to_the_portal_alone() {
    let d = decide(
        &classic(),
        BOB,
        &DomainEvidence::default(),
        &rcpt_none(),
        &plain_message(),
    );
    assert_eq!(d.chain, vec![Method::Portal]);
    assert_eq!(d.chosen(), Method::Portal);
}

#[test]
fn mta_sts_testing_mode_does_not_count_as_verified_tls() {
    let dom = DomainEvidence {
        mta_sts: MtaStsMode::Testing,
        ..plain_domain()
    };
    let d = decide(&classic(), BOB, &dom, &rcpt_none(), &plain_message());
    assert_eq!(d.chain, vec![Method::Portal]);
    let enforce = DomainEvidence {
        mta_sts: MtaStsMode::Enforce,
        ..plain_domain()
    };
    let d = decide(&classic(), BOB, &enforce, &rcpt_none(), &plain_message());
    assert_eq!(d.chosen(), Method::TlsVerified);
}

#[test]
fn unusable_tlsa_records_do_not_count_as_verified_tls_and_the_evidence_says_tls_is_mandatory() {
    let dom = DomainEvidence {
        dane: DaneStatus::Unusable,
        ..plain_domain()
    };
    let mandatory = "dane: unusable (DNSSEC-secure TLSA, none usable: STARTTLS mandatory \
                     without authentication, RFC 7672 §2.2; not verified TLS)";
    let protected = decide(&classic(), BOB, &dom, &rcpt_none(), &plain_message());
    assert_eq!(protected.chain, vec![Method::Portal]);
    assert!(
        protected.evidence.contains(
            &"skip tls-verified: no DANE (dane unusable), no MTA-STS enforce (mta-sts none), \
              no pin"
                .to_owned()
        ),
        "{:?}",
        protected.evidence
    );
    assert!(protected.evidence.contains(&mandatory.to_owned()));
    for (rules, facts) in [
        (rules_none(), plain_message()),
        (
            classic(),
            MessageFacts {
                phi_free: true,
                ..plain_message()
            },
        ),
    ] {
        let d = decide(&rules, BOB, &dom, &rcpt_none(), &facts);
        assert_eq!(d.chosen(), Method::TlsOpportunistic, "{d:?}");
        assert!(d.evidence.contains(&mandatory.to_owned()), "{d:?}");
    }
    assert!(!dom.shows_verified_tls());
}

#[test]
fn level_none_puts_opportunistic_tls_right_after_verified_tls() {
    let d = decide(
        &rules_none(),
        BOB,
        &dane_domain(),
        &rcpt_none(),
        &plain_message(),
    );
    assert_eq!(d.level, Level::None);
    assert_eq!(
        d.chain,
        vec![
            Method::TlsVerified,
            Method::TlsOpportunistic,
            Method::Portal
        ]
    );
}

#[test]
fn level_none_without_verified_tls_starts_with_opportunistic_tls() {
    let d = decide(
        &rules_none(),
        BOB,
        &plain_domain(),
        &pgp_recipient(),
        &plain_message(),
    );
    assert_eq!(
        d.chain,
        vec![Method::TlsOpportunistic, Method::Pgp, Method::Portal]
    );
}

#[test]
fn subject_tag_in_any_case_requires_protection_and_is_marked_for_removal() {
    let msg = message("Lab results [SECURE]", &[], "x");
    let d = decide(&rules_none(), BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(d.level, Level::Required);
    assert_eq!(d.level_source, Source::ContentTrigger);
    assert_eq!(d.subject_tag_to_remove.as_deref(), Some("[SECURE]"));
    assert!(d.evidence.contains(
        &"content: subject tag \"[SECURE]\" requires protection; removed before sending".to_owned()
    ));
    assert!(!d.chain.contains(&Method::TlsOpportunistic));
}

#[test]
fn security_header_none_lowers_the_default_when_nothing_else_requires_protection() {
    let msg = message("hi", &[("x-sealgate-security", " None ")], "x");
    let d = decide(&classic(), BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(d.level, Level::None);
    assert_eq!(d.level_source, Source::ContentTrigger);
    assert_eq!(d.strip_headers, vec!["X-Sealgate-Security".to_owned()]);
    assert_eq!(d.chosen(), Method::TlsOpportunistic);
}

#[test]
fn security_header_none_is_ignored_when_a_dlp_pattern_matches() {
    let msg = message(
        "hi",
        &[("X-Sealgate-Security", "none")],
        "patient SSN 123-45-6789 attached",
    );
    let d = decide(&classic(), BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(d.level, Level::Required);
    let text = d.explain();
    assert!(text.contains("content: dlp pattern us-ssn matched the body; protection required\n"));
    assert!(text.contains(
        "content: X-Sealgate-Security: none ignored: another content trigger requires protection\n"
    ));
    assert!(!text.contains("123-45-6789"), "matched text leaked: {text}");
}

#[test]
fn mrn_pattern_configured_by_the_operator_raises_the_level() {
    let mut rules = rules_none();
    rules.content.dlp.push(crate::DlpPattern::mrn());
    let msg = message("hi", &[], "MRN: 0012345678");
    let d = decide(&rules, BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(d.level, Level::Required);
    assert!(d.explain().contains("dlp pattern mrn matched"));
}

#[test]
fn security_header_naming_a_method_forces_it_first() {
    let msg = message("hi", &[("X-Sealgate-Security", "pgp")], "x");
    let d = decide(&classic(), BOB, &dane_domain(), &pgp_recipient(), &msg);
    assert_eq!(d.forced, Some((Method::Pgp, Source::ContentTrigger)));
    assert_eq!(
        d.chain,
        vec![Method::Pgp, Method::TlsVerified, Method::Portal]
    );
    assert_eq!(d.level, Level::Required);
}

#[test]
fn security_header_with_an_unrecognised_value_reads_as_required() {
    let msg = message("hi", &[("X-Sealgate-Security", "tls-opportunistic")], "x");
    let d = decide(&rules_none(), BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(d.level, Level::Required);
    assert_eq!(d.forced, None);
    assert!(d.explain().contains("not recognised; read as required"));
}

#[test]
fn forced_pgp_with_a_revoked_key_falls_back_along_the_chain_and_says_so() {
    let rules = bob_forced_pgp();
    let rcpt = revoked_pgp();
    let d = decide(&rules, BOB, &plain_domain(), &rcpt, &plain_message());
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(d.evidence.contains(
        &"skip pgp: forced but unavailable: no usable OpenPGP key: revoked (BBBB2222); falling back"
            .to_owned()
    ));
}

#[test]
fn forced_opportunistic_tls_is_refused_when_protection_is_required() {
    let rules = Rules {
        domains: vec![Override {
            key: "example.com".to_owned(),
            method: Some(Method::TlsOpportunistic),
            ..Override::default()
        }],
        ..classic()
    };
    let d = decide(&rules, BOB, &plain_domain(), &rcpt_none(), &plain_message());
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(d.explain().contains(
        "skip tls-opportunistic: forced but unavailable: protection is required; falling back"
    ));
}

#[test]
fn operator_pin_makes_tls_verified_available_without_dane_or_mta_sts() {
    let rules = Rules {
        domains: vec![Override {
            key: "Example.COM".to_owned(),
            method: Some(Method::TlsVerified),
            pins: vec!["AB12".to_owned(), "ab12".to_owned()],
            ..Override::default()
        }],
        ..classic()
    };
    let d = decide(
        &rules,
        "bob@example.com.",
        &plain_domain(),
        &rcpt_none(),
        &plain_message(),
    );
    assert_eq!(
        d.forced,
        Some((Method::TlsVerified, Source::DomainOverride))
    );
    assert_eq!(d.chosen(), Method::TlsVerified);
    assert_eq!(d.pins, vec!["ab12".to_owned()]);
    assert!(d.evidence.contains(&"pins: 1".to_owned()));
}

#[test]
fn downgrade_memory_withholds_tls_verified_and_raises_an_alert() {
    let dom = DomainEvidence {
        seen_verified_before: true,
        ..plain_domain()
    };
    let d = decide(&classic(), BOB, &dom, &pgp_recipient(), &plain_message());
    assert_eq!(d.chain, vec![Method::Pgp, Method::Portal]);
    assert_eq!(
        d.alerts,
        vec![
            "downgrade: example.com was seen with verified TLS and now shows none \
             (dane insecure, mta-sts none); tls-verified withheld"
                .to_owned()
        ]
    );
    assert!(d.evidence.contains(
        &"skip tls-verified: possible downgrade: verified TLS seen before, now dane insecure and mta-sts none"
            .to_owned()
    ));
}

#[test]
fn downgrade_memory_is_quiet_while_the_domain_still_shows_verified_tls() {
    let dom = DomainEvidence {
        seen_verified_before: true,
        ..dane_domain()
    };
    let d = decide(&classic(), BOB, &dom, &rcpt_none(), &plain_message());
    assert!(d.alerts.is_empty());
    assert_eq!(d.chosen(), Method::TlsVerified);
}

#[test]
fn bogus_dnssec_withholds_every_tls_method_and_raises_an_alert() {
    let dom = DomainEvidence {
        dane: DaneStatus::Bogus,
        mta_sts: MtaStsMode::Enforce,
        ..DomainEvidence::default()
    };
    let d = decide(&rules_none(), BOB, &dom, &rcpt_none(), &plain_message());
    assert_eq!(d.chain, vec![Method::Portal]);
    assert_eq!(d.alerts.len(), 1);
    assert!(d.alerts[0].starts_with("dnssec bogus:"));
}

#[test]
fn tls_required_no_header_does_not_lower_a_required_level() {
    let msg = message("hi", &[("TLS-Required", "No")], "x");
    let d = decide(&classic(), BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(d.level, Level::Required);
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(
        d.evidence
            .contains(&"content: TLS-Required: No ignored: protection is required".to_owned())
    );
}

#[test]
fn address_override_beats_domain_override_which_beats_the_subject_tag() {
    let mut rules = Rules {
        domains: vec![Override {
            key: "example.com".to_owned(),
            level: Some(Level::None),
            method: Some(Method::Portal),
            ..Override::default()
        }],
        ..classic()
    };
    let msg = message("[secure] hi", &[], "x");
    let d = decide(&rules, BOB, &dane_domain(), &rcpt_none(), &msg);
    assert_eq!(
        (d.level, d.level_source),
        (Level::None, Source::DomainOverride)
    );
    assert_eq!(d.chain, vec![Method::Portal]);
    rules.addresses.push(Override {
        key: "BOB@example.com".to_owned(),
        level: Some(Level::Required),
        method: Some(Method::TlsVerified),
        ..Override::default()
    });
    let d = decide(&rules, BOB, &dane_domain(), &rcpt_none(), &msg);
    assert_eq!(
        (d.level, d.level_source),
        (Level::Required, Source::AddressOverride)
    );
    assert_eq!(
        d.forced,
        Some((Method::TlsVerified, Source::AddressOverride))
    );
    assert_eq!(d.chain, vec![Method::TlsVerified, Method::Portal]);
}

#[test]
fn preference_without_portal_gets_it_appended_and_nothing_follows_the_portal() {
    let rules = Rules {
        preference: vec![Method::Pgp],
        ..classic()
    };
    let d = decide(
        &rules,
        BOB,
        &dane_domain(),
        &pgp_recipient(),
        &plain_message(),
    );
    assert_eq!(d.chain, vec![Method::Pgp, Method::Portal]);
    assert!(
        d.evidence
            .contains(&"portal: appended, the portal always works".to_owned())
    );
    let rules = Rules {
        preference: vec![Method::Portal, Method::TlsVerified],
        ..classic()
    };
    let d = decide(&rules, BOB, &dane_domain(), &rcpt_none(), &plain_message());
    assert_eq!(d.chain, vec![Method::Portal]);
}

#[test]
fn forced_portal_at_level_none_stays_alone() {
    let rules = Rules {
        domains: vec![Override {
            key: "gmail.com".to_owned(),
            method: Some(Method::Portal),
            ..Override::default()
        }],
        ..rules_none()
    };
    let d = decide(
        &rules,
        "x@gmail.com",
        &dane_domain(),
        &rcpt_none(),
        &plain_message(),
    );
    assert_eq!(d.chain, vec![Method::Portal]);
}

#[test]
fn smime_is_chosen_when_only_a_certificate_is_usable() {
    let rcpt = RecipientEvidence {
        pgp: Credential::Unusable {
            fingerprint: "CC".to_owned(),
            reason: Unusable::SigningOnly,
        },
        smime: Credential::Usable {
            fingerprint: "DD".to_owned(),
        },
    };
    let d = decide(&classic(), BOB, &plain_domain(), &rcpt, &plain_message());
    assert_eq!(d.chain, vec![Method::Smime, Method::Portal]);
    assert!(
        d.explain()
            .contains("skip pgp: no usable OpenPGP key: signing-only (CC)\n")
    );
}

#[test]
fn decision_serializes_for_the_audit_log() {
    let d = decide(
        &classic(),
        BOB,
        &dane_domain(),
        &rcpt_none(),
        &plain_message(),
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["level"], "required");
    assert_eq!(json["level_source"], "default");
    assert_eq!(json["chain"][0], "tls-verified");
}

#[test]
fn requiretls_raises_the_level_above_every_rule_and_keeps_opportunistic_tls_out() {
    let mut rules = rules_none();
    rules.addresses.push(Override {
        key: BOB.to_owned(),
        level: Some(Level::None),
        ..Override::default()
    });
    let mut msg = plain_message();
    let open = decide(&rules, BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(open.level, Level::None);
    assert!(open.chain.contains(&Method::TlsOpportunistic));

    msg.requiretls = true;
    let d = decide(&rules, BOB, &plain_domain(), &rcpt_none(), &msg);
    assert_eq!(
        (d.level, d.level_source),
        (Level::Required, Source::Requiretls)
    );
    assert!(
        !d.chain.contains(&Method::TlsOpportunistic),
        "{:?}",
        d.chain
    );
    assert!(
        d.evidence
            .contains(&"level: required (REQUIRETLS (RFC 8689))".to_owned()),
        "{}",
        d.explain()
    );
    assert!(d.evidence.iter().any(|l| l.starts_with("requiretls: ")));
}

fn decided(level: Level, chain: &[Method]) -> Decision {
    Decision {
        level,
        level_source: Source::Default,
        forced: None,
        chain: chain.to_vec(),
        pins: Vec::new(),
        evidence: vec!["probe".to_owned()],
        alerts: Vec::new(),
        strip_headers: Vec::new(),
        subject_tag_to_remove: None,
    }
}

#[test]
fn a_failed_verification_falls_past_every_tls_method_and_says_where() {
    use Method::*;
    let d = decided(Level::Required, &[TlsVerified, Pgp, Portal]);
    let why = "no MX host passed DANE".to_owned();
    let next = d
        .after(&crate::Failed::VerifiedTls { why })
        .expect("pgp is left");
    assert_eq!(next.chain, [Pgp, Portal]);
    assert_eq!(
        next.evidence.last().map(String::as_str),
        Some("tls-verified failed: no MX host passed DANE; falls to the next method: pgp")
    );
    assert_eq!(
        d.chain,
        [TlsVerified, Pgp, Portal],
        "the decision itself is unchanged"
    );
    // At level none the chain may hold opportunistic TLS, but never as the fallback of a
    // failed verification: nothing is left, the recipient waits.
    let open = decided(Level::None, &[TlsVerified, TlsOpportunistic]);
    let failed = crate::Failed::VerifiedTls { why: "x".into() };
    assert_eq!(open.after(&failed), None);
}

#[test]
fn a_failed_encryption_drops_that_method_only() {
    use Method::*;
    let d = decided(Level::Required, &[Pgp, Smime, Portal]);
    let failed = crate::Failed::Encryption {
        method: Pgp,
        why: "pgp failed: key expired".into(),
    };
    let next = d.after(&failed).expect("smime is left");
    assert_eq!(next.chain, [Smime, Portal]);
    assert_eq!(
        next.evidence.last().map(String::as_str),
        Some("pgp failed: key expired; falls to the next method: smime")
    );
}

#[test]
fn an_address_rule_forcing_pgp_never_falls_to_a_transport_only_method() {
    let rules = bob_forced_pgp();
    let revoked = revoked_pgp();
    // Verified TLS would be available (DANE), but the operator marked bob end-to-end only.
    let d = decide(&rules, BOB, &dane_domain(), &revoked, &plain_message());
    assert_eq!(d.chain, vec![Method::Portal]);
    assert!(
        d.evidence.iter().any(|l| l
            == "order: pgp > smime > portal (forced end-to-end method: no transport-only method follows it)"),
        "{}",
        d.explain()
    );
    // With a usable key pgp leads, and only end-to-end methods follow.
    let d = decide(
        &rules,
        BOB,
        &dane_domain(),
        &pgp_recipient(),
        &plain_message(),
    );
    assert_eq!(d.chain, vec![Method::Pgp, Method::Portal]);
}

#[test]
fn a_rules_own_chain_replaces_the_preference_and_the_portal_closes_it() {
    let rules = Rules {
        domains: vec![Override {
            key: "example.com".to_owned(),
            chain: Some(vec![Method::Smime, Method::TlsVerified]),
            ..Override::default()
        }],
        ..rules_none()
    };
    // Level none, DANE: no S/MIME certificate, so verified TLS; opportunistic TLS is not
    // added to an explicit chain.
    let d = decide(&rules, BOB, &dane_domain(), &rcpt_none(), &plain_message());
    assert_eq!(d.chain, vec![Method::TlsVerified, Method::Portal]);
    assert!(
        d.explain()
            .contains("order: smime > tls-verified (the rule's own chain)")
    );
    let shown = rules.effective_chains();
    assert_eq!(
        shown[1],
        (
            "domain example.com".to_owned(),
            vec![Method::Smime, Method::TlsVerified, Method::Portal],
            "the rule's own chain"
        )
    );
    let bad = Rules {
        addresses: vec![Override {
            key: BOB.to_owned(),
            chain: Some(vec![Method::Pgp, Method::Pgp]),
            ..Override::default()
        }],
        ..classic()
    };
    assert!(
        bad.validate().iter().any(|e| e
            .to_string()
            .contains("chain must name at least one method, each once")),
        "{:?}",
        bad.validate()
    );
}
