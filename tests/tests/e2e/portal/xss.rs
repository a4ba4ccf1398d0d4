//! XSS payloads in the message (HTML body, subject, sender name, attachment name) do not
//! execute in the browser: no dialog, no console marker, and nothing executable left in the
//! DOM of the thread page or of the sanitized body frame — which still shows the message.

use sealgate_testkit::db::TestBackend;

use super::*;

/// Each payload would call alert() and log an `xss-marker-…` line if it ran.
const PAYLOADS: &[&str] = &[
    "<script>alert('s1');console.log('xss-marker-script')</script>",
    "<img src=x onerror=\"alert('s2');console.log('xss-marker-img')\">",
    "<svg onload=\"alert('s3');console.log('xss-marker-svg')\"><circle r=\"1\"/></svg>",
    "<svg><script>alert('s4');console.log('xss-marker-svg-script')</script></svg>",
    "<body onload=\"alert('s5');console.log('xss-marker-body')\">",
    "<iframe src=\"javascript:alert('s6');console.log('xss-marker-iframe')\"></iframe>",
    "<iframe srcdoc=\"<script>alert('s7');console.log('xss-marker-srcdoc')</script>\"></iframe>",
    "<a href=\"javascript:alert('s8')\">plain</a>",
    "<a href=\"JaVaScRiPt:alert('s9')\">mixed case</a>",
    "<a href=\"&#106;avascript:alert('s10')\">entity</a>",
    "<a href=\"java&#x09;script:alert('s11')\">tab entity</a>",
    "<a href=\"  javascript:alert('s12')\">leading space</a>",
    "<a href=\"vbscript:msgbox('s13')\">vbscript</a>",
    "<details open ontoggle=\"alert('s14');console.log('xss-marker-details')\"><summary>d</summary></details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"alert('s15');console.log('xss-marker-mxss')\"></style></mglyph></table></mtext></math>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('s16')>\"></p></noscript>",
    "<object data=\"javascript:alert('s17')\"></object>",
    "<embed src=\"javascript:alert('s18')\">",
    "<form action=\"javascript:alert('s19')\"><button formaction=\"javascript:alert('s20')\">b</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert('s21')\">",
    "<div style=\"background:url(javascript:alert('s22'))\">css</div>",
    "<input autofocus onfocus=\"alert('s23');console.log('xss-marker-focus')\">",
    "<video><source onerror=\"alert('s24');console.log('xss-marker-video')\"></video>",
    "<marquee onstart=\"alert('s25')\">m</marquee>",
    "<a href=\"data:text/html,<script>alert('s26')</script>\">data</a>",
    "<iframe src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgnczI3Jyk8L3NjcmlwdD4=\"></iframe>",
    "<svg><animate attributeName=\"href\" values=\"javascript:alert('s28')\"/><a><text y=\"10\">svg</text></a></svg>",
    "<img src=\"x\" o&#110;error=\"alert('s29')\">",
    "<scr<script>ipt>alert('s30')</scr</script>ipt>",
    "<p>xss-visible-marker</p>",
];

/// A JavaScript expression listing what in a document could run script: event handler
/// attributes, script-capable URLs, script elements, and (with `strict`) elements that embed
/// or navigate (iframes, objects, forms, meta, base).
fn executable_parts(strict: bool) -> String {
    format!(
        r#"(() => {{
  const bad = [];
  const urlAttrs = ['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'background',
    'poster', 'values', 'to', 'from', 'srcset'];
  for (const el of document.querySelectorAll('*')) {{
    const tag = el.tagName.toLowerCase();
    if (tag === 'script') bad.push('script element');
    if ({strict} && ['iframe', 'frame', 'object', 'embed', 'form', 'base', 'link'].includes(tag))
      bad.push('element ' + tag);
    // The portal's own <meta charset>, viewport and referrer are harmless; a meta that
    // refreshes or sets policy (http-equiv) is not.
    if (tag === 'meta' && el.hasAttribute('http-equiv'))
      bad.push('meta ' + el.outerHTML.slice(0, 60));
    for (const a of el.attributes) {{
      const name = a.name.toLowerCase();
      const value = a.value.replace(/[\s\u0000-\u001f]/g, '').toLowerCase();
      if (name.startsWith('on')) bad.push(tag + ' ' + name);
      if (name === 'srcdoc') bad.push(tag + ' srcdoc');
      if (urlAttrs.includes(name) && /^(javascript|vbscript):/.test(value))
        bad.push(tag + ' ' + name + '=' + value.slice(0, 30));
      if (urlAttrs.includes(name) && value.startsWith('data:') && !(tag === 'img' && value.startsWith('data:image/')))
        bad.push(tag + ' ' + name + '=' + value.slice(0, 30));
    }}
  }}
  return bad;
}})()"#
    )
}

