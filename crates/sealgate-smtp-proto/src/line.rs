//! Framing of command lines (RFC 5321 §2.3.8: lines end with CRLF, and only CRLF).

use crate::error::LineError;

/// Finds the end of one command line in `buf` (RFC 5321 §2.3.8: lines end with CRLF only).
///
/// `Ok(Some(n))`: `buf[..n]` is a complete line including its CRLF. `Ok(None)`: more bytes are
/// needed and nothing is wrong so far (a CR at the very end of `buf` may still be followed by LF).
/// `Err(LineError::BareLf)` when an LF without a CR before it appears, `Err(LineError::BareCr)`
/// when a CR is followed by anything but LF, `Err(LineError::TooLong)` when no CRLF ends a line
/// within `max` bytes (`max` includes the CRLF; RFC 5321 §4.5.3.1.4 sets 512 for commands).
pub fn find_line(buf: &[u8], max: usize) -> Result<Option<usize>, LineError> {
    let window = &buf[..buf.len().min(max)];
    for (index, byte) in window.iter().enumerate() {
        match byte {
            // Every LF that follows a CR returns below, so any LF reached here is bare.
            b'\n' => return Err(LineError::BareLf),
            b'\r' => {
                let end = index + 2;
                return match buf.get(index + 1) {
                    Some(b'\n') if end <= max => Ok(Some(end)),
                    Some(b'\n') => Err(LineError::TooLong),
                    Some(_) => Err(LineError::BareCr),
                    None if end <= max => Ok(None),
                    None => Err(LineError::TooLong),
                };
            }
            _ => {}
        }
    }
    if buf.len() >= max {
        Err(LineError::TooLong)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_line_follows_the_table() {
        type Framed = Result<Option<usize>, LineError>;
        let table: &[(&[u8], usize, Framed)] = &[
            (b"QUIT\r\n", 512, Ok(Some(6))),
            (b"QUIT\r\nNOOP\r\n", 512, Ok(Some(6))),
            (b"\r\n", 512, Ok(Some(2))),
            (b"", 512, Ok(None)),
            (b"QUI", 512, Ok(None)),
            (b"QUIT\r", 512, Ok(None)),
            (b"QUIT\n", 512, Err(LineError::BareLf)),
            (b"\n", 512, Err(LineError::BareLf)),
            (b"QU\nIT\r\n", 512, Err(LineError::BareLf)),
            (b"QUIT\rX", 512, Err(LineError::BareCr)),
            (b"QU\rIT\r\n", 512, Err(LineError::BareCr)),
            (b"QUIT\r\r\n", 512, Err(LineError::BareCr)),
            (b"QUIT\r\n", 6, Ok(Some(6))),
            (b"QUIT\r\n", 5, Err(LineError::TooLong)),
            (b"QUIT\r", 5, Err(LineError::TooLong)),
            (b"QUIT", 5, Ok(None)),
            (b"QUITX", 5, Err(LineError::TooLong)),
            (b"QUITXX\n", 5, Err(LineError::TooLong)),
        ];
        for (input, max, expected) in table {
            let got = find_line(input, *max);
            assert_eq!(
                &got,
                expected,
                "input {:?} max {max}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_long_buffer_without_crlf_is_too_long() {
        let buf = vec![b'a'; 2000];
        assert_eq!(find_line(&buf, 512), Err(LineError::TooLong));
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut buf = vec![b'a'; 510];
        buf.extend_from_slice(b"\r\n");
        assert_eq!(find_line(&buf, 512), Ok(Some(512)));
        buf.insert(0, b'a');
        assert_eq!(find_line(&buf, 512), Err(LineError::TooLong));
    }

    #[test]
    fn line_errors_reply_with_permanent_syntax_codes() {
        for error in [LineError::BareLf, LineError::BareCr, LineError::TooLong] {
            let reply = error.reply();
            assert_eq!((reply.code, reply.enhanced), (500, Some((5, 5, 2))));
        }
    }
}
