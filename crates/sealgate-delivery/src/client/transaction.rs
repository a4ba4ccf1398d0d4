//! One mail transaction: MAIL, RCPT per recipient, DATA, message (RFC 5321 §3.3), pipelined per
//! RFC 2920 when the server offers it, RSET after a failure so the session stays reusable.

use std::fmt::Write as _;

use sealgate_smtp_proto::Reply;
use tracing::Instrument;

use super::connect::quit_quietly;
use super::encode::{EncodedMessage, check_address, encode_message};
use super::error::{ClientError, ProtocolProblem, Stage};
use super::{Envelope, SmtpConnection, TransactionResult};

/// Commands per pipelined write: bounded so neither side's buffers can fill up and deadlock
/// while the other is still writing (RFC 2920 §3.3).
const PIPELINE_BATCH: usize = 50;

/// The replies up to and including DATA.
struct Exchange {
    mail: Reply,
    rcpts: Vec<(String, Reply)>,
    data_command: Option<Reply>,
}

impl Exchange {
    fn any_accepted(&self) -> bool {
        self.mail.is_positive() && self.rcpts.iter().any(|(_, r)| r.is_positive())
    }
}

impl SmtpConnection {
    /// Runs one transaction for `env` with `message` (RFC 5322 bytes, CRLF line endings only).
    ///
    /// Per-recipient refusals are results, not errors. An `Err` means the message was not
    /// sent (or its fate is unknown, e.g. a timeout after the message), and the connection
    /// should be dropped unless [`SmtpConnection::is_usable`] says otherwise. (Delivery sends
    /// with [`SmtpConnection::send_cleared`]; the client's own tests use this.)
    #[cfg(test)]
    pub(crate) async fn send(
        &mut self,
        env: &Envelope,
        message: &[u8],
    ) -> Result<TransactionResult, ClientError> {
        self.send_cleared(env, message, std::future::ready(Ok(())))
            .await
    }

    /// Like [`SmtpConnection::send`], but the message data goes out only once `clearance`
    /// resolves to `Ok`. It runs alongside the MAIL/RCPT/DATA exchange, so it costs no round
    /// trip of its own. When it resolves to `Err(reason)`, no byte of the message is sent:
    /// an open data phase is abandoned by dropping the connection (a lone "." would deliver
    /// an empty message), and the result is [`ClientError::NotCleared`].
    pub(crate) async fn send_cleared<F>(
        &mut self,
        env: &Envelope,
        message: &[u8],
        clearance: F,
    ) -> Result<TransactionResult, ClientError>
    where
        F: Future<Output = Result<(), String>>,
    {
        if !self.usable {
            return Err(ClientError::protocol(
                Stage::Mail,
                ProtocolProblem::Unusable,
            ));
        }
        let (mail_command, encoded) = self.prepare(env, message)?;
        let span = self.span.clone();
        let result = self
            .transact(env, &mail_command, &encoded, clearance)
            .instrument(span)
            .await;
        if result.is_err() {
            self.usable = false;
        }
        result
    }

    /// Checks what can be checked before anything is sent, and builds the MAIL command.
    fn prepare(
        &self,
        env: &Envelope,
        message: &[u8],
    ) -> Result<(String, EncodedMessage), ClientError> {
        let invalid = |problem| ClientError::protocol(Stage::Mail, problem);
        check_address(&env.sender, true).map_err(invalid)?;
        if env.recipients.is_empty() {
            return Err(invalid(ProtocolProblem::NoRecipients));
        }
        for rcpt in &env.recipients {
            check_address(rcpt, false).map_err(invalid)?;
        }
        let encoded = encode_message(message).map_err(|p| ClientError::protocol(Stage::Data, p))?;
        let ext = &self.extensions;
        // RFC 8689 §4.2.1: a REQUIRETLS message goes only over TLS to a server that offers
        // REQUIRETLS (a server offering it in plaintext is not believed).
        if env.requiretls && (self.tls.is_none() || !ext.requiretls) {
            return Err(ClientError::RequireTlsUnsupported);
        }
        // RFC 6531 §3.4: UTF-8 in an address or in the header section needs SMTPUTF8.
        let needs_smtputf8 = !env.sender.is_ascii()
            || env.recipients.iter().any(|r| !r.is_ascii())
            || encoded.utf8_headers;
        if needs_smtputf8 && !ext.smtputf8 {
            return Err(ClientError::NeedsSmtputf8);
        }
        if let Some(limit) = ext.size_limit()
            && encoded.size > limit
        {
            return Err(ClientError::TooBig { limit });
        }
        let mut mail = format!("MAIL FROM:<{}>", env.sender);
        if ext.size.is_some() {
            let _ = write!(mail, " SIZE={}", encoded.size);
        }
        if encoded.eight_bit && ext.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if needs_smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if env.requiretls {
            mail.push_str(" REQUIRETLS");
        }
        mail.push_str("\r\n");
        Ok((mail, encoded))
    }

