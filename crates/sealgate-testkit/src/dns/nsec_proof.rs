//! Complete NSEC denial-of-existence proofs for signed test zones (see the parent
//! module's docs for why hickory-server's own are not enough).

use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{LowerName, Name, RData, RecordSet, RecordType, TSigResponseContext};
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::server::{Request, RequestInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AuthLookup, AxfrPolicy, LookupControlFlow, LookupOptions, LookupRecords, Nsec3QueryInfo,
    ZoneHandler, ZoneType,
};

use super::HandlerFuture;

/// One signed NSEC RRset of a zone: its owner, the next owner name and the RRset
/// (with its RRSIG).
#[derive(Clone, Debug)]
struct NsecEntry {
    owner: Name,
    next: Name,
    rrset: Arc<RecordSet>,
}

impl NsecEntry {
    /// RFC 4034 §4.1.1: the NSEC covers names strictly between its owner and the
    /// next owner in canonical order; the last NSEC of the zone (next at or before
    /// the owner) covers everything after its owner.
    fn covers(&self, name: &Name) -> bool {
        name > &self.owner && (name < &self.next || self.next <= self.owner)
    }
}

/// A signed zone whose denial-of-existence proofs are complete (see the module
/// docs); every other query is answered by the wrapped in-memory zone.
pub(super) struct NsecProofZone {
    inner: InMemoryZoneHandler<TokioRuntimeProvider>,
    nsecs: Vec<NsecEntry>,
}

impl NsecProofZone {
    /// Wrap a zone that is already signed, taking a copy of its NSEC chain.
    pub(super) fn new(mut inner: InMemoryZoneHandler<TokioRuntimeProvider>) -> Self {
        let nsecs = inner
            .records_get_mut()
            .values()
            .filter(|rrset| rrset.record_type() == RecordType::NSEC)
            .filter_map(|rrset| {
                let record = rrset.records_without_rrsigs().next()?;
                match &record.data {
                    RData::DNSSEC(DNSSECRData::NSEC(nsec)) => Some(NsecEntry {
                        owner: rrset.name().clone(),
                        next: nsec.next_domain_name().clone(),
                        rrset: rrset.clone(),
                    }),
                    _ => None,
                }
            })
            .collect();
        Self { inner, nsecs }
    }

    /// The NSEC RRsets that deny `qname` (RFC 4035 §3.1.3): the one owned by the
    /// name (NODATA); else the one covering the name, plus the one matching or
    /// covering the wildcard at the closest encloser (NXDOMAIN). When the name is
    /// an empty non-terminal (the next owner lies below it) the covering NSEC is
    /// the whole proof.
    fn denial_proof(&self, qname: &Name) -> Vec<Arc<RecordSet>> {
        if let Some(exact) = self.nsecs.iter().find(|n| &n.owner == qname) {
            return vec![exact.rrset.clone()];
        }
        let Some(cover) = self.nsecs.iter().find(|n| n.covers(qname)) else {
            return Vec::new();
        };
        let mut proof = vec![cover.rrset.clone()];
        let from_owner = common_ancestor(qname, &cover.owner);
        let from_next = common_ancestor(qname, &cover.next);
        let encloser = if from_next.num_labels() > from_owner.num_labels() {
            from_next
        } else {
            from_owner
        };
        if &encloser == qname {
            return proof;
        }
        let Ok(wildcard) = encloser.prepend_label("*") else {
            return proof;
        };
        let wildcard_proof = self
            .nsecs
            .iter()
            .find(|n| n.owner == wildcard || n.covers(&wildcard));
        if let Some(w) = wildcard_proof.filter(|w| w.owner != cover.owner) {
            proof.push(w.rrset.clone());
        }
        proof
    }
}

/// The longest name that is `a` or an ancestor of `a` and also `b` or an ancestor of `b`.
fn common_ancestor(a: &Name, b: &Name) -> Name {
    let mut candidate = a.clone();
    while !candidate.zone_of(b) && !candidate.is_root() {
        candidate = candidate.base_name();
    }
    candidate
}

// ZoneHandler is an `#[async_trait]` trait; these are its methods written out, all but
// `nsec_records` forwarding to the wrapped zone.
impl ZoneHandler for NsecProofZone {
    fn zone_type(&self) -> ZoneType {
        self.inner.zone_type()
    }

