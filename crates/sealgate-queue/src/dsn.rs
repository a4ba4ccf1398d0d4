//! Delivery status notifications (RFC 3464, in a multipart/report of RFC 6522).
//!
//! A bounce tells the envelope sender which recipients failed and why. It carries only the
//! original message's header section (`text/rfc822-headers`), never its body: the body may hold
//! protected health information and has no business travelling again. Never sent for a null
//! sender (RFC 5321 §4.5.5, RFC 3461 §6.2), which the caller checks.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::delivery::{NoticeContent, NoticeKind, NoticeRequest};

/// Failure (permanent) or delay (still trying) notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnKind {
    /// `Action: failed`.
    Failure,
    /// `Action: delayed` (RFC 3464 §2.3.3): a warning while retries continue.
    Delay,
}

/// One recipient's line in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// The envelope recipient.
    pub recipient: String,
    /// The reply that decided it (e.g. "550 5.1.1 no such user"), or a description of the
    /// connection problem.
    pub diagnostic: String,
    /// The host that answered, if any (`Remote-MTA`).
    pub remote_mta: Option<String>,
}

/// Everything a report says.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Failure or delay.
    pub kind: DsnKind,
    /// Our host name (`Reporting-MTA`, and the From: domain).
    pub reporting_mta: &'a str,
    /// The queue id of the original message.
    pub queue_id: &'a str,
    /// When we accepted the original.
    pub arrival: DateTime<Utc>,
    /// When this report is made.
    pub now: DateTime<Utc>,
    /// The envelope sender, who receives the report.
    pub to: &'a str,
    /// The failed (or delayed) recipients.
    pub recipients: &'a [DsnRecipient],
    /// The original message (only its header section is copied).
    pub original: &'a [u8],
    /// A unique token for the report's Message-ID and MIME boundary.
    pub unique: &'a str,
}

/// The status code for a diagnostic: its enhanced code if it has one (RFC 3463) — after the
/// reply code of an SMTP reply, or first in a local reason — otherwise 5.0.0 / 4.0.0 from the
/// reply class.
pub fn status_of(diagnostic: &str, kind: DsnKind) -> String {
    let mut words = diagnostic.split_whitespace();
    let code = words.next().unwrap_or_default();
    if is_enhanced(code) {
        return code.to_owned();
    }
    if let Some(esc) = words.next().filter(|w| is_enhanced(w)) {
        return esc.to_owned();
    }
    match (code.as_bytes().first(), kind) {
        (Some(b'5'), _) | (None, DsnKind::Failure) => "5.0.0".to_owned(),
        (Some(b'4'), _) | (_, DsnKind::Delay) => "4.0.0".to_owned(),
        _ => "5.0.0".to_owned(),
    }
}

/// "smtp" when the diagnostic is a remote SMTP reply, else our own type (RFC 3464 §2.3.6).
fn diagnostic_type(diagnostic: &str) -> &'static str {
    let code = diagnostic.split_whitespace().next().unwrap_or_default();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) {
        "smtp"
    } else {
        "X-Sealgate"
    }
}

/// RFC 6533: when an address or the returned header section is not ASCII, the report uses the
/// internationalized types and the utf-8 address type.
fn is_global(input: &DsnInput<'_>) -> bool {
    !header_section(input.original).is_ascii()
        || input.recipients.iter().any(|r| !r.recipient.is_ascii())
}

fn is_enhanced(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The header section of a message (up to the blank line), CRLF-terminated.
fn header_section(original: &[u8]) -> &[u8] {
    match original.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &original[..p + 2],
        None => original,
    }
}

/// Text for a header or a report field: no line breaks, no control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(900)
        .collect()
}

