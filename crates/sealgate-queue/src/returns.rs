//! Returned mail: return paths that name their recipient, and bounces tied back to it.
//!
//! With `[returns] domain` set, what Sealgate sends from a real sender goes out with the
//! envelope sender `rtn-<recipient row id>-<tag>@DOMAIN` (VERP), one per recipient; a portal
//! notice carries the return path of the recipient it is about. The tag is the first 8 bytes
//! (hex) of an authentication tag under the node key ring, so only Sealgate can make one and
//! every node checks them. A bounce sent there is read ([`read_bounce`]: an RFC 3464 report,
//! or the text of a common non-standard one) and, when it is a permanent failure, the
//! recipient becomes `returned` and the original sender gets a DSN ([`Queue::take_return`]).

use std::sync::Arc;

use mail_parser::{MessageParser, MimeHeaders};
use sealgate_audit::AuditEvent;
use sealgate_crypto::KeyRing;

use crate::delivery::{NoticeBuilder, NoticeKind, NoticeRecipient};
use crate::{Queue, QueueError};

const PREFIX: &str = "rtn-";
const TAG_BYTES: usize = 8;

/// Makes and checks return paths.
#[derive(Clone)]
pub struct ReturnPaths {
    domain: String,
    ring: Arc<KeyRing>,
}

impl std::fmt::Debug for ReturnPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReturnPaths")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn tagged(rid: i64) -> Vec<u8> {
    format!("return-path\0{rid}").into_bytes()
}

impl ReturnPaths {
    /// Return paths on `domain`, tagged under `ring`.
    pub fn new(domain: &str, ring: Arc<KeyRing>) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            ring,
        }
    }

    /// The return-path domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The return path of recipient row `rid`.
    pub fn address(&self, rid: i64) -> String {
        let tag = self.ring.tag(&tagged(rid));
        let hex: String = tag[..TAG_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{PREFIX}{rid}-{hex}@{}", self.domain)
    }

    /// Whether `address` is in the return-path domain.
    pub fn is_ours(&self, address: &str) -> bool {
        address
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.trim_end_matches('.').eq_ignore_ascii_case(&self.domain))
    }

    /// The recipient row an address of the return-path domain names, or why it names none.
    pub fn recipient_of(&self, address: &str) -> Result<i64, &'static str> {
        let (local, _) = address.rsplit_once('@').ok_or("not an address")?;
        let rest = local
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| local.get(PREFIX.len()..))
            .ok_or("not a return path of ours")?;
        let (rid, hex) = rest.split_once('-').ok_or("not a return path of ours")?;
        let rid: i64 = rid
            .parse()
            .ok()
            .filter(|r| *r > 0)
            .ok_or("not a return path of ours")?;
        let tag = decode_hex(hex).ok_or("not a return path of ours")?;
        if tag.len() != TAG_BYTES || !self.ring.tag_matches(&tagged(rid), &tag) {
            return Err("not a return path of ours (the token does not check)");
        }
        Ok(rid)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a message to a return path says about its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bounce {
    /// A permanent failure.
    Failed {
        /// The status (`5.1.1`; `5.0.0` when the report gave none).
        status: String,
        /// The diagnostic, as the report gave it (cut short).
        diagnostic: String,
        /// The server that made the report, if it said.
        reported_by: Option<String>,
    },
    /// Anything else (a delay or success report, an auto-reply, unreadable mail): why.
    NotAFailure(String),
}

impl Bounce {
    /// The reply code in the diagnostic (`smtp; 550 5.1.1 …` → 550).
    pub fn reply_code(&self) -> Option<u16> {
        let Self::Failed { diagnostic, .. } = self else {
            return None;
        };
        diagnostic
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .find_map(|w| {
                let n: u16 = w.parse().ok()?;
                (w.len() == 3 && (400..600).contains(&n)).then_some(n)
            })
    }
}

/// One block of `Name: value` fields (folded lines unfolded), names lowercased.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = block.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn get<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The address of a `Final-Recipient:`/`Original-Recipient:` value (`rfc822; a@b`).
fn typed_address(v: &str) -> &str {
    v.split_once(';')
        .map_or(v, |(_, a)| a)
        .trim()
        .trim_matches(['<', '>'])
}

