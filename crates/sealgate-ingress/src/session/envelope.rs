//! MAIL and RCPT: the envelope of a transaction.

use sealgate_smtp_proto::{Body, MailParams, Path, Reply, ReversePath};
use sealgate_types::EmailAddress;
use tracing::{info, warn};

use super::{Conn, Next, Session, Transaction};
use crate::relay;

fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, Some((5, 5, 1)), text)
}

impl Session {
    pub(super) async fn mail(&mut self, conn: &mut Conn, from: ReversePath, params: MailParams) {
        let reply = match self.start_transaction(from, params).await {
            Ok(()) => Reply::new(250, Some((2, 1, 0)), "Sender ok"),
            Err(r) => r,
        };
        self.answer(conn, reply);
    }

    async fn start_transaction(
        &mut self,
        from: ReversePath,
        params: MailParams,
    ) -> Result<(), Reply> {
        if self.helo.is_none() {
            return Err(bad_sequence("Send EHLO or HELO first"));
        }
        if self.tx.is_some() {
            return Err(bad_sequence("Nested MAIL command; send RSET first"));
        }
        if let Some((key, _)) = params.other.first() {
            return Err(Reply::new(
                555,
                Some((5, 5, 4)),
                format!("MAIL parameter {} is not supported", truncate(key)),
            ));
        }
        if params.requiretls {
            self.check_requiretls()?;
        }
        if matches!(params.body, Some(Body::BinaryMime)) {
            // RFC 3030: BINARYMIME needs CHUNKING, which is not offered.
            return Err(Reply::new(
                555,
                Some((5, 5, 4)),
                "BODY=BINARYMIME is not supported",
            ));
        }
        if params.smtputf8 && !self.esmtp {
            return Err(Reply::new(555, Some((5, 5, 4)), "SMTPUTF8 needs EHLO"));
        }
        let limit = self.ctx.limits.max_message_size as u64;
        if params.size.is_some_and(|s| s > limit) {
            // RFC 1870 §6.3
            return Err(Reply::new(
                552,
                Some((5, 3, 4)),
                "Message size exceeds fixed maximum message size",
            ));
        }
        let sender = match &from {
            ReversePath::Null => None,
            ReversePath::Path(p) => Some(relay::check_sender(p, params.smtputf8)?),
        };
        self.check_envelope_sender(sender.as_ref()).await?;
        self.tx = Some(Transaction {
            sender,
            smtputf8: params.smtputf8,
            requiretls: params.requiretls,
            recipients: Vec::new(),
            returns: Vec::new(),
            tenant: None,
        });
        Ok(())
    }

    /// REQUIRETLS (RFC 8689 §4.1) may only be used where it is offered: after EHLO in a TLS
    /// session. Without TLS the reply is 530 5.7.10 (RFC 5248: encryption needed).
    fn check_requiretls(&self) -> Result<(), Reply> {
        if self.info.tls.is_none() {
            return Err(Reply::new(530, Some((5, 7, 10)), "REQUIRETLS needs TLS"));
        }
        if !self.esmtp {
            return Err(Reply::new(555, Some((5, 5, 4)), "REQUIRETLS needs EHLO"));
        }
        Ok(())
    }

    pub(super) fn rcpt(
        &mut self,
        conn: &mut Conn,
        to: Path,
        params: Vec<(String, Option<String>)>,
    ) {
        let reply = match self.add_recipient(&to, &params) {
            Ok(()) => Reply::new(250, Some((2, 1, 5)), "Recipient ok"),
            Err(r) => {
                info!(rcpt = %truncate(&to.address()), code = r.code, "recipient refused");
                r
            }
        };
        self.answer(conn, reply);
    }

