//! Messages the portal writes: the one-time code email, a recipient's reply and the read
//! receipt. Plain text, UTF-8, quoted-printable (RFC 2045 §6.7), CRLF line ends; header
//! values lose every control character so nothing from a sealed message can inject a header.

use chrono::{DateTime, Utc};

/// Headers and body of one message to queue.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// `From:`, as written (an address, or `Name <address>`).
    pub from: &'a str,
    /// `To:` address.
    pub to: &'a str,
    /// `Sender:`, when the author is not who sends.
    pub sender: Option<&'a str>,
    /// The subject, any Unicode.
    pub subject: &'a str,
    /// `In-Reply-To:` id without angle brackets.
    pub in_reply_to: Option<&'a str>,
    /// `References:` ids without angle brackets.
    pub references: &'a [String],
    /// RFC 3834 `Auto-Submitted: auto-generated` (codes and receipts, not replies).
    pub auto_submitted: bool,
    /// The text; any line ends.
    pub body: &'a str,
}

/// Drops control characters (CR and LF among them) from a header value.
fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// A header value as RFC 2047 encoded words when it is not plain ASCII.
pub fn encode_words(s: &str) -> String {
    use base64::Engine;
    let s = header_safe(s);
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s;
    }
    // RFC 2047 §2: an encoded word is at most 75 characters, a line at most 76; 39 bytes
    // of UTF-8 encode to 52, a word of 64, so "Subject: " and the word fit in 78.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Quoted-printable (RFC 2045 §6.7) of UTF-8 text, CRLF line ends, lines at most 76 chars.
