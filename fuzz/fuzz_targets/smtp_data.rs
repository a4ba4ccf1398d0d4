//! The strict DATA decoder (RFC 5321 §4.1.1.4, §4.5.2), the SMTP smuggling guard.
//!
//! The first bytes of the input choose the size and line limits and how the stream is cut
//! into reads. Checks: the chunking changes nothing; the decoder stops at the first end of
//! data and nowhere else; an accepted body has only CRLF line ends and, dot-stuffed again
//! and decoded, gives itself back; a fatal stop is at a bare CR or LF; a finished decoder
//! consumes nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_fuzz::take_u16;
use sealgate_smtp_proto::{DataDecoder, DataError, DataEvent};

/// The end of data after the DATA command's own CRLF (RFC 5321 §4.1.1.4).
const END: &[u8] = b"\r\n.\r\n";

struct Outcome {
    consumed: usize,
    event: DataEvent,
    size: usize,
    body: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let (max_size, data) = take_u16(data);
    let (max_line, data) = take_u16(data);
    let (cut, stream) = take_u16(data);
    let (max_size, max_line) = (usize::from(max_size), usize::from(max_line));
    let whole = decode(stream, max_size, max_line, stream.len().max(1));
    let chunked = decode(stream, max_size, max_line, usize::from(cut % 64) + 1);
    assert_eq!(whole.consumed, chunked.consumed);
    assert_eq!(whole.event, chunked.event);
    assert_eq!(whole.size, chunked.size);
    assert_eq!(whole.body, chunked.body);
    check(stream, &whole, max_size);
});

/// Feeds `stream` in reads of `chunk` bytes until the decoder finishes or the stream ends.
fn decode(stream: &[u8], max_size: usize, max_line: usize, chunk: usize) -> Outcome {
    let mut decoder = DataDecoder::new(max_size, max_line);
    let mut consumed = 0;
    let mut event = DataEvent::NeedMore;
    for piece in stream.chunks(chunk) {
        let (used, seen) = decoder.feed(piece);
        consumed += used;
        event = seen;
        if event != DataEvent::NeedMore {
            assert_eq!(decoder.feed(b"\r\n.\r\n"), (0, event.clone()));
            break;
        }
        assert_eq!(used, piece.len(), "NeedMore but input left over");
    }
    Outcome {
        consumed,
        event,
        size: decoder.size(),
        body: decoder.into_body(),
    }
}

fn check(stream: &[u8], out: &Outcome, max_size: usize) {
    let read = &stream[..out.consumed];
    // The framed stream is the DATA line's CRLF followed by what was read: an end of data
    // may only be at its very end.
    let framed = [b"\r\n", read].concat();
    let first_end = framed.windows(END.len()).position(|w| w == END);
    match &out.event {
        DataEvent::Done(result) => {
            assert_eq!(
                first_end,
                Some(framed.len() - END.len()),
                "not the first end"
            );
            check_body(out, result, max_size);
        }
        DataEvent::NeedMore => {
            assert_eq!(out.consumed, stream.len());
            assert_eq!(first_end, None, "an end of data went unseen");
        }
        DataEvent::Fatal(error) => {
            assert_eq!(first_end, None, "an end of data before a fatal error");
            let last = read.last().copied();
            match error {
                DataError::BareLf => assert_eq!(last, Some(b'\n')),
                DataError::BareCr => assert!(read.len() >= 2 && read[read.len() - 2] == b'\r'),
                // Any other fatal reason is the decoder's own rule; where it stops is not fixed.
                _ => {}
            }
        }
    }
}

fn check_body(out: &Outcome, result: &Result<(), DataError>, max_size: usize) {
    if out.size > max_size {
        assert!(matches!(result, Err(DataError::TooBig { .. })));
        assert!(out.body.is_empty());
        return;
    }
    assert_eq!(out.body.len(), out.size);
    assert!(out.body.is_empty() || out.body.ends_with(b"\r\n"));
    for (i, &b) in out.body.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(out.body.get(i + 1), Some(&b'\n'), "bare CR in the body");
        }
        if b == b'\n' {
            assert!(i > 0 && out.body[i - 1] == b'\r', "bare LF in the body");
        }
    }
    if result.is_err() {
        return;
    }
    // RFC 5321 §4.5.2: a relay stuffs the body again; the next hop must read the same body.
    let stuffed = [stuff(&out.body), b".\r\n".to_vec()].concat();
    let again = decode(&stuffed, max_size, usize::MAX, stuffed.len());
    assert_eq!(again.consumed, stuffed.len());
    assert_eq!(again.event, DataEvent::Done(Ok(())));
    assert_eq!(
        again.body, out.body,
        "stuffing and decoding changed the body"
    );
}

/// Dot-stuffing (RFC 5321 §4.5.2): a line that begins with "." gets another.
fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut line_start = true;
    for &b in body {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out
}
