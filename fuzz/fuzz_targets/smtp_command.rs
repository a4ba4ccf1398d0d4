//! The SMTP command line parser and line framing (RFC 5321 §2.3.8, §4.1).
//!
//! Checks: framing returns a line that ends in its only CRLF, within the limit; a parsed
//! command carries no control character; its verb is the line's; written back canonically
//! it parses to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_fuzz::{has_control, smtp};
use sealgate_smtp_proto::{Command, find_line, parse_command};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
const MAX_COMMAND_LINE: usize = 512;

fuzz_target!(|data: &[u8]| {
    check_framing(data);
    if let Ok(command) = parse_command(data) {
        check_command(data, &command);
    }
});

fn check_framing(data: &[u8]) {
    match find_line(data, MAX_COMMAND_LINE) {
        Ok(Some(end)) => {
            assert!((2..=MAX_COMMAND_LINE).contains(&end));
            assert_eq!(&data[end - 2..end], b"\r\n");
            let line = &data[..end - 2];
            assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
        }
        Ok(None) => {
            assert!(data.len() < MAX_COMMAND_LINE);
            assert!(!data.contains(&b'\n'));
            // At most a CR at the very end, waiting for its LF.
            let cr = data.iter().position(|&b| b == b'\r');
            assert!(cr.is_none_or(|i| i + 1 == data.len()));
        }
        Err(_) => {}
    }
}

fn check_command(line: &[u8], command: &Command) {
    for text in smtp::strings(command) {
        assert!(!has_control(text), "control character in {command:?}");
    }
    let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
    assert!(verb.eq_ignore_ascii_case(command.verb().as_bytes()));
    let written = smtp::command(command);
    let again = parse_command(written.as_bytes())
        .unwrap_or_else(|e| panic!("{written:?} (from {command:?}) does not parse: {e:?}"));
    assert_eq!(
        &normalize(again),
        &normalize(command.clone()),
        "{written:?}"
    );
}

/// Quoting is the writer's choice (RFC 5321 §4.1.2: only when necessary), so the `quoted`
/// flag is not compared.
fn normalize(command: Command) -> Command {
    match command {
        Command::Mail {
            from: sealgate_smtp_proto::ReversePath::Path(mut path),
            params,
        } => {
            path.quoted = false;
            Command::Mail {
                from: sealgate_smtp_proto::ReversePath::Path(path),
                params,
            }
        }
        Command::Rcpt { mut to, params } => {
            to.quoted = false;
            Command::Rcpt { to, params }
        }
        other => other,
    }
}
