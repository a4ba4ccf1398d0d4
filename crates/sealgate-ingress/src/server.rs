//! Listeners: bounded accept, connection limits, implicit TLS, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealgate_smtp_proto::Reply;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::limits::{ConnectionLimits, ConnectionPermit, LimitExceeded};
use crate::{Context, IngressContext, IngressError, Session, SessionInfo};

/// A bound listener, ready to serve.
#[derive(Debug)]
pub struct BoundListener {
    listener: TcpListener,
    /// True for implicit TLS (RFC 8314), false for plain with STARTTLS.
    pub implicit_tls: bool,
    /// The address actually bound (port 0 resolved).
    pub local_addr: SocketAddr,
}

impl BoundListener {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr, implicit_tls: bool) -> Result<Self, IngressError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| IngressError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| IngressError::Bind { addr, source })?;
        Ok(Self {
            listener,
            implicit_tls,
            local_addr,
        })
    }
}

type Sessions = Arc<Mutex<JoinSet<()>>>;

/// The SMTP server: all listeners sharing one context and one set of connection limits.
#[derive(Debug, Clone)]
pub struct Server {
    ctx: ContextSwap,
    limits: ConnectionLimits,
}

/// The context a new connection is given. A reload puts a new one in place: connections
/// accepted from then on use it (certificate, relay clients, limits), open sessions keep the
/// one they started with and are not dropped.
pub type ContextSwap = Arc<sealgate_types::Live<IngressContext>>;

impl Server {
    /// A server over `ctx` with `limits`.
    pub fn new(ctx: Context, limits: ConnectionLimits) -> Self {
        Self {
            ctx: Arc::new(sealgate_types::Live::new(ctx)),
            limits,
        }
    }

    /// Where a reload puts the new context.
    pub fn context_swap(&self) -> ContextSwap {
        self.ctx.clone()
    }

    /// Serves until `shutdown` turns true; then stops accepting, lets open sessions finish
    /// for up to `grace` (idle ones are told 421 at once), and ends the rest.
    pub async fn run(
        self,
        listeners: Vec<BoundListener>,
        shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let sessions: Sessions = Arc::new(Mutex::new(JoinSet::new()));
        let mut accept_loops = JoinSet::new();
        for l in listeners {
            let (server, sessions, shutdown) = (self.clone(), sessions.clone(), shutdown.clone());
            accept_loops.spawn(async move { server.accept_loop(l, sessions, shutdown).await });
        }
        while accept_loops.join_next().await.is_some() {}
        let mut open = std::mem::take(&mut *lock(&sessions));
        while open.try_join_next().is_some() {}
        info!(
            sessions = open.len(),
            grace_secs = grace.as_secs(),
            "listeners closed, draining sessions"
        );
        let drained =
            tokio::time::timeout(grace, async { while open.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(
                sessions = open.len(),
                "grace period over, closing remaining sessions"
            );
            open.shutdown().await;
        }
    }

    async fn accept_loop(
        self,
        l: BoundListener,
        sessions: Sessions,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|down| *down) => break,
                r = l.listener.accept() => r,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let mut set = lock(&sessions);
            while set.try_join_next().is_some() {}
            match self.limits.try_acquire(peer.ip()) {
                Ok(permit) => {
                    let span = info_span!("smtp", peer = %peer, tls_listener = l.implicit_tls);
                    let task = self.clone().session(
                        stream,
                        peer,
                        l.implicit_tls,
                        permit,
                        shutdown.clone(),
                    );
                    set.spawn(task.instrument(span));
                }
                Err(which) => {
                    let host = self.ctx.current().hostname.clone();
                    set.spawn(turn_away(stream, peer, which, host));
                }
            }
        }
        info!(addr = %l.local_addr, "listener closed");
    }

    async fn session(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
        _permit: ConnectionPermit,
        shutdown: watch::Receiver<bool>,
    ) {
        debug!("connection opened");
        // The whole session runs on the context of the moment it was accepted.
        let ctx = self.ctx.current();
        let mut info = SessionInfo {
            peer,
            tls: None,
            starttls_allowed: !implicit_tls,
            client_cert: None,
        };
        let stream: crate::io::BoxIo = if implicit_tls {
            let Some(tls) = ctx.tls.clone() else {
                return;
            };
            let handshake =
                tokio::time::timeout(ctx.limits.command_timeout, tls.acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => {
                    let hs = crate::tls::Handshake::of(stream.get_ref().1, &tls);
                    info.tls = Some(hs.description);
                    info.client_cert = hs.client_cert;
                    Box::new(stream)
                }
                Ok(Err(e)) => return debug!(error = %e, "tls handshake failed"),
                Err(_) => return debug!("tls handshake timed out"),
            }
        } else {
            Box::new(stream)
        };
        Session::new(ctx, info).run(stream, shutdown).await;
        debug!("connection closed");
    }
}

fn lock(s: &Sessions) -> std::sync::MutexGuard<'_, JoinSet<()>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers a connection over a limit with 421 (RFC 5321 §3.1) and closes it.
async fn turn_away(mut stream: TcpStream, peer: SocketAddr, which: LimitExceeded, host: String) {
    warn!(peer = %peer, limit = ?which, "connection refused: limit reached");
    let text = match which {
        LimitExceeded::Total => format!("{host} Too many connections, try again later"),
        LimitExceeded::PerIp => {
            format!("{host} Too many connections from your address, try again later")
        }
    };
    let reply = Reply::new(421, Some((4, 7, 0)), text);
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&reply.to_bytes())).await;
    let _ = stream.shutdown().await;
}
