//! Opening a session: TCP, greeting, EHLO/HELO, STARTTLS (RFC 3207), EHLO again.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::Instrument;

use super::error::{ClientError, ProtocolProblem, Stage};
use super::extensions::Extensions;
use super::wire::{Stream, Wire};
use super::{ClientConfig, SmtpConnection, TlsInfo, TlsPolicy};

impl SmtpConnection {
    /// TCP connect to `addr`, greeting, EHLO (HELO when EHLO gets a 5xx), STARTTLS per `tls`
    /// with `server_name` as SNI and verification name (an MX host name, or an IP address string
    /// for literal routes), then EHLO again.
    pub(crate) async fn connect(
        addr: SocketAddr,
        server_name: &str,
        cfg: &ClientConfig,
        tls: &TlsPolicy,
    ) -> Result<SmtpConnection, ClientError> {
        let span = tracing::info_span!("smtp_client", peer = %addr, server_name = %server_name);
        let result = establish(addr, server_name, cfg, tls)
            .instrument(span.clone())
            .await;
        span.in_scope(|| match &result {
            Ok((_, ext, info)) => tracing::info!(
                tls_version = info.as_ref().map(|i| i.version.as_str()),
                pipelining = ext.pipelining,
                "smtp session ready"
            ),
            Err(error) => tracing::info!(
                error = %error,
                permanent = error.is_permanent(),
                "smtp session failed"
            ),
        });
        let (wire, extensions, tls) = result?;
        Ok(SmtpConnection {
            wire,
            peer: addr,
            tls,
            extensions,
            cfg: cfg.clone(),
            span,
            usable: true,
            abandoned: false,
        })
    }
}

type Established = (Wire, Extensions, Option<TlsInfo>);

async fn establish(
    addr: SocketAddr,
    server_name: &str,
    cfg: &ClientConfig,
    policy: &TlsPolicy,
) -> Result<Established, ClientError> {
    if !is_valid_helo(&cfg.helo_name) {
        return Err(ClientError::protocol(
            Stage::Ehlo,
            ProtocolProblem::InvalidHeloName,
        ));
    }
    let tcp = open_tcp(addr, cfg).await?;
    let mut wire = Wire::new(Stream::Plain(tcp));
    greet(&mut wire, cfg).await?;
    let extensions = hello(&mut wire, cfg).await?;
    match policy {
        TlsPolicy::Disabled => Ok((wire, extensions, None)),
        TlsPolicy::Opportunistic(tls) => {
            starttls(wire, extensions, server_name, cfg, tls, false).await
        }
        TlsPolicy::Required(tls) => starttls(wire, extensions, server_name, cfg, tls, true).await,
    }
}

/// A domain or address literal without spaces or control characters.
fn is_valid_helo(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic())
}

