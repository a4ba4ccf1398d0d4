//! One SMTP session (RFC 5321): the command loop and verb dispatch.
//!
//! Wire replies are fixed, generic texts; the detailed reason for a refusal goes to tracing
//! fields. Every early close is preceded by a reply that names the problem.

mod authflow;
mod data;
mod envelope;
mod senders;

use std::net::SocketAddr;

use sealgate_smtp_proto::{Command, LineError, Reply, parse_command};
use sealgate_types::EmailAddress;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Context;
use crate::io::{BoxIo, Conn, Filled};

/// RFC 5321 §4.5.3.1.4 allows extensions to lengthen command lines; 1000 octets incl. CRLF
/// is our limit for every command but AUTH.
const MAX_COMMAND_LINE: usize = 1000;
/// RFC 4954 §4: AUTH lines may be up to 12288 octets.
const MAX_AUTH_LINE: usize = 12288;

/// Facts about the connection a session runs on.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// "TLSv1.3 <cipher>" when the connection is already TLS (implicit TLS listener).
    pub tls: Option<String>,
    /// Whether STARTTLS may be offered (a plain listener with a certificate configured).
    pub starttls_allowed: bool,
    /// The certificate the client presented in the TLS handshake, checked against
    /// `[tls] client_ca_file` (clients are asked for one only when that is set).
    pub client_cert: Option<crate::ClientCert>,
}

/// The mail transaction between MAIL and the end of DATA.
#[derive(Debug)]
struct Transaction {
    /// `None` for the null reverse-path.
    sender: Option<EmailAddress>,
    smtputf8: bool,
    /// REQUIRETLS was given on MAIL FROM (RFC 8689).
    requiretls: bool,
    recipients: Vec<EmailAddress>,
    /// Return paths of ours (`[returns]`), each with the recipient row it names: a bounce,
    /// taken from anyone, never relayed. A transaction holds these or recipients, not both.
    returns: Vec<(String, i64)>,
    /// A recipient was let through RCPT for a cloud tenant whose connection factors hold: the
    /// message must then meet one of these tenants' message factors at the end of DATA.
    tenant: Option<crate::tenants::Candidates>,
}

/// What the dispatcher wants the loop to do next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    Close,
    StartTls,
    Data,
}

/// State of one SMTP session.
pub struct Session {
    ctx: Context,
    info: SessionInfo,
    helo: Option<String>,
    esmtp: bool,
    auth_user: Option<String>,
    sender_binding: Option<crate::senders::Binding>,
    /// The senders of the cloud tenant the message in hand was matched to (end of DATA).
    tenant_binding: Option<crate::senders::Binding>,
    auth_failures: u32,
    errors: u32,
    tx: Option<Transaction>,
}

impl Session {
    /// A session for a client connection.
    pub fn new(ctx: Context, info: SessionInfo) -> Self {
        Self {
            ctx,
            info,
            helo: None,
            esmtp: false,
            auth_user: None,
            sender_binding: None,
            tenant_binding: None,
            auth_failures: 0,
            errors: 0,
            tx: None,
        }
    }

    /// Runs the session to its end over `stream`. While idle between commands, a `true` on
    /// `shutdown` ends it with 421.
    pub async fn run(mut self, stream: BoxIo, mut shutdown: watch::Receiver<bool>) {
        let mut conn = Conn::new(stream);
        conn.reply(&Reply::new(
            220,
            None,
            format!("{} ESMTP Sealgate", self.ctx.hostname),
        ));
        loop {
            let Some(line) = self.read_command(&mut conn, &mut shutdown).await else {
                break;
            };
            let next = self.dispatch(&mut conn, &line).await;
            let next = match next {
                Next::Data => self.receive_data(&mut conn).await,
                other => other,
            };
            match next {
                Next::Continue | Next::Data => {}
                Next::Close => break,
                Next::StartTls => match self.start_tls(conn).await {
                    Some(c) => conn = c,
                    None => return,
                },
            }
            if self.errors >= self.ctx.limits.max_errors {
                self.too_many_errors(&mut conn);
                break;
            }
        }
        conn.close().await;
    }