    fn axfr_policy(&self) -> AxfrPolicy {
        self.inner.axfr_policy()
    }

    fn origin(&self) -> &LowerName {
        self.inner.origin()
    }

    fn lookup<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        name: &'life1 LowerName,
        rtype: RecordType,
        request_info: Option<&'life2 RequestInfo<'life3>>,
        lookup_options: LookupOptions,
    ) -> HandlerFuture<'async_trait, LookupControlFlow<AuthLookup>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.lookup(name, rtype, request_info, lookup_options)
    }

    fn search<'life0, 'life1, 'async_trait>(
        &'life0 self,
        request: &'life1 Request,
        lookup_options: LookupOptions,
    ) -> HandlerFuture<'async_trait, (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>)>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.search(request, lookup_options)
    }

    fn nsec_records<'life0, 'life1, 'async_trait>(
        &'life0 self,
        name: &'life1 LowerName,
        lookup_options: LookupOptions,
    ) -> HandlerFuture<'async_trait, LookupControlFlow<AuthLookup>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let proof = self.denial_proof(&Name::from(name));
        Box::pin(async move {
            LookupControlFlow::Continue(Ok(LookupRecords::many(lookup_options, proof).into()))
        })
    }

    fn nsec3_records<'life0, 'life1, 'async_trait>(
        &'life0 self,
        info: Nsec3QueryInfo<'life1>,
        lookup_options: LookupOptions,
    ) -> HandlerFuture<'async_trait, LookupControlFlow<AuthLookup>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.nsec3_records(info, lookup_options)
    }

    fn nx_proof_kind(&self) -> Option<&NxProofKind> {
        self.inner.nx_proof_kind()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load_zone, sign_zone};
    use super::*;

    const ZONE: &str = "@ 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ 300 IN MX 10 mx
mx 300 IN A 127.0.0.2
_acme-challenge.mx 300 IN TXT \"token\"
mx2 300 IN A 127.0.0.3
_25._tcp.mx2 300 IN TLSA 3 1 1 0102
www 300 IN A 127.0.0.4
";

    fn zone() -> NsecProofZone {
        let (origin, mut handler) = load_zone("example.test.", ZONE);
        sign_zone(&origin, &mut handler);
        NsecProofZone::new(handler)
    }

    /// The owner names of the NSEC records proving `qname` absent.
    fn proof_owners(zone: &NsecProofZone, qname: &str) -> Vec<String> {
        let qname = Name::from_ascii(qname).expect("test name");
        zone.denial_proof(&qname)
            .iter()
            .map(|rrset| rrset.name().to_string())
            .collect()
    }

    #[test]
    fn an_existing_name_is_denied_by_its_own_nsec() {
        assert_eq!(
            proof_owners(&zone(), "mx.example.test."),
            ["mx.example.test."]
        );
    }

    #[test]
    fn a_name_below_a_host_with_children_gets_the_wildcard_nsec_at_the_host() {
        // Covering NSEC: _acme-challenge.mx -> mx2; *.mx is covered by mx -> _acme-challenge.mx.
        assert_eq!(
            proof_owners(&zone(), "_25._tcp.mx.example.test."),
            ["_acme-challenge.mx.example.test.", "mx.example.test."]
        );
    }

    #[test]
    fn a_name_below_a_missing_host_gets_the_wildcard_nsec_at_the_apex() {
        assert_eq!(
            proof_owners(&zone(), "_25._tcp.nope.example.test."),
            ["_25._tcp.mx2.example.test.", "example.test."]
        );
    }

    #[test]
    fn one_nsec_suffices_when_it_covers_the_name_and_the_wildcard() {
        // www -> example.test. (the last NSEC) covers both the name and *.www.
        assert_eq!(
            proof_owners(&zone(), "_25._tcp.www.example.test."),
            ["www.example.test."]
        );
    }

    #[test]
    fn an_empty_non_terminal_is_denied_by_the_covering_nsec_alone() {
        // _tcp.mx2 exists as the parent of _25._tcp.mx2: NODATA.
        assert_eq!(
            proof_owners(&zone(), "_tcp.mx2.example.test."),
            ["mx2.example.test."]
        );
    }
}
