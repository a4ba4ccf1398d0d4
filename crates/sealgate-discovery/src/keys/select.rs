//! What the methods hand back ([`Lookup`]) and how one credential is chosen from all the
//! candidates ([`choose`]).

use std::cmp::Reverse;
use std::time::Duration;

use sealgate_encrypt::{KeyInfo, KeyKind};

use super::{Discovered, KeyFinding, KeySource};

/// A credential one method found, not yet validated.
#[derive(Clone, Debug)]
pub(crate) struct Candidate<C> {
    /// The certificate.
    pub(crate) cert: C,
    /// Where it came from.
    pub(crate) source: KeySource,
}

/// How long a method's answer may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Something was published: for this long (a DNS TTL; `Duration::MAX` for WKD), capped
    /// by `max_ttl`.
    Answer(Duration),
    /// Nothing is published (or nothing usable: an unsigned zone): the negative TTL.
    Negative,
    /// The lookup failed (timeout, bogus DNSSEC, a 5xx): the failure TTL.
    Failure,
}

/// What one method found for one address: the cached unit.
#[derive(Clone, Debug)]
pub(crate) struct Lookup<C> {
    /// The certificates found.
    pub(crate) candidates: Vec<Candidate<C>>,
    /// What an operator may want to know, one sentence each.
    pub(crate) notes: Vec<String>,
    /// How long it may be reused.
    pub(crate) expiry: Expiry,
}

impl<C> Lookup<C> {
    pub(crate) fn new(candidates: Vec<Candidate<C>>, notes: Vec<String>, expiry: Expiry) -> Self {
        Self {
            candidates,
            notes,
            expiry,
        }
    }
}

/// A candidate with what validation found now.
#[derive(Clone, Debug)]
pub(crate) struct Checked<C> {
    pub(crate) cert: C,
    pub(crate) info: KeyInfo,
    pub(crate) source: KeySource,
}

impl<C> Checked<C> {
    /// The ordering key, best first: bound and usable, from the store, expiring last.
    fn rank(&self) -> (bool, bool, Reverse<i64>) {
        let from_store = self.source == KeySource::Store;
        let expires = self.info.expires.unwrap_or(i64::MAX);
        (!self.info.usable(), !from_store, Reverse(expires))
    }
}

/// The best candidate bound to `address` (usable before unusable, the store before the
/// network, then the one expiring last; ties keep their order), or `Absent`. Candidates not
/// bound to the address are left out with a note.
pub(crate) fn choose<C>(
    address: &str,
    checked: Vec<Checked<C>>,
    mut notes: Vec<String>,
) -> KeyFinding<C> {
    let mut bound = Vec::with_capacity(checked.len());
    for candidate in checked {
        if candidate.info.binds(address) {
            bound.push(candidate);
        } else {
            notes.push(format!(
                "{}: {} does not name {address}: ignored",
                candidate.source, candidate.info.fingerprint
            ));
        }
    }
    bound.sort_by_key(Checked::rank);
    match bound.into_iter().next() {
        Some(best) => KeyFinding::Found {
            cert: best.cert,
            info: best.info,
            source: best.source,
            notes,
        },
        None => KeyFinding::Absent { notes },
    }
}

/// Whether the candidates hold a usable key bound to `address`.
pub(crate) fn any_usable<C>(address: &str, checked: &[Checked<C>]) -> bool {
    checked
        .iter()
        .any(|c| c.info.usable() && c.info.binds(address))
}

