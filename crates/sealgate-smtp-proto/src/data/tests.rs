use proptest::prelude::*;

use super::*;

const MAX_SIZE: usize = 10 * 1024 * 1024;
const MAX_LINE: usize = 1000;

/// What one decoding run produced.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    consumed: usize,
    event: DataEvent,
    body: Vec<u8>,
}

/// Feeds `wire` in pieces of the given sizes (cycled), as a session reading a socket would.
fn run_chunked(wire: &[u8], sizes: &[usize], max_size: usize, max_line: usize) -> Run {
    let mut decoder = DataDecoder::new(max_size, max_line);
    let mut consumed = 0;
    let mut sizes = sizes.iter().copied().cycle();
    while consumed < wire.len() {
        let size = sizes.next().unwrap_or(1).max(1);
        let piece = &wire[consumed..wire.len().min(consumed + size)];
        let (used, event) = decoder.feed(piece);
        consumed += used;
        assert!(decoder.body().len() <= max_size, "memory must stay bounded");
        match event {
            DataEvent::NeedMore => assert_eq!(used, piece.len(), "NeedMore consumes all input"),
            event => {
                let body = decoder.into_body();
                return Run {
                    consumed,
                    event,
                    body,
                };
            }
        }
    }
    let body = decoder.into_body();
    Run {
        consumed,
        event: DataEvent::NeedMore,
        body,
    }
}

fn run(wire: &[u8]) -> Run {
    run_chunked(wire, &[wire.len().max(1)], MAX_SIZE, MAX_LINE)
}

fn done_ok(consumed: usize, body: &[u8]) -> Run {
    Run {
        consumed,
        event: DataEvent::Done(Ok(())),
        body: body.to_vec(),
    }
}

const SAMPLES: &[&[u8]] = &[
    b".\r\n",
    b".\r\nQUIT\r\n",
    b"Subject: hi\r\n\r\nHello\r\n.\r\n",
    b"..\r\n...\r\n.x\r\nx.\r\n.\r\nMAIL FROM:<a@b>\r\n",
    b"\r\n\r\n.\r\n",
    b"a\r\n.\r",
    b"a\r\n.",
    b"a\r\n",
    b"a\nb\r\n.\r\n",
    b"a\rb\r\n.\r\n",
    b"a\r\n.\n",
    b"a\r\n.\r\r\n",
    b"a\n.\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"x\r\n.\r\n\n",
];

#[test]
fn byte_at_a_time_feeding_equals_one_shot_feeding() {
    for wire in SAMPLES {
        let one_shot = run(wire);
        for size in [1, 2, 3, 5, 7] {
            let chunked = run_chunked(wire, &[size], MAX_SIZE, MAX_LINE);
            assert_eq!(
                chunked,
                one_shot,
                "{:?} in pieces of {size}",
                String::from_utf8_lossy(wire)
            );
        }
    }
}

#[test]
fn smuggling_sequences_are_fatal_and_never_end_the_data() {
    let table: &[(&[u8], DataError)] = &[
        (b"\n.\n", DataError::BareLf),
        (b"\r.\r", DataError::BareCr),
        (b"\n.\r\n", DataError::BareLf),
        (b"\r\n.\n", DataError::BareLf),
        (b"\r\n.\r", DataError::BareCr),
        (b"\r.\r\n", DataError::BareCr),
        (b"\r\n.\r\r\n", DataError::BareCr),
    ];
    let smuggled = b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n\r\nforged\r\n.\r\n";
    for (sequence, error) in table {
        let mut wire = b"Subject: test\r\n\r\nhello".to_vec();
        wire.extend_from_slice(sequence);
        wire.extend_from_slice(smuggled);
        for size in [1, 2, wire.len()] {
            let result = run_chunked(&wire, &[size], MAX_SIZE, MAX_LINE);
            let shown = String::from_utf8_lossy(sequence);
            assert_eq!(
                result.event,
                DataEvent::Fatal(*error),
                "{shown:?} in pieces of {size}"
            );
        }
    }
}