pub fn quoted_printable(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(normalized.len() + 16);
    for line in normalized.split('\n') {
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            // §6.7 rule 3: a space or tab ending a line is encoded.
            let literal = (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' && !last);
            let piece = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

/// The message id for a new message: `<uuid@hostname>`.
pub fn new_message_id(hostname: &str) -> String {
    format!("{}@{}", uuid::Uuid::new_v4(), header_safe(hostname))
}

/// Renders `draft` as an RFC 5322 message with `message_id` (no angle brackets) and `date`.
pub fn render(draft: &Draft<'_>, message_id: &str, date: DateTime<Utc>) -> Vec<u8> {
    let mut h = String::new();
    let mut put = |name: &str, value: &str| h.push_str(&format!("{name}: {value}\r\n"));
    put("From", &header_safe(draft.from));
    if let Some(sender) = draft.sender {
        put("Sender", &header_safe(sender));
    }
    put("To", &header_safe(draft.to));
    put("Subject", &encode_words(draft.subject));
    put("Date", &date.to_rfc2822());
    put("Message-ID", &format!("<{}>", header_safe(message_id)));
    if let Some(parent) = draft.in_reply_to {
        put("In-Reply-To", &format!("<{}>", header_safe(parent)));
    }
    if !draft.references.is_empty() {
        let refs: Vec<String> = draft
            .references
            .iter()
            .map(|r| format!("<{}>", header_safe(r)))
            .collect();
        put("References", &refs.join("\r\n "));
    }
    if draft.auto_submitted {
        put("Auto-Submitted", "auto-generated");
    }
    put("MIME-Version", "1.0");
    put("Content-Type", "text/plain; charset=utf-8");
    put("Content-Transfer-Encoding", "quoted-printable");
    h.push_str("\r\n");
    h.push_str(&quoted_printable(draft.body));
    h.into_bytes()
}

/// `Re: subject`, without stacking `Re:` prefixes.
pub fn reply_subject(original: &str) -> String {
    let trimmed = original.trim();
    let already = trimmed
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("re:"));
    if already {
        trimmed.to_owned()
    } else {
        format!("Re: {trimmed}")
    }
}

/// The body of the one-time code email: the code on a line of its own as `Code: 12345678`.
pub fn code_body(organisation: &str, code: &str, valid_minutes: u64) -> String {
    format!(
        "Someone asked for a code to open a secure message from {organisation}.\n\n\
         Code: {code}\n\n\
         Enter it on the page that asked for it. It works for {valid_minutes} minutes, once.\n\
         If you did not ask for it, you can ignore this email.\n"
    )
}

/// The body of a read receipt: who opened, and when. Nothing of the message itself.
pub fn receipt_body(organisation: &str, recipient: &str, when: DateTime<Utc>) -> String {
    format!(
        "{recipient} opened the secure message you sent through {organisation}'s portal \
         on {}.\n",
        when.format("%Y-%m-%d %H:%M UTC")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft<'a>(subject: &'a str, body: &'a str, refs: &'a [String]) -> Draft<'a> {
        Draft {
            from: "bob@patient.example",
            to: "ada@clinic.example",
            sender: Some("portal@relay.example"),
            subject,
            in_reply_to: Some("m1@clinic.example"),
            references: refs,
            auto_submitted: false,
            body,
        }
    }

    #[test]
    fn a_reply_has_threading_headers_and_a_quoted_printable_body() {
        let refs = vec!["a@x".to_owned(), "m1@clinic.example".to_owned()];
        let d = draft(
            "Re: Results",
            "Thanks, doctor = great.\nSecond line  ",
            &refs,
        );
        let text = String::from_utf8(render(&d, "r1@relay", Utc::now())).expect("ascii");
        for line in [
            "From: bob@patient.example\r\n",
            "Sender: portal@relay.example\r\n",
            "To: ada@clinic.example\r\n",
            "Subject: Re: Results\r\n",
            "Message-ID: <r1@relay>\r\n",
            "In-Reply-To: <m1@clinic.example>\r\n",
            "References: <a@x>\r\n <m1@clinic.example>\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n\r\nThanks, doctor =3D great.\r\nSecond line =20\r\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        let d = draft("Hi\r\nBcc: evil@x.example", "b", &[]);
        let text = String::from_utf8(render(&d, "r\n1", Utc::now())).expect("ascii");
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("Subject: HiBcc: evil@x.example\r\n"));
        assert!(text.contains("Message-ID: <r1>\r\n"));
    }

    #[test]
    fn unicode_subjects_become_encoded_words_and_bodies_stay_ascii() {
        let d = draft(
            "Re: Ärztliche Befunde für Sie — bitte lesen, es ist wichtig und lang",
            "Grüße",
            &[],
        );
        let raw = render(&d, "r1@relay", Utc::now());
        assert!(raw.is_ascii());
        let text = String::from_utf8(raw).expect("ascii");
        assert!(text.contains("Subject: =?UTF-8?B?"), "{text}");
        assert!(text.contains("Gr=C3=BC=C3=9Fe\r\n"), "{text}");
        let subject_lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Subject:"))
            .take_while(|l| l.starts_with("Subject:") || l.starts_with(' '))
            .collect();
        assert!(
            subject_lines.len() > 1,
            "long subjects fold: {subject_lines:?}"
        );
        assert!(subject_lines.iter().all(|l| l.len() <= 78));
    }

    #[test]
    fn long_lines_get_soft_breaks_under_77_characters() {
        let qp = quoted_printable(&"x".repeat(200));
        assert!(qp.lines().all(|l| l.len() <= 76), "{qp}");
        assert_eq!(qp.replace("=\r\n", "").trim_end(), "x".repeat(200));
    }

    #[test]
    fn re_is_not_stacked() {
        assert_eq!(reply_subject("Results"), "Re: Results");
        assert_eq!(reply_subject("RE: Results"), "RE: Results");
        assert_eq!(reply_subject(""), "Re: ");
    }

    #[test]
    fn the_code_sits_on_a_line_of_its_own() {
        let body = code_body("Clinic", "01234567", 15);
        assert!(body.lines().any(|l| l == "Code: 01234567"), "{body}");
        let qp = quoted_printable(&body);
        assert!(qp.contains("\r\nCode: 01234567\r\n"), "{qp}");
    }
}
