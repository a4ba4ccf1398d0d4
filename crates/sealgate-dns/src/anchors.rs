//! DNSSEC trust anchors: hickory's built-in root KSKs, or a file of DNSKEY records
//! (an island of trust for private and lab zones).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_resolver::proto::dnssec::{PublicKey as _, PublicKeyBuf, TrustAnchors, Verifier as _};
use hickory_resolver::proto::rr::{DNSClass, LowerName, Name};
use hickory_resolver::proto::serialize::txt::trust_anchor::{Entry, Parser};

use crate::DnsError;
use crate::anchor_text::{TextRecord, records};

/// The keys validation starts from, and the zones they sit at.
#[derive(Clone)]
pub(crate) struct Anchors {
    keys: Arc<TrustAnchors>,
    /// The apex of every anchored zone (the root for the built-in anchors).
    zones: Vec<Name>,
}

impl std::fmt::Debug for Anchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchors")
            .field("zones", &self.zones)
            .finish_non_exhaustive()
    }
}

impl Anchors {
    /// hickory's built-in root zone KSKs (`TrustAnchors::default()`).
    pub(crate) fn root() -> Self {
        Self {
            keys: Arc::new(TrustAnchors::default()),
            zones: vec![Name::root()],
        }
    }

    /// Read a trust-anchor file: DNSKEY records in zone-file presentation format
    /// (RFC 1035 §5.1: `example.test. 3600 IN DNSKEY 257 3 13 <base64>`, the TTL and the
    /// class optional, as `dig` and `keymgr` print them; `;` comments; parentheses across
    /// lines). The file replaces the built-in root anchors; list the root KSKs (owner `.`)
    /// in it to keep them too.
    pub(crate) fn from_file(path: &Path) -> Result<Self, DnsError> {
        let text = std::fs::read_to_string(path).map_err(|e| bad_file(path, e.to_string()))?;
        Self::from_text(path, &text)
    }

