//! Content triggers: the subject tag, the security header, DLP patterns and `TLS-Required`.

use crate::evidence::MessageFacts;
use crate::method::{Level, Method};
use crate::rules::ContentTriggers;

/// What the content triggers found in one message.
#[derive(Debug, Default)]
pub(crate) struct ContentOutcome {
    /// The level the content asks for, if any.
    pub level: Option<Level>,
    /// The method the security header forces, if any.
    pub method: Option<Method>,
    /// Evidence lines, in a fixed order.
    pub notes: Vec<String>,
    /// Header names to remove before sending.
    pub strip_headers: Vec<String>,
    /// The subject tag as it appears in the subject.
    pub subject_tag: Option<String>,
    /// A `TLS-Required: No` header field is present (RFC 8689 §5).
    pub tls_required_no: bool,
    /// The content triggers' own chain, when one of them required protection.
    pub chain: Option<Vec<Method>>,
}

/// What one value of the security header asks for.
enum HeaderAsk {
    Required,
    None,
    Method(Method),
    Unrecognised,
}

fn parse_header_value(value: &str) -> HeaderAsk {
    let v = value.trim();
    if v.eq_ignore_ascii_case("required") {
        return HeaderAsk::Required;
    }
    if v.eq_ignore_ascii_case("none") {
        return HeaderAsk::None;
    }
    match v.parse::<Method>() {
        // The header may ask for protection, never for plaintext.
        Ok(Method::TlsOpportunistic) | Err(_) => HeaderAsk::Unrecognised,
        Ok(m) => HeaderAsk::Method(m),
    }
}

/// Finds `tag` in `subject` ignoring ASCII case and returns it as written.
fn find_tag<'a>(subject: &'a str, tag: &str) -> Option<&'a str> {
    if tag.is_empty() {
        return None;
    }
    // ASCII lowercasing keeps byte offsets, so the offset indexes `subject` too.
    let at = subject
        .to_ascii_lowercase()
        .find(&tag.to_ascii_lowercase())?;
    subject.get(at..at + tag.len())
}

/// Runs every content trigger over `message`.
pub(crate) fn scan(triggers: &ContentTriggers, message: &MessageFacts) -> ContentOutcome {
    let mut out = ContentOutcome::default();
    let mut wants_protection = false;
    if let Some(tag) = triggers
        .subject_tags
        .iter()
        .find_map(|t| find_tag(&message.subject, t))
    {
        out.notes.push(format!(
            "content: subject tag {tag:?} requires protection; removed before sending"
        ));
        out.subject_tag = Some(tag.to_owned());
        wants_protection = true;
    }
    for pattern in &triggers.dlp {
        if pattern.matches(&message.body_sample) {
            // Only the pattern's name: the matched text is never written anywhere.
            out.notes.push(format!(
                "content: dlp pattern {} matched the body; protection required",
                pattern.name()
            ));
            wants_protection = true;
        }
    }
    let header_says_none = scan_header(triggers, message, &mut out, &mut wants_protection);
    if wants_protection {
        out.level = Some(Level::Required);
        out.chain.clone_from(&triggers.chain);
        if header_says_none {
            out.notes.push(format!(
                "content: {}: none ignored: another content trigger requires protection",
                triggers.header
            ));
        }
    } else if header_says_none {
        out.level = Some(Level::None);
    }
    out.tls_required_no = message
        .header_values("TLS-Required")
        .any(|v| v.eq_ignore_ascii_case("no"));
    out
}

/// Reads the security header; returns whether some value said `none`.
fn scan_header(
    triggers: &ContentTriggers,
    message: &MessageFacts,
    out: &mut ContentOutcome,
    wants_protection: &mut bool,
) -> bool {
    let name = triggers.header.as_str();
    if name.is_empty() {
        return false;
    }
    let mut says_none = false;
    for value in message.header_values(name) {
        match parse_header_value(value) {
            HeaderAsk::Required => {
                out.notes
                    .push(format!("content: {name}: required requires protection"));
                *wants_protection = true;
            }
            HeaderAsk::None => {
                out.notes.push(format!("content: {name}: none"));
                says_none = true;
            }
            HeaderAsk::Method(m) => {
                out.notes.push(format!(
                    "content: {name}: {m} forces {m} and requires protection"
                ));
                out.method.get_or_insert(m);
                *wants_protection = true;
            }
            HeaderAsk::Unrecognised => {
                // A request for protection is never lost to a typo.
                out.notes.push(format!(
                    "content: {name}: {value:?} not recognised; read as required"
                ));
                *wants_protection = true;
            }
        }
    }
    if message.header_values(name).next().is_some() {
        out.strip_headers.push(name.to_owned());
    }
    says_none
}
