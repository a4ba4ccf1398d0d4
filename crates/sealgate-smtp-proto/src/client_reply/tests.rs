use super::*;

fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
    let mut parser = ReplyParser::new();
    parser.feed(input);
    let mut replies = Vec::new();
    while let Some(reply) = parser.next_reply()? {
        replies.push(reply);
    }
    Ok(replies)
}

fn one(input: &[u8]) -> Reply {
    let replies = parse_all(input).expect("valid reply");
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.into_iter().next().expect("one reply")
}

#[test]
fn single_line_reply_with_enhanced_code() {
    let reply = one(b"250 2.1.0 Sender OK\r\n");
    assert_eq!(reply, Reply::new(250, Some((2, 1, 0)), "Sender OK"));
}

#[test]
fn greeting_without_enhanced_code_keeps_its_text() {
    let reply = one(b"220 mx.example.test ESMTP ready\r\n");
    assert_eq!(reply, Reply::new(220, None, "mx.example.test ESMTP ready"));
}

#[test]
fn multi_line_reply_collects_every_line() {
    let reply = one(b"250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
    assert_eq!(reply.code, 250);
    assert_eq!(reply.enhanced, None);
    assert_eq!(reply.lines, ["mx.example.test", "PIPELINING", "SIZE 1000"]);
}

#[test]
fn enhanced_code_is_lifted_from_every_line() {
    let reply = one(b"550-5.7.1 first\r\n550 5.7.1 second\r\n");
    assert_eq!(reply.enhanced, Some((5, 7, 1)));
    assert_eq!(reply.lines, ["first", "second"]);
}

#[test]
fn enhanced_code_of_another_class_is_plain_text() {
    let reply = one(b"550 2.1.0 odd\r\n");
    assert_eq!(reply.enhanced, None);
    assert_eq!(reply.lines, ["2.1.0 odd"]);
}

#[test]
fn enhanced_code_shapes_follow_rfc_3463() {
    assert_eq!(one(b"451 4.123.999 x\r\n").enhanced, Some((4, 123, 999)));
    assert_eq!(one(b"451 4.3.0\r\n").enhanced, Some((4, 3, 0)));
    assert_eq!(one(b"451 4.3.0\r\n").lines, [""]);
    for text in [
        &b"451 4.3 x\r\n"[..],
        b"451 4.3.0.1 x\r\n",
        b"451 44.3.0 x\r\n",
    ] {
        assert_eq!(
            one(text).enhanced,
            None,
            "{}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn code_without_text_is_a_complete_reply() {
    let reply = one(b"250\r\n");
    assert_eq!(
        (reply.code, reply.lines.clone()),
        (250, vec![String::new()])
    );
}

#[test]
fn pipelined_replies_come_out_in_order() {
    let replies = parse_all(b"250 2.1.0 ok\r\n550 5.1.1 no\r\n250-a\r\n250 b\r\n354 go\r\n")
        .expect("valid replies");
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 550, 250, 354]);
}

#[test]
fn bytes_may_arrive_one_at_a_time() {
    let input = b"250-mx\r\n250 done\r\n";
    let mut parser = ReplyParser::new();
    let mut got = None;
    for (index, byte) in input.iter().enumerate() {
        parser.feed(&[*byte]);
        let reply = parser.next_reply().expect("valid so far");
        if index + 1 < input.len() {
            assert_eq!(reply, None, "complete too early at {index}");
        } else {
            got = reply;
        }
    }
    let reply = got.expect("complete at the end");
    assert_eq!(reply.lines, ["mx", "done"]);
    assert_eq!(parser.buffered(), 0);
}

#[test]
fn malformed_replies_are_refused() {
    let table: &[(&[u8], ReplyError)] = &[
        (b"250 ok\n", ReplyError::BareLineEnding),
        (b"250 o\rk\r\n", ReplyError::BareLineEnding),
        (b"250-a\r\n251 b\r\n", ReplyError::CodeMismatch),
        (b"25 ok\r\n", ReplyError::Malformed),
        (b"\r\n", ReplyError::Malformed),
        (b"abc ok\r\n", ReplyError::Malformed),
        (b"150 ok\r\n", ReplyError::Malformed),
        (b"260 ok\r\n", ReplyError::Malformed),
        (b"250x ok\r\n", ReplyError::Malformed),
        (b"2500 ok\r\n", ReplyError::Malformed),
    ];
    for (input, expected) in table {
        assert_eq!(
            parse_all(input),
            Err(*expected),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn an_error_sticks() {
    let mut parser = ReplyParser::new();
    parser.feed(b"250 ok\n");
    assert_eq!(parser.next_reply(), Err(ReplyError::BareLineEnding));
    parser.feed(b"250 ok\r\n");
    assert_eq!(parser.next_reply(), Err(ReplyError::BareLineEnding));
}

#[test]
fn lines_up_to_the_lenient_limit_are_accepted() {
    let mut line = b"250 ".to_vec();
    line.resize(MAX_REPLY_LINE_LEN - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(one(&line).code, 250);
    line.insert(4, b'x');
    assert_eq!(parse_all(&line), Err(ReplyError::LineTooLong));
}

#[test]
fn an_endless_line_is_refused_before_its_end() {
    let mut parser = ReplyParser::new();
    parser.feed(&vec![b'2'; MAX_REPLY_LINE_LEN + 1]);
    assert_eq!(parser.next_reply(), Err(ReplyError::LineTooLong));
}

#[test]
fn too_many_lines_are_refused() {
    let mut input = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        input.extend_from_slice(b"250-x\r\n");
    }
    let mut ok = input.clone();
    ok.truncate(ok.len() - 7);
    ok.extend_from_slice(b"250 x\r\n");
    assert_eq!(one(&ok).lines.len(), MAX_REPLY_LINES);
    input.extend_from_slice(b"250 x\r\n");
    assert_eq!(parse_all(&input), Err(ReplyError::TooManyLines));
}

#[test]
fn non_utf8_text_is_replaced_not_refused() {
    let reply = one(b"250 caf\xe9\r\n");
    assert_eq!(reply.lines, ["caf\u{fffd}"]);
}

#[test]
fn clear_discards_bytes_sent_ahead() {
    let mut parser = ReplyParser::new();
    parser.feed(b"220 go ahead\r\n250 injected\r\n");
    assert_eq!(
        parser.next_reply().expect("valid").map(|r| r.code),
        Some(220)
    );
    assert!(parser.buffered() > 0);
    parser.clear();
    assert_eq!(parser.buffered(), 0);
    assert_eq!(parser.next_reply(), Ok(None));
}

#[test]
fn a_reply_round_trips_through_the_writer() {
    let reply = Reply::multi(250, Some((2, 0, 0)), vec!["a".into(), "b c".into()]);
    assert_eq!(one(&reply.to_bytes()), reply);
}
