//! The connection under the SMTP dialogue: plain TCP or TLS, every read and write under a timeout,
//! replies framed by the strict [`ReplyParser`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use sealgate_smtp_proto::{Reply, ReplyParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::error::{ClientError, ProtocolProblem, Stage};

/// Plain TCP before STARTTLS, TLS after.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A stream plus the parser holding whatever the server sent that was not consumed yet.
pub(crate) struct Wire {
    pub(crate) stream: Stream,
    parser: ReplyParser,
}

impl Wire {
    pub(crate) fn new(stream: Stream) -> Wire {
        Wire {
            stream,
            parser: ReplyParser::new(),
        }
    }

    /// Writes `bytes` and flushes, within `limit`.
    pub(crate) async fn send(
        &mut self,
        bytes: &[u8],
        stage: Stage,
        limit: Duration,
    ) -> Result<(), ClientError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ClientError::Io { stage, source }),
            Err(_) => Err(ClientError::Timeout { stage }),
        }
    }

    /// Reads one complete reply within `limit`.
    pub(crate) async fn reply(
        &mut self,
        stage: Stage,
        limit: Duration,
    ) -> Result<Reply, ClientError> {
        match tokio::time::timeout(limit, self.read_reply(stage)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout { stage }),
        }
    }

    async fn read_reply(&mut self, stage: Stage) -> Result<Reply, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            let parsed = self
                .parser
                .next_reply()
                .map_err(|e| ClientError::protocol(stage, e))?;
            if let Some(reply) = parsed {
                tracing::debug!(stage = %stage, code = reply.code, "smtp reply");
                return Ok(reply);
            }
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|source| ClientError::Io { stage, source })?;
            if n == 0 {
                return Err(ClientError::protocol(stage, ProtocolProblem::ClosedByPeer));
            }
            self.parser.feed(&chunk[..n]);
        }
    }

    /// Drops anything the server sent that has not been read as a reply; returns how many bytes.
    pub(crate) fn discard_buffered(&mut self) -> usize {
        let buffered = self.parser.buffered();
        self.parser.clear();
        buffered
    }

    /// Takes the stream apart for the TLS handshake.
    pub(crate) fn into_stream(self) -> Stream {
        self.stream
    }
}