    async fn transact(
        &mut self,
        env: &Envelope,
        mail: &str,
        encoded: &EncodedMessage,
        clearance: impl Future<Output = Result<(), String>>,
    ) -> Result<TransactionResult, ClientError> {
        let pipelining = self.extensions.pipelining;
        let exchange = async {
            if pipelining {
                self.pipelined(env, mail).await
            } else {
                self.lockstep(env, mail).await
            }
        };
        let (exchange, cleared) = tokio::join!(exchange, clearance);
        let exchange = exchange?;
        if let Err(reason) = cleared {
            tracing::warn!(reason = %reason, "message not cleared to send; connection dropped");
            self.abandoned = true;
            return Err(ClientError::NotCleared(reason));
        }
        let data = self.finish_data(&exchange, encoded).await?;
        let result = TransactionResult {
            mail: exchange.mail,
            rcpts: exchange.rcpts,
            data,
        };
        let accepted = result.rcpts.iter().filter(|(_, r)| r.is_positive()).count();
        tracing::info!(
            mail = result.mail.code,
            rcpts = result.rcpts.len(),
            accepted,
            data = result.data.as_ref().map(|r| r.code),
            "smtp transaction finished"
        );
        self.after_transaction(&result).await;
        Ok(result)
    }

    /// RFC 2920: MAIL, every RCPT and DATA in (batched) writes, then the replies in order.
    async fn pipelined(&mut self, env: &Envelope, mail: &str) -> Result<Exchange, ClientError> {
        let mut commands: Vec<(Stage, String)> = Vec::with_capacity(env.recipients.len() + 2);
        commands.push((Stage::Mail, mail.to_owned()));
        for rcpt in &env.recipients {
            commands.push((Stage::Rcpt, format!("RCPT TO:<{rcpt}>\r\n")));
        }
        commands.push((Stage::Data, "DATA\r\n".to_owned()));
        let timeout = self.cfg.command_timeout;
        let mut replies = Vec::with_capacity(commands.len());
        for batch in commands.chunks(PIPELINE_BATCH) {
            let bytes: String = batch.iter().map(|(_, c)| c.as_str()).collect();
            let stage = batch[0].0;
            self.wire.send(bytes.as_bytes(), stage, timeout).await?;
            for (stage, _) in batch {
                replies.push(self.wire.reply(*stage, timeout).await?);
            }
        }
        let mut replies = replies.into_iter();
        let mail = replies.next().unwrap_or_else(super::no_reply);
        let rcpts = env
            .recipients
            .iter()
            .cloned()
            .zip(replies.by_ref())
            .collect();
        Ok(Exchange {
            mail,
            rcpts,
            data_command: replies.next(),
        })
    }

