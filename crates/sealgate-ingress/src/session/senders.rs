//! Sender binding in a session: the envelope sender at MAIL, the header `From:`/`Sender:` at
//! the end of DATA. A refusal is `553 5.7.1` with a generic text; who was refused, for which
//! address and under which rules goes to the log and to a `sender_refused` audit record.

use sealgate_audit::AuditEvent;
use sealgate_smtp_proto::Reply;
use sealgate_types::EmailAddress;
use tracing::{info, warn};

use super::Session;
use crate::senders::{Binding, Fields, Principal, check_header, cut, sender_refused};

impl Session {
    /// The rules binding this client: its user's (read from the store once per session),
    /// else its relay network's. `None` for a client on no relay network that has not
    /// authenticated: RCPT refuses it anyway.
    async fn binding(&mut self) -> Result<Option<Binding>, Reply> {
        if let Some(tenant) = &self.tenant_binding {
            return Ok(Some(tenant.clone()));
        }
        let Some(user) = self.auth_user.clone() else {
            let ip = self.info.peer.ip();
            return Ok(self.ctx.relay.lookup(ip).map(|n| n.binding()));
        };
        let who = Principal::User(user.clone());
        if let Some(b) = self.sender_binding.as_ref().filter(|b| b.who == who) {
            return Ok(Some(b.clone()));
        }
        let senders = match self.ctx.store.user_senders(&user).await {
            // A user removed since it authenticated may send as no one.
            Ok(found) => found.unwrap_or_default(),
            Err(e) => {
                warn!(error = %e, user = %user, "sender binding lookup failed");
                return Err(Reply::new(
                    451,
                    Some((4, 3, 0)),
                    "Temporary lookup failure, try again later",
                ));
            }
        };
        let binding = Binding { who, senders };
        self.sender_binding = Some(binding.clone());
        Ok(Some(binding))
    }

    /// MAIL: the envelope sender must be permitted. The null reverse-path (RFC 5321 §4.5.5)
    /// names no one, so it passes for any client permitted some sender; the message's header
    /// is still checked.
    pub(super) async fn check_envelope_sender(
        &mut self,
        sender: Option<&EmailAddress>,
    ) -> Result<(), Reply> {
        let Some(binding) = self.binding().await? else {
            return Ok(());
        };
        let permitted = match sender {
            Some(address) => binding.senders.permits_address(address),
            None => !binding.senders.is_empty(),
        };
        if permitted {
            return Ok(());
        }
        let shown = sender.map(ToString::to_string).unwrap_or_default();
        Err(self
            .refuse_sender(&binding, "mail-from", cut(&shown), "not permitted")
            .await)
    }

    /// End of DATA, before the message is queued: every address of every header `From:` and
    /// `Sender:` must be permitted. A refusal ends the transaction; nothing is queued.
    pub(super) async fn check_header_senders(&mut self, fields: &Fields) -> Result<(), Reply> {
        let checked = match self.binding().await {
            Ok(Some(binding)) => match check_header(fields, &binding.senders) {
                Ok(()) => Ok(()),
                Err(r) => {
                    let why = if r.unreadable {
                        "unreadable"
                    } else {
                        "not permitted"
                    };
                    Err(self.refuse_sender(&binding, r.field, r.sender, why).await)
                }
            },
            Ok(None) => Ok(()),
            Err(reply) => Err(reply),
        };
        if checked.is_err() {
            self.tx = None;
        }
        checked
    }

    /// Logs and audits a refused sender; the reply for the client.
    pub(super) async fn refuse_sender(
        &self,
        binding: &Binding,
        field: &str,
        sender: String,
        reason: &str,
    ) -> Reply {
        let (auth_user, network) = match &binding.who {
            Principal::User(u) => (Some(u.clone()), None),
            Principal::Network(n) => (None, Some(n.clone())),
            Principal::Tenant(t) => (None, Some(format!("tenant {t}"))),
        };
        info!(
            user = auth_user.as_deref(),
            network = network.as_deref(),
            field,
            sender = %sender,
            allowed = %binding.senders,
            reason,
            "sender refused"
        );
        let event = AuditEvent::SenderRefused {
            client_ip: self.info.peer.ip().to_string(),
            auth_user,
            network,
            field: field.to_owned(),
            sender,
        };
        if let Err(e) = self.ctx.store.append_audit(&event.into_record()).await {
            warn!(error = %e, "refused sender not audited");
        }
        sender_refused()
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
