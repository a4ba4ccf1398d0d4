//! The portal's pages: server-rendered HTML, no JavaScript, every interpolated value escaped.
//! Element ids are stable (browser tests and assistive tools rely on them).

use crate::mime::Shown;

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, content: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"same-origin\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/portal.css\"></head>\
         <body><main>{content}</main></body></html>\n",
        escape(title)
    )
}

/// The stylesheet served at `/portal.css`.
pub(crate) const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}\
main{max-width:52rem;margin:2rem auto;padding:0 1rem}\
h1{font-size:1.4rem}\
.box,.message{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:1rem 1.25rem;margin:1rem 0}\
.notice{background:#e8f3ea;border-color:#9cc9a6}.error{background:#fbeaea;border-color:#e3a3a3}\
dl.headers{display:grid;grid-template-columns:6rem 1fr;gap:.2rem .8rem;margin:0 0 .8rem}\
dl.headers dt{font-weight:600;color:#555}dl.headers dd{margin:0;overflow-wrap:anywhere}\
iframe.body{width:100%;height:32rem;border:1px solid #d5d9e0;border-radius:4px;background:#fff}\
pre.text{white-space:pre-wrap;overflow-wrap:anywhere;font-family:inherit;margin:0}\
ul.attachments{padding-left:1.2rem}\
label{display:block;margin:.6rem 0 .2rem;font-weight:600}\
input[type=text],input[type=password]{font-size:1.1rem;padding:.4rem;width:16rem;max-width:100%}\
textarea{width:100%;min-height:10rem;font:inherit;padding:.4rem;box-sizing:border-box}\
button{margin-top:.8rem;font-size:1rem;padding:.45rem 1rem;cursor:pointer}\
#signout-form{text-align:right;margin:0}\n";

/// Unknown, expired or revoked link (never says which).
pub(crate) fn invalid_link() -> String {
    layout(
        "Link not valid",
        "<h1>This link is invalid or has expired</h1>\
         <p class=\"box\">Ask the sender to send the message again if you still need it.</p>",
    )
}

/// A refused request (from another site, CSRF token missing or wrong, no session).
pub(crate) fn forbidden() -> String {
    layout(
        "Not allowed",
        "<h1>This request was refused</h1><p class=\"box\">Forms of the secure portal are \
         accepted only from its own pages. Open the link from your email again, reload the \
         page and try again.</p>",
    )
}

/// Too many refused requests from this network.
pub(crate) fn throttled() -> String {
    layout(
        "Too many requests",
        "<h1>Too many refused requests</h1><p class=\"box\">Too many requests from your \
         network were refused. Wait a minute, then open the link from your email again.</p>",
    )
}

/// Unknown path.
pub(crate) fn not_found() -> String {
    layout("Not found", "<h1>Not found</h1>")
}

/// Our own failure.
pub(crate) fn unavailable() -> String {
    layout(
        "Temporarily unavailable",
        "<h1>The secure portal is temporarily unavailable</h1>\
         <p class=\"box\">Please try again in a few minutes.</p>",
    )
}

/// What the verify page shows.
#[derive(Debug, Default)]
pub(crate) struct VerifyView<'a> {
    /// The link token (only in form actions, which are the page's own URL plus a suffix).
    pub token: &'a str,
    /// The pre-session CSRF token.
    pub csrf: &'a str,
    /// The sending organisation.
    pub organisation: &'a str,
    /// The grant has a passphrase: offer that field too.
    pub has_passphrase: bool,
    /// A success note ("code sent").
    pub notice: Option<String>,
    /// An error note ("wrong code", "locked").
    pub error: Option<String>,
}

fn note(class: &str, text: Option<&String>) -> String {
    text.map(|t| format!("<p class=\"box {class}\" role=\"status\">{}</p>", escape(t)))
        .unwrap_or_default()
}

/// The page a recipient sees before verifying: get a code, enter it (or the passphrase).
pub(crate) fn verify(v: &VerifyView<'_>) -> String {
    let (t, csrf) = (escape(v.token), escape(v.csrf));
    let passphrase = if v.has_passphrase {
        "<label for=\"passphrase\">Or the passphrase the sender gave you</label>\
         <input type=\"password\" id=\"passphrase\" name=\"passphrase\" autocomplete=\"off\" maxlength=\"1024\">"
    } else {
        ""
    };
    let content = format!(
        "<h1>A secure message from {org} is waiting for you</h1>{notice}{error}\
         <section class=\"box\"><p>To open it, prove that this is your email address: we email \
         you a one-time code.</p>\
         <form method=\"post\" action=\"/p/{t}/code\" id=\"code-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" id=\"send-code\">Email me a code</button></form></section>\
         <section class=\"box\"><form method=\"post\" action=\"/p/{t}/verify\" id=\"verify-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"code\">Code from the email</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" maxlength=\"32\">{passphrase}\
         <button type=\"submit\" id=\"verify\">Open the message</button></form></section>",
        org = escape(v.organisation),
        notice = note("notice", v.notice.as_ref()),
        error = note("error", v.error.as_ref()),
    );
    layout("Secure message", &content)
}

/// What the thread page shows.
#[derive(Debug)]
pub(crate) struct ThreadView<'a> {
    /// The link token.
    pub token: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The visible messages in order; `None` where content could not be opened.
    pub messages: Vec<Option<Shown>>,
    /// Who replies go to; `None` when there is nobody (null sender): no reply form.
    pub reply_to: Option<&'a str>,
    /// A success note ("reply sent").
    pub notice: Option<String>,
}

fn headers_list(s: &Shown) -> String {
    let mut out = String::from("<dl class=\"headers\">");
    let date = s.date.clone().unwrap_or_default();
    for (name, value) in [
        ("From", &s.from),
        ("To", &s.to),
        ("Date", &date),
        ("Subject", &s.subject),
    ] {
        if !value.is_empty() {
            out.push_str(&format!("<dt>{name}</dt><dd>{}</dd>", escape(value)));
        }
    }
    out.push_str("</dl>");
    out
}

fn message_html(token: &str, n: usize, shown: Option<&Shown>) -> String {
    let Some(s) = shown else {
        return format!(
            "<article class=\"message\" id=\"message-{n}\"><p>This message is no longer available.</p></article>"
        );
    };
    let mut body = String::new();
    if s.has_html {
        body.push_str(&format!(
            "<iframe class=\"body\" sandbox=\"\" src=\"/p/{token}/body/{n}\" title=\"Message {}\" \
             referrerpolicy=\"no-referrer\" loading=\"lazy\"></iframe>",
            n + 1
        ));
    }
    for text in &s.texts {
        body.push_str(&format!("<pre class=\"text\">{}</pre>", escape(text)));
    }
    if !s.attachments.is_empty() {
        body.push_str("<ul class=\"attachments\">");
        for (m, a) in s.attachments.iter().enumerate() {
            body.push_str(&format!(
                "<li><a class=\"attachment\" id=\"attachment-{n}-{m}\" href=\"/p/{token}/att/{n}/{m}\" \
                 download>{}</a> ({} bytes)</li>",
                escape(&a.name),
                a.size
            ));
        }
        body.push_str("</ul>");
    }
    format!(
        "<article class=\"message\" id=\"message-{n}\">{}{body}</article>",
        headers_list(s)
    )
}

/// The thread: every visible message, then the reply form.
pub(crate) fn thread(v: &ThreadView<'_>) -> String {
    let t = escape(v.token);
    let messages: String = v
        .messages
        .iter()
        .enumerate()
        .map(|(n, s)| message_html(&t, n, s.as_ref()))
        .collect();
    let reply = match v.reply_to {
        Some(to) => format!(
            "<section class=\"box\"><form method=\"post\" action=\"/p/{t}/reply\" id=\"reply-form\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"reply-body\">Reply securely to {}</label>\
             <textarea id=\"reply-body\" name=\"body\" required maxlength=\"100000\"></textarea>\
             <button type=\"submit\" id=\"reply-send\">Send reply</button></form></section>",
            escape(v.csrf),
            escape(to)
        ),
        None => String::new(),
    };
    let signout = format!(
        "<form method=\"post\" action=\"/p/{t}/signout\" id=\"signout-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"signout\">Sign out</button></form>",
        escape(v.csrf)
    );
    let content = format!(
        "<h1>Secure message</h1>{signout}{}<section id=\"thread\">{messages}</section>{reply}",
        note("notice", v.notice.as_ref())
    );
    layout("Secure message", &content)
}

/// A short page for a refused reply or verification (too long, empty, locked).
pub(crate) fn message(title: &str, text: &str, back: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1><p class=\"box error\">{}</p><p><a href=\"{}\">Back</a></p>",
            escape(title),
            escape(text),
            escape(back)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::AttachmentInfo;

    #[test]
    fn everything_interpolated_is_escaped() {
        let shown = Shown {
            from: "<script>alert(1)</script>".into(),
            subject: "\"><img src=x onerror=alert(1)>".into(),
            texts: vec!["<b>&</b>".into()],
            attachments: vec![AttachmentInfo {
                name: "<x>.pdf".into(),
                size: 3,
            }],
            ..Shown::default()
        };
        let page = thread(&ThreadView {
            token: "T",
            csrf: "C\"",
            messages: vec![Some(shown)],
            reply_to: Some("<a@b>"),
            notice: None,
        });
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(page.contains("&lt;b&gt;&amp;&lt;/b&gt;"));
        assert!(page.contains("value=\"C&quot;\""));
        assert!(page.contains("&lt;x&gt;.pdf"));
        assert!(page.contains("Reply securely to &lt;a@b&gt;"));
    }

    #[test]
    fn pages_carry_the_ids_browser_tests_use() {
        let v = verify(&VerifyView {
            token: "T",
            csrf: "C",
            has_passphrase: true,
            ..VerifyView::default()
        });
        for id in [
            "id=\"send-code\"",
            "id=\"code\"",
            "id=\"passphrase\"",
            "id=\"verify\"",
        ] {
            assert!(v.contains(id), "{id}");
        }
        let shown = Shown {
            has_html: true,
            attachments: vec![AttachmentInfo {
                name: "a".into(),
                size: 1,
            }],
            ..Shown::default()
        };
        let t = thread(&ThreadView {
            token: "T",
            csrf: "C",
            messages: vec![Some(shown)],
            reply_to: Some("a@b"),
            notice: None,
        });
        for id in [
            "id=\"thread\"",
            "class=\"message\"",
            "<iframe class=\"body\" sandbox=\"\"",
            "class=\"attachment\"",
            "id=\"reply-body\"",
            "id=\"reply-send\"",
            "id=\"signout\"",
            "action=\"/p/T/signout\"",
        ] {
            assert!(t.contains(id), "{id}");
        }
        assert!(!t.contains("allow-scripts"));
    }

    #[test]
    fn no_reply_form_without_anyone_to_reply_to() {
        let t = thread(&ThreadView {
            token: "T",
            csrf: "C",
            messages: vec![],
            reply_to: None,
            notice: None,
        });
        assert!(!t.contains("reply-form"));
    }
}