/// The audit record of a candidate just fetched from the network.
pub(crate) fn discovered<C>(address: &str, kind: KeyKind, checked: &Checked<C>) -> Discovered {
    let validity = if !checked.info.binds(address) {
        format!("unusable: does not name {}", address.to_ascii_lowercase())
    } else {
        match &checked.info.status {
            Ok(description) => format!("usable: {description}"),
            Err(problem) => format!("unusable: {problem}"),
        }
    };
    Discovered {
        address: address.to_owned(),
        kind,
        source: checked.source,
        fingerprint: checked.info.fingerprint.clone(),
        validity,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use sealgate_encrypt::Problem;

    use super::*;

    const ADDRESS: &str = "Joe@Example.test";

    fn checked(
        name: &'static str,
        source: KeySource,
        expires: Option<i64>,
        status: Result<&str, Problem>,
    ) -> Checked<&'static str> {
        Checked {
            cert: name,
            info: KeyInfo {
                kind: KeyKind::Pgp,
                fingerprint: name.to_uppercase(),
                emails: vec!["joe@example.test".into()],
                expires,
                status: status.map(str::to_owned),
            },
            source,
        }
    }

    fn chosen(candidates: Vec<Checked<&'static str>>) -> Option<&'static str> {
        match choose(ADDRESS, candidates, Vec::new()) {
            KeyFinding::Found { cert, .. } => Some(cert),
            _ => None,
        }
    }

    const EXPIRED: Problem = Problem::Expired { at: 1 };

    #[test]
    fn a_usable_key_beats_unusable_ones_wherever_they_come_from() {
        let got = chosen(vec![
            checked("stored-expired", KeySource::Store, Some(1), Err(EXPIRED)),
            checked("wkd", KeySource::WkdDirect, Some(100), Ok("enc")),
            checked(
                "revoked",
                KeySource::Openpgpkey,
                None,
                Err(Problem::Revoked("x".into())),
            ),
        ]);
        assert_eq!(got, Some("wkd"));
    }

    #[test]
    fn among_usable_keys_the_store_wins_then_the_one_expiring_last() {
        let got = chosen(vec![
            checked("wkd-forever", KeySource::WkdAdvanced, None, Ok("enc")),
            checked("stored", KeySource::Store, Some(50), Ok("enc")),
        ]);
        assert_eq!(got, Some("stored"));
        let got = chosen(vec![
            checked("soon", KeySource::WkdAdvanced, Some(50), Ok("enc")),
            checked("later", KeySource::Openpgpkey, Some(500), Ok("enc")),
            checked("sooner", KeySource::Openpgpkey, Some(5), Ok("enc")),
        ]);
        assert_eq!(got, Some("later"));
        let got = chosen(vec![
            checked("later", KeySource::Openpgpkey, Some(500), Ok("enc")),
            checked("never", KeySource::WkdDirect, None, Ok("enc")),
        ]);
        assert_eq!(got, Some("never"), "no expiry is later than any");
    }

    #[test]
    fn with_nothing_usable_the_best_unusable_key_is_found_with_its_problem() {
        let got = choose(
            ADDRESS,
            vec![checked(
                "signing",
                KeySource::WkdAdvanced,
                None,
                Err(Problem::SigningOnly("x".into())),
            )],
            vec!["earlier note".into()],
        );
        match got {
            KeyFinding::Found { info, notes, .. } => {
                assert_eq!(info.status.unwrap_err().class(), "signing-only");
                assert_eq!(notes, ["earlier note"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_for_other_addresses_are_ignored_with_a_note() {
        let mut other = checked("other", KeySource::WkdAdvanced, None, Ok("enc"));
        other.info.emails = vec!["someone@example.test".into()];
        let got = choose(ADDRESS, vec![other.clone()], Vec::new());
        match got {
            KeyFinding::Absent { notes } => {
                assert_eq!(
                    notes,
                    ["wkd-advanced: OTHER does not name Joe@Example.test: ignored"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!any_usable(ADDRESS, &[other.clone()]));
        let record = discovered(ADDRESS, KeyKind::Pgp, &other);
        assert_eq!(record.validity, "unusable: does not name joe@example.test");
    }

    #[test]
    fn discovered_records_say_usable_or_why_not() {
        let ok = checked("k", KeySource::Openpgpkey, None, Ok("encryption subkey X"));
        assert_eq!(
            discovered(ADDRESS, KeyKind::Pgp, &ok).validity,
            "usable: encryption subkey X"
        );
        let expired = checked("k", KeySource::Openpgpkey, Some(1), Err(EXPIRED));
        let record = discovered(ADDRESS, KeyKind::Pgp, &expired);
        assert!(
            record
                .validity
                .starts_with("unusable: expired at 1970-01-01T00:00:01"),
            "{record:?}"
        );
        assert_eq!(record.source.as_str(), "openpgpkey");
        assert_eq!(record.fingerprint, "K");
    }
}
