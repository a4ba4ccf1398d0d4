use super::*;
use crate::params::Body;

fn parse(line: &str) -> Result<Command, ParseError> {
    parse_command(line.as_bytes())
}

/// An enhanced status code `class.subject.detail`.
type Enhanced = (u8, u16, u16);

fn reply_of(line: &[u8]) -> (u16, Option<Enhanced>) {
    let error = parse_command(line).expect_err("line should be refused");
    let reply = error.reply();
    (reply.code, reply.enhanced)
}

fn mailbox(local: &str, domain: &str) -> Path {
    Path {
        local: local.to_owned(),
        domain: domain.to_owned(),
        quoted: false,
        source_route: None,
    }
}

#[test]
fn every_verb_parses() {
    let table = [
        (
            "HELO client.example",
            Command::Helo("client.example".into()),
        ),
        (
            "EHLO client.example",
            Command::Ehlo("client.example".into()),
        ),
        ("EHLO [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
        ("DATA", Command::Data),
        ("RSET", Command::Rset),
        ("NOOP", Command::Noop),
        ("NOOP anything at all", Command::Noop),
        ("QUIT", Command::Quit),
        ("VRFY postmaster", Command::Vrfy("postmaster".into())),
        ("VRFY John Smith", Command::Vrfy("John Smith".into())),
        ("EXPN staff", Command::Expn("staff".into())),
        ("HELP", Command::Help(None)),
        ("HELP MAIL", Command::Help(Some("MAIL".into()))),
        ("STARTTLS", Command::StartTls),
        (
            "AUTH PLAIN",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: None,
            },
        ),
        (
            "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("AGFsaWNlAHNlY3JldA==".into()),
            },
        ),
        (
            "AUTH EXTERNAL =",
            Command::Auth {
                mechanism: "EXTERNAL".into(),
                initial_response: Some("=".into()),
            },
        ),
    ];
    for (line, expected) in table {
        assert_eq!(parse(line), Ok(expected), "{line:?}");
    }
}

#[test]
fn mail_and_rcpt_parse_with_their_paths() {
    let mail = parse("MAIL FROM:<alice@example.org>").expect("valid");
    let expected = Command::Mail {
        from: ReversePath::Path(mailbox("alice", "example.org")),
        params: MailParams::default(),
    };
    assert_eq!(mail, expected);
    let rcpt = parse("RCPT TO:<bob@example.net>").expect("valid");
    let expected = Command::Rcpt {
        to: mailbox("bob", "example.net"),
        params: vec![],
    };
    assert_eq!(rcpt, expected);
}

#[test]
fn verbs_and_keywords_are_case_insensitive() {
    let table = [
        ("quit", Command::Quit),
        ("QuIt", Command::Quit),
        ("starttls", Command::StartTls),
        ("ehlo x.example", Command::Ehlo("x.example".into())),
        (
            "auth plain",
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: None,
            },
        ),
        (
            "mail from:<a@b.example>",
            Command::Mail {
                from: ReversePath::Path(mailbox("a", "b.example")),
                params: MailParams::default(),
            },
        ),
        (
            "rCpT tO:<a@b.example>",
            Command::Rcpt {
                to: mailbox("a", "b.example"),
                params: vec![],
            },
        ),
    ];
    for (line, expected) in table {
        assert_eq!(parse(line), Ok(expected), "{line:?}");
    }
}

#[test]
fn null_reverse_path_parses_as_null() {
    let command = parse("MAIL FROM:<>").expect("valid");
    assert!(matches!(
        command,
        Command::Mail {
            from: ReversePath::Null,
            ..
        }
    ));
}

#[test]
fn one_space_after_the_colon_is_tolerated() {
    assert!(parse("MAIL FROM: <a@b.example>").is_ok());
    assert!(parse("RCPT TO: <a@b.example>").is_ok());
    assert!(parse("MAIL FROM: <>").is_ok());
}

#[test]
fn trailing_spaces_are_ignored() {
    assert_eq!(parse("QUIT  "), Ok(Command::Quit));
    assert!(parse("MAIL FROM:<a@b.example> ").is_ok());
    assert!(parse("RCPT TO:<a@b.example> NOTIFY=NEVER ").is_ok());
}

