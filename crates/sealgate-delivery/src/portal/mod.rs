//! The portal worker: recipients whose decision is `portal` get the message sealed on the
//! portal instead of delivered. The message (as it would have left: content-trigger headers
//! and the passphrase header removed) is sealed under a fresh per-message AES-256-GCM key, the
//! key under the portal master key ring; each recipient gets a grant (a link token, only its
//! hash stored) and a notice queued like any message, origin `portal-notice`, phi-free. All
//! of it — message, grants, notices and their `portal_notice` events — is written in the
//! transaction that settles the recipients as delivered (method `portal`), after whatever led
//! there (a refused verification's alert and failed try): a lost lease or a failure writes
//! none of it.
//!
//! A deposit for another recipient of the same message reuses the stored message, and none
//! ever makes a second grant or notice for a recipient.

pub(crate) mod notice;

use std::sync::Arc;

use sealgate_audit::{AttemptEvidence, AuditEvent};
use sealgate_crypto::KeyRing;
use sealgate_crypto::portal::{link_token_hash, new_link_token, seal_message};
use sealgate_policy::Decision;
use sealgate_queue::{
    AttemptReport, Claim, Group, IncomingMessage, ORIGIN_NOTICE, Queue, data_digest,
};
use sealgate_store::{GrantRow, PortalDeposit, PortalMessageRow, PortalOutgoing};
use sealgate_types::time::now_micros;
use sealgate_types::{MessageId, Outcome};
use tracing::{info, warn};

/// The header a sending system sets to give portal recipients a passphrase instead of (or
/// besides) one-time codes. Removed from every copy that leaves or is stored.
pub(crate) const PASSPHRASE_HEADER: &str = "X-Sealgate-Passphrase";

/// Longest passphrase taken from the header (longer ones are ignored).
const MAX_PASSPHRASE: usize = 256;

const DAY_MICROS: i64 = 86_400_000_000;

/// What the portal worker needs (from `[portal]`).
pub struct PortalSettings {
    /// The master key ring sealing each portal message's own key.
    pub master: Arc<KeyRing>,
    /// The base of links, without a trailing slash: links are `{public_url}/p/{token}`.
    pub public_url: String,
    /// How many days a link works.
    pub grant_days: u32,
    /// The sending organisation named in notices.
    pub organisation: String,
    /// From and envelope sender of notices.
    pub notice_from: String,
    /// Subject of notices.
    pub notice_subject: String,
    /// Our host name (notices' Message-ID and HELO in their `received` record).
    pub hostname: String,
}

impl std::fmt::Debug for PortalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSettings")
            .field("master", &self.master)
            .field("public_url", &self.public_url)
            .field("grant_days", &self.grant_days)
            .finish_non_exhaustive()
    }
}

/// The passphrase of the header [`PASSPHRASE_HEADER`] among `headers` (unfolded), if one is
/// set and usable.
pub(crate) fn passphrase(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(PASSPHRASE_HEADER))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= MAX_PASSPHRASE)
}

