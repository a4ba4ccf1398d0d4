//! A real authoritative DNS server on 127.0.0.1 for tests (hickory-server).
//!
//! [`TestDns::start`] serves zone-file text, UDP and TCP on one free port; point
//! the resolver under test at [`TestDns::addr`]. [`TestDns::start_signed`]
//! serves the same zones signed online (NSEC, ECDSA P-256) and keeps each
//! zone's public key for an island-of-trust anchor ([`TestDns::trust_anchors`],
//! or as a file the daemon reads: [`TestDns::write_trust_anchor_file`]).
//!
//! Signed zones answer NXDOMAIN with a complete NSEC proof (RFC 4035 §3.1.3.2: the
//! NSEC covering the name *and* the NSEC covering the wildcard at its closest
//! encloser). hickory-server 0.26.3's in-memory zone sends the NSEC covering the
//! name's parent instead of the wildcard proof, which is incomplete whenever the
//! closest encloser is not the parent (`_25._tcp.nope.example.test.`, or
//! `_25._tcp.mx.example.test.` when `mx` has a child sorting before `_tcp`); a
//! validating resolver rightly calls such answers bogus. Signed zones are therefore
//! wrapped in `nsec_proof::NsecProofZone`, which builds the proof itself;
//! [`TestDns::start_signed_with_incomplete_denials`] keeps hickory-server's proofs.
//!
//! [`TestDns::start_zones`] serves signed and unsigned zones as a delegation tree (DS
//! records in signed parents, DS queries answered by the parent), so anchoring only the
//! top zone exercises secure and provably insecure delegations.
//!
//! ```ignore
//! let dns = TestDns::start(&[("example.test.", "@ 60 IN SOA ns hostmaster 1 60 60 60 60\n@ 60 IN MX 10 mx\n")]).await;
//! // DnsConfig { nameservers: vec![dns.addr], .. }
//! ```

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{
    Algorithm, DigestType, DnssecSigner, PublicKeyBuf, SigningKey, TrustAnchors,
};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

mod nsec_proof;
use nsec_proof::NsecProofZone;

/// How long the server waits for a TCP client to send a query.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection TCP response buffer (responses, not bytes).
const TCP_RESPONSE_BUFFER: usize = 64;
/// Tries at finding a port free for both UDP and TCP.
const BIND_TRIES: usize = 20;
/// Lifetime of the RRSIGs made by [`TestDns::start_signed`].
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// TTL written on the DNSKEY lines of [`TestDns::trust_anchor_text`] (informational only).
const ANCHOR_TTL: u32 = 3600;
/// TTL of the DS records [`TestDns::start_zones`] adds to parent zones.
const DS_TTL: u32 = 300;

/// The public key that signs one zone of a [`TestDns::start_signed`] server.
#[derive(Clone, Debug)]
pub struct ZoneKey {
    /// The zone origin, absolute (`example.test.`).
    pub origin: Name,
    /// The zone's DNSKEY public key.
    pub public_key: PublicKeyBuf,
}

impl ZoneKey {
    /// This key as one trust-anchor line (`example.test. 3600 IN DNSKEY 256 3 13 <base64>`).
    pub fn trust_anchor_line(&self) -> String {
        let dnskey = DNSKEY::from_key(&self.public_key);
        format!("{} {ANCHOR_TTL} IN DNSKEY {dnskey}\n", self.origin)
    }
}

/// One zone of a [`TestDns::start_zones`] server.
#[derive(Clone, Copy, Debug)]
pub struct TestZone<'a> {
    /// The origin, absolute (`"example.test."`).
    pub origin: &'a str,
    /// Zone-file text (with an SOA record; relative names are under the origin).
    pub text: &'a str,
    /// Sign the zone (fresh ECDSA P-256 key, NSEC).
    pub signed: bool,
}

impl<'a> TestZone<'a> {
    /// A signed zone.
    pub fn signed(origin: &'a str, text: &'a str) -> Self {
        Self {
            origin,
            text,
            signed: true,
        }
    }

