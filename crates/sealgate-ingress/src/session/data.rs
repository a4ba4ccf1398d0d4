//! DATA: receiving the message under strict framing, and the accept transaction.

use std::borrow::Cow;

use sealgate_audit::TenantMatch;
use sealgate_crypto::arc::{Arrival, RESULTS_FIELD, is_results_of};
use sealgate_queue::{IncomingMessage, data_digest, field_named};
use sealgate_smtp_proto::{DataDecoder, DataEvent, Reply};
use sealgate_types::MessageId;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{Conn, Next, Session};
use crate::io::Filled;
use crate::received::{Trace, header_message_id, hops};
use crate::senders::{Fields, header_fields};

/// RFC 5322 §2.1.1 / RFC 5321 §4.5.3.1.6: 1000 octets per line, CRLF included.
const MAX_DATA_LINE: usize = 1000;

impl Session {
    /// Reads the message after 354 and answers for it.
    pub(super) async fn receive_data(&mut self, conn: &mut Conn) -> Next {
        let mut decoder = DataDecoder::new(self.ctx.limits.max_message_size, MAX_DATA_LINE);
        // Each block has the data timeout (RFC 5321 §4.5.3.2.5), and the whole message a
        // ceiling, so a client cannot hold a session by trickling bytes.
        let ceiling = Instant::now() + self.ctx.limits.data_total_timeout;
        loop {
            let (used, event) = decoder.feed(conn.input());
            conn.consume(used);
            match event {
                DataEvent::NeedMore => {
                    let block = Instant::now() + self.ctx.limits.data_timeout;
                    let filled = conn.fill(block.min(ceiling), None).await;
                    if !self.still_open(
                        conn,
                        filled.map(|f| {
                            if f == Filled::Shutdown {
                                Filled::Data
                            } else {
                                f
                            }
                        }),
                    ) {
                        return Next::Close;
                    }
                }
                DataEvent::Fatal(e) => {
                    // SMTP smuggling defence (CVE-2023-51764 class): refuse the whole message
                    // and close, so nothing after the bare CR/LF is read as a command.
                    warn!(error = %e, "message refused for bare CR/LF in DATA, closing session");
                    self.tx = None;
                    self.answer(conn, e.reply());
                    return Next::Close;
                }
                DataEvent::Done(Err(e)) => {
                    info!(error = %e, "message refused");
                    self.tx = None;
                    self.answer(conn, e.reply());
                    return Next::Continue;
                }
                DataEvent::Done(Ok(())) => break,
            }
        }
        let reply = self.accept(decoder.into_body()).await;
        conn.reply(&reply);
        Next::Continue
    }

    /// A bounce to return paths of ours: each ties back to its recipient (or changes nothing,
    /// on record). Never queued, never relayed. 451 when the database fails (the sender
    /// retries; what was taken already is then a replay and changes nothing).
    async fn take_returns(&mut self, data: &[u8]) -> Reply {
        let Some(tx) = self.tx.take() else {
            return Reply::new(503, Some((5, 5, 1)), "Send MAIL first");
        };
        let build = sealgate_queue::dsn_builder(&self.ctx.hostname);
        let client_ip = self.info.peer.ip().to_string();
        let mut returned = 0;
        for (address, rid) in &tx.returns {
            match self
                .ctx
                .queue
                .take_return(address, *rid, data, &client_ip, &build)
                .await
            {
                Ok(sealgate_queue::returns::ReturnOutcome::Returned {
                    message_id,
                    recipient,
                }) => {
                    info!(msg_id = %message_id, rcpt = %recipient, "recipient returned after delivery");
                    returned += 1;
                }
                Ok(sealgate_queue::returns::ReturnOutcome::Ignored(why)) => {
                    info!(rcpt = %address, reason = %why, "bounce changed nothing");
                }
                Err(e) => {
                    warn!(error = %e, "taking a bounce failed");
                    return Reply::new(451, Some((4, 3, 0)), "Temporary failure; try again later");
                }
            }
        }
        Reply::new(
            250,
            Some((2, 0, 0)),
            format!(
                "Bounce received ({returned} of {} recipients returned)",
                tx.returns.len()
            ),
        )
    }