    /// Reads one command line, answering and returning `None` when the session must end.
    ///
    /// The whole line must arrive within the command timeout (RFC 5321 §4.5.3.2.7), counted
    /// from when the server is ready for it: trickling bytes does not restart the clock.
    async fn read_command(
        &mut self,
        conn: &mut Conn,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + self.ctx.limits.command_timeout;
        loop {
            match conn.take_line(MAX_AUTH_LINE) {
                Ok(Some(line)) => return Some(line),
                Ok(None) => {}
                Err(LineError::TooLong) => {
                    if !self.skip_long_line(conn, deadline, shutdown).await {
                        return None;
                    }
                    continue;
                }
                Err(e) => {
                    self.refuse_line(conn, e);
                    return None;
                }
            }
            let filled = conn.fill(deadline, Some(shutdown)).await;
            if !self.still_open(conn, filled) {
                return None;
            }
        }
    }

    /// A command line longer than any we keep: answers 500 at once, drops the rest of the
    /// line when its CRLF arrives and goes on with the session (RFC 5321 §4.5.3.1.4 allows
    /// "500 Line too long"). False when the session must end.
    async fn skip_long_line(
        &mut self,
        conn: &mut Conn,
        deadline: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        info!("command line too long, skipping it");
        self.answer(conn, Reply::new(500, Some((5, 5, 2)), "Line too long"));
        if self.errors >= self.ctx.limits.max_errors {
            self.too_many_errors(conn);
            return false;
        }
        while !conn.discard_line() {
            let filled = conn.fill(deadline, Some(shutdown)).await;
            if !self.still_open(conn, filled) {
                return false;
            }
        }
        true
    }

    fn too_many_errors(&mut self, conn: &mut Conn) {
        warn!(errors = self.errors, "too many errors, closing session");
        conn.reply(&Reply::new(
            421,
            Some((4, 7, 0)),
            format!("{} Too many errors, closing connection", self.ctx.hostname),
        ));
    }

    /// Answers a line-framing violation. The connection is closed after it: after a bare CR or
    /// LF we cannot know where the client thinks the next command starts (SMTP smuggling).
    fn refuse_line(&mut self, conn: &mut Conn, e: LineError) {
        warn!(error = %e, "command line refused, closing session");
        let text = match e {
            LineError::BareLf | LineError::BareCr => {
                "Bare CR or LF in command; lines must end with CRLF"
            }
            LineError::TooLong => "Line too long",
        };
        conn.reply(&Reply::new(500, Some((5, 5, 2)), text));
    }

    /// Interprets the result of waiting for input; false when the session is over.
    fn still_open(&mut self, conn: &mut Conn, filled: std::io::Result<Filled>) -> bool {
        let host = &self.ctx.hostname;
        match filled {
            Ok(Filled::Data) => true,
            Ok(Filled::Eof) => {
                debug!("client closed the connection");
                false
            }
            Ok(Filled::Timeout) => {
                info!("session timed out");
                conn.reply(&Reply::new(
                    421,
                    Some((4, 4, 2)),
                    format!("{host} Timeout exceeded, closing connection"),
                ));
                false
            }
            Ok(Filled::Shutdown) => {
                conn.reply(&Reply::new(
                    421,
                    Some((4, 3, 2)),
                    format!("{host} Service shutting down, try again later"),
                ));
                false
            }
            Err(e) => {
                debug!(error = %e, "connection error");
                false
            }
        }
    }

    /// Queues `reply`, counting refusals toward the error limit.
    fn answer(&mut self, conn: &mut Conn, reply: Reply) {
        if reply.code >= 500 {
            self.errors += 1;
        }
        conn.reply(&reply);
    }