    /// An unsigned zone.
    pub fn unsigned(origin: &'a str, text: &'a str) -> Self {
        Self {
            origin,
            text,
            signed: false,
        }
    }
}

/// An in-process DNS server, authoritative for the zones it was started with.
/// It listens on `addr` over UDP and TCP until dropped.
pub struct TestDns {
    /// Where the server listens (127.0.0.1, one port for UDP and TCP).
    pub addr: SocketAddr,
    zone_keys: Vec<ZoneKey>,
    // Owns the server's tasks; dropping it aborts them.
    _server: Server<ZoneRouter>,
}

impl std::fmt::Debug for TestDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDns")
            .field("addr", &self.addr)
            .field("zone_keys", &self.zone_keys)
            .finish_non_exhaustive()
    }
}

impl TestDns {
    /// Serve unsigned `zones`: pairs of origin (`"example.test."`) and zone-file
    /// text (with an SOA record; relative names are under the origin).
    ///
    /// # Panics
    /// When a zone does not parse or no port can be bound: test setup errors.
    pub async fn start(zones: &[(&str, &str)]) -> Self {
        let zones: Vec<_> = zones
            .iter()
            .map(|(o, t)| TestZone::unsigned(o, t))
            .collect();
        Self::serve(&zones, Denials::Complete).await
    }

    /// Serve `zones` signed with a fresh ECDSA P-256 key each, NSEC denial.
    /// [`TestDns::zone_keys`] gives the keys to trust.
    ///
    /// # Panics
    /// As [`TestDns::start`], or when signing fails.
    pub async fn start_signed(zones: &[(&str, &str)]) -> Self {
        let zones: Vec<_> = zones.iter().map(|(o, t)| TestZone::signed(o, t)).collect();
        Self::serve(&zones, Denials::Complete).await
    }

    /// Serve signed and unsigned zones together, as a delegation tree when one zone is
    /// below another: the parent zone text delegates the child with an NS record, a
    /// signed child gets a DS record (SHA-256) in a signed parent, and DS queries for a
    /// child's apex are answered by the parent (RFC 4035 §3.1.4.1). Anchoring only the
    /// top zone then validates a secure delegation (DS) and proves an insecure one (an
    /// NSEC without DS at the cut), as the root anchor does on the Internet.
    ///
    /// # Panics
    /// As [`TestDns::start_signed`].
    pub async fn start_zones(zones: &[TestZone<'_>]) -> Self {
        Self::serve(zones, Denials::Complete).await
    }

    /// As [`TestDns::start_signed`], but NXDOMAIN proofs are hickory-server's own, which
    /// leave out the wildcard NSEC when the closest encloser is not the name's parent
    /// (see the module docs): a server (or attacker) sending an incomplete denial.
    ///
    /// # Panics
    /// As [`TestDns::start_signed`].
    pub async fn start_signed_with_incomplete_denials(zones: &[(&str, &str)]) -> Self {
        let zones: Vec<_> = zones.iter().map(|(o, t)| TestZone::signed(o, t)).collect();
        Self::serve(&zones, Denials::Hickory).await
    }

    /// The signing keys, one per signed zone, in the order given (empty when unsigned).
    pub fn zone_keys(&self) -> &[ZoneKey] {
        &self.zone_keys
    }

    /// Trust anchors holding only this server's zone keys (island of trust).
    pub fn trust_anchors(&self) -> TrustAnchors {
        let mut anchors = TrustAnchors::empty();
        for key in &self.zone_keys {
            anchors.insert_with_name(&key.public_key, LowerName::new(&key.origin));
        }
        anchors
    }

    /// The DNSKEY of every signed zone in zone-file presentation format, one per
    /// line after a `;` comment line (`example.test. 3600 IN DNSKEY 256 3 13 <base64>`):
    /// the trust-anchor file format `sealgate_dns::DnsConfig::trust_anchor_file` reads.
    pub fn trust_anchor_text(&self) -> String {
        let mut text = String::from("; DNSSEC trust anchors of the sealgate test DNS server\n");
        for key in &self.zone_keys {
            text.push_str(&key.trust_anchor_line());
        }
        text
    }

    /// Write [`TestDns::trust_anchor_text`] to a file in `dir` (named after this
    /// server's port, so several servers can share a directory) and return its path.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_trust_anchor_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("trust-anchors-{}.keys", self.addr.port()));
        std::fs::write(&path, self.trust_anchor_text())
            .unwrap_or_else(|e| panic!("write trust anchor file {}: {e}", path.display()));
        path
    }