    /// A message that has been round too often (RFC 5321 §6.3): refused, so the sending server
    /// returns it to its sender rather than sending it round again.
    fn loop_refusal(&mut self, fields: &Fields) -> Option<Reply> {
        let limits = &self.ctx.limits;
        let h = hops(fields, &self.ctx.hostname);
        let why = if h.ours >= limits.max_passes {
            format!(
                "Mail loop: this message has passed this relay {} times already",
                h.ours
            )
        } else if h.total >= limits.max_hops {
            format!("Mail loop: too many hops ({} Received fields)", h.total)
        } else {
            return None;
        };
        warn!(
            received = h.total,
            ours = h.ours,
            "message refused: mail loop"
        );
        self.tx = None;
        // RFC 3463 X.4.6: routing loop detected.
        Some(Reply::new(554, Some((5, 4, 6)), why))
    }

    /// A transaction let through RCPT for a cloud tenant: the first candidate whose message
    /// factors hold, whose senders then bind the envelope (checked here, as at MAIL) and the
    /// header (with every client's, next); or the refusal.
    async fn tenant_check(
        &mut self,
        fields: &Fields,
        arrival: Option<&Arrival>,
    ) -> Result<Option<TenantMatch>, Reply> {
        let Some(candidates) = self.tx.as_ref().and_then(|tx| tx.tenant.clone()) else {
            return Ok(None);
        };
        let m = self.ctx.tenants.at_data(&candidates, fields, arrival).map_err(|refusal| {
            info!(tenant = %refusal.tenant, factor = %refusal.factor, "message refused: tenant factor missing");
            self.tx = None;
            // RFC 3463 X.7.1: delivery not authorized.
            Reply::new(
                550,
                Some((5, 7, 1)),
                format!("Relay refused: {}", refusal.factor),
            )
        })?;
        self.tenant_binding = Some(m.binding);
        // The sender was checked against the client's rules at MAIL; the tenant's rules apply
        // only now that the tenant is known.
        let sender = self.tx.as_ref().and_then(|tx| tx.sender.clone());
        if let Err(refused) = self.check_envelope_sender(sender.as_ref()).await {
            self.tenant_binding = None;
            self.tx = None;
            return Err(refused);
        }
        info!(tenant = %m.record.name, factors = ?m.record.factors, "relaying for tenant");
        Ok(Some(m.record))
    }