fn cut(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

/// Reads a message sent to the return path of `recipient`.
pub fn read_bounce(data: &[u8], recipient: &str) -> Bounce {
    let Some(message) = MessageParser::default().parse(data) else {
        return Bounce::NotAFailure("not a readable message".into());
    };
    // RFC 3464: a message/delivery-status part (in a multipart/report).
    let status_part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
        })
    });
    if let Some(part) = status_part {
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        let blocks = field_blocks(&text);
        let reported_by = blocks
            .first()
            .and_then(|b| get(b, "reporting-mta"))
            .map(cut);
        let per_recipient: Vec<&Vec<(String, String)>> = blocks
            .iter()
            .filter(|b| get(b, "final-recipient").is_some() || get(b, "action").is_some())
            .collect();
        let names_ours = |b: &&&Vec<(String, String)>| {
            ["final-recipient", "original-recipient"].iter().any(|f| {
                get(b, f).is_some_and(|v| typed_address(v).eq_ignore_ascii_case(recipient))
            })
        };
        let failed = |b: &&&Vec<(String, String)>| {
            get(b, "action").is_some_and(|a| a.eq_ignore_ascii_case("failed"))
        };
        let chosen = per_recipient
            .iter()
            .find(|b| failed(b) && names_ours(b))
            .or_else(|| per_recipient.iter().find(|b| failed(b)));
        return match chosen {
            Some(b) => {
                let status = get(b, "status")
                    .map(|s| s.split_whitespace().next().unwrap_or_default().to_owned())
                    .filter(|s| s.starts_with('5'))
                    .unwrap_or_else(|| "5.0.0".into());
                Bounce::Failed {
                    status,
                    diagnostic: cut(get(b, "diagnostic-code").unwrap_or("")),
                    reported_by,
                }
            }
            None => {
                let actions: Vec<&str> = per_recipient
                    .iter()
                    .filter_map(|b| get(b, "action"))
                    .collect();
                Bounce::NotAFailure(format!(
                    "a delivery status report without a failure (action: {})",
                    if actions.is_empty() {
                        "none".to_owned()
                    } else {
                        actions.join(", ")
                    }
                ))
            }
        };
    }
    // A non-standard bounce: a subject that says so, and a permanent failure code in the text.
    // An auto-reply (RFC 3834) is never one.
    if message
        .header_raw("Auto-Submitted")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("auto-replied"))
        && !looks_like_bounce_subject(message.subject().unwrap_or_default())
    {
        return Bounce::NotAFailure("an auto-reply, not a bounce".into());
    }
    let subject = message.subject().unwrap_or_default();
    if !looks_like_bounce_subject(subject) {
        return Bounce::NotAFailure(
            "not a bounce (no delivery status report, no failure subject)".into(),
        );
    }
    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    match failure_in_text(&text) {
        Some((status, line)) => Bounce::Failed {
            status,
            diagnostic: cut(line.trim()),
            reported_by: None,
        },
        None => {
            Bounce::NotAFailure("a bounce-like message without a permanent failure code".into())
        }
    }
}

fn looks_like_bounce_subject(subject: &str) -> bool {
    let s = subject.to_ascii_lowercase();
    [
        "undeliver",
        "delivery status notification (failure)",
        "delivery failure",
        "delivery has failed",
        "mail delivery failed",
        "failure notice",
        "returned mail",
        "returned to sender",
        "could not be delivered",
        "non-delivery",
    ]
    .iter()
    .any(|k| s.contains(k))
}

/// The first permanent failure in a bounce's text: an enhanced status `5.x.y`, or a reply code
/// 550–559 followed by a space, with the line it is on.
fn failure_in_text(text: &str) -> Option<(String, &str)> {
    for line in text.lines() {
        for w in
            line.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';' || c == ',')
        {
            let parts: Vec<&str> = w
                .trim_start_matches('#')
                .trim_end_matches(['.', ':'])
                .split('.')
                .collect();
            if parts.len() == 3
                && parts[0] == "5"
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Some((parts.join("."), line));
            }
        }
    }
    for line in text.lines() {
        let t = line.trim_start();
        if t.len() > 4
            && t.as_bytes()[..2] == *b"55"
            && t.as_bytes()[2].is_ascii_digit()
            && matches!(t.as_bytes()[3], b' ' | b'-')
        {
            return Some(("5.0.0".into(), line));
        }
    }
    None
}

/// What [`Queue::take_return`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnOutcome {
    /// The recipient is `returned` now; the DSN to the sender, if any, is queued.
    Returned {
        /// The original message.
        message_id: String,
        /// The recipient.
        recipient: String,
    },
    /// Nothing changed (audited): why.
    Ignored(String),
}

