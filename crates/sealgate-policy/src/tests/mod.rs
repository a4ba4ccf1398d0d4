//! Unit tests of `decide` (rules and evidence explanations) and property tests of its
//! invariants.

mod authenticated;
mod phi_free;
mod props;
mod routes;
mod unit;

use crate::{
    Credential, DaneStatus, DomainEvidence, MessageFacts, MtaStsMode, RecipientEvidence, Rules,
};

/// A domain with DANE-valid TLS.
fn dane_domain() -> DomainEvidence {
    DomainEvidence {
        dane: DaneStatus::Valid,
        mta_sts: MtaStsMode::None,
        starttls_seen: true,
        ..DomainEvidence::default()
    }
}

/// A domain with no verified TLS: unsigned zone, no MTA-STS.
fn plain_domain() -> DomainEvidence {
    DomainEvidence {
        dane: DaneStatus::Insecure,
        mta_sts: MtaStsMode::None,
        starttls_seen: true,
        ..DomainEvidence::default()
    }
}

fn pgp_recipient() -> RecipientEvidence {
    RecipientEvidence {
        pgp: Credential::Usable {
            fingerprint: "AAAA1111".to_owned(),
        },
        smime: Credential::Absent,
    }
}

fn message(subject: &str, headers: &[(&str, &str)], body: &str) -> MessageFacts {
    MessageFacts {
        subject: subject.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body_sample: body.to_owned(),
        requiretls: false,
        phi_free: false,
    }
}

fn plain_message() -> MessageFacts {
    message("hello", &[], "nothing sensitive")
}

/// The default rules of the releases before `tls-authenticated` (#12): its preference
/// without that method. The unit tests of DANE, MTA-STS, keys and content triggers were
/// written against it and keep their assertions; `authenticated.rs` tests today's default.
fn classic() -> Rules {
    Rules {
        preference: vec![
            crate::Method::TlsVerified,
            crate::Method::Pgp,
            crate::Method::Smime,
            crate::Method::Portal,
        ],
        ..Rules::default()
    }
}

fn rules_none() -> Rules {
    Rules {
        default_level: crate::Level::None,
        ..classic()
    }
}