/// Why a portal deposit could not be made (the recipients wait and are tried again).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DepositError {
    /// A deposit for no recipient.
    #[error("no recipients")]
    NoRecipients,
    /// Sealing the content, or making a link token or a passphrase hash, failed.
    #[error("sealing failed: {0}")]
    Crypto(#[from] sealgate_crypto::CryptoError),
    /// The passphrase hashing task stopped before it finished.
    #[error("passphrase hashing stopped: {0}")]
    Hashing(#[from] tokio::task::JoinError),
    /// The notice could not be prepared for the queue.
    #[error("{0}")]
    Notice(#[from] sealgate_queue::QueueError),
    /// The store could not be read or written.
    #[error("{0}")]
    Store(#[from] sealgate_store::StoreError),
}

/// One recipient's grant, notice and `portal_notice` record, before they are written.
struct Planned {
    grant: GrantRow,
    notice: PortalOutgoing,
    audit: sealgate_types::AuditRecord,
}

/// Seals `content` for the portal for every recipient of `part` (one message's recipients
/// whose chosen method is the portal): the deposit, to be written in the transaction that
/// settles them ([`Queue::settle_group`]), and one report per recipient — delivered (with
/// its notice queued now, or by an earlier deposit), or temporary when sealing failed and
/// there is nothing to write.
pub(crate) async fn deposit_group(
    queue: &Queue,
    settings: &PortalSettings,
    part: &[(Claim, Decision)],
    content: &[u8],
    passphrase: Option<&str>,
) -> Group {
    let claims: Vec<&Claim> = part.iter().map(|(c, _)| c).collect();
    let deposit = match seal_and_plan(queue, settings, &claims, content, passphrase).await {
        Ok(d) => d,
        Err(e) => return failed_group(&claims, &e),
    };
    // Recipients already holding a grant (an earlier deposit whose settlement was lost) get
    // none again; the deposit skips them too, in its transaction.
    let message_id = &claims[0].recipient.message_id;
    let granted = match queue.store().portal_granted(message_id).await {
        Ok(g) => g,
        Err(e) => return failed_group(&claims, &e.into()),
    };
    let reports = claims
        .iter()
        .zip(&deposit.notices)
        .map(|(c, (notice, _, _))| {
            let reply = if granted.contains(&c.recipient.rcpt) {
                "stored in the secure portal; notice queued earlier".to_owned()
            } else {
                format!(
                    "stored in the secure portal; notice queued as {}",
                    notice.id
                )
            };
            report(c, Outcome::Delivered, reply)
        })
        .collect();
    info!(msg_id = %message_id, recipients = claims.len(), "sealed for the portal; written with the settlement");
    Group {
        reports,
        before: Vec::new(),
        deposit: Some(deposit),
    }
}

/// Every claim temporary: the deposit could not be made.
fn failed_group(claims: &[&Claim], why: &DepositError) -> Group {
    let reports = claims.iter().map(|c| failure_report(c, why)).collect();
    Group {
        reports,
        ..Group::default()
    }
}

fn failure_report(c: &Claim, why: &DepositError) -> AttemptReport {
    warn!(msg_id = %c.recipient.message_id, rcpt = %c.recipient.rcpt, reason = %why, "portal deposit failed");
    let reply = format!("4.3.0 local error: cannot store in the secure portal: {why}");
    report(c, Outcome::Temporary, reply)
}

/// [`deposit_group`] with the deposit written on its own
/// ([`Store::portal_deposit`](sealgate_store::Store::portal_deposit)) rather than with a
/// settlement: the reports, temporary when the write failed. For the portal's unit tests.
#[cfg(test)]
pub(crate) async fn deposit(
    queue: &Queue,
    settings: &PortalSettings,
    part: &[(Claim, Decision)],
    content: &[u8],
    passphrase: Option<&str>,
) -> Vec<AttemptReport> {
    let group = deposit_group(queue, settings, part, content, passphrase).await;
    let Some(d) = &group.deposit else {
        return group.reports;
    };
    match queue
        .store()
        .portal_deposit(&d.msg, &d.grants, &d.notices, &d.audit)
        .await
    {
        Ok(_) => group.reports,
        Err(e) => {
            let why = DepositError::from(e);
            group
                .reports
                .iter()
                .map(|r| failure_report(&r.claim, &why))
                .collect()
        }
    }
}

/// Seals the content under a fresh key and plans every recipient's grant, notice and
/// `portal_notice` record, in the order of `claims`.
async fn seal_and_plan(
    queue: &Queue,
    settings: &PortalSettings,
    claims: &[&Claim],
    content: &[u8],
    passphrase: Option<&str>,
) -> Result<PortalDeposit, DepositError> {
    let first = claims.first().ok_or(DepositError::NoRecipients)?;
    let now = now_micros();
    let id = uuid::Uuid::new_v4().to_string();
    let (key_sealed, content_sealed) = seal_message(&settings.master, content, id.as_bytes())?;
    let msg = PortalMessageRow {
        id: id.clone(),
        thread_id: id.clone(),
        message_id: Some(first.recipient.message_id.clone()),
        author: first.sender.clone(),
        sender: first.sender.clone(),
        key_sealed,
        content_sealed,
        size: i64::try_from(content.len()).unwrap_or(i64::MAX),
        created_at: now,
        purged_at: None,
    };
    let passphrase_hash = match passphrase {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let expires_at = now.saturating_add(i64::from(settings.grant_days) * DAY_MICROS);
    let mut planned = Vec::with_capacity(claims.len());
    for c in claims {
        planned.push(plan(
            queue,
            settings,
            &msg,
            c,
            expires_at,
            passphrase_hash.clone(),
        )?);
    }
    let (grants, rest): (Vec<GrantRow>, Vec<_>) = planned
        .into_iter()
        .map(|p| (p.grant, (p.notice, p.audit)))
        .unzip();
    let (notices, audit): (Vec<PortalOutgoing>, Vec<_>) = rest.into_iter().unzip();
    Ok(PortalDeposit {
        msg,
        grants,
        notices,
        audit,
    })
}

/// Argon2id of the passphrase, off the async threads.
async fn hash(passphrase: &str) -> Result<String, DepositError> {
    let owned = passphrase.to_owned();
    Ok(tokio::task::spawn_blocking(move || sealgate_crypto::hash_password(&owned)).await??)
}

/// The grant, notice and audit record for one recipient of `msg`.
fn plan(
    queue: &Queue,
    settings: &PortalSettings,
    msg: &PortalMessageRow,
    claim: &Claim,
    expires_at: i64,
    passphrase_hash: Option<String>,
) -> Result<Planned, DepositError> {
    let token = new_link_token()?;
    let rcpt = claim.recipient.rcpt.clone();
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: link_token_hash(&token),
        portal_message_id: msg.id.clone(),
        thread_id: msg.thread_id.clone(),
        recipient: rcpt.clone(),
        sender: claim.sender.clone(),
        expires_at,
        revoked_at: None,
        passphrase_hash,
        code_hash: None,
        code_expires_at: None,
        failed_attempts: 0,
        locked_until: None,
        first_viewed_at: None,
        created_at: msg.created_at,
    };
    let link = format!("{}/p/{token}", settings.public_url);
    let notice = notice_message(queue, settings, &grant, &link, claim.recipient.id)?;
    let audit = AuditEvent::PortalNotice {
        message_id: claim.recipient.message_id.clone(),
        recipient: rcpt,
        grant_id: grant.id.clone(),
        expires: expires_at,
        notice_id: notice.0.id.clone(),
    }
    .into_record();
    Ok(Planned {
        grant,
        notice,
        audit,
    })
}

/// The notice for `grant`, sealed and ready to queue (origin `portal-notice`).
fn notice_message(
    queue: &Queue,
    settings: &PortalSettings,
    grant: &GrantRow,
    link: &str,
    about: i64,
) -> Result<PortalOutgoing, DepositError> {
    let id = MessageId::new();
    let built = notice::build(
        settings,
        &notice::NoticeFacts {
            id,
            recipient: &grant.recipient,
            link,
            expires_at: grant.expires_at,
            passphrase: grant.passphrase_hash.is_some(),
            now: chrono::Utc::now(),
        },
    );
    let prepared = queue.prepare(IncomingMessage {
        id,
        // With [returns], the return path of the recipient the notice is about: a notice that
        // bounces makes that recipient `returned`.
        sender: match queue.returns() {
            Some(paths) => paths.address(about),
            None => settings.notice_from.clone(),
        },
        recipients: vec![grant.recipient.clone()],
        client_data_sha256: data_digest(&built.content),
        client_data_size: built.content.len() as u64,
        header_message_id: Some(built.message_id),
        content: built.content,
        client_ip: "127.0.0.1".to_owned(),
        helo: settings.hostname.clone(),
        auth_user: None,
        tls: None,
        requiretls: false,
        origin: Some(ORIGIN_NOTICE.to_owned()),
        tenant: None,
        api_key: None,
    })?;
    Ok(prepared.into_parts())
}

fn report(claim: &Claim, outcome: Outcome, reply: String) -> AttemptReport {
    AttemptReport {
        claim: claim.clone(),
        evidence: AttemptEvidence {
            method: Some("portal".to_owned()),
            reply: Some(reply),
            outcome,
            ..AttemptEvidence::default()
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
