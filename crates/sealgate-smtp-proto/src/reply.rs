//! Server replies and their wire form (RFC 5321 §4.2, enhanced codes per RFC 2034 / RFC 3463).

use std::fmt::Write as _;

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including the code and CRLF.
const MAX_REPLY_LINE: usize = 512;

/// One SMTP reply: a three-digit code, an optional enhanced status code and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The basic reply code (RFC 5321 §4.2.1), e.g. 250.
    pub code: u16,
    /// The enhanced status code `class.subject.detail` (RFC 3463), written on every line when set.
    pub enhanced: Option<(u8, u16, u16)>,
    /// The text lines; the last one is written with `code SP`, the others with `code -`.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, enhanced: Option<(u8, u16, u16)>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply, such as the EHLO keyword list.
    pub fn multi(code: u16, enhanced: Option<(u8, u16, u16)>, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines,
        }
    }

    /// The reply as sent on the wire: `250-2.0.0 first\r\n250 2.0.0 last\r\n`.
    ///
    /// Text is sanitised so no line can smuggle a CR, LF or other control character, and each
    /// line is cut to the 512-octet limit of RFC 5321 §4.5.3.1.5.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for index in 0..self.lines.len().max(1) {
            let separator = if index == last { ' ' } else { '-' };
            let mut line = format!("{:03}{separator}", self.code);
            if let Some((class, subject, detail)) = self.enhanced {
                let _ = write!(line, "{class}.{subject}.{detail} ");
            }
            if let Some(text) = self.lines.get(index) {
                push_sanitised(&mut line, text);
            }
            // "250 " with nothing after it reads better as "250".
            let trimmed = line.trim_end_matches(' ').len();
            line.truncate(trimmed.max(3));
            out.push_str(&line);
            out.push_str("\r\n");
        }
        out.into_bytes()
    }

    /// 2yz or 3yz: the command was accepted (RFC 5321 §4.2.1).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 5yz: the command failed and must not be retried as is.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// 4yz: the command failed but may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

/// Appends `text` to `line`, replacing control characters by spaces and stopping before the line
/// (plus CRLF) would exceed `MAX_REPLY_LINE` octets.
fn push_sanitised(line: &mut String, text: &str) {
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if line.len() + c.len_utf8() + 2 > MAX_REPLY_LINE {
            break;
        }
        line.push(c);
    }
}

impl std::fmt::Display for Reply {
    /// The wire form without the final CRLF, for logs and tests.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        f.write_str(text.trim_end_matches("\r\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        String::from_utf8(reply.to_bytes()).expect("replies are UTF-8")
    }

    #[test]
    fn single_line_reply_carries_the_enhanced_code() {
        let reply = Reply::new(250, Some((2, 1, 0)), "Sender OK");
        assert_eq!(wire(&reply), "250 2.1.0 Sender OK\r\n");
    }

    #[test]
    fn greeting_without_enhanced_code_has_none() {
        let reply = Reply::new(220, None, "mx.example ESMTP");
        assert_eq!(wire(&reply), "220 mx.example ESMTP\r\n");
    }

    #[test]
    fn multi_line_reply_uses_dashes_until_the_last_line() {
        let lines = vec!["mx.example".into(), "PIPELINING".into(), "8BITMIME".into()];
        let reply = Reply::multi(250, None, lines);
        assert_eq!(
            wire(&reply),
            "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }

    #[test]
    fn multi_line_reply_repeats_the_enhanced_code_on_every_line() {
        let reply = Reply::multi(550, Some((5, 7, 1)), vec!["one".into(), "two".into()]);
        assert_eq!(wire(&reply), "550-5.7.1 one\r\n550 5.7.1 two\r\n");
    }

    #[test]
    fn reply_without_lines_is_still_one_line() {
        assert_eq!(wire(&Reply::multi(250, None, vec![])), "250\r\n");
        assert_eq!(
            wire(&Reply::multi(250, Some((2, 0, 0)), vec![])),
            "250 2.0.0\r\n"
        );
    }

    #[test]
    fn text_with_cr_or_lf_cannot_inject_a_line() {
        let reply = Reply::new(250, None, "ok\r\n250 injected\rx\ny\0z");
        assert_eq!(wire(&reply), "250 ok  250 injected x y z\r\n");
    }

    #[test]
    fn overlong_text_is_cut_to_the_reply_line_limit() {
        let reply = Reply::new(250, Some((2, 0, 0)), "é".repeat(1000));
        let bytes = reply.to_bytes();
        assert!(bytes.len() <= MAX_REPLY_LINE);
        assert!(bytes.ends_with(b"\r\n"));
        assert!(String::from_utf8(bytes).is_ok());
    }

    #[test]
    fn reply_classes_follow_the_first_digit() {
        let table = [
            (220, true, false, false),
            (250, true, false, false),
            (354, true, false, false),
            (421, false, false, true),
            (451, false, false, true),
            (500, false, true, false),
            (554, false, true, false),
        ];
        for (code, positive, permanent, transient) in table {
            let reply = Reply::new(code, None, "x");
            assert_eq!(reply.is_positive(), positive, "{code}");
            assert_eq!(reply.is_permanent(), permanent, "{code}");
            assert_eq!(reply.is_transient(), transient, "{code}");
        }
    }

    #[test]
    fn display_shows_the_wire_form_without_the_last_crlf() {
        let reply = Reply::multi(250, None, vec!["a".into(), "b".into()]);
        assert_eq!(reply.to_string(), "250-a\r\n250 b");
    }
}