/// A message with every payload in its HTML part, and more in the subject, the sender's
/// display name and the attachment's file name.
fn hostile_message() -> Vec<u8> {
    let html = format!(
        "<!doctype html><html><head><title>t</title></head><body>{}</body></html>",
        PAYLOADS.join("\n")
    );
    let message = Message {
        to: RCPT,
        subject: "<img src=x onerror=alert('subject')> xss-subject",
        text: "<script>alert('text')</script> xss-text-part\r\n",
        html: &html,
        filename: "\"><img src=x onerror=alert('filename')>.pdf",
        attachment: &attachment_bytes(4),
    };
    String::from_utf8(message.render())
        .expect("utf-8")
        .replacen(
            &format!("From: EHR <{SENDER}>"),
            &format!("From: \"<svg onload=alert('from')>\" <{SENDER}>"),
            1,
        )
        .into_bytes()
}

/// Only the thread page and its body frames exist (no frame smuggled in by the message),
/// and none of them holds anything that could run.
fn assert_nothing_executable(b: &mut Browser, thread: &str) {
    let loose = b.eval_in_frames(&executable_parts(false)).expect("frames");
    let strict = b.eval_in_frames(&executable_parts(true)).expect("frames");
    assert!(
        strict.iter().any(|f| f.url.contains("/body/")),
        "no body frame: {strict:?}"
    );
    for (page_frame, body_frame) in loose.iter().zip(&strict) {
        let frame = if body_frame.url.contains("/body/") {
            body_frame
        } else {
            assert_eq!(page_frame.url, thread, "an unexpected frame");
            page_frame
        };
        match &frame.value {
            Ok(bad) => assert_eq!(bad, &Value::Array(Vec::new()), "in {}", frame.url),
            Err(e) => panic!("cannot inspect {}: {e}", frame.url),
        }
    }
}

/// No dialog opened, no payload logged its marker, no script error happened.
fn assert_nothing_ran(b: &mut Browser) {
    let dialogs = b.dialogs().expect("dialogs");
    assert!(dialogs.is_empty(), "{dialogs:?}");
    let console = b.console().expect("console");
    assert!(
        !console
            .iter()
            .any(|m| m.text.contains("xss-marker") || m.kind == "pageerror"),
        "{console:?}"
    );
}

#[test]
fn script_in_the_message_does_not_run_in_the_browser() {
    let p = PortalLab::start(TestBackend::Sqlite, "");
    p.send(&[RCPT], &hostile_message());
    let link = p.link_for(RCPT);
    let mut b = browser();
    p.verify(&mut b, &link, RCPT);
    wait_body_text(&mut b, "xss-visible-marker");

    // The headers are there, shown as text.
    let page = b.text("body").expect("page text");
    assert!(page.contains("xss-subject"), "{page}");
    assert!(
        page.contains("<img src=x onerror=alert('subject')>"),
        "{page}"
    );
    assert!(page.contains("<svg onload=alert('from')>"), "{page}");
    assert_nothing_executable(&mut b, &format!("{link}/thread"));
    assert_nothing_ran(&mut b);

    // Downloading the attachment with the hostile name runs nothing either.
    let dir = tempfile::tempdir().expect("tempdir");
    let got = b
        .download("a[href*=\"/att/\"]", &dir.path().join("att"))
        .expect("download");
    assert_eq!(got.bytes, attachment_bytes(4));
    assert_nothing_ran(&mut b);
}
