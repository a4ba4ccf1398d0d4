//! What can go wrong on an outbound SMTP connection, and whether it is worth retrying.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use sealgate_smtp_proto::{Reply, ReplyError};

/// The step of the SMTP dialogue an error happened in (for timeouts, logs and audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// TCP connect.
    Connect,
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO or HELO.
    Ehlo,
    /// The STARTTLS command.
    StartTls,
    /// The TLS handshake after STARTTLS.
    TlsHandshake,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// The DATA command (waiting for 354).
    Data,
    /// Sending the message and waiting for the final reply.
    DataEnd,
    /// RSET after a failed transaction.
    Rset,
    /// QUIT.
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::StartTls => "starttls",
            Stage::TlsHandshake => "tls handshake",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::DataEnd => "end of data",
            Stage::Rset => "rset",
            Stage::Quit => "quit",
        })
    }
}

/// Why the client did not talk to the server as intended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProtocolProblem {
    /// The server's bytes are not a valid reply.
    #[error("malformed reply: {0}")]
    MalformedReply(#[from] ReplyError),
    /// The server closed the connection in the middle of a reply or before one.
    #[error("connection closed by the server")]
    ClosedByPeer,
    /// The message holds a CR not followed by LF; refused, never normalised (SMTP smuggling).
    #[error("bare cr in message")]
    BareCrInMessage,
    /// The message holds an LF not preceded by CR; refused, never normalised (SMTP smuggling).
    #[error("bare lf in message")]
    BareLfInMessage,
    /// An envelope address with a control character, `<` or `>`, or an empty recipient.
    #[error("invalid envelope address")]
    InvalidAddress,
    /// The configured EHLO name is empty or has spaces or control characters.
    #[error("invalid helo name")]
    InvalidHeloName,
    /// A reply code that makes no sense at this point (e.g. 250 to DATA).
    #[error("unexpected reply code {0}")]
    UnexpectedReply(u16),
    /// The transaction has no recipient.
    #[error("no recipients")]
    NoRecipients,
    /// An earlier failure left the connection in an unknown state.
    #[error("connection is no longer usable")]
    Unusable,
}

impl ProtocolProblem {
    /// Problems of the message or envelope itself: retrying cannot help.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::BareCrInMessage
                | Self::BareLfInMessage
                | Self::InvalidAddress
                | Self::NoRecipients
        )
    }
}

/// A failure of the connection or the session as a whole (per-recipient replies are not errors:
/// they are in [`super::TransactionResult`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The TCP connection could not be established.
    #[error("connect to {addr} failed")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The server did not answer (or accept our bytes) in time.
    #[error("timeout at {stage}")]
    Timeout {
        /// Where it happened.
        stage: Stage,
    },
    /// Reading or writing the connection failed.
    #[error("i/o error at {stage}")]
    Io {
        /// Where it happened.
        stage: Stage,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The dialogue went wrong (bad reply, or a message we refuse to send).
    #[error("protocol error at {stage}: {problem}")]
    Protocol {
        /// Where it happened.
        stage: Stage,
        /// What went wrong.
        problem: ProtocolProblem,
    },
    /// The TLS handshake failed (certificate verification included) or the name is unusable.
    #[error("tls handshake failed")]
    Tls {
        /// The rustls error, wrapped by tokio-rustls.
        #[source]
        source: io::Error,
    },
    /// TLS was required but STARTTLS was not offered or was refused: nothing was sent.
    #[error("tls required but starttls not available")]
    TlsRequired,
    /// The message or an address needs SMTPUTF8 (RFC 6531) and the server lacks it.
    #[error("message needs smtputf8, server does not offer it")]
    NeedsSmtputf8,
    /// The message was sent with REQUIRETLS (RFC 8689) and this session cannot carry it: it is
    /// not TLS, or the server does not offer REQUIRETLS. Nothing was sent.
    #[error("message requires tls (requiretls), session is not tls or server does not offer it")]
    RequireTlsUnsupported,
    /// The message is larger than the server's advertised SIZE (RFC 1870).
    #[error("message larger than the server limit of {limit} bytes")]
    TooBig {
        /// The advertised limit.
        limit: u64,
    },
    /// The greeting, EHLO/HELO or STARTTLS was refused with this reply.
    #[error("server refused the session: {0}")]
    Rejected(Reply),
    /// The message data was not cleared to go (the caller could not record that it was about
    /// to send it): nothing of the message was sent, and the connection was given up.
    #[error("message not sent: {0}")]
    NotCleared(String),
}

impl ClientError {
    /// True when retrying the same message with the same server cannot succeed. Unknown failures
    /// count as temporary.
    pub(crate) fn is_permanent(&self) -> bool {
        match self {
            // RFC 8689 §5: a REQUIRETLS message the next hop cannot take is not delivered.
            Self::NeedsSmtputf8 | Self::RequireTlsUnsupported | Self::TooBig { .. } => true,
            Self::Rejected(reply) => reply.is_permanent(),
            Self::Protocol { problem, .. } => problem.is_permanent(),
            // Below the TLS floor the caller defers or falls to the next method; never permanent here.
            Self::TlsRequired
            | Self::NotCleared(_)
            | Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Io { .. }
            | Self::Tls { .. } => false,
        }
    }

    pub(crate) fn protocol(stage: Stage, problem: impl Into<ProtocolProblem>) -> Self {
        Self::Protocol {
            stage,
            problem: problem.into(),
        }
    }
}
