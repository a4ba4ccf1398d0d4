//! What the policy engine's content triggers look at ([`facts`]), and the header rewrite a
//! decision asks for before sending ([`rewrite`]): the security header removed, the subject
//! tag taken out. Everything else of the message stays byte for byte.

use sealgate_policy::MessageFacts;

/// How much of the body DLP patterns see.
const BODY_SAMPLE: usize = 256 * 1024;

/// The header block (without the blank line) and the body of `content`.
fn split(content: &[u8]) -> (&[u8], &[u8]) {
    if content.starts_with(b"\r\n") {
        return (&[], &content[2..]);
    }
    match content.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&content[..i + 2], &content[i + 4..]),
        None => (content, &[]),
    }
}

/// The header fields of a header block, each as its raw lines (continuations included).
fn fields(block: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < block.len() {
        let end = block[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(block.len(), |p| i + p + 2);
        let next_is_continuation = block.get(end).is_some_and(|b| *b == b' ' || *b == b'\t');
        if !next_is_continuation {
            out.push(&block[start..end]);
            start = end;
        }
        i = end;
    }
    out
}

/// Name and unfolded value of one raw field.
fn name_value(field: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(field);
    let (name, value) = text.split_once(':')?;
    let unfolded = value.replace("\r\n", "");
    Some((name.trim().to_owned(), unfolded.trim().to_owned()))
}

/// The facts content triggers look at: every header field (unfolded), the subject, and the
/// start of the body as text.
pub(crate) fn facts(content: &[u8]) -> MessageFacts {
    let (block, body) = split(content);
    let headers: Vec<(String, String)> = fields(block).into_iter().filter_map(name_value).collect();
    let subject = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let sample = &body[..body.len().min(BODY_SAMPLE)];
    MessageFacts {
        subject,
        headers,
        body_sample: String::from_utf8_lossy(sample).into_owned(),
        requiretls: false,
        phi_free: false,
    }
}

/// `content` with the header fields named in `strip` removed (ASCII case-insensitive, every
/// occurrence, continuation lines included) and the first occurrence of `subject_tag` taken
/// out of the Subject field (with one space next to it). `None` when nothing changes.
pub(crate) fn rewrite(
    content: &[u8],
    strip: &[String],
    subject_tag: Option<&str>,
) -> Option<Vec<u8>> {
    if strip.is_empty() && subject_tag.is_none() {
        return None;
    }
    let (block, _) = split(content);
    let mut out = Vec::with_capacity(content.len());
    let mut changed = false;
    let mut tag_done = subject_tag.is_none();
    for field in fields(block) {
        let name = name_value(field).map(|(n, _)| n).unwrap_or_default();
        if strip.iter().any(|s| s.trim().eq_ignore_ascii_case(&name)) {
            changed = true;
            continue;
        }
        if !tag_done
            && name.eq_ignore_ascii_case("subject")
            && let Some(new) = subject_tag.and_then(|t| remove_tag(field, t))
        {
            out.extend_from_slice(&new);
            changed = true;
            tag_done = true;
            continue;
        }
        out.extend_from_slice(field);
    }
    if !changed {
        return None;
    }
    out.extend_from_slice(&content[block.len()..]);
    Some(out)
}

/// The Subject field with `tag` (and one adjacent space) removed, if it holds the tag.
fn remove_tag(field: &[u8], tag: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(field).ok()?;
    let lower = text.to_ascii_lowercase();
    let at = lower.find(&tag.to_ascii_lowercase())?;
    // Never touch the field name itself.
    if at < text.find(':')? {
        return None;
    }
    let mut end = at + tag.len();
    let mut start = at;
    if text[end..].starts_with(' ') {
        end += 1;
    } else if text[..start].ends_with(' ') && !text[..start].ends_with(": ") {
        start -= 1;
    }
    let mut new = String::with_capacity(text.len());
    new.push_str(&text[..start]);
    new.push_str(&text[end..]);
    Some(new.into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@example.org\r\nSubject: [secure] Lab results\r\n\
X-Sealgate-Security: portal\r\nX-Other: keep\r\n  folded\r\nx-sealgate-security:\r\n pgp\r\n\
\r\nBody line\r\nSSN 123-45-6789\r\n";

    #[test]
    fn facts_unfold_headers_and_sample_the_body() {
        let f = facts(MSG);
        assert_eq!(f.subject, "[secure] Lab results");
        assert_eq!(
            f.header_values("x-sealgate-security").collect::<Vec<_>>(),
            vec!["portal", "pgp"]
        );
        assert_eq!(
            f.header_values("X-Other").collect::<Vec<_>>(),
            vec!["keep  folded"]
        );
        assert!(f.body_sample.contains("123-45-6789"));
    }

    #[test]
    fn rewrite_strips_every_named_field_and_the_tag_keeping_the_rest_byte_for_byte() {
        let out = rewrite(MSG, &["X-Sealgate-Security".into()], Some("[SECURE]")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From: a@example.org\r\nSubject: Lab results\r\nX-Other: keep\r\n  folded\r\n\
\r\nBody line\r\nSSN 123-45-6789\r\n"
        );
    }

    #[test]
    fn rewrite_removes_a_trailing_tag_with_its_space() {
        let msg = b"Subject: Lab results [secure]\r\n\r\nx\r\n";
        let out = rewrite(msg, &[], Some("[secure]")).unwrap();
        assert_eq!(out, b"Subject: Lab results\r\n\r\nx\r\n");
    }

    #[test]
    fn rewrite_changes_nothing_when_nothing_matches() {
        assert_eq!(rewrite(MSG, &[], None), None);
        assert_eq!(rewrite(MSG, &["X-Absent".into()], Some("[nope]")), None);
        let body_only = b"Subject: hi\r\n\r\n[secure] in the body\r\n";
        assert_eq!(rewrite(body_only, &[], Some("[secure]")), None);
    }

    #[test]
    fn message_without_headers_has_no_facts() {
        let f = facts(b"\r\nbody\r\n");
        assert!(f.headers.is_empty());
        assert_eq!(f.body_sample, "body\r\n");
    }
}