    async fn serve(zones: &[TestZone<'_>], denials: Denials) -> Self {
        let (handlers, zone_keys) = build_zones(zones, denials);
        let router = ZoneRouter::new(&handlers);
        let (udp, tcp) = bind_same_port().await;
        let addr = udp.local_addr().expect("test DNS UDP address");
        let mut server = Server::new(router);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        Self {
            addr,
            zone_keys,
            _server: server,
        }
    }
}

/// Which NXDOMAIN proofs signed zones send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Denials {
    /// Complete proofs (`NsecProofZone`).
    Complete,
    /// hickory-server's own, sometimes incomplete.
    Hickory,
}

/// The zone handlers of a server, each with its origin.
type Handlers = Vec<(Name, Arc<dyn ZoneHandler>)>;

/// Load and sign the zones, deepest first so a parent can carry its signed children's
/// DS records. Returns the handlers and the keys of the signed zones, both in the
/// order given.
fn build_zones(zones: &[TestZone<'_>], denials: Denials) -> (Handlers, Vec<ZoneKey>) {
    let mut loaded: Vec<_> = zones
        .iter()
        .map(|z| {
            let (origin, handler) = load_zone(z.origin, z.text);
            (origin, Some(handler), z.signed, None::<ZoneKey>)
        })
        .collect();
    let origins: Vec<Name> = loaded.iter().map(|(o, ..)| o.clone()).collect();
    let mut order: Vec<usize> = (0..loaded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(origins[i].num_labels()));
    let mut handlers: Vec<Option<Arc<dyn ZoneHandler>>> = vec![None; loaded.len()];
    for i in order {
        let children = child_keys(&origins, &signed_keys(&loaded), &origins[i]);
        let (origin, handler, signed, key) = &mut loaded[i];
        let mut handler = handler.take().expect("each zone is built once");
        let built: Arc<dyn ZoneHandler> = if *signed {
            for child in &children {
                add_ds(&mut handler, child);
            }
            *key = Some(sign_zone(origin, &mut handler));
            match denials {
                Denials::Complete => Arc::new(NsecProofZone::new(handler)),
                Denials::Hickory => Arc::new(handler),
            }
        } else {
            Arc::new(handler)
        };
        handlers[i] = Some(built);
    }
    let keys = loaded.iter().filter_map(|(.., key)| key.clone()).collect();
    let handlers = origins
        .into_iter()
        .zip(handlers)
        .map(|(o, h)| (o, h.expect("every zone was built")))
        .collect();
    (handlers, keys)
}

/// The keys of the zones signed so far.
fn signed_keys<H>(loaded: &[(Name, H, bool, Option<ZoneKey>)]) -> Vec<ZoneKey> {
    loaded.iter().filter_map(|(.., key)| key.clone()).collect()
}

/// The keys of the signed zones whose closest served ancestor is `parent`.
fn child_keys(origins: &[Name], keys: &[ZoneKey], parent: &Name) -> Vec<ZoneKey> {
    keys.iter()
        .filter(|k| closest_ancestor(origins, &k.origin).as_ref() == Some(parent))
        .cloned()
        .collect()
}

/// The longest served zone strictly above `zone`.
fn closest_ancestor(origins: &[Name], zone: &Name) -> Option<Name> {
    origins
        .iter()
        .filter(|o| *o != zone && o.zone_of(zone))
        .max_by_key(|o| o.num_labels())
        .cloned()
}

/// Put the DS record of a signed child zone into its parent (before the parent is signed).
fn add_ds(parent: &mut InMemoryZoneHandler<TokioRuntimeProvider>, child: &ZoneKey) {
    let ds = DS::from_key(&child.public_key, &child.origin, DigestType::SHA256)
        .expect("DS of a test zone key");
    let record = Record::from_rdata(
        child.origin.clone(),
        DS_TTL,
        RData::DNSSEC(DNSSECRData::DS(ds)),
    );
    parent.upsert_mut(record, 0);
}

/// The future type of `#[async_trait]` methods (hickory-server's handler traits).
pub(crate) type HandlerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers queries from the zones, except that a DS query for the apex of a zone that
/// has a served parent goes to a catalog without that zone, so the parent answers.
struct ZoneRouter {
    zones: Catalog,
    parent_side: Vec<(LowerName, Catalog)>,
}

impl ZoneRouter {
    fn new(handlers: &[(Name, Arc<dyn ZoneHandler>)]) -> Self {
        let origins: Vec<Name> = handlers.iter().map(|(o, _)| o.clone()).collect();
        let catalog_without = |skip: Option<&Name>| {
            let mut catalog = Catalog::new();
            for (origin, handler) in handlers.iter().filter(|(o, _)| Some(o) != skip) {
                catalog.upsert(LowerName::new(origin), vec![handler.clone()]);
            }
            catalog
        };
        let parent_side = origins
            .iter()
            .filter(|o| closest_ancestor(&origins, o).is_some())
            .map(|o| (LowerName::new(o), catalog_without(Some(o))))
            .collect();
        Self {
            zones: catalog_without(None),
            parent_side,
        }
    }
}

// RequestHandler is an `#[async_trait]` trait; its method written out.
impl RequestHandler for ZoneRouter {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> HandlerFuture<'async_trait, ResponseInfo>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let parent = request.request_info().ok().and_then(|info| {
            let query = info.query;
            (query.query_type() == RecordType::DS)
                .then(|| {
                    self.parent_side
                        .iter()
                        .find(|(apex, _)| apex == query.name())
                })
                .flatten()
        });
        let catalog = parent.map_or(&self.zones, |(_, catalog)| catalog);
        catalog.handle_request::<R, T>(request, response_handle)
    }
}