    /// Queues the message; the client sees 250 only after the commit.
    async fn accept(&mut self, data: Vec<u8>) -> Reply {
        if self.tx.as_ref().is_some_and(|tx| !tx.returns.is_empty()) {
            return self.take_returns(&data).await;
        }
        let fields = header_fields(&data);
        if let Some(refused) = self.loop_refusal(&fields) {
            return refused;
        }
        // What the message proves as the client sent it, before anything is changed.
        let arrival = match &self.ctx.inbound {
            Some(inbound) => Some(inbound.verify(&data, self.info.peer.ip()).await),
            None => None,
        };
        let tenant = match self.tenant_check(&fields, arrival.as_ref()).await {
            Ok(t) => t,
            Err(refused) => return refused,
        };
        let checked = self.check_header_senders(&fields).await;
        self.tenant_binding = None;
        if let Err(refused) = checked {
            return refused;
        }
        let Some(tx) = self.tx.take() else {
            return Reply::new(503, Some((5, 5, 1)), "Send MAIL first");
        };
        // The client's idempotency key (one field, visible ASCII).
        let idem_key = match idempotency_key(&fields) {
            Ok(k) => k,
            Err(refused) => return refused,
        };
        // What never leaves Sealgate, whoever sent it, removed in one pass over the header (a
        // copy only when there is something to remove): any tenant's secret header, the
        // idempotency key, and results written under our own name (RFC 8601 §5: forged).
        let secrets = self.ctx.tenants.secret_headers();
        let ours = fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(RESULTS_FIELD));
        let named = fields.iter().any(|(n, _)| {
            secrets.iter().any(|s| s.eq_ignore_ascii_case(n))
                || (idem_key.is_some() && n.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
        });
        let data = if ours || named {
            let remove = |f: &[u8]| {
                field_named(f, secrets)
                    || (idem_key.is_some() && field_named(f, &[IDEMPOTENCY_HEADER]))
                    || (ours && is_results_of(f, &self.ctx.hostname))
            };
            match sealgate_queue::without_fields_where(&data, remove).0 {
                Cow::Owned(stripped) => stripped,
                Cow::Borrowed(_) => data,
            }
        } else {
            data
        };
        let results = arrival.as_ref().map(Arrival::field).unwrap_or_default();
        let id = MessageId::new();
        let id_text = id.to_string();
        let digest = data_digest(&data);
        let single = (tx.recipients.len() == 1).then(|| tx.recipients[0].to_string());
        let trace = Trace {
            helo: self.helo.as_deref().unwrap_or_default(),
            ip: self.info.peer.ip(),
            hostname: &self.ctx.hostname,
            esmtp: self.esmtp,
            tls: self.info.tls.as_deref(),
            authenticated: self.auth_user.is_some(),
            queue_id: &id_text,
            single_recipient: single.as_deref(),
            date: chrono::Utc::now(),
        }
        .header();
        let mut content = Vec::with_capacity(trace.len() + results.len() + data.len());
        content.extend_from_slice(trace.as_bytes());
        content.extend_from_slice(results.as_bytes());
        content.extend_from_slice(&data);
        let msg = IncomingMessage {
            id,
            sender: tx.sender.map(|s| s.to_string()).unwrap_or_default(),
            recipients: tx.recipients.iter().map(ToString::to_string).collect(),
            client_data_sha256: digest.clone(),
            client_data_size: data.len() as u64,
            header_message_id: header_message_id(&data),
            content,
            client_ip: self.info.peer.ip().to_string(),
            helo: self.helo.clone().unwrap_or_default(),
            auth_user: self.auth_user.clone(),
            tls: self.info.tls.clone(),
            requiretls: tx.requiretls,
            // A client's message: never one of Sealgate's own notices.
            origin: None,
            tenant,
            api_key: None,
        };
        let (size, rcpts) = (data.len(), msg.recipients.len());
        let queued = match idem_key {
            None => self.ctx.queue.accept(msg).await.map(|_| None),
            Some(key) => {
                // Scoped to the client: its AUTH user, else its address.
                let scope = match &self.auth_user {
                    Some(u) => format!("smtp-user:{u}"),
                    None => format!("smtp-ip:{}", self.info.peer.ip()),
                };
                let row = sealgate_store::IdempotencyRow {
                    api_key_id: scope,
                    idem_key: key,
                    request_sha256: msg.client_data_sha256.clone(),
                    message_id: id_text.clone(),
                    response: id_text.clone(),
                };
                let window_start = sealgate_types::time::now_micros() - IDEMPOTENCY_WINDOW_MICROS;
                self.ctx
                    .queue
                    .accept_idempotent(msg, &row, window_start)
                    .await
            }
        };
        match queued {
            Ok(None) => {
                info!(msg_id = %id_text, size, rcpts, requiretls = tx.requiretls, "message queued");
                Reply::new(250, Some((2, 0, 0)), format!("Ok: queued as {id_text}"))
            }
            Ok(Some(first)) if first.request_sha256 == digest => {
                info!(msg_id = %first.message_id, "idempotent retry: already queued, nothing new");
                Reply::new(
                    250,
                    Some((2, 0, 0)),
                    format!(
                        "Ok: queued as {} (already, by its {IDEMPOTENCY_HEADER})",
                        first.message_id
                    ),
                )
            }
            Ok(Some(_)) => {
                info!("idempotency key reused for another message; refused");
                // RFC 3463 X.6.0: a problem with the message's content.
                Reply::new(
                    554,
                    Some((5, 6, 0)),
                    format!(
                        "{IDEMPOTENCY_HEADER} was used for another message in the last 24 hours"
                    ),
                )
            }
            Err(e) if e.is_full() => {
                error!(error = %e, "queueing failed: storage full; client told to retry");
                // RFC 5321 §4.2.3 452, RFC 3463 4.3.1: mail system full. Nothing was stored.
                Reply::new(452, Some((4, 3, 1)), "Insufficient system storage")
            }
            Err(e) => {
                error!(error = %e, transient = e.is_transient(), "queueing failed; client told to retry");
                // Our own failure is never the client's permanent problem: always 4xx.
                Reply::new(
                    451,
                    Some((4, 3, 0)),
                    "Temporary storage failure, try again later",
                )
            }
        }
    }
}

/// The header an SMTP client puts its idempotency key in (the API's `Idempotency-Key`): a
/// retry after a lost `250` is answered with the first queue id and queues nothing.
const IDEMPOTENCY_HEADER: &str = "Sealgate-Idempotency-Key";

/// How long a key is honoured.
const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The message's idempotency key, if it has one; a refusal when it is malformed or repeated.
fn idempotency_key(fields: &Fields) -> Result<Option<String>, Reply> {
    let values: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
        .map(|(_, v)| v.trim())
        .collect();
    match values.as_slice() {
        [] => Ok(None),
        [v] if !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| (0x21..=0x7e).contains(&b)) => {
            Ok(Some((*v).to_owned()))
        }
        _ => Err(Reply::new(
            550,
            Some((5, 6, 0)),
            format!("{IDEMPOTENCY_HEADER} must be one field of 1 to 255 visible characters"),
        )),
    }
}
