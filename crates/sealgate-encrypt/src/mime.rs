//! The MIME shape shared by PGP/MIME and S/MIME: which header fields stay outside, and the
//! protected inner entity (RFC 9788 "header protection").
//!
//! The cryptographic payload is the original message's MIME entity — its header fields
//! (trace fields excepted) and its body, byte for byte — with `hp="cipher"` on its
//! Content-Type and one `HP-Outer` field per header field left visible outside. The outer
//! message keeps only what transport and threading need (addresses, date, ids, trace
//! fields) and a placeholder Subject.

use crate::EncryptError;

/// One header field as it appears in the message: its name and its raw bytes (name, colon,
/// value with any folding, final CRLF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name as written (not case-folded).
    pub name: &'a str,
    /// The whole field, line end included.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// Whether this field is named `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A message split into header fields and body.
#[derive(Clone, Debug)]
pub struct Split<'a> {
    /// The header fields in order.
    pub fields: Vec<Field<'a>>,
    /// Everything after the blank line that ends the header.
    pub body: &'a [u8],
}

/// Trace fields (RFC 5322 §3.6.7): they describe the transport, stay outside only.
const TRACE: &[&str] = &["Received", "Return-Path"];

/// Fields the outer message keeps besides trace fields (RFC 9788 §2.1: what transport,
/// threading and the recipient's mail client need before decrypting).
const OUTER: &[&str] = &[
    "From",
    "Sender",
    "To",
    "Cc",
    "Reply-To",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
];

/// MIME structural fields: describe the payload, never copied to the outer message.
const STRUCTURAL: &[&str] = &["MIME-Version", "Content-Type", "Content-Transfer-Encoding"];

/// Splits `message` (CRLF or bare LF line ends) at the blank line after its header.
pub fn split(message: &[u8]) -> Result<Split<'_>, EncryptError> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    // Where the last field starts, so continuation lines extend it.
    let mut last_start = 0;
    let mut pos = 0;
    while pos < message.len() {
        let end = line_end(message, pos);
        let line = &message[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return Ok(Split {
                fields,
                body: &message[end..],
            });
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A continuation of the previous field (RFC 5322 §2.2.3).
            let Some(last) = fields.last_mut() else {
                return Err(EncryptError::Malformed(
                    "message header starts with a continuation line".to_owned(),
                ));
            };
            last.raw = &message[last_start..end];
        } else {
            let colon = line.iter().position(|&b| b == b':').ok_or_else(|| {
                EncryptError::Malformed("a message header line has no colon".to_owned())
            })?;
            let name = std::str::from_utf8(&line[..colon])
                .ok()
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| {
                    EncryptError::Malformed("a message header field name is invalid".to_owned())
                })?;
            fields.push(Field { name, raw: line });
            last_start = pos;
        }
        pos = end;
    }
    // No blank line: a message with a header only.
    Ok(Split {
        fields,
        body: &message[message.len()..],
    })
}

/// The index just past the line starting at `pos` (its LF included, or the end).
fn line_end(data: &[u8], pos: usize) -> usize {
    data[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| pos + i + 1)
}

/// `data` with every bare LF turned into CRLF (the canonical form both RFC 3156 §5 and
/// RFC 8551 §3.1.1 require before encrypting or signing).
pub fn canonical_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The cryptographic payload for `message`: every non-trace header field in order, the
/// Content-Type marked `hp="cipher"` (a `text/plain` one added when the message had none),
/// `MIME-Version` when missing, one `HP-Outer` field per field `outer` keeps visible, then
/// the body unchanged. Line ends are made CRLF.
pub fn inner_entity(message: &[u8], outer_subject: &str) -> Result<Vec<u8>, EncryptError> {
    let message = canonical_crlf(message);
    let split = split(&message)?;
    let mut out = Vec::with_capacity(message.len() + 512);
    let mut has_type = false;
    let mut has_version = false;
    for f in split.fields.iter().filter(|f| !is_any(f, TRACE)) {
        if f.is("Content-Type") {
            has_type = true;
            let raw = f.raw.strip_suffix(b"\r\n").unwrap_or(f.raw);
            out.extend_from_slice(raw);
            out.extend_from_slice(b";\r\n hp=\"cipher\"\r\n");
        } else {
            has_version |= f.is("MIME-Version");
            out.extend_from_slice(&whole_line(f.raw));
        }
    }
    if !has_version {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    if !has_type {
        // RFC 2045 §5.2: the default a message without Content-Type has.
        out.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii; hp=\"cipher\"\r\n");
    }
    for line in outer_fields(&split, outer_subject) {
        if !line.starts_with(b"Received:") && !line.starts_with(b"Return-Path:") {
            out.extend_from_slice(b"HP-Outer: ");
            out.extend_from_slice(&line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(split.body);
    Ok(out)
}

/// The outer header of the protected message (without Content-Type and the blank line, which
/// the method adds): trace fields and the address, date and id fields as they were, `subject` as the Subject,
/// `MIME-Version: 1.0`.
pub fn outer_header(message: &[u8], subject: &str) -> Result<Vec<u8>, EncryptError> {
    let message = canonical_crlf(message);
    let split = split(&message)?;
    let mut out = Vec::with_capacity(1024);
    for line in outer_fields(&split, subject) {
        out.extend_from_slice(&line);
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    Ok(out)
}

/// The outer fields in order: kept ones as written, then the placeholder Subject.
fn outer_fields(split: &Split<'_>, subject: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = split
        .fields
        .iter()
        .filter(|f| is_any(f, TRACE) || is_any(f, OUTER))
        .filter(|f| !is_any(f, STRUCTURAL))
        .map(|f| normalise_name(f))
        .collect();
    out.push(format!("Subject: {}\r\n", subject_text(subject)).into_bytes());
    out
}

/// The field with its name in canonical spelling (so `HP-Outer` lines and the outer
/// header match byte for byte whatever case the sender used).
fn normalise_name(f: &Field<'_>) -> Vec<u8> {
    let canonical = TRACE
        .iter()
        .chain(OUTER)
        .find(|n| f.is(n))
        .copied()
        .unwrap_or(f.name);
    let mut v = canonical.as_bytes().to_vec();
    v.extend_from_slice(&whole_line(&f.raw[f.name.len()..]));
    v
}

/// `raw` ending in a line break: the last field of a message that ends without one (no body,
/// no final CRLF) gets CRLF, so the field written after it is not glued onto its value.
fn whole_line(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if raw.ends_with(b"\n") {
        raw.into()
    } else {
        [raw, b"\r\n"].concat().into()
    }
}

fn is_any(f: &Field<'_>, names: &[&str]) -> bool {
    names.iter().any(|n| f.is(n))
}

/// The placeholder subject as a header value: printable ASCII kept, anything else (line
/// breaks above all) replaced, so configuration cannot inject header fields.
fn subject_text(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A fresh MIME boundary: 24 random bytes in hex behind a prefix that cannot occur in
/// base64 or armored data (`=_`).
pub fn boundary() -> String {
    let mut b = [0u8; 24];
    // A boundary only has to be unlikely to occur in the body; if the system RNG failed,
    // time-derived bytes still are.
    if getrandom::fill(&mut b).is_err() {
        let t = sealgate_types::time::now_micros().to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % 8] ^ (i as u8);
        }
    }
    format!("=_sealgate_{}", hex::encode(b))
}

/// `data` base64-encoded in lines of 76 characters with CRLF (RFC 2045 §6.8).
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(text.len() + text.len() / 76 * 2 + 2);
    for chunk in text.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests;
