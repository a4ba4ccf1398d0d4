//! The MIME side of PGP/MIME and S/MIME sealing (RFC 9788 header protection): splitting a
//! message, CRLF canonicalization, the protected inner entity and the outer header, from
//! arbitrary message bytes.
//!
//! Checks: a split gives the message back byte for byte; canonical CRLF is idempotent and
//! adds exactly one CR per bare LF; the inner entity and outer header have CRLF line ends
//! only and split again into well-formed fields; no trace field is sealed in; each Content-Type
//! is marked `hp="cipher"`; the outer header keeps only transport and threading fields and
//! one Subject, each mirrored by an `HP-Outer` field inside; the body is sealed unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_encrypt::mime::{Split, canonical_crlf, inner_entity, outer_header, split};

const SUBJECT: &str = "Encrypted message";

/// Fields the outer header may carry (RFC 9788 §2.1 and the trace fields of RFC 5322 §3.6.7).
const OUTER: &[&str] = &[
    "Received",
    "Return-Path",
    "From",
    "Sender",
    "To",
    "Cc",
    "Reply-To",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
    "MIME-Version",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = split(data) {
        check_split(data, &parts);
    }
    let canonical = canonical_crlf(data);
    check_canonical(data, &canonical);
    let original = split(&canonical);
    let inner = inner_entity(data, SUBJECT);
    let outer = outer_header(data, SUBJECT);
    assert_eq!(original.is_ok(), inner.is_ok());
    assert_eq!(original.is_ok(), outer.is_ok());
    let (Ok(original), Ok(inner), Ok(outer)) = (original, inner, outer) else {
        return;
    };
    check_crlf(&inner);
    check_crlf(&outer);
    let outer_fields = check_outer(&outer);
    check_inner(&original, &inner, &outer_fields);
});

/// The fields and body of a split are the message, in order, with only the blank line between.
fn check_split(message: &[u8], parts: &Split<'_>) {
    let mut rebuilt = Vec::with_capacity(message.len());
    for field in &parts.fields {
        assert!(field.raw.starts_with(field.name.as_bytes()));
        assert_eq!(field.raw.get(field.name.len()), Some(&b':'));
        assert!(!field.name.is_empty() && field.name.bytes().all(|b| b.is_ascii_graphic()));
        rebuilt.extend_from_slice(field.raw);
    }
    let separator = &message[rebuilt.len()..message.len() - parts.body.len()];
    assert!(matches!(separator, b"" | b"\n" | b"\r\n"), "{separator:?}");
    assert!(separator.is_empty() == parts.body.is_empty() || !separator.is_empty());
    rebuilt.extend_from_slice(separator);
    rebuilt.extend_from_slice(parts.body);
    assert_eq!(rebuilt, message);
}

fn check_canonical(data: &[u8], canonical: &[u8]) {
    let bare = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
        .count();
    assert_eq!(canonical.len(), data.len() + bare);
    check_crlf(canonical);
    assert_eq!(canonical_crlf(canonical), canonical);
}

fn check_crlf(data: &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && data[i - 1] == b'\r', "bare LF at {i}");
        }
    }
}

/// Every line of a header ends in CRLF: each field's raw text ends in it.
fn check_fields_end_lines(parts: &Split<'_>, what: &str) {
    for field in &parts.fields {
        assert!(
            field.raw.ends_with(b"\r\n"),
            "{what} field {:?} is not a whole line",
            String::from_utf8_lossy(field.raw)
        );
    }
}

/// The outer header's fields (their raw text), checked.
fn check_outer(outer: &[u8]) -> Vec<Vec<u8>> {
    let parts = split(outer).expect("the outer header splits");
    assert!(parts.body.is_empty());
    check_fields_end_lines(&parts, "outer");
    let subjects = parts.fields.iter().filter(|f| f.is("Subject")).count();
    assert_eq!(subjects, 1);
    for field in &parts.fields {
        assert!(
            OUTER.iter().any(|n| field.is(n)),
            "outer field {}",
            field.name
        );
    }
    assert_eq!(
        parts.fields.last().map(|f| f.raw),
        Some(&b"MIME-Version: 1.0\r\n"[..])
    );
    parts.fields.iter().map(|f| f.raw.to_vec()).collect()
}

fn check_inner(original: &Split<'_>, inner: &[u8], outer_fields: &[Vec<u8>]) {
    let parts = split(inner).expect("the inner entity splits");
    check_fields_end_lines(&parts, "inner");
    assert_eq!(parts.body, original.body, "the body changed");
    for field in &parts.fields {
        assert!(
            !field.is("Received") && !field.is("Return-Path"),
            "trace field sealed"
        );
    }
    let types: Vec<_> = parts
        .fields
        .iter()
        .filter(|f| f.is("Content-Type"))
        .collect();
    let original_types = original
        .fields
        .iter()
        .filter(|f| f.is("Content-Type"))
        .count();
    assert_eq!(types.len(), original_types.max(1));
    for field in types {
        assert!(
            field.raw.ends_with(b"; hp=\"cipher\"\r\n")
                || field.raw.ends_with(b"\r\n hp=\"cipher\"\r\n")
        );
    }
    assert!(parts.fields.iter().any(|f| f.is("MIME-Version")));
    let mirrored: Vec<&[u8]> = parts
        .fields
        .iter()
        .filter(|f| f.is("HP-Outer"))
        .map(|f| &f.raw[b"HP-Outer: ".len()..])
        .collect();
    let visible: Vec<&[u8]> = outer_fields
        .iter()
        .map(Vec::as_slice)
        .filter(|f| !f.starts_with(b"Received:") && !f.starts_with(b"Return-Path:"))
        .filter(|f| !f.starts_with(b"MIME-Version:"))
        .collect();
    assert_eq!(
        mirrored, visible,
        "HP-Outer fields differ from the outer header"
    );
}
