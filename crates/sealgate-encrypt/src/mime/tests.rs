use super::*;

const MSG: &[u8] =
    b"Received: from ehr.clinic.example by relay\r\n\tfor <a@b>; Mon, 1 Jan 2026\r\n\
From: Dr A <a@clinic.example>\r\n\
to: Patient <p@home.example>\r\n\
Subject: Lab results for\r\n J. Doe\r\n\
X-Custom: kept inside\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
MIME-Version: 1.0\r\n\
\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nHello\r\n--b1--\r\n";

#[test]
fn split_keeps_folded_fields_whole_and_the_body_exact() {
    let s = split(MSG).expect("split");
    let names: Vec<&str> = s.fields.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "Received",
            "From",
            "to",
            "Subject",
            "X-Custom",
            "Content-Type",
            "MIME-Version"
        ]
    );
    assert_eq!(s.fields[3].raw, b"Subject: Lab results for\r\n J. Doe\r\n");
    assert_eq!(
        s.fields[0].raw,
        b"Received: from ehr.clinic.example by relay\r\n\tfor <a@b>; Mon, 1 Jan 2026\r\n"
    );
    assert!(s.body.starts_with(b"--b1\r\n") && s.body.ends_with(b"--b1--\r\n"));
}

#[test]
fn split_refuses_a_header_without_colon_or_starting_folded() {
    assert!(split(b"no colon here\r\n\r\nbody").is_err());
    assert!(split(b" folded: first\r\n\r\nbody").is_err());
}

#[test]
fn inner_entity_protects_every_non_trace_field_and_keeps_the_body() {
    let inner = inner_entity(MSG, "Encrypted message").expect("inner");
    let s = split(&inner).expect("split inner");
    let text = String::from_utf8_lossy(&inner);
    assert!(!text.contains("Received:"), "{text}");
    assert!(text.contains("Subject: Lab results for\r\n J. Doe\r\n"));
    assert!(text.contains("X-Custom: kept inside\r\n"));
    assert!(text.contains("Content-Type: multipart/mixed; boundary=\"b1\";\r\n hp=\"cipher\"\r\n"));
    assert!(text.contains("HP-Outer: Subject: Encrypted message\r\n"));
    assert!(text.contains("HP-Outer: To: Patient <p@home.example>\r\n"));
    assert!(!text.contains("HP-Outer: Received"));
    assert_eq!(s.body, split(MSG).expect("split").body);
}

#[test]
fn inner_entity_adds_the_mime_defaults_a_bare_message_implies() {
    let inner = inner_entity(b"From: a@b\nSubject: s\n\nline one\nline two\n", "x").expect("inner");
    let text = String::from_utf8(inner).expect("utf8");
    assert!(text.contains("MIME-Version: 1.0\r\n"));
    assert!(text.contains("Content-Type: text/plain; charset=us-ascii; hp=\"cipher\"\r\n"));
    assert!(
        text.ends_with("\r\n\r\nline one\r\nline two\r\n"),
        "{text:?}"
    );
}

#[test]
fn outer_header_shows_only_routing_fields_and_the_placeholder() {
    let outer =
        String::from_utf8(outer_header(MSG, "Encrypted message").expect("outer")).expect("utf8");
    assert!(outer.starts_with("Received: from ehr.clinic.example"));
    assert!(outer.contains("From: Dr A <a@clinic.example>\r\n"));
    assert!(outer.contains("To: Patient <p@home.example>\r\n"));
    assert!(outer.contains("Subject: Encrypted message\r\n"));
    assert!(outer.ends_with("MIME-Version: 1.0\r\n"));
    for leaked in ["Lab results", "X-Custom", "Content-Type", "multipart"] {
        assert!(!outer.contains(leaked), "{leaked} leaked: {outer}");
    }
}

#[test]
fn a_placeholder_subject_cannot_inject_header_fields() {
    let outer =
        String::from_utf8(outer_header(MSG, "x\r\nBcc: evil@x").expect("outer")).expect("utf8");
    assert!(outer.contains("Subject: x??Bcc: evil@x\r\n"), "{outer}");
}

/// Found by fuzz/fuzz_targets/encrypt_mime.rs: a header-only message whose last field has no
/// line break glued the next written field onto it (`To: bSubject: …`, `To: bMIME-Version: …`).
#[test]
fn a_last_field_without_a_line_break_stays_a_field_of_its_own() {
    let message = b"From: a@example.org\r\nTo: b@example.org";
    let outer = outer_header(message, "Sealed").expect("outer");
    assert_eq!(
        String::from_utf8_lossy(&outer),
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: Sealed\r\nMIME-Version: 1.0\r\n"
    );
    let inner = inner_entity(message, "Sealed").expect("inner");
    let fields: Vec<&[u8]> = split(&inner)
        .expect("split")
        .fields
        .iter()
        .map(|f| f.raw)
        .collect();
    assert_eq!(fields[1], b"To: b@example.org\r\n");
    assert_eq!(fields[2], b"MIME-Version: 1.0\r\n");
    assert!(fields.contains(&&b"HP-Outer: To: b@example.org\r\n"[..]));
}

#[test]
fn canonical_crlf_leaves_crlf_alone_and_fixes_bare_lf() {
    assert_eq!(canonical_crlf(b"a\r\nb\nc"), b"a\r\nb\r\nc");
    assert_eq!(canonical_crlf(b"\n\n"), b"\r\n\r\n");
}

#[test]
fn base64_lines_are_76_characters_with_crlf() {
    let out = base64_lines(&[0u8; 100]);
    let text = String::from_utf8(out).expect("ascii");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0].len(), 76);
    assert_eq!(lines.last(), Some(&""));
}

#[test]
fn boundaries_differ() {
    assert_ne!(boundary(), boundary());
    assert!(boundary().starts_with("=_sealgate_"));
}