#[test]
fn mail_parameters_are_parsed() {
    let command =
        parse("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8 REQUIRETLS AUTH=<>")
            .expect("valid");
    let Command::Mail { params, .. } = command else {
        panic!("not MAIL: {command:?}");
    };
    assert_eq!(params.size, Some(1000));
    assert_eq!(params.body, Some(Body::EightBitMime));
    assert!(params.smtputf8);
    assert!(params.requiretls);
    assert_eq!(params.auth.as_deref(), Some("<>"));
}

#[test]
fn unknown_mail_parameters_are_left_for_the_session() {
    let command = parse("MAIL FROM:<> RET=HDRS X-Y").expect("valid");
    let Command::Mail { params, .. } = command else {
        panic!("not MAIL: {command:?}");
    };
    let expected = vec![
        ("RET".to_owned(), Some("HDRS".to_owned())),
        ("X-Y".to_owned(), None),
    ];
    assert_eq!(params.other, expected);
}

#[test]
fn rcpt_parameters_are_kept_raw() {
    let command = parse("RCPT TO:<a@b.example> NOTIFY=SUCCESS,FAILURE orcpt=rfc822;a@b.example")
        .expect("valid");
    let expected = Command::Rcpt {
        to: mailbox("a", "b.example"),
        params: vec![
            ("NOTIFY".into(), Some("SUCCESS,FAILURE".into())),
            ("ORCPT".into(), Some("rfc822;a@b.example".into())),
        ],
    };
    assert_eq!(command, expected);
}

#[test]
fn each_error_maps_to_its_reply_code() {
    let table: &[(&[u8], u16, Enhanced)] = &[
        (b"", 500, (5, 5, 2)),
        (b"   ", 500, (5, 5, 2)),
        (b"FOO", 500, (5, 5, 1)),
        (b"MAILFROM:<a@b>", 500, (5, 5, 1)),
        (b"QU1T", 500, (5, 5, 1)),
        (b" QUIT", 500, (5, 5, 1)),
        (b"\xffQUIT", 500, (5, 5, 2)),
        (b"HELO \xc3\x28", 500, (5, 5, 2)),
        (b"HELO", 501, (5, 5, 4)),
        (b"EHLO", 501, (5, 5, 4)),
        (b"EHLO two words", 501, (5, 5, 4)),
        (b"EHLO a\x00b", 501, (5, 5, 4)),
        (b"VRFY", 501, (5, 5, 4)),
        (b"EXPN", 501, (5, 5, 4)),
        (b"VRFY a\tb", 501, (5, 5, 4)),
        (b"DATA now", 501, (5, 5, 4)),
        (b"RSET all", 501, (5, 5, 4)),
        (b"QUIT now", 501, (5, 5, 4)),
        (b"STARTTLS x", 501, (5, 5, 4)),
        (b"AUTH", 501, (5, 5, 4)),
        (b"AUTH PL@IN", 501, (5, 5, 4)),
        (b"AUTH ABCDEFGHIJKLMNOPQRSTU", 501, (5, 5, 4)),
        (b"AUTH PLAIN not*base64", 501, (5, 5, 4)),
        (b"AUTH PLAIN abc def", 501, (5, 5, 4)),
        (b"MAIL", 501, (5, 5, 4)),
        (b"MAIL TO:<a@b>", 501, (5, 5, 4)),
        (b"MAIL FROM <a@b>", 501, (5, 5, 4)),
        (b"RCPT", 501, (5, 5, 4)),
        (b"RCPT FROM:<a@b>", 501, (5, 5, 4)),
        (b"MAIL FROM:a@b.example", 501, (5, 1, 7)),
        (b"MAIL FROM:  <a@b.example>", 501, (5, 1, 7)),
        (b"MAIL FROM:<a@b.example>x", 501, (5, 1, 7)),
        (b"MAIL FROM:<postmaster>", 501, (5, 1, 7)),
        (b"RCPT TO:b@example", 501, (5, 1, 3)),
        (b"RCPT TO:<>", 501, (5, 1, 3)),
        (b"RCPT TO:<a@b.example>x", 501, (5, 1, 3)),
        (b"RCPT TO:<a b@example.org>", 501, (5, 1, 3)),
        (b"MAIL FROM:<a@b.example> SIZE=big", 555, (5, 5, 4)),
        (
            b"MAIL FROM:<a@b.example> SIZE=99999999999999999999",
            555,
            (5, 5, 4),
        ),
        (b"MAIL FROM:<a@b.example> SIZE=1 SIZE=1", 501, (5, 5, 4)),
        (
            b"MAIL FROM:<a@b.example> BODY=8BITMIME BODY=7BIT",
            501,
            (5, 5, 4),
        ),
        (
            b"MAIL FROM:<a@b.example> BODY=7BIT body=7BIT",
            501,
            (5, 5, 4),
        ),
        (b"MAIL FROM:<a@b.example> X-A=1 x-a=2", 501, (5, 5, 4)),
        (b"MAIL FROM:<a@b.example> BODY=8BIT", 555, (5, 5, 4)),
        (b"MAIL FROM:<a@b.example> SMTPUTF8=1", 555, (5, 5, 4)),
        (b"MAIL FROM:<a@b.example>  SIZE=1", 555, (5, 5, 4)),
        (
            b"RCPT TO:<a@b.example> NOTIFY=NEVER notify=NEVER",
            501,
            (5, 5, 4),
        ),
        (b"RCPT TO:<a@b.example> =x", 555, (5, 5, 4)),
    ];
    for (line, code, enhanced) in table {
        let got = reply_of(line);
        let shown = String::from_utf8_lossy(line);
        assert_eq!(got, (*code, Some(*enhanced)), "{shown:?}");
    }
}

