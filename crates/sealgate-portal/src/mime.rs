//! What the portal shows of a sealed RFC 5322 message (mail-parser): the header lines, the
//! text bodies, whether there is HTML (shown through the sanitizer), and the attachments.
//!
//! Parsing never fails: a message mail-parser cannot read (no header at all) shows as one empty
//! message, without HTML or attachments.

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};

use crate::sanitize::{InlineImages, body_document, sanitize_html};

/// Largest inline image turned into a data URI; bigger ones are only downloadable.
const MAX_INLINE_IMAGE: usize = 2 * 1024 * 1024;

/// One message of a thread as the thread page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    /// The `From:` addresses.
    pub from: String,
    /// The `To:` addresses.
    pub to: String,
    /// The `Date:`, RFC 5322 form, if any.
    pub date: Option<String>,
    /// The `Subject:` (empty when absent).
    pub subject: String,
    /// The plain-text bodies, shown escaped when there is no HTML body.
    pub texts: Vec<String>,
    /// The message has an HTML body (shown sanitized in a sandboxed frame).
    pub has_html: bool,
    /// The attachments, in order (their index is the `m` of `/att/{n}/{m}`).
    pub attachments: Vec<AttachmentInfo>,
    /// The `Message-ID:` (without angle brackets), for a reply's `In-Reply-To:`.
    pub message_id: Option<String>,
    /// The `References:` ids (without angle brackets).
    pub references: Vec<String>,
}

/// An attachment's name and size, for the link that downloads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// The file name the sender gave, or `attachment-{m+1}` when none.
    pub name: String,
    /// Size in bytes (decoded).
    pub size: usize,
}

/// `None` when mail-parser finds no header at all. (Its `Message::default()` has no parts, and
/// its header accessors index the first part: they panic on one.)
fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else { return String::new() };
    a.iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_owned(),
            (Some(n), None) => n.to_owned(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_real_html(msg: &Message<'_>) -> bool {
    msg.html_bodies()
        .any(|p| matches!(p.body, PartType::Html(_)))
}

fn attachment_name(part: &mail_parser::MessagePart<'_>, m: usize) -> String {
    let given = part.attachment_name().map(clean_name).unwrap_or_default();
    match (given.is_empty(), part.is_message()) {
        (false, _) => given,
        (true, true) => format!("message-{}.eml", m + 1),
        (true, false) => format!("attachment-{}", m + 1),
    }
}

/// A file name as given, without path separators or control characters (at most 200 chars).
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_owned()
}

fn message_ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    }
}

/// What the thread page shows of `raw`.
pub fn show(raw: &[u8]) -> Shown {
    let Some(msg) = parse(raw) else {
        return Shown::default();
    };
    let has_html = is_real_html(&msg);
    let texts = if has_html {
        Vec::new()
    } else {
        (0..msg.text_body_count())
            .filter_map(|i| msg.body_text(i).map(|t| t.into_owned()))
            .collect()
    };
    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(m, part)| AttachmentInfo {
            name: attachment_name(part, m),
            size: part.len(),
        })
        .collect();
    Shown {
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        date: msg.date().map(|d| d.to_rfc822()),
        subject: msg.subject().unwrap_or_default().to_owned(),
        texts,
        has_html,
        attachments,
        message_id: msg.message_id().map(str::to_owned),
        references: message_ids(msg.references()),
    }
}

fn inline_images(msg: &Message<'_>) -> InlineImages {
    let mut images = InlineImages::default();
    for part in msg.parts.iter() {
        let (Some(cid), Some(ct)) = (part.content_id(), part.content_type()) else {
            continue;
        };
        if part.is_binary() && part.len() <= MAX_INLINE_IMAGE {
            let mime = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default());
            images.insert(cid, &mime, part.contents());
        }
    }
    images
}

/// The sanitized HTML document of `raw`'s HTML bodies, or `None` when it has none.
pub fn html_document(raw: &[u8]) -> Option<String> {
    let msg = parse(raw)?;
    if !is_real_html(&msg) {
        return None;
    }
    let html: String = (0..msg.html_body_count())
        .filter_map(|i| msg.body_html(i))
        .collect::<Vec<_>>()
        .join("\n<hr>\n");
    Some(body_document(&sanitize_html(&html, inline_images(&msg))))
}

/// Attachment `m` of `raw`: its name and decoded bytes.
pub fn attachment(raw: &[u8], m: usize) -> Option<(String, Vec<u8>)> {
    let msg = parse(raw)?;
    let part = msg.attachments().nth(m)?;
    Some((attachment_name(part, m), part.contents().to_vec()))
}

#[cfg(test)]
#[path = "mime_tests.rs"]
mod tests;
