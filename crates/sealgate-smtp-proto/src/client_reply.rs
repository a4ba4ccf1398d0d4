//! Client side: the strict parser for server replies (RFC 5321 §4.2, enhanced codes per RFC 2034).
//!
//! Sans-I/O: feed whatever bytes arrived with [`ReplyParser::feed`], then take complete replies
//! with [`ReplyParser::next_reply`] until it returns `Ok(None)`. Several pipelined replies
//! (RFC 2920) can sit in the buffer at once; they come out in order.

use crate::reply::Reply;

/// RFC 5321 §4.5.3.1.5 says 512 octets; real servers exceed it, so allow four times that.
pub const MAX_REPLY_LINE_LEN: usize = 2048;

/// The most lines one reply may have (a long EHLO list has about twenty).
pub const MAX_REPLY_LINES: usize = 100;

/// Why bytes from a server are not a valid reply. The connection cannot be trusted afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// An LF without a CR before it, or a CR followed by something other than LF.
    #[error("bare cr or lf in server reply")]
    BareLineEnding,
    /// A line longer than [`MAX_REPLY_LINE_LEN`] octets including CRLF.
    #[error("server reply line too long")]
    LineTooLong,
    /// More than [`MAX_REPLY_LINES`] lines in one reply.
    #[error("server reply has too many lines")]
    TooManyLines,
    /// A line that does not start with three digits (first digit 2 to 5) and then SP, `-` or CRLF.
    #[error("malformed server reply line")]
    Malformed,
    /// A continuation line whose code differs from the first line's (RFC 5321 §4.2.1).
    #[error("reply code changed inside a multi-line reply")]
    CodeMismatch,
}

/// Incremental parser for the replies of one connection.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
    /// Lines of the reply being assembled: code, then text after the separator.
    pending: Vec<(u16, String)>,
    failed: Option<ReplyError>,
}

impl ReplyParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed but not yet returned as part of a reply (partial lines, replies not yet taken,
    /// lines of an unfinished multi-line reply); zero when nothing is held.
    pub fn buffered(&self) -> usize {
        let pending: usize = self.pending.iter().map(|(_, text)| text.len() + 6).sum();
        self.buf.len() + pending
    }

    /// Drops everything buffered, e.g. bytes a server sent ahead of a TLS handshake (RFC 3207 §4.2).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pending.clear();
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed. After an error the parser
    /// keeps returning that error.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.parse_next();
        if let Err(error) = result {
            self.failed = Some(error);
        }
        result
    }

    fn parse_next(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(end) = find_crlf(&self.buf)? else {
                return Ok(None);
            };
            let line: Vec<u8> = self.buf.drain(..end).collect();
            let (code, last, text) = parse_line(&line[..end - 2])?;
            if let Some((first, _)) = self.pending.first()
                && *first != code
            {
                return Err(ReplyError::CodeMismatch);
            }
            if self.pending.len() >= MAX_REPLY_LINES {
                return Err(ReplyError::TooManyLines);
            }
            self.pending.push((code, text));
            if last {
                let lines = std::mem::take(&mut self.pending);
                return Ok(Some(assemble(code, lines)));
            }
        }
    }
}

/// The length of the first line including CRLF, refusing bare CR/LF and overlong lines.
fn find_crlf(buf: &[u8]) -> Result<Option<usize>, ReplyError> {
    let window = &buf[..buf.len().min(MAX_REPLY_LINE_LEN)];
    for (index, byte) in window.iter().enumerate() {
        match byte {
            b'\n' => return Err(ReplyError::BareLineEnding),
            b'\r' => {
                return match buf.get(index + 1) {
                    Some(b'\n') if index + 2 <= MAX_REPLY_LINE_LEN => Ok(Some(index + 2)),
                    Some(b'\n') => Err(ReplyError::LineTooLong),
                    Some(_) => Err(ReplyError::BareLineEnding),
                    None if index + 2 <= MAX_REPLY_LINE_LEN => Ok(None),
                    None => Err(ReplyError::LineTooLong),
                };
            }
            _ => {}
        }
    }
    if buf.len() >= MAX_REPLY_LINE_LEN {
        Err(ReplyError::LineTooLong)
    } else {
        Ok(None)
    }
}

/// Splits `250-text` / `250 text` / `250` into (code, is-last-line, text).
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let digits = line.get(..3).ok_or(ReplyError::Malformed)?;
    let valid = matches!(digits[0], b'2'..=b'5')
        && digits[1..].iter().all(u8::is_ascii_digit)
        && digits[1] <= b'5';
    if !valid {
        return Err(ReplyError::Malformed);
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(ReplyError::Malformed),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// Builds the reply, lifting the enhanced status code of the first line (RFC 2034 §4: it is
/// repeated on every line) out of the texts.
fn assemble(code: u16, lines: Vec<(u16, String)>) -> Reply {
    let texts: Vec<String> = lines.into_iter().map(|(_, text)| text).collect();
    let enhanced = texts
        .first()
        .and_then(|first| split_enhanced(code, first))
        .map(|(status, _)| status);
    let lines = texts
        .into_iter()
        .map(|text| match split_enhanced(code, &text) {
            Some((status, rest)) if Some(status) == enhanced => rest.to_owned(),
            _ => text,
        })
        .collect();
    Reply {
        code,
        enhanced,
        lines,
    }
}

/// `2.1.0 Sender OK` → ((2, 1, 0), "Sender OK") when the class matches the reply code's first
/// digit (RFC 3463 §3.1: subject and detail are 1 to 3 digits).
fn split_enhanced(code: u16, text: &str) -> Option<((u8, u16, u16), &str)> {
    let (token, rest) = match text.split_once(' ') {
        Some((token, rest)) => (token, rest),
        None => (text, ""),
    };
    let mut parts = token.split('.');
    let class = number(parts.next()?, 1)?;
    let subject = number(parts.next()?, 3)?;
    let detail = number(parts.next()?, 3)?;
    if parts.next().is_some() || class != code / 100 {
        return None;
    }
    let class = u8::try_from(class).ok()?;
    Some(((class, subject, detail), rest))
}

/// 1 to `max_digits` ASCII digits.
fn number(text: &str, max_digits: usize) -> Option<u16> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests;
