use super::*;
use crate::{Command, ParseError, parse_command};

fn rcpt(path: &str) -> Result<Path, ParseError> {
    match parse_command(format!("RCPT TO:{path}").as_bytes())? {
        Command::Rcpt { to, .. } => Ok(to),
        other => panic!("not RCPT: {other:?}"),
    }
}

fn rcpt_error(path: &str) -> AddressError {
    match rcpt(path) {
        Err(ParseError::BadRecipient(error)) => error,
        other => panic!("{path:?} gave {other:?}"),
    }
}

fn sender(path: &str) -> Result<ReversePath, ParseError> {
    match parse_command(format!("MAIL FROM:{path}").as_bytes())? {
        Command::Mail { from, .. } => Ok(from),
        other => panic!("not MAIL: {other:?}"),
    }
}

#[test]
fn valid_paths_split_into_local_part_and_domain() {
    // (path, local, domain, quoted)
    let table = [
        ("<user@example.com>", "user", "example.com", false),
        (
            "<first.last@sub.example.co.uk>",
            "first.last",
            "sub.example.co.uk",
            false,
        ),
        ("<a+tag@example.com>", "a+tag", "example.com", false),
        ("<o'brien@example.com>", "o'brien", "example.com", false),
        (
            "<!#$%&'*+-/=?^_`{|}~@example.com>",
            "!#$%&'*+-/=?^_`{|}~",
            "example.com",
            false,
        ),
        ("<User@Example.COM>", "User", "Example.COM", false),
        ("<x@a-b.c0m>", "x", "a-b.c0m", false),
        ("<x@123.example>", "x", "123.example", false),
        ("<x@localhost>", "x", "localhost", false),
        (
            "<\"john doe\"@example.com>",
            "john doe",
            "example.com",
            true,
        ),
        ("<\"a\\\"b\"@example.com>", "a\"b", "example.com", true),
        ("<\"a\\\\b\"@example.com>", "a\\b", "example.com", true),
        ("<\"a\\xb\"@example.com>", "axb", "example.com", true),
        ("<\"a@b>c\"@example.com>", "a@b>c", "example.com", true),
        ("<\"..\"@example.com>", "..", "example.com", true),
        ("<user@[192.0.2.1]>", "user", "[192.0.2.1]", false),
        (
            "<user@[IPv6:2001:db8::1]>",
            "user",
            "[IPv6:2001:db8::1]",
            false,
        ),
        (
            "<user@[ipv6:::ffff:192.0.2.1]>",
            "user",
            "[ipv6:::ffff:192.0.2.1]",
            false,
        ),
        (
            "<user%other@example.com>",
            "user%other",
            "example.com",
            false,
        ),
        ("<host!user@example.com>", "host!user", "example.com", false),
    ];
    for (text, local, domain, quoted) in table {
        let path = rcpt(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(path.local, local, "{text:?}");
        assert_eq!(path.domain, domain, "{text:?}");
        assert_eq!(path.quoted, quoted, "{text:?}");
        assert_eq!(path.source_route, None, "{text:?}");
    }
}

#[test]
fn utf8_local_parts_and_domains_parse() {
    let table = [
        ("<用户@例子.广告>", "用户", "例子.广告"),
        ("<jörg@bücher.example>", "jörg", "bücher.example"),
        ("<\"grüße an\"@example.com>", "grüße an", "example.com"),
        ("<δοκιμή@παράδειγμα.δοκιμή>", "δοκιμή", "παράδειγμα.δοκιμή"),
    ];
    for (text, local, domain) in table {
        let path = rcpt(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!((path.local.as_str(), path.domain.as_str()), (local, domain));
    }
}

#[test]
fn postmaster_without_domain_is_a_recipient() {
    for text in ["<postmaster>", "<Postmaster>", "<POSTMASTER>"] {
        let path = rcpt(text).expect("valid");
        assert!(path.local.eq_ignore_ascii_case("postmaster"));
        assert_eq!(path.domain, "");
        assert_eq!(path.address(), path.local);
    }
}

#[test]
fn postmaster_without_domain_is_not_a_sender() {
    assert!(matches!(
        sender("<postmaster>"),
        Err(ParseError::BadSender(AddressError::MissingDomain))
    ));
}

#[test]
fn other_mailboxes_need_a_domain() {
    assert_eq!(rcpt_error("<user>"), AddressError::MissingDomain);
    assert_eq!(rcpt_error("<\"postmaster\">"), AddressError::MissingDomain);
    assert_eq!(
        rcpt_error("<@relay.example:postmaster>"),
        AddressError::MissingDomain
    );
}

#[test]
fn source_routes_are_kept_for_the_session_to_refuse() {
    let table = [
        ("<@relay.example:user@example.com>", "@relay.example"),
        (
            "<@a.example,@b.example:user@c.example>",
            "@a.example,@b.example",
        ),
    ];
    for (text, route) in table {
        let path = rcpt(text).expect("valid");
        assert_eq!(path.source_route.as_deref(), Some(route));
        assert_eq!(path.local, "user");
        assert_eq!(path.address(), format!("user@{}", path.domain));
    }
    let Ok(ReversePath::Path(path)) = sender("<@a.example:x@b.example>") else {
        panic!("source-routed sender should parse");
    };
    assert_eq!(path.source_route.as_deref(), Some("@a.example"));
}

#[test]
fn percent_and_bang_are_reported() {
    let table = [
        ("<user%other@example.com>", true),
        ("<host!user@example.com>", true),
        ("<\"a%b\"@example.com>", true),
        ("<user@example.com>", false),
        ("<user@ex%ample.com>", false),
    ];
    for (text, expected) in table {
        let path = rcpt(text);
        match path {
            Ok(path) => assert_eq!(path.has_percent_or_bang(), expected, "{text:?}"),
            Err(_) => assert!(!expected, "{text:?}"),
        }
    }
}

#[test]
fn bad_syntax_is_refused_with_the_matching_problem() {
    use AddressError::*;
    let table = [
        ("user@example.com", MissingAngleBrackets),
        ("<user@example.com", MissingAngleBrackets),
        ("<user", MissingAngleBrackets),
        ("<@example.com>", BadSourceRoute),
        ("<\"\"@example.com>", EmptyLocalPart),
        ("<.user@example.com>", BadLocalPart),
        ("<user.@example.com>", BadLocalPart),
        ("<us..er@example.com>", BadLocalPart),
        ("<us er@example.com>", BadLocalPart),
        ("<us\"er@example.com>", BadLocalPart),
        ("<us(er@example.com>", BadLocalPart),
        ("<us\u{1}er@example.com>", BadLocalPart),
        ("<us\u{85}er@example.com>", BadLocalPart),
        ("<us\u{a0}er@example.com>", BadLocalPart),
        ("<\"unterminated@example.com>", BadLocalPart),
        ("<\"tab\there\"@example.com>", BadLocalPart),
        ("<\"esc\\\u{1}\"@example.com>", BadLocalPart),
        ("<\"a\"b@example.com>", BadLocalPart),
        ("<a@b@example.com>", BadDomain),
        ("<user@>", EmptyLabel),
        ("<user@.example.com>", EmptyLabel),
        ("<user@example..com>", EmptyLabel),
        ("<user@example.com.>", EmptyLabel),
        ("<user@-example.com>", BadDomain),
        ("<user@example-.com>", BadDomain),
        ("<user@exa_mple.com>", BadDomain),
        ("<user@exa mple.com>", BadDomain),
        ("<user@example.com\u{0}>", BadDomain),
        ("<user@bü\u{2028}cher.example>", BadDomain),
        ("<user@[192.0.2.256]>", BadAddressLiteral),
        ("<user@[192.0.2]>", BadAddressLiteral),
        ("<user@[IPv6:2001:db8::g]>", BadAddressLiteral),
        ("<user@[2001:db8::1]>", BadAddressLiteral),
        ("<user@[x-tag:content]>", BadAddressLiteral),
        ("<user@[192.0.2.1>", BadAddressLiteral),
        ("<user@[192.0.2.1]x>", MissingAngleBrackets),
        ("<@relay.example>", BadSourceRoute),
        ("<@relay..example:user@example.com>", BadSourceRoute),
        ("<@a.example,b.example:user@example.com>", BadSourceRoute),
        ("<@a.example,:user@example.com>", BadSourceRoute),
        ("<user@example.com>trailing", TrailingGarbage),
        ("<user@example.com><x@y.example>", TrailingGarbage),
        ("<>", NullNotAllowed),
    ];
    for (text, expected) in table {
        assert_eq!(rcpt_error(text), expected, "{text:?}");
    }
}

#[test]
fn dns_length_limits_apply_to_ascii_domains() {
    let label63 = "a".repeat(63);
    assert!(rcpt(&format!("<u@{label63}.example>")).is_ok());
    let label64 = "a".repeat(64);
    assert_eq!(
        rcpt_error(&format!("<u@{label64}.example>")),
        AddressError::BadDomain
    );
    let long = vec!["a".repeat(50); 6].join(".");
    assert_eq!(rcpt_error(&format!("<u@{long}>")), AddressError::BadDomain);
}

#[test]
fn address_joins_local_part_and_domain() {
    let table = [
        ("<user@example.com>", "user@example.com"),
        ("<\"simple\"@example.com>", "simple@example.com"),
        ("<\"john doe\"@example.com>", "\"john doe\"@example.com"),
        ("<\"a\\\"b\"@example.com>", "\"a\\\"b\"@example.com"),
        ("<\"a..b\"@example.com>", "\"a..b\"@example.com"),
        ("<user@[192.0.2.1]>", "user@[192.0.2.1]"),
        ("<postmaster>", "postmaster"),
    ];
    for (text, expected) in table {
        let path = rcpt(text).expect("valid");
        assert_eq!(path.address(), expected, "{text:?}");
        assert_eq!(path.to_string(), expected, "{text:?}");
    }
}

#[test]
fn requoted_addresses_parse_back_to_the_same_path() {
    for text in [
        "<\"john doe\"@example.com>",
        "<\"a\\\"b\\\\c\"@example.com>",
        "<x.y@z.example>",
    ] {
        let path = rcpt(text).expect("valid");
        let again = rcpt(&format!("<{}>", path.address())).expect("re-parses");
        assert_eq!(again.local, path.local, "{text:?}");
        assert_eq!(again.domain, path.domain, "{text:?}");
    }
}