impl Queue {
    /// Takes a message sent to the return path of recipient row `rid` (checked already) from
    /// `client_ip`: a permanent failure of a `delivered` recipient makes it `returned` and
    /// queues a DSN to its sender, in one transaction with the `returned` record; anything else
    /// changes nothing and is recorded as `bounce_ignored`.
    pub async fn take_return(
        &self,
        address: &str,
        rid: i64,
        data: &[u8],
        client_ip: &str,
        build: NoticeBuilder<'_>,
    ) -> Result<ReturnOutcome, QueueError> {
        self.return_with(address, rid, client_ip, build, |row| {
            read_bounce(data, &row.rcpt)
        })
        .await
    }

    /// Records that mail to `address` from `client_ip` changed nothing, and why.
    async fn ignored(
        &self,
        address: &str,
        client_ip: &str,
        row: Option<&sealgate_store::RecipientRow>,
        reason: String,
    ) -> Result<ReturnOutcome, QueueError> {
        let record = AuditEvent::BounceIgnored {
            message_id: row.map(|r| r.message_id.clone()),
            recipient: row.map(|r| r.rcpt.clone()),
            address: address.to_owned(),
            reason: reason.clone(),
            client_ip: client_ip.to_owned(),
        }
        .into_record();
        self.store.append_audit(&record).await?;
        Ok(ReturnOutcome::Ignored(reason))
    }

    /// Applies what `bounce` says of the row the return path `address` names (see
    /// [`Queue::take_return`]); `client_ip` is where it came from (`local` for a failure this
    /// relay met itself sending a notice).
    pub(crate) async fn return_with(
        &self,
        address: &str,
        rid: i64,
        client_ip: &str,
        build: NoticeBuilder<'_>,
        bounce: impl FnOnce(&sealgate_store::RecipientRow) -> Bounce,
    ) -> Result<ReturnOutcome, QueueError> {
        let Some(row) = self.store.recipient_by_id(rid).await? else {
            return self
                .ignored(
                    address,
                    client_ip,
                    None,
                    "its recipient is no longer in the queue".to_owned(),
                )
                .await;
        };
        if row.state != sealgate_types::RecipientState::Delivered {
            let why = format!("the recipient is {}, not delivered", row.state);
            return self.ignored(address, client_ip, Some(&row), why).await;
        }
        let bounce = bounce(&row);
        let (msg, rcpt) = (row.message_id.clone(), row.rcpt.clone());
        let reply_code = bounce.reply_code();
        let (status, diagnostic, reported_by) = match bounce {
            Bounce::Failed {
                status,
                diagnostic,
                reported_by,
            } => (status, diagnostic, reported_by),
            Bounce::NotAFailure(why) => {
                return self.ignored(address, client_ip, Some(&row), why).await;
            }
        };
        let Some(message) = self.store.message(&msg).await? else {
            return self
                .ignored(
                    address,
                    client_ip,
                    Some(&row),
                    "its message is no longer in the queue".to_owned(),
                )
                .await;
        };
        let reason = format!(
            "{status} returned after delivery: {}",
            if diagnostic.is_empty() {
                "(no diagnostic)"
            } else {
                diagnostic.as_str()
            }
        );
        let notice = if message.sender.is_empty() {
            None
        } else {
            let recipients = [NoticeRecipient {
                recipient: rcpt.clone(),
                reason: reason.clone(),
                remote_mta: reported_by.clone(),
            }];
            Some(
                self.notice(
                    NoticeKind::Failure,
                    &msg,
                    &message.sender,
                    message.received_at,
                    &recipients,
                    build,
                )
                .await?,
            )
        };
        let audit = AuditEvent::Returned {
            message_id: msg.clone(),
            recipient: rcpt.clone(),
            status,
            reply_code,
            diagnostic,
            reported_by,
            client_ip: client_ip.to_owned(),
            dsn_id: notice.as_ref().map(|n| n.message.id.clone()),
        }
        .into_record();
        if self
            .store
            .mark_returned(rid, &reason, &audit, notice.as_ref())
            .await?
        {
            Ok(ReturnOutcome::Returned {
                message_id: msg,
                recipient: rcpt,
            })
        } else {
            // Returned meanwhile (the same bounce twice at once).
            self.ignored(
                address,
                client_ip,
                Some(&row),
                "the recipient was returned already".to_owned(),
            )
            .await
        }
    }
}

#[cfg(test)]
#[path = "returns_tests.rs"]
mod tests;
