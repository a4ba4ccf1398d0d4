//! A real authoritative DNS server on 127.0.0.1 for tests (hickory-server).
//!
//! [`TestDns::start`] serves zone-file text, UDP and TCP on one free port; point
//! the resolver under test at [`TestDns::addr`]. [`TestDns::start_signed`]
//! serves the same zones signed online (NSEC, ECDSA P-256) and keeps each
//! zone's public key for an island-of-trust anchor ([`TestDns::trust_anchors`]).
//!
//! ```ignore
//! let dns = TestDns::start(&[("example.test.", "@ 60 IN SOA ns hostmaster 1 60 60 60 60\n@ 60 IN MX 10 mx\n")]).await;
//! // DnsConfig { nameservers: vec![dns.addr], .. }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, DnssecSigner, PublicKeyBuf, SigningKey, TrustAnchors};
use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// How long the server waits for a TCP client to send a query.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection TCP response buffer (responses, not bytes).
const TCP_RESPONSE_BUFFER: usize = 64;
/// Tries at finding a port free for both UDP and TCP.
const BIND_TRIES: usize = 20;
/// Lifetime of the RRSIGs made by [`TestDns::start_signed`].
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The public key that signs one zone of a [`TestDns::start_signed`] server.
#[derive(Clone, Debug)]
pub struct ZoneKey {
    /// The zone origin, absolute (`example.test.`).
    pub origin: Name,
    /// The zone's DNSKEY public key.
    pub public_key: PublicKeyBuf,
}

/// An in-process DNS server, authoritative for the zones it was started with.
/// It listens on `addr` over UDP and TCP until dropped.
pub struct TestDns {
    /// Where the server listens (127.0.0.1, one port for UDP and TCP).
    pub addr: SocketAddr,
    zone_keys: Vec<ZoneKey>,
    // Owns the server's tasks; dropping it aborts them.
    _server: Server<Catalog>,
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
        Self::serve(zones, false).await
    }

    /// Serve `zones` signed with a fresh ECDSA P-256 key each, NSEC denial.
    /// [`TestDns::zone_keys`] gives the keys to trust.
    ///
    /// # Panics
    /// As [`TestDns::start`], or when signing fails.
    pub async fn start_signed(zones: &[(&str, &str)]) -> Self {
        Self::serve(zones, true).await
    }

    /// The signing keys, one per zone, in the order given (empty when unsigned).
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

    async fn serve(zones: &[(&str, &str)], signed: bool) -> Self {
        let mut catalog = Catalog::new();
        let mut zone_keys = Vec::new();
        for (origin, text) in zones {
            let (origin, mut handler) = load_zone(origin, text);
            if signed {
                zone_keys.push(sign_zone(&origin, &mut handler));
            }
            let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
            catalog.upsert(LowerName::new(&origin), vec![handler]);
        }
        let (udp, tcp) = bind_same_port().await;
        let addr = udp.local_addr().expect("test DNS UDP address");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        Self {
            addr,
            zone_keys,
            _server: server,
        }
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
