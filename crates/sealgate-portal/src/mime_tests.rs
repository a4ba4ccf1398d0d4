//! Display parsing of sealed messages.

use super::*;

const MIXED: &[u8] = b"From: Dr. Ada <ada@clinic.example>\r\n\
To: bob@patient.example\r\n\
Subject: Your results\r\n\
Date: Tue, 3 Jun 2025 10:00:00 +0000\r\n\
Message-ID: <m1@clinic.example>\r\n\
References: <a@x> <b@x>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\
\r\n\
--XX\r\n\
Content-Type: multipart/alternative; boundary=YY\r\n\
\r\n\
--YY\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Plain <results>\r\n\
--YY\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>HTML <b>results</b><img src=\"https://t.example/p.gif\"><img src=\"cid:logo@x\"></p>\r\n\
--YY--\r\n\
--XX\r\n\
Content-Type: image/png\r\n\
Content-ID: <logo@x>\r\n\
Content-Disposition: inline\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--XX\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"../../etc/report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--XX--\r\n";

#[test]
fn a_mixed_message_shows_its_headers_html_and_attachments() {
    let s = show(MIXED);
    assert_eq!(s.from, "Dr. Ada <ada@clinic.example>");
    assert_eq!(s.to, "bob@patient.example");
    assert_eq!(s.subject, "Your results");
    assert!(
        s.date.as_deref().is_some_and(|d| d.contains("2025")),
        "{:?}",
        s.date
    );
    assert!(s.has_html);
    assert!(s.texts.is_empty(), "HTML wins over the alternative text");
    assert_eq!(s.message_id.as_deref(), Some("m1@clinic.example"));
    assert_eq!(s.references, ["a@x", "b@x"]);
    let names: Vec<&str> = s.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["attachment-1", "report.pdf"], "no path in names");
    assert_eq!(s.attachments[1].size, 9);
}

#[test]
fn the_html_document_is_sanitized_with_inline_images_as_data_uris() {
    let doc = html_document(MIXED).expect("has html");
    assert!(doc.contains("<b>results</b>"), "{doc}");
    assert!(!doc.contains("t.example"), "{doc}");
    assert!(
        doc.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""),
        "{doc}"
    );
}

#[test]
fn attachments_come_back_decoded_and_out_of_range_is_none() {
    let (name, bytes) = attachment(MIXED, 1).expect("pdf");
    assert_eq!(
        (name.as_str(), bytes.as_slice()),
        ("report.pdf", &b"%PDF-1.4\n"[..])
    );
    assert!(attachment(MIXED, 2).is_none());
}

#[test]
fn a_plain_message_shows_its_text_and_has_no_html_document() {
    let raw = b"From: a@x.example\r\nSubject: =?UTF-8?B?w4RyenRl?=\r\n\r\nLine one\r\n<b>not html</b>\r\n";
    let s = show(raw);
    assert_eq!(s.subject, "Ärzte");
    assert!(!s.has_html);
    assert_eq!(s.texts.len(), 1);
    assert!(
        s.texts[0].contains("<b>not html</b>"),
        "kept verbatim, escaped later"
    );
    assert!(html_document(raw).is_none());
}

#[test]
fn garbage_shows_as_an_empty_message() {
    let s = show(b"\x00\x01\x02");
    assert!(s.attachments.is_empty() && !s.has_html);
}

/// Found by fuzz/fuzz_targets/portal_mime.rs: for a message in which mail-parser finds no
/// header (an empty one), `show` panicked and took the whole thread page down with it.
#[test]
fn a_message_without_any_header_shows_as_an_empty_message() {
    assert_eq!(show(b""), Shown::default());
    assert_eq!(html_document(b""), None);
    assert_eq!(attachment(b"", 0), None);
}
