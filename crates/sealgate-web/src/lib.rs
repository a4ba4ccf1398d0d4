//! The listener of Sealgate's web servers (the secure portal, the REST API): HTTPS with rustls
//! (aws-lc-rs, TLS 1.2 and 1.3) when a certificate is configured, plain HTTP otherwise (behind a
//! TLS-terminating proxy); bounded connections, handshake and header timeouts, and graceful
//! shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// What can go wrong setting a listener up.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The certificate or key could not be loaded.
    #[error("TLS file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS configuration was refused by rustls.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;
/// Longest TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a request's headers (slow clients cannot hold connections).
const HEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// A bound listener, ready to [`run_app`].
pub struct WebListener {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    /// The address actually bound (port 0 resolved).
    pub local_addr: SocketAddr,
}

impl std::fmt::Debug for WebListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebListener")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl WebListener {
    /// True when it serves HTTPS itself.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Loads the certificate chain and key (`None`: plain HTTP behind a proxy) and binds `addr`:
/// the listener of any of Sealgate's web servers (the portal, the API).
pub async fn bind(
    addr: SocketAddr,
    tls: Option<&(PathBuf, PathBuf)>,
) -> Result<WebListener, WebError> {
    let tls = match tls {
        Some((cert, key)) => Some(acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    Ok(WebListener {
        listener,
        tls,
        local_addr,
    })
}

/// Loads the certificate chain and key as [`bind`] does, without binding (`config check`).
pub fn check_tls(cert_file: &Path, key_file: &Path) -> Result<(), WebError> {
    acceptor(cert_file, key_file).map(drop)
}

fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, WebError> {
    let bad = |path: &Path, reason: String| WebError::TlsFile {
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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener`: bounded connections, handshake
/// and header timeouts, and `grace` for open requests after `shutdown` turns true.
pub async fn run_app(
    app: Router,
    listener: WebListener,
    grace: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            a = listener.listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!(error = %e, "web accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (app, tls, watcher) = (app.clone(), listener.tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            connection(tcp, peer, tls, app, watcher).await;
            drop(permit);
        });
    }
    drop(listener);
    info!(
        open = graceful.count(),
        "web listener closed, finishing open requests"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("web connections still open after the grace period; closing them");
    }
}

/// One connection: the TLS handshake (when configured), then HTTP/1.1 or HTTP/2.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    watcher: Watcher,
) {
    // The peer, for handlers and guards (`ConnectInfo<SocketAddr>`).
    let app = app.layer(axum::Extension(ConnectInfo(peer)));
    match tls {
        None => http(tcp, app, watcher).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
        {
            Ok(Ok(stream)) => http(stream, app, watcher).await,
            Ok(Err(e)) => debug!(peer = %peer, error = %e, "web TLS handshake failed"),
            Err(_) => debug!(peer = %peer, "web TLS handshake timed out"),
        },
    }
}

async fn http<I>(io: I, app: Router, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let service = TowerToHyperService::new(app);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        debug!(error = %e, "web connection ended with an error");
    }
}