async fn open_tcp(addr: SocketAddr, cfg: &ClientConfig) -> Result<TcpStream, ClientError> {
    match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(ClientError::Timeout {
            stage: Stage::Connect,
        }),
        Ok(Err(source)) => Err(ClientError::Connect { addr, source }),
        Ok(Ok(tcp)) => {
            // Latency matters more than segment count for a command/reply dialogue.
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

/// RFC 5321 §3.1, §4.3.2: 220 to go on; 554 (or anything else) ends the session.
async fn greet(wire: &mut Wire, cfg: &ClientConfig) -> Result<(), ClientError> {
    let greeting = wire.reply(Stage::Greeting, cfg.greeting_timeout).await?;
    if greeting.code == 220 {
        return Ok(());
    }
    // RFC 5321 §3.1: after a 554 greeting the client should send QUIT.
    quit_quietly(wire, cfg).await;
    Err(ClientError::Rejected(greeting))
}

/// EHLO, falling back to HELO when EHLO is refused with 5yz (RFC 5321 §4.1.1.1, §3.2).
pub(super) async fn hello(wire: &mut Wire, cfg: &ClientConfig) -> Result<Extensions, ClientError> {
    let timeout = cfg.command_timeout;
    let ehlo = format!("EHLO {}\r\n", cfg.helo_name);
    wire.send(ehlo.as_bytes(), Stage::Ehlo, timeout).await?;
    let reply = wire.reply(Stage::Ehlo, timeout).await?;
    if reply.code / 100 == 2 {
        return Ok(Extensions::from_ehlo(&reply));
    }
    if !reply.is_permanent() {
        quit_quietly(wire, cfg).await;
        return Err(ClientError::Rejected(reply));
    }
    let helo = format!("HELO {}\r\n", cfg.helo_name);
    wire.send(helo.as_bytes(), Stage::Ehlo, timeout).await?;
    let reply = wire.reply(Stage::Ehlo, timeout).await?;
    if reply.code / 100 == 2 {
        return Ok(Extensions::default());
    }
    quit_quietly(wire, cfg).await;
    Err(ClientError::Rejected(reply))
}

/// RFC 3207: STARTTLS, handshake with the caller's config, discard pre-TLS state, EHLO again.
async fn starttls(
    mut wire: Wire,
    extensions: Extensions,
    server_name: &str,
    cfg: &ClientConfig,
    tls: &Arc<rustls::ClientConfig>,
    required: bool,
) -> Result<Established, ClientError> {
    if !extensions.starttls {
        if required {
            quit_quietly(&mut wire, cfg).await;
            return Err(ClientError::TlsRequired);
        }
        tracing::debug!("starttls not offered, continuing in plaintext");
        return Ok((wire, extensions, None));
    }
    wire.send(b"STARTTLS\r\n", Stage::StartTls, cfg.command_timeout)
        .await?;
    let reply = wire.reply(Stage::StartTls, cfg.command_timeout).await?;
    if reply.code != 220 {
        tracing::info!(code = reply.code, required, "starttls refused");
        if required {
            quit_quietly(&mut wire, cfg).await;
            return Err(ClientError::TlsRequired);
        }
        return Ok((wire, extensions, None));
    }
    // RFC 3207 §4.2 (and CVE-2011-0411 in reverse): nothing read before the handshake may be
    // taken as a post-TLS reply.
    let ahead = wire.discard_buffered();
    if ahead > 0 {
        tracing::warn!(
            bytes = ahead,
            "server sent data ahead of the tls handshake; discarded"
        );
    }
    let stream = handshake(wire.into_stream(), server_name, cfg, tls).await?;
    let info = tls_info(&stream);
    tracing::debug!(version = %info.version, cipher = %info.cipher, "tls established");
    let mut wire = Wire::new(Stream::Tls(Box::new(stream)));
    // RFC 3207 §4.2: forget what EHLO said before TLS and ask again.
    let extensions = hello(&mut wire, cfg).await?;
    Ok((wire, extensions, Some(info)))
}

async fn handshake(
    stream: Stream,
    server_name: &str,
    cfg: &ClientConfig,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| ClientError::Tls {
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let Stream::Plain(tcp) = stream else {
        return Err(ClientError::protocol(
            Stage::StartTls,
            ProtocolProblem::Unusable,
        ));
    };
    let connector = TlsConnector::from(tls.clone());
    match tokio::time::timeout(cfg.command_timeout, connector.connect(name, tcp)).await {
        Err(_) => Err(ClientError::Timeout {
            stage: Stage::TlsHandshake,
        }),
        Ok(Err(source)) => Err(ClientError::Tls { source }),
        Ok(Ok(stream)) => Ok(stream),
    }
}

fn tls_info(stream: &TlsStream<TcpStream>) -> TlsInfo {
    let (_, connection) = stream.get_ref();
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher = connection
        .negotiated_cipher_suite()
        .map(|suite| {
            let id = suite.suite();
            id.as_str().map_or_else(|| format!("{id:?}"), str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let peer_cert_sha256 = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| hex::encode(Sha256::digest(leaf.as_ref())));
    TlsInfo {
        version,
        cipher,
        peer_cert_sha256,
    }
}

/// QUIT with a short bound, ignoring the outcome: the session is being abandoned anyway.
pub(super) async fn quit_quietly(wire: &mut Wire, cfg: &ClientConfig) {
    let limit = cfg.command_timeout.min(std::time::Duration::from_secs(5));
    if wire.send(b"QUIT\r\n", Stage::Quit, limit).await.is_ok() {
        let _ = wire.reply(Stage::Quit, limit).await;
    }
    let _ = tokio::time::timeout(limit, tokio::io::AsyncWriteExt::shutdown(&mut wire.stream)).await;
}