    /// One command, one reply; stops early when MAIL fails or no recipient was accepted.
    async fn lockstep(&mut self, env: &Envelope, mail: &str) -> Result<Exchange, ClientError> {
        let mail = self.command(mail, Stage::Mail).await?;
        let mut exchange = Exchange {
            mail,
            rcpts: Vec::with_capacity(env.recipients.len()),
            data_command: None,
        };
        if !exchange.mail.is_positive() {
            return Ok(exchange);
        }
        for rcpt in &env.recipients {
            let reply = self
                .command(&format!("RCPT TO:<{rcpt}>\r\n"), Stage::Rcpt)
                .await?;
            exchange.rcpts.push((rcpt.clone(), reply));
        }
        if exchange.any_accepted() {
            exchange.data_command = Some(self.command("DATA\r\n", Stage::Data).await?);
        }
        Ok(exchange)
    }

    async fn command(&mut self, line: &str, stage: Stage) -> Result<Reply, ClientError> {
        let timeout = self.cfg.command_timeout;
        self.wire.send(line.as_bytes(), stage, timeout).await?;
        self.wire.reply(stage, timeout).await
    }

    /// After the DATA command's reply: send the message, or close an unwanted data phase.
    async fn finish_data(
        &mut self,
        exchange: &Exchange,
        encoded: &EncodedMessage,
    ) -> Result<Option<Reply>, ClientError> {
        let Some(data_command) = &exchange.data_command else {
            return Ok(None);
        };
        let accepted = exchange.any_accepted();
        if data_command.code != 354 {
            if data_command.is_positive() {
                let problem = ProtocolProblem::UnexpectedReply(data_command.code);
                return Err(ClientError::protocol(Stage::Data, problem));
            }
            return Ok(accepted.then(|| data_command.clone()));
        }
        if !accepted {
            // RFC 2920 §3.1: DATA was accepted though no recipient was; end the empty data phase
            // with a lone "." and ignore the reply.
            let timeout = self.cfg.command_timeout;
            self.wire.send(b".\r\n", Stage::DataEnd, timeout).await?;
            let reply = self.wire.reply(Stage::DataEnd, timeout).await?;
            tracing::debug!(code = reply.code, "empty data phase closed");
            return Ok(None);
        }
        let timeout = self.cfg.data_timeout;
        self.wire
            .send(&encoded.wire, Stage::DataEnd, timeout)
            .await?;
        Ok(Some(self.wire.reply(Stage::DataEnd, timeout).await?))
    }

    /// RSET after a failed transaction; a 421 anywhere means the server is closing.
    async fn after_transaction(&mut self, result: &TransactionResult) {
        let replies = std::iter::once(&result.mail)
            .chain(result.rcpts.iter().map(|(_, r)| r))
            .chain(result.data.iter());
        if replies.clone().any(|r| r.code == 421) {
            self.usable = false;
            return;
        }
        let delivered = result.data.as_ref().is_some_and(|r| r.code / 100 == 2);
        if delivered {
            return;
        }
        match self.command("RSET\r\n", Stage::Rset).await {
            Ok(reply) if reply.is_positive() => {}
            Ok(reply) => {
                tracing::info!(code = reply.code, "rset refused; connection retired");
                self.usable = false;
            }
            Err(error) => {
                tracing::info!(error = %error, "rset failed; connection retired");
                self.usable = false;
            }
        }
    }

    /// Sends RSET (RFC 5321 §4.1.1.5) before reusing an idle connection: true when the server
    /// answered 250, so a connection the server dropped while idle is never used for a message.
    pub(crate) async fn reset(&mut self) -> bool {
        if !self.usable {
            return false;
        }
        match self.command("RSET\r\n", Stage::Rset).await {
            Ok(reply) if reply.is_positive() => true,
            _ => {
                self.usable = false;
                false
            }
        }
    }

    /// Ends the session politely (QUIT, then TLS close_notify), ignoring failures; after an
    /// abandoned data phase it only closes the connection, so the server discards what it has.
    pub(crate) async fn quit(mut self) {
        if self.abandoned {
            tracing::debug!("smtp session dropped in an abandoned data phase");
            return;
        }
        let span = self.span.clone();
        async {
            quit_quietly(&mut self.wire, &self.cfg).await;
            tracing::debug!("smtp session closed");
        }
        .instrument(span)
        .await;
    }
}