#[test]
fn bare_line_endings_anywhere_are_fatal() {
    let table: &[(&[u8], DataError, usize)] = &[
        (b"\n", DataError::BareLf, 1),
        (
            b"Subject: x\nFrom: y\r\n\r\nbody\r\n.\r\n",
            DataError::BareLf,
            11,
        ),
        (b"Subject: x\r\n\r\nbo\ndy\r\n.\r\n", DataError::BareLf, 17),
        (b"Subject: x\rFrom: y\r\n\r\n.\r\n", DataError::BareCr, 12),
        (b"body\r\r\n.\r\n", DataError::BareCr, 6),
        (b"\r\r\n.\r\n", DataError::BareCr, 2),
        (b".\n", DataError::BareLf, 2),
        (b"..\n.\r\n", DataError::BareLf, 3),
    ];
    for (wire, error, consumed) in table {
        let result = run(wire);
        let shown = String::from_utf8_lossy(wire);
        assert_eq!(result.event, DataEvent::Fatal(*error), "{shown:?}");
        assert_eq!(
            result.consumed, *consumed,
            "{shown:?} stops right after the bad byte"
        );
    }
}

#[test]
fn a_cr_at_the_end_of_input_waits_for_the_next_byte() {
    let mut decoder = DataDecoder::new(MAX_SIZE, MAX_LINE);
    assert_eq!(decoder.feed(b"abc\r"), (4, DataEvent::NeedMore));
    assert_eq!(decoder.feed(b"\n.\r"), (3, DataEvent::NeedMore));
    assert_eq!(decoder.feed(b"\n"), (1, DataEvent::Done(Ok(()))));
    assert_eq!(decoder.into_body(), b"abc\r\n");

    let mut decoder = DataDecoder::new(MAX_SIZE, MAX_LINE);
    assert_eq!(decoder.feed(b"abc\r"), (4, DataEvent::NeedMore));
    assert_eq!(
        decoder.feed(b"x\r\n"),
        (1, DataEvent::Fatal(DataError::BareCr))
    );
}

#[test]
fn decoding_stops_right_after_the_terminator() {
    let wire = b"Hello\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n";
    for size in [1, 4, wire.len()] {
        let result = run_chunked(wire, &[size], MAX_SIZE, MAX_LINE);
        assert_eq!(result, done_ok(10, b"Hello\r\n"), "pieces of {size}");
        assert!(wire[result.consumed..].starts_with(b"MAIL FROM:"));
    }
}

#[test]
fn a_finished_decoder_consumes_nothing_more() {
    let mut decoder = DataDecoder::new(MAX_SIZE, MAX_LINE);
    assert_eq!(decoder.feed(b".\r\nQUIT\r\n"), (3, DataEvent::Done(Ok(()))));
    assert_eq!(decoder.feed(b"QUIT\r\n"), (0, DataEvent::Done(Ok(()))));
    let mut decoder = DataDecoder::new(MAX_SIZE, MAX_LINE);
    assert_eq!(
        decoder.feed(b"\n"),
        (1, DataEvent::Fatal(DataError::BareLf))
    );
    assert_eq!(
        decoder.feed(b".\r\n"),
        (0, DataEvent::Fatal(DataError::BareLf))
    );
}

