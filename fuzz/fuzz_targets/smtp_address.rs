//! Path parsing of `MAIL FROM` and `RCPT TO` (RFC 5321 §4.1.2, RFC 6531 §3.3).
//!
//! The input is what follows `FROM:` / `TO:`. Checks: both commands read a mailbox the same
//! way (only `RCPT` takes `<postmaster>`, only `MAIL` takes `<>`); no part holds a control
//! character; the domain is a literal or dot-separated labels; the canonical address parses
//! back to the same mailbox and is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_fuzz::{has_control, smtp};
use sealgate_smtp_proto::{Command, Path, ReversePath, parse_command};

fuzz_target!(|data: &[u8]| {
    let mail = parse_command(&[b"MAIL FROM:", data].concat());
    let rcpt = parse_command(&[b"RCPT TO:", data].concat());
    let from = match &mail {
        Ok(Command::Mail {
            from: ReversePath::Path(path),
            ..
        }) => Some(path),
        _ => None,
    };
    let to = match &rcpt {
        Ok(Command::Rcpt { to, .. }) => Some(to),
        _ => None,
    };
    if let (Some(from), Some(to)) = (from, to) {
        assert_eq!(from, to, "MAIL and RCPT read {data:?} differently");
    }
    if let Some(to) = to.filter(|to| to.domain.is_empty()) {
        assert!(to.local.eq_ignore_ascii_case("postmaster") && !to.quoted);
        assert!(from.is_none(), "MAIL took a path without a domain");
    }
    if let Ok(Command::Mail {
        from: ReversePath::Null,
        ..
    }) = &mail
    {
        assert!(to.is_none(), "RCPT took the null path");
    }
    for path in from.into_iter().chain(to) {
        check_path(path);
    }
});

fn check_path(path: &Path) {
    assert!(!path.local.is_empty());
    for part in [&path.local, &path.domain] {
        assert!(!has_control(part), "control character in {path:?}");
    }
    if path.domain.starts_with('[') {
        assert!(path.domain.ends_with(']'));
    } else if !path.domain.is_empty() {
        assert!(path.domain.split('.').all(|label| !label.is_empty()));
    }
    assert_eq!(
        path.has_percent_or_bang(),
        path.local.contains('%') || path.local.contains('!')
    );
    let written = smtp::path(path);
    let line = format!("RCPT TO:{written}");
    let Ok(Command::Rcpt { to: again, .. }) = parse_command(line.as_bytes()) else {
        panic!("{written:?} (from {path:?}) does not parse");
    };
    assert_eq!(
        (&again.local, &again.domain, &again.source_route),
        (&path.local, &path.domain, &path.source_route),
        "{written:?}"
    );
    assert_eq!(
        again.address(),
        path.address(),
        "the address is not canonical"
    );
}