#[test]
fn reply_texts_never_echo_client_input() {
    let hostile = format!("MAIL FROM:<{}@evil.example> SIZE=x", "A".repeat(400));
    let reply = parse(&hostile).expect_err("refused").reply();
    let wire = String::from_utf8(reply.to_bytes()).expect("utf-8");
    assert!(!wire.contains("AAAA"), "{wire}");
    assert!(wire.len() < 100, "{wire}");
    let unknown = parse("XYZZY <script>").expect_err("refused").reply();
    assert!(!unknown.to_string().contains("XYZZY"));
}

#[test]
fn reply_texts_name_the_problem() {
    let table = [
        ("RCPT TO:<@>", "501 5.1.3 Bad recipient address syntax"),
        ("MAIL FROM:<@>", "501 5.1.7 Bad sender address syntax"),
        ("FOO", "500 5.5.1 Command not recognized"),
        ("HELO", "501 5.5.4 Syntax error: HELO requires an argument"),
        ("MAIL FROM:<> SIZE=x", "555 5.5.4 Malformed SIZE parameter"),
        (
            "MAIL FROM:<> BODY=8BITMIME BODY=8BITMIME",
            "501 5.5.4 Duplicate MAIL/RCPT parameter",
        ),
    ];
    for (line, expected) in table {
        let reply = parse(line).expect_err("refused").reply();
        assert_eq!(reply.to_string(), expected, "{line:?}");
    }
}

#[test]
fn verb_names_round_trip_through_the_parser() {
    for line in [
        "HELO a", "EHLO a", "DATA", "RSET", "NOOP", "QUIT", "VRFY a", "EXPN a",
    ] {
        let command = parse(line).expect("valid");
        assert!(line.starts_with(command.verb()), "{line:?}");
    }
    for line in [
        "HELP",
        "STARTTLS",
        "AUTH LOGIN",
        "MAIL FROM:<>",
        "RCPT TO:<postmaster>",
    ] {
        let command = parse(line).expect("valid");
        assert!(line.starts_with(command.verb()), "{line:?}");
    }
}

/// Command-shaped lines built from the characters the grammar cares about.
fn command_like() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let prefix = prop_oneof![
        Just(b"MAIL FROM:".to_vec()),
        Just(b"RCPT TO:".to_vec()),
        Just(b"EHLO ".to_vec()),
        Just(b"AUTH ".to_vec()),
        Just(Vec::new()),
    ];
    let piece = prop_oneof![
        Just(b"<".to_vec()),
        Just(b">".to_vec()),
        Just(b"@".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"IPv6:".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"=".to_vec()),
        Just(b"+".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(b"a.b".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    (prefix, proptest::collection::vec(piece, 0..24))
        .prop_map(|(prefix, pieces)| [prefix, pieces.concat()].concat())
}

proptest::proptest! {
    #[test]
    fn arbitrary_lines_never_panic_and_errors_give_short_replies(line in command_like()) {
        if let Err(error) = parse_command(&line) {
            let reply = error.reply();
            proptest::prop_assert!(reply.is_permanent());
            proptest::prop_assert!(reply.to_bytes().len() < 100);
        }
    }
}