#[test]
fn dot_stuffed_lines_lose_their_first_dot() {
    let table: &[(&[u8], &[u8])] = &[
        (b".\r\n", b""),
        (b"\r\n.\r\n", b"\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"...\r\n.\r\n", b"..\r\n"),
        (b".hidden\r\n.\r\n", b"hidden\r\n"),
        (b"a\r\n..\r\nb\r\n.\r\n", b"a\r\n.\r\nb\r\n"),
        (b"a.b\r\n a\r\n. \r\n.\r\n", b"a.b\r\n a\r\n \r\n"),
        (b"x\r\n\r\n.\r\n", b"x\r\n\r\n"),
    ];
    for (wire, body) in table {
        assert_eq!(
            run(wire),
            done_ok(wire.len(), body),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn an_immediate_terminator_is_an_empty_message() {
    assert_eq!(run(b".\r\nQUIT\r\n"), done_ok(3, b""));
}

#[test]
fn a_line_of_exactly_the_limit_is_accepted() {
    let wire = b"12345678\r\n.\r\n";
    assert_eq!(
        run_chunked(wire, &[1], MAX_SIZE, 10),
        done_ok(wire.len(), b"12345678\r\n")
    );
    // The limit counts message bytes, so a stuffed dot does not count against it.
    let wire = b"..2345678\r\n.\r\n";
    assert_eq!(
        run_chunked(wire, &[1], MAX_SIZE, 10),
        done_ok(wire.len(), b".2345678\r\n")
    );
}

#[test]
fn a_long_line_is_consumed_to_the_end_then_refused() {
    let mut wire = b"short\r\n".to_vec();
    wire.extend_from_slice(&[b'x'; 5000]);
    wire.extend_from_slice(b"\r\nshort\r\n.\r\nQUIT\r\n");
    let end = wire.len() - 6;
    for size in [1, 100, wire.len()] {
        let result = run_chunked(&wire, &[size], MAX_SIZE, MAX_LINE);
        assert_eq!(result.event, DataEvent::Done(Err(DataError::LineTooLong)));
        assert_eq!(result.consumed, end, "pieces of {size}");
    }
}

#[test]
fn an_oversized_message_is_consumed_to_the_end_without_storing_it() {
    let line = [b'y'; 98];
    let mut wire = Vec::new();
    for _ in 0..10_000 {
        wire.extend_from_slice(&line);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\nQUIT\r\n");
    let end = wire.len() - 6;
    for size in [1, 4096] {
        let result = run_chunked(&wire, &[size], 1000, MAX_LINE);
        assert_eq!(
            result.event,
            DataEvent::Done(Err(DataError::TooBig { limit: 1000 }))
        );
        assert_eq!(result.consumed, end, "pieces of {size}");
        assert!(result.body.is_empty());
    }
    let mut decoder = DataDecoder::new(1000, MAX_LINE);
    let (_, event) = decoder.feed(&wire);
    assert_eq!(decoder.size(), 1_000_000);
    assert!(matches!(
        event,
        DataEvent::Done(Err(DataError::TooBig { .. }))
    ));
    assert!(decoder.into_body().capacity() <= 1000);
}

#[test]
fn a_message_of_exactly_the_size_limit_is_accepted() {
    let wire = b"12345678\r\n.\r\n";
    assert_eq!(
        run_chunked(wire, &[3], 10, MAX_LINE),
        done_ok(wire.len(), b"12345678\r\n")
    );
    let result = run_chunked(wire, &[3], 9, MAX_LINE);
    assert_eq!(
        result.event,
        DataEvent::Done(Err(DataError::TooBig { limit: 9 }))
    );
}

#[test]
fn a_nul_before_a_dot_line_does_not_end_the_data_but_refuses_the_message() {
    // What a next hop that drops NULs would read as CRLF "." CRLF, then a smuggled message.
    let wire = b"Subject: a\r\n\r\nfirst\r\n\x00.\r\nMAIL FROM:<ceo@x.example>\r\n\
RCPT TO:<v@y.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nhi\r\n.\r\nQUIT\r\n";
    let end = wire.len() - b"QUIT\r\n".len();
    for size in [1, 2, 7, wire.len()] {
        let result = run_chunked(wire, &[size], MAX_SIZE, MAX_LINE);
        assert_eq!(
            result.event,
            DataEvent::Done(Err(DataError::Nul)),
            "pieces of {size}"
        );
        assert_eq!(result.consumed, end, "pieces of {size}");
    }
}

#[test]
fn a_nul_anywhere_in_the_data_refuses_the_message() {
    for wire in [
        &b"\x00\r\n.\r\n"[..],
        b"a\x00b\r\n.\r\n",
        b"a\x00\r\n.\r\n",
        b"..\x00\r\n.\r\n",
        b".\x00\r\n.\r\n",
        b"Subject: \x00\r\n\r\nbody\r\n.\r\n",
    ] {
        let name = String::from_utf8_lossy(wire);
        for size in [1, 3, wire.len()] {
            let result = run_chunked(wire, &[size], MAX_SIZE, MAX_LINE);
            assert_eq!(
                result.event,
                DataEvent::Done(Err(DataError::Nul)),
                "{name:?}"
            );
            assert_eq!(result.consumed, wire.len(), "{name:?}");
        }
    }
    // The byte 0x80 and other 8-bit text are fine (RFC 6152).
    let wire = b"caf\xc3\xa9 \x01\x7f\xff\r\n.\r\n";
    assert_eq!(
        run(wire),
        done_ok(wire.len(), b"caf\xc3\xa9 \x01\x7f\xff\r\n")
    );
}

#[test]
fn size_limit_is_reported_before_line_length() {
    let wire = b"123456789012345\r\n.\r\n";
    let result = run_chunked(wire, &[1], 5, 10);
    assert_eq!(
        result.event,
        DataEvent::Done(Err(DataError::TooBig { limit: 5 }))
    );
}

#[test]
fn data_errors_reply_with_their_codes() {
    let table = [
        (DataError::BareLf, 550, (5, 5, 2), "bare LF"),
        (DataError::BareCr, 550, (5, 5, 2), "bare CR"),
        (DataError::LineTooLong, 550, (5, 6, 0), "line longer"),
        (DataError::Nul, 550, (5, 6, 0), "NUL character"),
        (
            DataError::TooBig { limit: 10 },
            552,
            (5, 3, 4),
            "size exceeds",
        ),
    ];
    for (error, code, enhanced, phrase) in table {
        let reply = error.reply();
        assert_eq!(
            (reply.code, reply.enhanced),
            (code, Some(enhanced)),
            "{error:?}"
        );
        assert!(reply.to_string().contains(phrase), "{reply}");
    }
}

/// Lines without CR or LF, with dots made common so stuffing is exercised.
fn message_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![
        3 => Just(b'.'),
        1 => Just(b' '),
        6 => any::<u8>().prop_filter("no line endings or NUL", |b| ![b'\r', b'\n', 0].contains(b)),
    ];
    prop::collection::vec(prop::collection::vec(byte, 0..40), 0..30)
}

/// Bytes where CR, LF and dots are frequent.
fn raw_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b'.'),
        Just(b'a'),
        any::<u8>(),
    ];
    prop::collection::vec(byte, 0..200)
}

proptest! {
    #[test]
    fn random_chunkings_of_stuffed_messages_round_trip_exactly(
        lines in message_lines(),
        sizes in prop::collection::vec(1usize..20, 1..40),
    ) {
        let mut message = Vec::new();
        let mut wire = Vec::new();
        for line in &lines {
            message.extend_from_slice(line);
            message.extend_from_slice(b"\r\n");
            if line.first() == Some(&b'.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        let end = wire.len();
        wire.extend_from_slice(b"RSET\r\n");
        let result = run_chunked(&wire, &sizes, MAX_SIZE, MAX_LINE);
        prop_assert_eq!(result, done_ok(end, &message));
    }

    #[test]
    fn random_chunkings_of_random_bytes_agree_with_one_shot_decoding(
        wire in raw_bytes(),
        sizes in prop::collection::vec(1usize..10, 1..20),
    ) {
        let one_shot = run_chunked(&wire, &[wire.len().max(1)], 64, 16);
        let chunked = run_chunked(&wire, &sizes, 64, 16);
        prop_assert_eq!(chunked, one_shot);
    }
}