    /// Parse trust-anchor text read from `path` (named in errors).
    pub(crate) fn from_text(path: &Path, text: &str) -> Result<Self, DnsError> {
        let at_line =
            |line: usize, reason: String| bad_file(path, format!("line {line}: {reason}"));
        let mut keys = TrustAnchors::empty();
        let mut zones: Vec<Name> = Vec::new();
        for record in records(text).map_err(|(line, reason)| at_line(line, reason))? {
            let (zone, key) = record_key(&record).map_err(|reason| at_line(record.line, reason))?;
            keys.insert_with_name(&key, LowerName::new(&zone));
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        if zones.is_empty() {
            return Err(bad_file(path, "no DNSKEY records".to_owned()));
        }
        Ok(Self {
            keys: Arc::new(keys),
            zones,
        })
    }

    /// The keys, for hickory's validator.
    pub(crate) fn keys(&self) -> Arc<TrustAnchors> {
        self.keys.clone()
    }

    /// Whether `name` is at or below an anchored zone. A name outside every anchor can
    /// never validate: RFC 4035 §4.3 calls it indeterminate, and with an island of trust
    /// it is treated like a name in an unsigned zone (insecure), the same as unbound
    /// does. hickory itself reports such names as bogus, so they are never asked.
    pub(crate) fn covers(&self, name: &Name) -> bool {
        self.zones.iter().any(|zone| zone.zone_of(name))
    }
}

/// The zone and key of one record of the file.
fn record_key(record: &TextRecord) -> Result<(Name, PublicKeyBuf), String> {
    // RFC 3597 §5: CLASS1 is IN written generically.
    if record.class != "IN" && record.class != "CLASS1" {
        return Err(format!("class {} is not IN", record.class));
    }
    match record.rtype.as_str() {
        "DNSKEY" => {}
        // hickory validates from keys only: a DS anchor would have to be matched against the
        // zone's DNSKEY set first, which its validator does not do.
        "DS" => {
            return Err(
                "DS records are not supported as anchors: list the zone's DNSKEY records \
                 (`dig ZONE DNSKEY`)"
                    .to_owned(),
            );
        }
        other => return Err(format!("only DNSKEY records are allowed, not {other}")),
    }
    // The record in the one form hickory's trust-anchor parser reads: owner, class, type.
    let canonical = format!("{} IN DNSKEY {}", record.owner, record.rdata.join(" "));
    let entries = Parser::new(canonical).parse().map_err(|e| e.to_string())?;
    match entries.as_slice() {
        [entry] => anchor_key(entry),
        _ => Err("expected one DNSKEY record".to_owned()),
    }
}

/// The zone and key of one trust-anchor entry, after the checks RFC 4034 §2.1.1 and
/// RFC 5011 §3 ask of a key used to verify signatures.
fn anchor_key(entry: &Entry) -> Result<(Name, PublicKeyBuf), String> {
    let Entry::DNSKEY(record) = entry else {
        return Err("only DNSKEY records are allowed".to_owned());
    };
    if record.dns_class() != DNSClass::IN {
        return Err(format!("class {} is not IN", record.dns_class()));
    }
    let dnskey = record.data();
    if !dnskey.zone_key() {
        // RFC 4034 §2.1.1: without the Zone Key flag the key must not verify RRSIGs.
        return Err("the DNSKEY lacks the zone key flag (256 or 257 expected)".to_owned());
    }
    if dnskey.revoke() {
        return Err("the DNSKEY is revoked (RFC 5011)".to_owned());
    }
    let algorithm = dnskey.public_key().algorithm();
    if !algorithm.is_supported() {
        return Err(format!("algorithm {algorithm} is not supported"));
    }
    dnskey
        .key()
        .map_err(|e| format!("the public key does not decode: {e}"))?;
    let mut zone = record.name().clone();
    zone.set_fqdn(true);
    Ok((zone, dnskey.public_key().clone()))
}

fn bad_file(path: &Path, reason: String) -> DnsError {
    DnsError::TrustAnchor {
        path: PathBuf::from(path),
        reason,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    use hickory_resolver::proto::dnssec::crypto::EcdsaSigningKey;
    use hickory_resolver::proto::dnssec::rdata::DNSKEY;
    use hickory_resolver::proto::dnssec::{Algorithm, SigningKey as _};

    /// A fresh ECDSA P-256 public key, base64 as in a DNSKEY record.
    fn key() -> String {
        let alg = Algorithm::ECDSAP256SHA256;
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(alg).unwrap();
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, alg).unwrap();
        let dnskey = DNSKEY::from_key(&key.to_public_key().unwrap()).to_string();
        dnskey.rsplit(' ').next().unwrap().to_owned()
    }

    fn parse(text: &str) -> Result<Anchors, DnsError> {
        Anchors::from_text(Path::new("/etc/sealgate/anchors.keys"), text)
    }

    fn reason(text: &str) -> String {
        match parse(text).unwrap_err() {
            DnsError::TrustAnchor { path, reason } => {
                assert_eq!(path, Path::new("/etc/sealgate/anchors.keys"));
                reason
            }
            other => panic!("expected a trust anchor error, got {other:?}"),
        }
    }

    #[test]
    fn a_file_of_dnskeys_with_comments_anchors_its_zones() {
        let (a, b) = (key(), key());
        let text = format!(
            "; lab anchors\n\nexample.test. 3600 IN DNSKEY 257 3 13 {a}\n\
             lab.internal. IN DNSKEY 256 3 13 {b} ; zone key\n"
        );
        let anchors = parse(&text).unwrap();
        let name = |s: &str| Name::from_ascii(s).unwrap();
        assert!(anchors.covers(&name("example.test.")));
        assert!(anchors.covers(&name("_25._tcp.mx.example.test.")));
        assert!(anchors.covers(&name("mx.lab.internal.")));
        assert!(!anchors.covers(&name("example.org.")));
        assert!(!anchors.covers(&name("test.")));
    }

    #[test]
    fn records_without_ttl_or_class_as_dig_and_keymgr_print_them_are_anchors() {
        let k = key();
        for line in [
            format!("example.test. DNSKEY 257 3 13 {k}"),
            format!("example.test. 3600 IN DNSKEY 257 3 13 {k}"),
            format!("example.test. IN DNSKEY 257 3 13 {k}"),
            format!("example.test. 3600 DNSKEY 257 3 13 {k}"),
            format!("example.test. IN 3600 DNSKEY 257 3 13 {k}"),
        ] {
            let anchors = parse(&format!("{line}\n")).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(
                anchors.covers(&Name::from_ascii("mx.example.test.").unwrap()),
                "{line}"
            );
        }
    }

    #[test]
    fn a_key_split_over_lines_in_parentheses_is_one_anchor() {
        let k = key();
        let (head, tail) = k.split_at(20);
        let text = format!(
            "example.test. 172800 IN DNSKEY 257 3 13 ( ; KSK\n\t{head}\n\t{tail} ) ; key id\n"
        );
        let anchors = parse(&text).unwrap();
        assert!(anchors.covers(&Name::from_ascii("example.test.").unwrap()));
    }

    #[test]
    fn a_ds_record_or_another_class_is_refused_with_its_line_and_why() {
        let k = key();
        let r = reason(&format!(
            "example.test. DNSKEY 257 3 13 {k}\nexample.test. DS 1 13 2 00\n"
        ));
        assert!(r.starts_with("line 2: DS records are not supported"), "{r}");
        let r = reason(&format!("example.test. CH DNSKEY 257 3 13 {k}\n"));
        assert_eq!(r, "line 1: class CH is not IN");
        let r = reason(&format!("example.test. 3600 IN TXT {k}\n"));
        assert_eq!(r, "line 1: only DNSKEY records are allowed, not TXT");
    }

    #[test]
    fn the_built_in_root_anchors_cover_every_name() {
        let anchors = Anchors::root();
        assert!(anchors.covers(&Name::from_ascii("mx.example.org.").unwrap()));
    }

    #[test]
    fn a_file_without_keys_is_rejected() {
        assert_eq!(reason("; nothing here\n\n"), "no DNSKEY records");
    }

    #[test]
    fn a_record_that_is_not_a_dnskey_is_rejected_with_its_line() {
        let k = key();
        let r = reason(&format!(
            "example.test. IN DNSKEY 257 3 13 {k}\nexample.test. IN DS 1 13 2 00\n"
        ));
        assert!(r.starts_with("line 2: "), "{r}");
    }

    #[test]
    fn broken_key_data_is_rejected() {
        let r = reason("example.test. IN DNSKEY 257 3 13 not*base64\n");
        assert!(r.starts_with("line 1: "), "{r}");
        let r = reason("example.test. IN DNSKEY 257 3 13 AAAA\n");
        assert!(r.contains("does not decode"), "{r}");
    }

    #[test]
    fn a_key_without_the_zone_flag_or_revoked_is_rejected() {
        let k = key();
        let r = reason(&format!("example.test. IN DNSKEY 1 3 13 {k}\n"));
        assert!(r.contains("zone key flag"), "{r}");
        let r = reason(&format!("example.test. IN DNSKEY 385 3 13 {k}\n"));
        assert!(r.contains("revoked"), "{r}");
    }

    #[test]
    fn an_unsupported_algorithm_is_rejected() {
        let k = key();
        let r = reason(&format!("example.test. IN DNSKEY 257 3 200 {k}\n"));
        assert!(r.contains("not supported"), "{r}");
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let path = Path::new("/nonexistent/sealgate-anchors.keys");
        let err = Anchors::from_file(path).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/sealgate-anchors.keys"),
            "{err}"
        );
    }
}
