//! TLS for STARTTLS (RFC 3207) and implicit TLS (RFC 8314): TLS 1.2 and 1.3 only.

use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::DistinguishedName;
use rustls::SignatureScheme;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use tokio_rustls::TlsAcceptor;

use crate::IngressError;

/// Builds the acceptor from a PEM certificate chain and a PEM private key.
pub fn load_tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, IngressError> {
    Ok(load_tls(cert_file, key_file, None)?.acceptor)
}

/// The server side of TLS: the acceptor, and the check of client certificates when clients
/// are asked for them.
#[derive(Clone)]
pub struct ServerTls {
    /// Hands out TLS sessions.
    pub acceptor: TlsAcceptor,
    /// Set when clients are asked for certificates (`[tls] client_ca_file`).
    pub clients: Option<ClientCerts>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_certificates", &self.clients.is_some())
            .finish_non_exhaustive()
    }
}

/// Checks a client's certificate chain against `[tls] client_ca_file` after the handshake.
#[derive(Clone)]
pub struct ClientCerts(Arc<dyn ClientCertVerifier>);

/// A client's certificate as the handshake presented it, and whether it chains to the
/// configured client CAs (the client proved it holds the key in the handshake either way).
#[derive(Debug, Clone)]
pub struct ClientCert {
    end_entity: CertificateDer<'static>,
    /// `Err(why)` when the chain does not verify.
    pub verified: Result<(), String>,
}

impl ClientCert {
    /// True when the certificate verified and is valid for the DNS name `name` (its subject
    /// alternative names, wildcards as in server certificates).
    pub fn valid_for(&self, name: &str) -> bool {
        if self.verified.is_err() {
            return false;
        }
        let Ok(server_name) = ServerName::try_from(name.to_owned()) else {
            return false;
        };
        ParsedCertificate::try_from(&self.end_entity)
            .and_then(|parsed| rustls::client::verify_server_name(&parsed, &server_name))
            .is_ok()
    }
}

/// Asks every client for a certificate, requires none, and accepts any in the handshake
/// (whose signature still proves the client holds the key); the chain is checked afterwards
/// by [`ClientCerts::check`], so a certificate from another CA counts as absent instead of
/// failing the handshake of a client that presents one by habit.
#[derive(Debug)]
struct AskClientCert(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for AskClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl ClientCerts {
    /// The certificate `conn`'s client presented, checked; `None` when it presented none.
    pub(crate) fn check(&self, conn: &rustls::ServerConnection) -> Option<ClientCert> {
        let chain = conn.peer_certificates()?;
        let (end_entity, intermediates) = chain.split_first()?;
        let verified = self
            .0
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string());
        Some(ClientCert {
            end_entity: end_entity.clone().into_owned(),
            verified,
        })
    }
}

/// Builds the server side of TLS from a PEM certificate chain and key, asking clients for
/// certificates that chain to `client_ca_file` when one is given.
pub fn load_tls(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<ServerTls, IngressError> {
    let bad = |path: &Path, reason: String| IngressError::TlsFile {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad(cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert_file, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| bad(key_file, e.to_string()))?;
    // One crypto provider everywhere (aws-lc-rs), chosen explicitly rather than from global state.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let (config, clients) = match client_ca_file {
        None => (
            builder.with_no_client_auth().with_single_cert(certs, key)?,
            None,
        ),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(path, e.to_string()))? {
                let cert = cert.map_err(|e| bad(path, e.to_string()))?;
                roots.add(cert).map_err(|e| bad(path, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad(path, "no CA certificate found".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| bad(path, e.to_string()))?;
            let config = builder
                .with_client_cert_verifier(Arc::new(AskClientCert(verifier.clone())))
                .with_single_cert(certs, key)?;
            (config, Some(ClientCerts(verifier)))
        }
    };
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        clients,
    })
}

/// What a finished handshake established.
pub(crate) struct Handshake {
    /// Protocol and cipher (see [`describe`]).
    pub description: String,
    /// The client's certificate, checked, when it presented one.
    pub client_cert: Option<ClientCert>,
}

impl Handshake {
    pub(crate) fn of(conn: &rustls::ServerConnection, tls: &ServerTls) -> Self {
        Self {
            description: describe(conn),
            client_cert: tls.clients.as_ref().and_then(|c| c.check(conn)),
        }
    }
}

/// "TLSv1.3 TLS13_AES_256_GCM_SHA384", for Received headers, logs and the audit.
pub(crate) fn describe(conn: &rustls::ServerConnection) -> String {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(v) => format!("{v:?}"),
        None => "TLS".to_owned(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{version} {cipher}")
}
