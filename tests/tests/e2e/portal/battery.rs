//! The sanitizer battery: a message whose HTML carries the remote-load and script tricks known
//! from webmail bypasses — SVG feImage, CSS @import and url() (upper case, escaped,
//! entity-encoded), <base>, srcset, javascript: and data: URLs in mixed case and entity
//! encoding, meta refresh, and every element that fetches by itself — each pointing at a
//! canary HTTPS server. In the browser nothing reaches the canary (its connection count stays
//! 0), no request leaves the portal's origin, no CSP violation names the canary (so the
//! sanitizer, not only the CSP, removed it), and the sanitized HTML the portal serves holds
//! no trace of the canary's address.

use sealgate_testkit::browser::{Page, TestSite};
use sealgate_testkit::db::TestBackend;

use super::*;

/// The battery, with `C` standing for the canary's origin (`https://127.0.0.1:PORT`), `H` for
/// its host and port, and `B64` for base64 of `<img src='C/data-object'>`.
const BATTERY: &[&str] = &[
    // SVG filters and references
    "<svg width=\"10\" height=\"10\"><filter id=\"f1\"><feImage href=\"C/feimage-href\"/></filter><rect width=\"10\" height=\"10\" filter=\"url(#f1)\"/></svg>",
    "<svg width=\"10\" height=\"10\"><filter id=\"f2\"><feImage xlink:href=\"C/feimage-xlink\"/></filter><rect width=\"10\" height=\"10\" filter=\"url(#f2)\"/></svg>",
    "<svg><image href=\"C/svg-image\" width=\"10\" height=\"10\"/></svg>",
    "<svg><use href=\"C/svg-use.svg#x\"/></svg>",
    "<svg><a xlink:href=\"C/svg-a\"><text y=\"10\">svg link</text></a></svg>",
    // CSS
    "<style>@import url(\"C/import-url.css\");</style>",
    "<style>@import 'C/import-string.css';</style>",
    "<style>@IMPORT url(C/import-upper.css);</style>",
    "<style>.bg { background-image: url(C/style-block) }</style><div class=\"bg\">bg</div>",
    "<style>@font-face { font-family: leak; src: url(C/font.woff) } .f { font-family: leak }</style><p class=\"f\">font</p>",
    "<div style=\"background: url(C/inline-url)\">inline</div>",
    "<div style=\"background-image: URL( 'C/inline-upper' )\">upper</div>",
    "<div style=\"background: u\\72l(C/css-escape)\">escape</div>",
    "<div style=\"background: &#117;rl(C/inline-entity)\">entity</div>",
    "<div style=\"background: url(&quot;C/inline-quot&quot;)\">quot</div>",
    "<ul style=\"list-style-image: url(C/list-style)\"><li>li</li></ul>",
    "<div style=\"cursor: url(C/cursor), auto\">cursor</div>",
    "<div style=\"border: 10px solid; border-image: url(C/border-image) 30\">border</div>",
    "<div style=\"content: url(C/content)\">content</div>",
    "<div style=\"-webkit-mask-image: url(C/mask); mask-image: url(C/mask2)\">mask</div>",
    "<div style=\"background: image-set(url(C/image-set) 1x)\">image-set</div>",
    // <base> and relative URLs
    "<base href=\"C/base/\"><img src=\"relative-to-base.png\" alt=\"rel\">",
    // images, srcset, media
    "<img src=\"C/img-src\" alt=\"img\">",
    "<IMG SRC=\"C/img-upper\" alt=\"upper\">",
    "<img src=\"&#104;ttps://H/img-entity\" alt=\"entity\">",
    "<img src=\"&#x68;&#x74;&#x74;&#x70;&#x73;&#x3a;//H/img-hex-entity\" alt=\"hex\">",
    "<img src=\" C/img-space\" alt=\"space\">",
    "<img src=\"//H/img-protocol-relative\" alt=\"relative\">",
    "<img src=\"cid:part1\" srcset=\"C/srcset-1x 1x, C/srcset-2x 2x\" alt=\"srcset\">",
    "<picture><source srcset=\"C/picture-source\"><img src=\"cid:part2\" alt=\"picture\"></picture>",
    "<img src=\"cid:part3\" loading=\"eager\" dynsrc=\"C/dynsrc\" lowsrc=\"C/lowsrc\" alt=\"old\">",
    "<video poster=\"C/video-poster\" src=\"C/video-src\" preload=\"auto\"></video>",
    "<audio src=\"C/audio-src\" preload=\"auto\"></audio>",
    "<video preload=\"auto\"><source src=\"C/video-source\"><track src=\"C/track\" default></video>",
    "<input type=\"image\" src=\"C/input-image\" alt=\"input\">",
    "<table background=\"C/table-background\"><tr><td background=\"C/td-background\">t</td></tr></table>",
    "<body background=\"C/body-background\">",
    // embedding and navigating elements
    "<object data=\"C/object\"></object>",
    "<embed src=\"C/embed\">",
    "<iframe src=\"C/iframe\"></iframe>",
    "<link rel=\"stylesheet\" href=\"C/link-stylesheet\">",
    "<link rel=\"preload\" as=\"image\" href=\"C/link-preload\">",
    "<link rel=\"prefetch\" href=\"C/link-prefetch\">",
    "<link rel=\"icon\" href=\"C/link-icon\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=C/meta-refresh\">",
    "<META HTTP-EQUIV=\"Refresh\" CONTENT=\"1; URL=C/meta-refresh-upper\">",
    "<form action=\"C/form-action\" method=\"post\"><input type=\"submit\" value=\"s\"></form>",
    "<a ping=\"C/ping\" href=\"#x\">ping</a>",
    // script URLs and data URLs
    "<img src=\"x\" onerror=\"fetch('C/onerror')\" alt=\"onerror\">",
    "<script>fetch('C/script')</script>",
    "<iframe src=\"javascript:fetch('C/js-iframe')\"></iframe>",
    "<iframe src=\"jAvAsCrIpT:fetch('C/js-iframe-mixed')\"></iframe>",
    "<iframe src=\"&#106;&#97;vascript:fetch('C/js-iframe-entity')\"></iframe>",
    "<iframe src=\"data:text/html,<img src='C/data-iframe'>\"></iframe>",
    "<object data=\"data:text/html;base64,B64\"></object>",
    "<embed src=\"DaTa:text/html,<img src='C/data-embed-mixed'>\">",
    "<p>battery-visible-marker</p>",
];

