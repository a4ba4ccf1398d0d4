use super::*;

/// The message with blind-copy fields removed, as bytes, and the count.
fn strip(message: &[u8]) -> (Vec<u8>, usize) {
    let (out, removed) = without_blind_copies(message);
    (out.into_owned(), removed)
}

#[test]
fn a_bcc_field_is_removed_and_every_other_byte_kept() {
    let message = b"From: a@x.example\r\nTo: b@y.example\r\nBcc: secret@z.example\r\n\
Subject: hi\r\n\r\nbody\r\n";
    let expected = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(strip(message), (expected.to_vec(), 1));
}

#[test]
fn folded_bcc_fields_go_with_all_their_continuation_lines() {
    let message = b"Received: from x\r\n\tby y; Mon, 1 Jan 2026\r\n\
bcc: one@z.example,\r\n two@z.example,\r\n\tthree@z.example\r\n\
Subject: folded\r\n  and kept\r\n\r\nbody\r\n";
    let expected = b"Received: from x\r\n\tby y; Mon, 1 Jan 2026\r\n\
Subject: folded\r\n  and kept\r\n\r\nbody\r\n";
    assert_eq!(strip(message), (expected.to_vec(), 1));
}

#[test]
fn bcc_and_resent_bcc_are_removed_in_any_case_and_every_occurrence() {
    let message = b"BCC: a@z.example\r\nTo: b@y.example\r\nResent-Bcc: c@z.example\r\n\
RESENT-BCC:\r\n d@z.example\r\nbCc: e@z.example\r\n\r\nbody\r\n";
    assert_eq!(
        strip(message),
        (b"To: b@y.example\r\n\r\nbody\r\n".to_vec(), 4)
    );
}

#[test]
fn the_obsolete_space_before_the_colon_is_still_a_bcc_field() {
    // RFC 5322 §4.5.3 obs-bcc: "Bcc" *WSP ":".
    let message = b"To: b@y.example\r\nBcc : a@z.example\r\nBcc\t:\r\n c@z.example\r\n\r\nx\r\n";
    assert_eq!(
        strip(message),
        (b"To: b@y.example\r\n\r\nx\r\n".to_vec(), 2)
    );
}

#[test]
fn fields_whose_names_only_start_or_end_with_bcc_are_kept() {
    let message = b"Bcc-Foo: a\r\nX-Bcc: b\r\nBccx: c\r\nResent-Bcc-Note: d\r\n\
X: Bcc: e\r\nSubject: Bcc: f\r\n\r\nbody\r\n";
    let (out, removed) = without_blind_copies(message);
    assert!(matches!(out, Cow::Borrowed(_)), "nothing to remove");
    assert_eq!((&*out, removed), (&message[..], 0));
}

#[test]
fn the_last_header_field_is_removed_before_the_body() {
    let message = b"To: b@y.example\r\nBcc: a@z.example\r\n\r\n";
    assert_eq!(strip(message), (b"To: b@y.example\r\n\r\n".to_vec(), 1));
}

#[test]
fn a_message_without_a_body_loses_its_bcc_too() {
    assert_eq!(
        strip(b"To: b@y.example\r\nBcc: a@z.example\r\n"),
        (b"To: b@y.example\r\n".to_vec(), 1)
    );
    assert_eq!(
        strip(b"To: b@y.example\r\nBcc: a@z.example"),
        (b"To: b@y.example\r\n".to_vec(), 1)
    );
    assert_eq!(strip(b"Bcc: a@z.example\r\n"), (Vec::new(), 1));
}

#[test]
fn bcc_in_the_body_or_an_attached_message_is_left_alone() {
    let message = b"To: b@y.example\r\nContent-Type: message/rfc822\r\n\r\n\
Bcc: inner@z.example\r\nSubject: forwarded\r\n\r\nhi\r\n";
    let (out, removed) = without_blind_copies(message);
    assert_eq!((&*out, removed), (&message[..], 0));
    let after_blank = b"To: b@y.example\r\n\r\nBcc: a@z.example\r\n";
    assert_eq!(strip(after_blank), (after_blank.to_vec(), 0));
}

#[test]
fn a_line_without_a_colon_does_not_end_the_header_early() {
    let message = b"To: b@y.example\r\nnot a field\r\nBcc: a@z.example\r\n\r\nbody\r\n";
    assert_eq!(
        strip(message),
        (
            b"To: b@y.example\r\nnot a field\r\n\r\nbody\r\n".to_vec(),
            1
        )
    );
}

#[test]
fn crlf_bare_lf_and_eight_bit_bytes_are_kept_exactly() {
    let message = b"Subject: caf\xc3\xa9\r\nBcc: a@z.example\nX-Raw: \xff\r\n\nbody\r\n";
    assert_eq!(
        strip(message),
        (
            b"Subject: caf\xc3\xa9\r\nX-Raw: \xff\r\n\nbody\r\n".to_vec(),
            1
        )
    );
}

#[test]
fn a_leading_continuation_line_is_kept() {
    let message = b" odd start\r\nBcc: a@z.example\r\n\r\nb\r\n";
    assert_eq!(strip(message), (b" odd start\r\n\r\nb\r\n".to_vec(), 1));
}

#[test]
fn an_empty_message_stays_empty() {
    assert_eq!(strip(b""), (Vec::new(), 0));
}

#[test]
fn named_fields_are_removed_with_their_continuations_and_the_body_is_kept() {
    let data = b"From: a@b\r\nX-Secret: one\r\n two\r\nSubject: s\r\nx-secret:three\r\n\r\nX-Secret: body\r\n";
    assert_eq!(
        &*without_fields(data, &["X-Secret"]).0,
        b"From: a@b\r\nSubject: s\r\n\r\nX-Secret: body\r\n"
    );
    let untouched = b"From: a@b\r\n\r\nbody\r\n";
    assert!(matches!(
        without_fields(untouched, &["X-Secret"]).0,
        std::borrow::Cow::Borrowed(_)
    ));
}
