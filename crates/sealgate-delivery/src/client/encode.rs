//! The message and envelope as they go on the wire (RFC 5321 §4.5.2 transparency, §2.3.8 line
//! endings, RFC 6531 SMTPUTF8, RFC 6152 8BITMIME).

use super::error::ProtocolProblem;

/// A message ready to be written after the 354 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedMessage {
    /// Dot-stuffed bytes ending with CRLF "." CRLF.
    pub wire: Vec<u8>,
    /// The message size as declared with `SIZE=` (RFC 1870 §3): un-stuffed, final CRLF included.
    pub size: u64,
    /// Some byte is above 0x7F: `BODY=8BITMIME` when the server offers it.
    pub eight_bit: bool,
    /// The header section has non-ASCII bytes: needs SMTPUTF8 (RFC 6532 headers).
    pub utf8_headers: bool,
}

/// Encodes `message` for DATA.
///
/// CRLF is the only line ending accepted: a bare CR or LF is refused, never normalised, because
/// a server may read it as a line ending where a filter did not (SMTP smuggling; compare
/// RUSTSEC-2021-0069). A `.` at the start of the message or after any CRLF is doubled
/// (RFC 5321 §4.5.2), a missing final CRLF is added, and the terminator `.` CRLF follows.
pub(crate) fn encode_message(message: &[u8]) -> Result<EncodedMessage, ProtocolProblem> {
    let mut wire = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    let mut bytes = message.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                if bytes.next_if_eq(&b'\n').is_none() {
                    return Err(ProtocolProblem::BareCrInMessage);
                }
                wire.extend_from_slice(b"\r\n");
                line_start = true;
                continue;
            }
            b'\n' => return Err(ProtocolProblem::BareLfInMessage),
            // RFC 5321 §4.5.2: a line starting with "." gets one more.
            b'.' if line_start => wire.extend_from_slice(b".."),
            _ => wire.push(byte),
        }
        line_start = false;
    }
    let mut size = message.len() as u64;
    if !message.is_empty() && !line_start {
        wire.extend_from_slice(b"\r\n");
        size += 2;
    }
    wire.extend_from_slice(b".\r\n");
    Ok(EncodedMessage {
        wire,
        size,
        eight_bit: !message.is_ascii(),
        utf8_headers: !header_section(message).is_ascii(),
    })
}

/// The header section: everything before the first empty line (or the whole message).
fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &[];
    }
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message, |end| &message[..end + 2])
}

