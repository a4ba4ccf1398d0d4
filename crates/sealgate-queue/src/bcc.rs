//! Blind-copy header fields removed before a message is queued (RFC 5322 §3.6.3, §3.6.6).
//!
//! A submitted message may carry `Bcc:` (or `Resent-Bcc:`) naming its blind recipients; they
//! are already in the envelope, and every copy that leaves must not show them to anyone else.
//! The queue removes these fields once, when the message is accepted, so every delivery
//! method (verified TLS, opportunistic TLS, PGP/MIME, S/MIME, the portal) sends and stores a
//! message without them, whatever path queued it.
//!
//! Only the top-level header section is touched, and only the removed fields' own lines: every
//! other byte stays as it was (no unfolding or re-folding), so DKIM signatures over the other
//! fields and the body survive. A `Bcc:` inside an attached `message/rfc822` part is content
//! the sender chose to forward, possibly signed, and is left alone.

use std::borrow::Cow;

/// Field names removed, compared ASCII case-insensitively.
const BLIND_FIELDS: &[&str] = &["bcc", "resent-bcc"];

/// `message` without its top-level `Bcc:` and `Resent-Bcc:` fields (with their folded
/// continuation lines), and how many fields were removed. Borrows when there were none.
///
/// The header section ends at the first empty line, or at the end of the message when it has
/// no body. A line that is no header field (no colon) does not end it early: a `Bcc:` after such
/// a line is removed too, as a mail client might still show it as a field.
pub fn without_blind_copies(message: &[u8]) -> (Cow<'_, [u8]>, usize) {
    without_fields(message, BLIND_FIELDS)
}

/// `message` without its top-level header fields called `names` (ASCII case-insensitive, with
/// their folded continuation lines), and how many were removed; every other byte as it was,
/// as for [`without_blind_copies`]. Borrows when there were none.
pub fn without_fields<'a, N: AsRef<str>>(message: &'a [u8], names: &[N]) -> (Cow<'a, [u8]>, usize) {
    without_fields_where(message, |field| field_named(field, names))
}

/// `message` without the top-level header fields `drop` picks (it sees each whole field, its
/// folded continuation lines included), and how many were removed; every other byte as it
/// was. Borrows when there were none.
pub fn without_fields_where(
    message: &[u8],
    drop: impl Fn(&[u8]) -> bool,
) -> (Cow<'_, [u8]>, usize) {
    let mut kept: Option<Vec<u8>> = None;
    let mut removed = 0;
    let mut pos = 0;
    while pos < message.len() {
        let first = line_end(message, pos);
        let line = &message[pos..first];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        // The field runs on over its continuation lines.
        let mut end = first;
        while end < message.len() && matches!(message[end], b' ' | b'\t') {
            end = line_end(message, end);
        }
        let field = &message[pos..end];
        if drop(field) {
            removed += 1;
            // At the first removed field, everything before it is copied as it was.
            kept.get_or_insert_with(|| message[..pos].to_vec());
        } else if let Some(out) = kept.as_mut() {
            out.extend_from_slice(field);
        }
        pos = end;
    }
    match kept {
        Some(mut out) => {
            out.extend_from_slice(&message[pos..]);
            (Cow::Owned(out), removed)
        }
        None => (Cow::Borrowed(message), 0),
    }
}

/// The index just past the line starting at `pos` (its LF included, or the end).
fn line_end(data: &[u8], pos: usize) -> usize {
    data[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| pos + i + 1)
}

/// Whether `line` starts a field called one of `names` (ASCII case-insensitive): the name,
/// optional white space (RFC 5322 §4.5.3 `obs-bcc` and §4.5.6 `obs-resent-bcc`, syntax readers
/// must still accept), then the colon.
pub fn field_named<N: AsRef<str>>(line: &[u8], names: &[N]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let mut name = &line[..colon];
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    names
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f.as_ref().as_bytes()))
}

#[cfg(test)]
mod tests;