/// Parse zone text into an in-memory primary zone.
fn load_zone(origin: &str, text: &str) -> (Name, InMemoryZoneHandler<TokioRuntimeProvider>) {
    let origin = Name::from_ascii(origin)
        .unwrap_or_else(|e| panic!("test zone origin {origin:?} is not a name: {e}"));
    let (origin, records) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .unwrap_or_else(|e| panic!("test zone {origin} does not parse: {e}"));
    let handler = InMemoryZoneHandler::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
        Some(NxProofKind::Nsec),
    )
    .unwrap_or_else(|e| panic!("test zone {origin} is not loadable: {e}"));
    (origin, handler)
}

/// Add a fresh zone signing key and sign the zone (adds DNSKEY, NSEC, RRSIG).
fn sign_zone(origin: &Name, handler: &mut InMemoryZoneHandler<TokioRuntimeProvider>) -> ZoneKey {
    let algorithm = Algorithm::ECDSAP256SHA256;
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(algorithm).expect("generate zone key");
    let key = EcdsaSigningKey::from_pkcs8(&pkcs8, algorithm).expect("load zone key");
    let public_key = key.to_public_key().expect("zone public key");
    let dnskey = DNSKEY::from_key(&public_key);
    let signer = DnssecSigner::new(dnskey, Box::new(key), origin.clone(), SIGNATURE_LIFETIME);
    handler
        .add_zone_signing_key_mut(signer)
        .expect("add zone signing key");
    handler.secure_zone_mut().expect("sign test zone");
    ZoneKey {
        origin: origin.clone(),
        public_key,
    }
}

/// A UDP socket and a TCP listener on the same free 127.0.0.1 port.
async fn bind_same_port() -> (UdpSocket, TcpListener) {
    let mut last_error = None;
    for _ in 0..BIND_TRIES {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind test DNS UDP socket");
        let port = udp.local_addr().expect("test DNS UDP address").port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return (udp, tcp),
            // Another process holds this port for TCP; try another one.
            Err(e) => last_error = Some(e),
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1: {last_error:?}");
}