    fn add_recipient(
        &mut self,
        to: &Path,
        params: &[(String, Option<String>)],
    ) -> Result<(), Reply> {
        let Some(smtputf8) = self.tx.as_ref().map(|tx| tx.smtputf8) else {
            return Err(bad_sequence("Send MAIL first"));
        };
        if let Some(paths) = self.ctx.queue.returns().cloned()
            && !to.quoted
            && paths.is_ours(&to.address())
        {
            return self.add_return(&paths, to, params);
        }
        if self.tx.as_ref().is_some_and(|tx| !tx.returns.is_empty()) {
            return Err(alone());
        }
        let postmaster = self.postmaster_route(to);
        let authenticated = self.auth_user.is_some();
        let may_relay = relay::may_relay(self.info.peer.ip(), &self.ctx.relay, authenticated);
        let mut tenant = None;
        if postmaster.is_none() && !may_relay {
            // A cloud tenant's connection factors, if any tenant's hold; its message factors
            // are checked at the end of DATA.
            match self
                .ctx
                .tenants
                .at_connection(self.info.peer.ip(), self.info.client_cert.as_ref())
            {
                Ok(candidates) => tenant = Some(candidates),
                Err(Some(refusal)) => {
                    info!(tenant = %refusal.tenant, factor = %refusal.factor, "relay refused: tenant factor missing");
                    return Err(relay::tenant_denied(&refusal.factor));
                }
                Err(None) => return Err(relay::relay_denied()),
            }
        }
        no_rcpt_params(params)?;
        let rcpt = match postmaster {
            Some(routed) => routed?,
            None => relay::check_recipient(to, smtputf8)?,
        };
        let max = self.ctx.limits.max_recipients;
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| bad_sequence("Send MAIL first"))?;
        if tx.recipients.contains(&rcpt) {
            return Ok(());
        }
        if tx.recipients.len() >= max {
            // RFC 5321 §4.5.3.1.10: the right reply to too many recipients is 452; the client
            // sends the rest in another transaction.
            return Err(Reply::new(452, Some((4, 5, 3)), "Too many recipients"));
        }
        if tenant.is_some() {
            tx.tenant = tenant;
        }
        tx.recipients.push(rcpt);
        Ok(())
    }

    /// A recipient in the return-path domain: a bounce for one of ours, from anyone. Its
    /// token must check (a forged or mangled one is refused with 550 and audited); it never
    /// shares a transaction with other recipients (452: the client sends those apart).
    fn add_return(
        &mut self,
        paths: &sealgate_queue::returns::ReturnPaths,
        to: &Path,
        params: &[(String, Option<String>)],
    ) -> Result<(), Reply> {
        let address = to.address();
        no_rcpt_params(params)?;
        let rid = match paths.recipient_of(&address) {
            Ok(rid) => rid,
            Err(why) => {
                info!(rcpt = %truncate(&address), reason = why, "bounce refused: not a return path of ours");
                let record = sealgate_audit::AuditEvent::BounceIgnored {
                    message_id: None,
                    recipient: None,
                    address: truncate(&address),
                    reason: why.to_owned(),
                    client_ip: self.info.peer.ip().to_string(),
                }
                .into_record();
                let store = self.ctx.store.clone();
                tokio::spawn(async move {
                    if let Err(e) = store.append_audit(&record).await {
                        warn!(error = %e, "recording a refused bounce failed");
                    }
                });
                return Err(Reply::new(550, Some((5, 1, 1)), "No such return path"));
            }
        };
        let max = self.ctx.limits.max_recipients;
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| bad_sequence("Send MAIL first"))?;
        if !tx.recipients.is_empty() {
            return Err(alone());
        }
        if tx
            .returns
            .iter()
            .any(|(a, _)| a.eq_ignore_ascii_case(&address))
        {
            return Ok(());
        }
        if tx.returns.len() >= max {
            return Err(Reply::new(452, Some((4, 5, 3)), "Too many recipients"));
        }
        tx.returns.push((address, rid));
        Ok(())
    }

    /// RFC 5321 §4.5.1: `<Postmaster>` (any case, no domain) must be accepted. It goes to the
    /// operator address (`smtp.postmaster`), as does `postmaster@<our hostname>` when one is
    /// configured, from any client: such a recipient can reach only that address, so it
    /// opens no relay. `None`: not a postmaster recipient of this relay.
    fn postmaster_route(&self, to: &Path) -> Option<Result<EmailAddress, Reply>> {
        let ours = !to.quoted
            && to.source_route.is_none()
            && to.local.eq_ignore_ascii_case("postmaster")
            && to.domain.eq_ignore_ascii_case(&self.ctx.hostname);
        let bare = to.domain.is_empty();
        if !bare && !ours {
            return None;
        }
        match &self.ctx.postmaster {
            Some(operator) => {
                info!(rcpt = %operator, "postmaster recipient routed to the operator address");
                Some(Ok(operator.clone()))
            }
            None if bare => Some(Err(Reply::new(
                550,
                Some((5, 1, 1)),
                "No postmaster address is configured on this relay",
            ))),
            // Without an operator address, postmaster@<our hostname> is an ordinary address.
            None => None,
        }
    }

    pub(super) fn data_command(&mut self, conn: &mut Conn) -> Next {
        match &self.tx {
            None => self.answer(conn, bad_sequence("Send MAIL first")),
            // RFC 2920 §3.1: after pipelined RCPTs that all failed, DATA gets 554.
            Some(tx) if tx.recipients.is_empty() && tx.returns.is_empty() => {
                self.answer(
                    conn,
                    Reply::new(554, Some((5, 5, 1)), "No valid recipients"),
                );
            }
            Some(_) => {
                conn.reply(&Reply::new(354, None, "End data with <CR><LF>.<CR><LF>"));
                return Next::Data;
            }
        }
        Next::Continue
    }
}

/// No RCPT parameter is supported (555 5.5.4 names the first one given).
fn no_rcpt_params(params: &[(String, Option<String>)]) -> Result<(), Reply> {
    match params.first() {
        Some((key, _)) => Err(Reply::new(
            555,
            Some((5, 5, 4)),
            format!("RCPT parameter {} is not supported", truncate(key)),
        )),
        None => Ok(()),
    }
}

/// A return path and other recipients in one transaction: RFC 5321 §4.5.3.1.10's 452 makes
/// the client send the rest in another.
fn alone() -> Reply {
    Reply::new(
        452,
        Some((4, 5, 3)),
        "Return paths and other recipients go in separate transactions",
    )
}

/// Client text echoed in a reply or log is cut short.
fn truncate(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}