/// Checks an envelope address before it goes into `MAIL FROM:<…>` / `RCPT TO:<…>`: no control
/// characters (CR and LF would inject commands), no angle brackets; only the sender may be empty.
pub(crate) fn check_address(address: &str, may_be_empty: bool) -> Result<(), ProtocolProblem> {
    let bad = address
        .chars()
        .any(|c| c.is_control() || c == '<' || c == '>');
    if bad || (address.is_empty() && !may_be_empty) {
        return Err(ProtocolProblem::InvalidAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(message: &[u8]) -> Vec<u8> {
        encode_message(message).expect("valid message").wire
    }

    /// The receiving side's reading of `wire`: un-stuffed message up to CRLF "." CRLF.
    fn destuff(wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = wire;
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("every line ends with CRLF")
                + 2;
            let line = &rest[..end];
            rest = &rest[end..];
            if line == b".\r\n" {
                assert!(rest.is_empty(), "bytes after the terminator");
                return out;
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
    }

    #[test]
    fn plain_message_gets_the_terminator() {
        assert_eq!(
            wire(b"Subject: x\r\n\r\nhello\r\n"),
            b"Subject: x\r\n\r\nhello\r\n.\r\n"
        );
    }

    #[test]
    fn missing_final_crlf_is_added() {
        let encoded = encode_message(b"a\r\nb").expect("valid");
        assert_eq!(encoded.wire, b"a\r\nb\r\n.\r\n");
        assert_eq!(encoded.size, 6);
    }

    #[test]
    fn empty_message_is_just_the_terminator() {
        let encoded = encode_message(b"").expect("valid");
        assert_eq!(encoded.wire, b".\r\n");
        assert_eq!(encoded.size, 0);
    }

    #[test]
    fn leading_dot_of_the_message_is_doubled() {
        assert_eq!(wire(b".hidden\r\n"), b"..hidden\r\n.\r\n");
        assert_eq!(wire(b"."), b"..\r\n.\r\n");
    }

    #[test]
    fn embedded_end_of_data_cannot_end_the_message() {
        assert_eq!(
            wire(b"a\r\n.\r\nMAIL FROM:<evil@x>\r\n"),
            b"a\r\n..\r\nMAIL FROM:<evil@x>\r\n.\r\n"
        );
    }

    #[test]
    fn every_line_starting_with_a_dot_is_stuffed() {
        assert_eq!(
            wire(b"x\r\n.\r\n..\r\n.x\r\n\r\n.\r\n"),
            b"x\r\n..\r\n...\r\n..x\r\n\r\n..\r\n.\r\n"
        );
    }

    #[test]
    fn dots_inside_a_line_are_left_alone() {
        assert_eq!(wire(b"a.b\r\nc..\r\n"), b"a.b\r\nc..\r\n.\r\n");
    }

    #[test]
    fn bare_lf_is_refused_never_normalised() {
        for message in [
            &b"a\nb\r\n"[..],
            b"a\r\n.\n",
            b"\n",
            b"a\r\n\n.\r\n",
            b"a\n.\nb",
        ] {
            assert_eq!(
                encode_message(message),
                Err(ProtocolProblem::BareLfInMessage),
                "{message:?}"
            );
        }
    }

    #[test]
    fn bare_cr_is_refused_never_normalised() {
        for message in [
            &b"a\rb\r\n"[..],
            b"a\r\n.\r",
            b"\r",
            b"a\r\r\n",
            b"a\r\n.\r.\r\n",
        ] {
            assert_eq!(
                encode_message(message),
                Err(ProtocolProblem::BareCrInMessage),
                "{message:?}"
            );
        }
    }

    #[test]
    fn stuffing_round_trips_through_a_receiver() {
        let messages: [&[u8]; 6] = [
            b"Subject: t\r\n\r\n.\r\n..\r\n.x\r\n\r\n.\r\nend\r\n",
            b".\r\n.\r\n.\r\n",
            b"..\r\n",
            b"no final crlf",
            b"\r\n\r\n",
            b"a\r\n.\r\n",
        ];
        for message in messages {
            let encoded = encode_message(message).expect("valid");
            let mut expected = message.to_vec();
            if !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            assert_eq!(destuff(&encoded.wire), expected, "{message:?}");
            assert_eq!(encoded.size, expected.len() as u64);
        }
    }

    #[test]
    fn the_only_terminator_is_at_the_end() {
        let encoded = encode_message(b"a\r\n.\r\nb\r\n.\r\n").expect("valid");
        let hits = encoded
            .wire
            .windows(5)
            .filter(|w| *w == b"\r\n.\r\n")
            .count();
        assert_eq!(hits, 1);
        assert!(encoded.wire.ends_with(b"\r\n.\r\n"));
    }

    #[test]
    fn eight_bit_and_utf8_headers_are_detected() {
        let ascii = encode_message(b"Subject: hi\r\n\r\nbody\r\n").expect("valid");
        assert!(!ascii.eight_bit && !ascii.utf8_headers);
        let body = encode_message("Subject: hi\r\n\r\nGrüße\r\n".as_bytes()).expect("valid");
        assert!(body.eight_bit && !body.utf8_headers);
        let header = encode_message("Subject: Grüße\r\n\r\nbody\r\n".as_bytes()).expect("valid");
        assert!(header.eight_bit && header.utf8_headers);
        let no_body = encode_message("Subject: é".as_bytes()).expect("valid");
        assert!(no_body.utf8_headers);
        let body_only = encode_message("\r\né".as_bytes()).expect("valid");
        assert!(!body_only.utf8_headers);
    }

    #[test]
    fn addresses_that_could_inject_commands_are_refused() {
        assert_eq!(check_address("a@b", false), Ok(()));
        assert_eq!(check_address("", true), Ok(()));
        assert_eq!(check_address("\"a b\"@c", false), Ok(()));
        assert_eq!(check_address("jö@bü.example", false), Ok(()));
        for bad in ["", "a@b>\r\nRSET", "a\n@b", "a>@b", "<a@b", "a\0@b"] {
            assert_eq!(
                check_address(bad, false),
                Err(ProtocolProblem::InvalidAddress),
                "{bad:?}"
            );
        }
    }
}
