//! Message HTML made inert for display (ammonia).
//!
//! The portal never loads anything a message points at: every URL scheme but `cid:` is
//! dropped by ammonia, relative URLs are dropped, and a `cid:` image is then replaced by the
//! message's own inline part as a `data:` URI (raster types only) or dropped. No link keeps an
//! `href`, no element that can load or submit survives (`<base>`, `<meta>`, `<link>`, `<form>`,
//! `<object>`, `<embed>`, `<iframe>`, `<svg>`, `<math>`, `<style>`, `<script>`), no `srcset`,
//! no event handler, and a `style` attribute survives only with a whitelist of properties and
//! nothing that could hold a URL or hide one (`url`, `image`, `@`, `\` escapes, comments).
//! The result is shown in an iframe sandboxed without scripts, under its own strict CSP.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ammonia::{Builder, UrlRelative};

/// A message's inline images by Content-ID (without angle brackets), as `data:` URIs.
#[derive(Debug, Clone, Default)]
pub struct InlineImages(HashMap<String, String>);

impl InlineImages {
    /// Adds the image with Content-ID `cid`; only raster types a browser shows inertly are
    /// taken (never `image/svg+xml`, which can hold script and remote references).
    pub fn insert(&mut self, cid: &str, content_type: &str, data: &[u8]) {
        use base64::Engine;
        let ct = content_type.to_ascii_lowercase();
        if matches!(
            ct.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        ) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(data);
            self.0.insert(
                cid.trim_matches(['<', '>']).to_owned(),
                format!("data:{ct};base64,{b64}"),
            );
        }
    }

    /// The data URI for a `cid:` URL (RFC 2392: the Content-ID, percent-encoded), if any.
    fn resolve(&self, url: &str) -> Option<&str> {
        let scheme = url.get(..4)?;
        if !scheme.eq_ignore_ascii_case("cid:") {
            return None;
        }
        self.0.get(&percent_decode(&url[4..])).map(String::as_str)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Style properties that cannot load anything and cannot reach outside the frame.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "white-space",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "width",
    "height",
    "max-width",
    "min-width",
    "max-height",
    "min-height",
    "display",
    "direction",
    "table-layout",
    "word-break",
    "word-wrap",
    "overflow-wrap",
];

/// Elements removed together with everything inside them.
const DROP_WITH_CONTENT: &[&str] = &[
    "script", "style", "title", "svg", "math", "noscript", "template", "object", "iframe",
    "noembed", "noframes", "xmp", "head",
];

/// Presentational attributes of mail HTML that hold no URL.
const TABLE_ATTRIBUTES: &[&str] = &[
    "width",
    "height",
    "align",
    "valign",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "colspan",
    "rowspan",
    "nowrap",
];

/// Parts of a `style` value that could load something or smuggle a URL past the filter.
fn style_is_suspect(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    [
        "url",
        "image",
        "@",
        "\\",
        "/*",
        "expression",
        "var(",
        "attr(",
        "&",
    ]
    .iter()
    .any(|bad| v.contains(bad))
}

fn builder(images: Arc<InlineImages>) -> Builder<'static> {
    let mut b = Builder::default();
    b.rm_tags(["area", "map"])
        .add_tags(["font", "tfoot", "big", "label"])
        .rm_tag_attributes("blockquote", ["cite"])
        .rm_tag_attributes("del", ["cite"])
        .rm_tag_attributes("ins", ["cite"])
        .rm_tag_attributes("q", ["cite"])
        .rm_tag_attributes("a", ["href", "hreflang"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_generic_attributes(["dir", "style", "align"])
        .clean_content_tags(DROP_WITH_CONTENT.iter().copied().collect::<HashSet<_>>())
        .url_schemes(HashSet::from(["cid"]))
        .url_relative(UrlRelative::Deny)
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        .strip_comments(true)
        .link_rel(Some("noopener noreferrer"));
    for tag in [
        "table", "tr", "td", "th", "tbody", "thead", "tfoot", "col", "colgroup",
    ] {
        b.add_tag_attributes(tag, TABLE_ATTRIBUTES.iter().copied());
    }
    b.attribute_filter(move |element, attribute, value| {
        filter_attribute(&images, element, attribute, value)
    });
    b
}

/// Runs after ammonia's scheme check: what passed is at most a `cid:` URL.
fn filter_attribute<'u>(
    images: &InlineImages,
    element: &str,
    attribute: &str,
    value: &'u str,
) -> Option<Cow<'u, str>> {
    match attribute {
        "style" if style_is_suspect(value) => None,
        "src" if element == "img" => images
            .resolve(value.trim())
            .map(|d| Cow::Owned(d.to_owned())),
        // Any other URL-bearing attribute that got this far (a `cid:` href) goes too.
        "src" | "href" | "xlink:href" | "action" | "formaction" | "data" | "poster" | "ping"
        | "background" | "cite" | "longdesc" | "srcset" => None,
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Sanitizes message HTML into an inert fragment; `images` are the message's inline parts.
pub fn sanitize_html(html: &str, images: InlineImages) -> String {
    builder(Arc::new(images)).clean(html).to_string()
}

/// A complete document around sanitized HTML, as the body frame serves it.
pub fn body_document(sanitized: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>{sanitized}</body></html>\n"
    )
}

#[cfg(test)]
#[path = "sanitize_tests.rs"]
mod tests;
