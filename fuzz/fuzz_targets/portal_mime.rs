//! How the portal reads a sealed message for its recipient (mail-parser, then ammonia):
//! the thread page's summary, the sanitized HTML body, the attachment downloads.
//!
//! Checks: attachment names are bare file names; every attachment listed can be
//! downloaded with the listed name and size, and no more; an HTML document exists exactly
//! when the page says so, and it (like the raw input sanitized as HTML) holds no element,
//! attribute or URL that could load, run or submit anything.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_fuzz::html::assert_inert;
use sealgate_portal::mime::{attachment, html_document, show};
use sealgate_portal::sanitize::{InlineImages, sanitize_html};

/// What `body_document` puts around the sanitized fragment.
const PREFIX: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>";
const SUFFIX: &str = "</body></html>\n";

fuzz_target!(|data: &[u8]| {
    let shown = show(data);
    for (m, info) in shown.attachments.iter().enumerate() {
        let name = &info.name;
        assert!(!name.is_empty() && name.chars().count() <= 200, "{name:?}");
        assert!(
            !name.contains(['/', '\\']) && !name.starts_with('.'),
            "{name:?}"
        );
        assert!(!name.chars().any(char::is_control), "{name:?}");
        let (got, bytes) = attachment(data, m).expect("a listed attachment downloads");
        assert_eq!(&got, name);
        assert_eq!(bytes.len(), info.size);
    }
    assert!(attachment(data, shown.attachments.len()).is_none());
    let document = html_document(data);
    assert_eq!(document.is_some(), shown.has_html);
    if let Some(document) = document {
        assert!(shown.texts.is_empty());
        let fragment = document
            .strip_prefix(PREFIX)
            .and_then(|d| d.strip_suffix(SUFFIX))
            .expect("the document frame");
        assert_inert(fragment);
    }
    assert_inert(&sanitize_html(
        &String::from_utf8_lossy(data),
        InlineImages::default(),
    ));
});
