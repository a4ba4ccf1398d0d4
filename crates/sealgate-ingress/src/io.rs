//! The byte stream under a session: buffered input, batched replies, and the TLS upgrade.
//!
//! Replies are queued and written only when the session is about to wait for input, which is
//! what PIPELINING (RFC 2920) needs and never leaves a client waiting on an unsent reply.

use std::time::Duration;

use sealgate_smtp_proto::{LineError, Reply, find_line};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// Anything a session can run over: TCP, TLS over TCP, or an in-memory duplex in tests.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream.
pub(crate) type BoxIo = Box<dyn Io>;

/// Room made for each read: one TLS record's worth.
const READ_CHUNK: usize = 16 * 1024;
/// An empty input buffer larger than this is given back before waiting, so thousands of idle
/// sessions do not each keep the buffer of the largest message they once sent.
const IDLE_KEEP: usize = 2 * READ_CHUNK;

/// What waiting for input produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    /// More bytes are in the input buffer.
    Data,
    /// The peer closed the connection.
    Eof,
    /// Nothing arrived in time.
    Timeout,
    /// The server is shutting down (only while idle between commands).
    Shutdown,
}

pub(crate) struct Conn {
    stream: BoxIo,
    inbuf: Vec<u8>,
    out: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(stream: BoxIo) -> Self {
        Self {
            stream,
            inbuf: Vec::new(),
            out: Vec::with_capacity(1024),
        }
    }

    /// Queues a reply; it is written at the next flush.
    pub(crate) fn reply(&mut self, reply: &Reply) {
        self.out.extend_from_slice(&reply.to_bytes());
    }

    /// Writes queued replies.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.stream.flush().await
    }

    /// Flushes, then waits until `deadline` for more input. While `shutdown` is given and
    /// fires, returns [`Filled::Shutdown`] instead.
    ///
    /// The deadline is the caller's, not restarted by each read: a client that trickles one
    /// byte at a time cannot stretch a command past its timeout (RFC 5321 §4.5.3.2).
    pub(crate) async fn fill(
        &mut self,
        deadline: Instant,
        shutdown: Option<&mut watch::Receiver<bool>>,
    ) -> std::io::Result<Filled> {
        self.flush().await?;
        if self.inbuf.is_empty() && self.inbuf.capacity() > IDLE_KEEP {
            self.inbuf = Vec::new();
        }
        // Read straight into the input buffer's spare room: no per-read allocation.
        self.inbuf.reserve(READ_CHUNK);
        let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.inbuf));
        let n = match shutdown {
            Some(rx) if *rx.borrow() => return Ok(Filled::Shutdown),
            Some(rx) => tokio::select! {
                r = read => r,
                _ = rx.wait_for(|down| *down) => return Ok(Filled::Shutdown),
            },
            None => read.await,
        };
        match n {
            Err(_) => Ok(Filled::Timeout),
            Ok(Ok(0)) => Ok(Filled::Eof),
            Ok(Ok(_)) => Ok(Filled::Data),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Takes one complete CRLF-terminated line (without the CRLF) from the input buffer.
    pub(crate) fn take_line(&mut self, max: usize) -> Result<Option<Vec<u8>>, LineError> {
        match find_line(&self.inbuf, max)? {
            Some(n) => {
                let mut line: Vec<u8> = self.inbuf.drain(..n).collect();
                line.truncate(n - 2);
                Ok(Some(line))
            }
            None => Ok(None),
        }
    }

    /// Drops input up to and including the next CRLF, for resynchronising after a line that
    /// was too long to keep. True when a CRLF was found; otherwise all input is dropped (but a
    /// final CR, which may be the first half of the CRLF).
    pub(crate) fn discard_line(&mut self) -> bool {
        if let Some(at) = self.inbuf.windows(2).position(|w| w == b"\r\n") {
            self.inbuf.drain(..at + 2);
            return true;
        }
        let keep = usize::from(self.inbuf.last() == Some(&b'\r'));
        let cut = self.inbuf.len() - keep;
        self.inbuf.drain(..cut);
        false
    }

    /// The unread input.
    pub(crate) fn input(&self) -> &[u8] {
        &self.inbuf
    }

    /// Drops the first `n` bytes of unread input.
    pub(crate) fn consume(&mut self, n: usize) {
        self.inbuf.drain(..n);
    }

    /// Writes queued replies, then upgrades to TLS. Input that arrived before the handshake
    /// (commands pipelined behind STARTTLS) is discarded unread: RFC 3207 §4.2, the
    /// CVE-2011-0411 command-injection class.
    pub(crate) async fn start_tls(
        mut self,
        tls: &crate::ServerTls,
        timeout: Duration,
    ) -> std::io::Result<(Conn, crate::tls::Handshake)> {
        self.flush().await?;
        let accept = tls.acceptor.accept(self.stream);
        let stream = tokio::time::timeout(timeout, accept).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "tls handshake timed out")
        })??;
        let hs = crate::tls::Handshake::of(stream.get_ref().1, tls);
        Ok((Conn::new(Box::new(stream)), hs))
    }

    /// Flushes and shuts the stream down.
    pub(crate) async fn close(mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}