    async fn dispatch(&mut self, conn: &mut Conn, line: &[u8]) -> Next {
        let cmd = match parse_command(line) {
            Ok(cmd) => cmd,
            Err(e) => {
                debug!(error = %e, "command refused");
                self.answer(conn, e.reply());
                return Next::Continue;
            }
        };
        if line.len() + 2 > MAX_COMMAND_LINE && !matches!(cmd, Command::Auth { .. }) {
            self.answer(
                conn,
                Reply::new(500, Some((5, 5, 2)), "Command line too long"),
            );
            return Next::Continue;
        }
        match cmd {
            Command::Helo(name) => self.hello(conn, name, false),
            Command::Ehlo(name) => self.hello(conn, name, true),
            Command::Mail { from, params } => self.mail(conn, from, params).await,
            Command::Rcpt { to, params } => self.rcpt(conn, to, params),
            Command::Data => return self.data_command(conn),
            Command::Rset => {
                self.tx = None;
                conn.reply(&Reply::new(250, Some((2, 0, 0)), "Ok"));
            }
            Command::Noop => conn.reply(&Reply::new(250, Some((2, 0, 0)), "Ok")),
            Command::Quit => {
                conn.reply(&Reply::new(221, Some((2, 0, 0)), format!("{} Bye", self.ctx.hostname)));
                return Next::Close;
            }
            Command::Vrfy(_) => conn.reply(&Reply::new(252, Some((2, 5, 0)), "Cannot VRFY user, but will accept message and attempt delivery")),
            Command::Expn(_) => self.answer(conn, Reply::new(502, Some((5, 5, 1)), "EXPN is not supported")),
            Command::Help(_) => conn.reply(&Reply::new(214, Some((2, 0, 0)), "Sealgate secure relay: see RFC 5321; commands EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH")),
            Command::StartTls => return self.starttls_command(conn),
            Command::Auth { mechanism, initial_response } => {
                return self.auth(conn, &mechanism, initial_response).await;
            }
        }
        Next::Continue
    }

    fn hello(&mut self, conn: &mut Conn, name: String, esmtp: bool) {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction.
        self.tx = None;
        self.esmtp = esmtp;
        let host = &self.ctx.hostname;
        let greeting = format!("{host} Hello {name} [{}]", self.info.peer.ip());
        self.helo = Some(name);
        if !esmtp {
            conn.reply(&Reply::new(250, None, greeting));
            return;
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.ctx.limits.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.offers_starttls() {
            lines.push("STARTTLS".to_owned());
        }
        if self.info.tls.is_some() {
            // RFC 8689 §4.1: REQUIRETLS is offered only in a TLS-protected session.
            lines.push("REQUIRETLS".to_owned());
        }
        if self.info.tls.is_some() && self.auth_user.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        lines.push("HELP".to_owned());
        conn.reply(&Reply::multi(250, None, lines));
    }

    fn offers_starttls(&self) -> bool {
        self.info.starttls_allowed && self.info.tls.is_none() && self.ctx.tls.is_some()
    }

    fn starttls_command(&mut self, conn: &mut Conn) -> Next {
        if self.info.tls.is_some() {
            self.answer(
                conn,
                Reply::new(503, Some((5, 5, 1)), "TLS is already active"),
            );
        } else if !self.offers_starttls() {
            self.answer(
                conn,
                Reply::new(502, Some((5, 5, 1)), "STARTTLS is not offered here"),
            );
        } else {
            conn.reply(&Reply::new(220, Some((2, 0, 0)), "Ready to start TLS"));
            return Next::StartTls;
        }
        Next::Continue
    }

    async fn start_tls(&mut self, conn: Conn) -> Option<Conn> {
        let tls = self.ctx.tls.clone()?;
        let pending = conn.input().len();
        if pending > 0 {
            // Logged before the handshake: an injector rarely completes it.
            warn!(bytes = pending, "discarded input pipelined behind STARTTLS");
        }
        match conn.start_tls(&tls, self.ctx.limits.command_timeout).await {
            Ok((conn, hs)) => {
                info!(tls = %hs.description, client_cert = hs.client_cert.is_some(), "tls established");
                // RFC 3207 §4.2: forget everything learnt before the handshake.
                self.info.tls = Some(hs.description);
                self.info.client_cert = hs.client_cert;
                self.helo = None;
                self.esmtp = false;
                self.tx = None;
                Some(conn)
            }
            Err(e) => {
                info!(error = %e, "tls handshake failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod bytes_tests;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
