//! Outbound SMTP client (RFC 5321) over tokio and tokio-rustls.
//!
//! One [`SmtpConnection`] is one session with one MX host: [`SmtpConnection::connect`] runs the
//! greeting, EHLO (HELO as fallback), STARTTLS per [`TlsPolicy`] and EHLO again;
//! [`SmtpConnection::send`] runs one mail transaction and reports a reply per recipient, so a
//! refused recipient never aborts the others; several transactions may share a connection.
//!
//! What it guarantees:
//! - The message goes out CRLF-only and dot-stuffed; a bare CR or LF is refused, never normalised
//!   (the client side of SMTP smuggling).
//! - The caller's rustls `ClientConfig` is used as is, so DANE and MTA-STS verifiers plug in, and
//!   `TlsPolicy::Required` sends nothing when STARTTLS is missing or fails. There is no silent
//!   plaintext retry after a TLS failure: that decision belongs to the caller's policy.
//! - Every read and write has a timeout, every reply passes a strict parser.
//! - Logs carry the peer, the server name, stages and reply codes, never message content.

mod connect;
mod encode;
mod error;
mod extensions;
mod transaction;
mod wire;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sealgate_smtp_proto::Reply;
use sealgate_types::Outcome;

pub(crate) use error::ClientError;
pub(crate) use extensions::Extensions;

/// Session settings for the client side.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name we give in EHLO/HELO: our own host name.
    pub helo_name: String,
    /// Limit for the TCP connect.
    pub connect_timeout: Duration,
    /// Limit for the greeting (RFC 5321 §4.5.3.2.1: 5 minutes).
    pub greeting_timeout: Duration,
    /// Limit for every other command's reply and every write (RFC 5321 §4.5.3.2.2–5: 5 minutes,
    /// DATA initiation 2 minutes), the TLS handshake included.
    pub command_timeout: Duration,
    /// Limit for sending the message and for its final reply (RFC 5321 §4.5.3.2.6: 10 minutes).
    pub data_timeout: Duration,
}

impl ClientConfig {
    /// The RFC 5321 §4.5.3.2 timeouts with a 30 s connect limit.
    pub fn new(helo_name: impl Into<String>) -> ClientConfig {
        ClientConfig {
            helo_name: helo_name.into(),
            connect_timeout: Duration::from_secs(30),
            greeting_timeout: Duration::from_secs(5 * 60),
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// Whether and how to use STARTTLS (RFC 3207).
#[derive(Clone)]
pub enum TlsPolicy {
    /// STARTTLS when offered; plaintext when not offered or refused. A failed handshake is an
    /// error, not a plaintext retry.
    Opportunistic(Arc<rustls::ClientConfig>),
    /// STARTTLS must succeed or nothing is sent ([`ClientError::TlsRequired`] / [`ClientError::Tls`]).
    Required(Arc<rustls::ClientConfig>),
    /// Never (only for an explicit operator opt-out).
    Disabled,
}

impl std::fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsPolicy::Opportunistic(_) => "Opportunistic",
            TlsPolicy::Required(_) => "Required",
            TlsPolicy::Disabled => "Disabled",
        })
    }
}

/// What the TLS layer of a connection negotiated, for the audit "attempt" event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsInfo {
    /// e.g. "TLSv1.3".
    pub version: String,
    /// e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
    /// Lowercase hex SHA-256 of the server's leaf certificate (DER).
    pub peer_cert_sha256: Option<String>,
}

/// The envelope of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The reverse-path without angle brackets; "" is the null sender (bounces).
    pub sender: String,
    /// The forward-paths without angle brackets.
    pub recipients: Vec<String>,
    /// Send with REQUIRETLS (RFC 8689): only in a TLS session with a server that offers it,
    /// and with the option on MAIL FROM; otherwise [`ClientError::RequireTlsUnsupported`].
    pub requiretls: bool,
}

/// Every reply of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransactionResult {
    /// The reply to MAIL FROM.
    pub mail: Reply,
    /// The reply to each RCPT TO, in envelope order; empty when MAIL failed without pipelining
    /// (no RCPT was sent).
    pub rcpts: Vec<(String, Reply)>,
    /// The reply that settled the message for the accepted recipients: the final reply after
    /// the message, or the refusal of the DATA command itself. `None` when MAIL failed or no
    /// recipient was accepted.
    pub data: Option<Reply>,
}

impl TransactionResult {
    /// The outcome for `rcpt` (an address of the envelope), with the reply that decided it
    /// (the reply's class: see [`Outcome::of_reply_code`]). An address that was not part of
    /// the transaction counts as temporary.
    pub(crate) fn outcome_for(&self, rcpt: &str) -> (Outcome, Reply) {
        let decided = |reply: &Reply| (Outcome::of_reply_code(reply.code), reply.clone());
        if !self.mail.is_positive() {
            return decided(&self.mail);
        }
        let Some((_, reply)) = self.rcpts.iter().find(|(address, _)| address == rcpt) else {
            return (Outcome::Temporary, no_reply());
        };
        if !reply.is_positive() {
            return decided(reply);
        }
        match &self.data {
            Some(data) => decided(data),
            None => (Outcome::Temporary, no_reply()),
        }
    }
}

/// Stands in for a reply the server never gave.
fn no_reply() -> Reply {
    Reply::new(451, Some((4, 3, 0)), "no reply for this recipient")
}

/// An open SMTP session, greeted and (per policy) under TLS, ready for transactions.
pub(crate) struct SmtpConnection {
    wire: wire::Wire,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    extensions: Extensions,
    cfg: ClientConfig,
    span: tracing::Span,
    /// False once an error left the dialogue in an unknown state.
    usable: bool,
    /// A data phase was left open on purpose (the message was not cleared to go): ending the
    /// session must not send anything more, QUIT included, since it would be message data.
    abandoned: bool,
}

impl std::fmt::Debug for SmtpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConnection")
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .field("extensions", &self.extensions)
            .field("usable", &self.usable)
            .finish_non_exhaustive()
    }
}

impl SmtpConnection {
    /// What TLS negotiated, `None` for a plaintext session.
    pub(crate) fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The server's address.
    #[cfg(test)]
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// What the server offered in its last EHLO (after STARTTLS when TLS is on).
    #[cfg(test)]
    pub(crate) fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// False once an error (or a 421) left the session unusable; `send` then fails at once.
    pub(crate) fn is_usable(&self) -> bool {
        self.usable
    }
}