/// The battery as one HTML document aimed at `canary`.
fn battery_html(canary: &TestSite) -> String {
    use base64::Engine as _;
    let origin = canary.url("");
    let host = canary.addr().to_string();
    let data_object = base64::engine::general_purpose::STANDARD
        .encode(format!("<img src='{origin}/data-object'>"));
    let body = BATTERY
        .iter()
        .map(|p| {
            p.replace("C/", &format!("{origin}/"))
                .replace("//H/", &format!("//{host}/"))
                .replace("B64", &data_object)
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!("<!doctype html><html><head><title>battery</title></head><body>{body}</body></html>")
}

#[test]
fn known_webmail_bypasses_load_nothing_remote_and_run_nothing() {
    let p = PortalLab::start(TestBackend::Sqlite, "");
    let cert = p.lab.ca.issue(&["127.0.0.1"]);
    let canary = TestSite::start_tls(SocketAddr::from(([127, 0, 0, 1], 0)), cert.server_config())
        .expect("start the canary");
    canary.serve("/script", Page::new("text/javascript", "alert('canary')"));
    let html = battery_html(&canary);
    let message = Message {
        to: RCPT,
        subject: "Battery",
        text: "see the HTML part\r\n",
        html: &html,
        filename: "b.pdf",
        attachment: &attachment_bytes(5),
    };
    p.send(&[RCPT], &message.render());
    let link = p.link_for(RCPT);
    let mut b = browser();
    p.verify(&mut b, &link, RCPT);
    // Lazy loads, refreshes after a second, fonts: give them time to happen.
    std::thread::sleep(Duration::from_secs(3));

    wait_body_text(&mut b, "battery-visible-marker");
    let host = canary.addr().to_string();
    let requests = b.requests().expect("requests");
    let outside: Vec<_> = requests
        .iter()
        .filter(|r| !r.url.starts_with(&format!("{}/", p.base)))
        .filter(|r| !r.url.starts_with("data:") && r.url != "about:blank")
        .collect();
    assert!(
        outside.is_empty(),
        "requests beyond the portal: {outside:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.url.contains(&host)),
        "{requests:#?}"
    );
    let console = b.console().expect("console");
    let about_canary: Vec<_> = console.iter().filter(|m| m.text.contains(&host)).collect();
    assert!(
        about_canary.is_empty(),
        "the canary's URL reached the browser (blocked only by CSP?): {about_canary:#?}"
    );
    assert!(b.dialogs().expect("dialogs").is_empty());
    assert_eq!(canary.connections(), 0, "the canary was contacted");
    assert!(canary.hits().is_empty());

    // What the portal serves as the body holds no trace of the canary.
    let served = b
        .request("GET", &format!("{link}/body/0"), &[])
        .expect("body");
    assert_eq!(served.status, 200);
    assert!(served.body.contains("battery-visible-marker"));
    assert!(
        !served.body.contains(&host),
        "the canary survived sanitizing:\n{}",
        served.body
    );
    assert!(
        !served.body.to_ascii_lowercase().contains("javascript:"),
        "{}",
        served.body
    );
}