/// Builds the complete report message, CRLF line endings throughout.
pub fn build_dsn(input: &DsnInput<'_>) -> Vec<u8> {
    let boundary = format!("=_sealgate_{}", input.unique);
    let (subject, action) = match input.kind {
        DsnKind::Failure => ("Undelivered Mail Returned to Sender", "failed"),
        DsnKind::Delay => ("Delayed Mail (still being retried)", "delayed"),
    };
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: {date}\r\nMessage-ID: <{unique}.dsn@{host}>\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\r\nThis is a MIME-encapsulated delivery status notification.\r\n\r\n",
        host = input.reporting_mta,
        to = one_line(input.to),
        date = input.now.format("%a, %d %b %Y %H:%M:%S +0000"),
        unique = input.unique,
    );
    let global = is_global(input);
    human_part(&mut m, input, &boundary);
    status_part(&mut m, input, &boundary, action, global);
    let headers_type = if global {
        "message/global-headers"
    } else {
        "text/rfc822-headers"
    };
    let _ = write!(m, "--{boundary}\r\nContent-Type: {headers_type}\r\n\r\n");
    let mut out = m.into_bytes();
    out.extend_from_slice(header_section(input.original));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn human_part(m: &mut String, input: &DsnInput<'_>, boundary: &str) {
    let _ = write!(
        m,
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    let _ = match input.kind {
        DsnKind::Failure => write!(
            m,
            "Your message (queue id {}) could not be delivered to the recipients below.\r\n\
             It will not be retried. The message body is not attached.\r\n\r\n",
            input.queue_id
        ),
        DsnKind::Delay => write!(
            m,
            "Your message (queue id {}) has not yet been delivered to the recipients below.\r\n\
             Delivery is still being retried; no action is needed yet.\r\n\r\n",
            input.queue_id
        ),
    };
    for r in input.recipients {
        let _ = write!(
            m,
            "<{}>: {}\r\n",
            one_line(&r.recipient),
            one_line(&r.diagnostic)
        );
    }
    m.push_str("\r\n");
}

fn status_part(m: &mut String, input: &DsnInput<'_>, boundary: &str, action: &str, global: bool) {
    let (status_type, address_type) = if global {
        ("message/global-delivery-status", "utf-8")
    } else {
        ("message/delivery-status", "rfc822")
    };
    let _ = write!(
        m,
        "--{boundary}\r\nContent-Type: {status_type}\r\n\r\n\
         Reporting-MTA: dns; {}\r\nX-Sealgate-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        input.reporting_mta,
        input.queue_id,
        input.arrival.format("%a, %d %b %Y %H:%M:%S +0000")
    );
    for r in input.recipients {
        let _ = write!(
            m,
            "\r\nFinal-Recipient: {address_type}; {}\r\nAction: {action}\r\nStatus: {}\r\n",
            one_line(&r.recipient),
            status_of(&r.diagnostic, input.kind)
        );
        if let Some(mta) = &r.remote_mta {
            let _ = write!(m, "Remote-MTA: dns; {}\r\n", one_line(mta));
        }
        let _ = write!(
            m,
            "Diagnostic-Code: {}; {}\r\nLast-Attempt-Date: {}\r\n",
            diagnostic_type(&r.diagnostic),
            one_line(&r.diagnostic),
            input.now.format("%a, %d %b %Y %H:%M:%S +0000")
        );
    }
    m.push_str("\r\n");
}

/// Renders a notice the queue asked for as an RFC 3464 DSN from `hostname`.
fn render(hostname: &str, req: &NoticeRequest<'_>) -> NoticeContent {
    let recipients: Vec<DsnRecipient> = req
        .recipients
        .iter()
        .map(|r| DsnRecipient {
            recipient: r.recipient.clone(),
            diagnostic: r.reason.clone(),
            remote_mta: r.remote_mta.clone(),
        })
        .collect();
    let unique = req.id.to_string();
    let kind = match req.kind {
        NoticeKind::Failure => DsnKind::Failure,
        NoticeKind::Delay => DsnKind::Delay,
    };
    let content = build_dsn(&DsnInput {
        kind,
        reporting_mta: hostname,
        queue_id: req.original_id,
        arrival: sealgate_types::time::from_micros(req.received_at),
        now: Utc::now(),
        to: req.to,
        recipients: &recipients,
        original: req.original,
        unique: &unique,
    });
    NoticeContent {
        content,
        header_message_id: Some(format!("<{unique}.dsn@{hostname}>")),
        hostname: hostname.to_owned(),
    }
}

/// The notice builder of a node called `hostname`: notices rendered as DSNs (for settling,
/// [`crate::Queue::settle_group`], and an operator's bounce, [`crate::Queue::queue_notice`]).
pub fn dsn_builder(hostname: &str) -> impl Fn(&NoticeRequest<'_>) -> NoticeContent + Sync + '_ {
    move |req| render(hostname, req)
}

#[cfg(test)]
mod tests;
