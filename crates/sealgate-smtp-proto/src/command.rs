//! SMTP commands and their parser (RFC 5321 §4.1.1, with the verbs of RFC 3207 STARTTLS and
//! RFC 4954 AUTH).

use crate::address::{ParsedPath, Path, ReversePath, parse_path};
use crate::error::{AddressError, ParseError};
use crate::params::{MailParams, mail_params, split_params};

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO domain` (RFC 5321 §4.1.1.1), argument as written.
    Helo(String),
    /// `EHLO domain-or-literal` (RFC 5321 §4.1.1.1), argument as written.
    Ehlo(String),
    /// `MAIL FROM:<reverse-path> [params]` (RFC 5321 §4.1.1.2).
    Mail {
        /// The sender, or `<>`.
        from: ReversePath,
        /// The parameters after the path.
        params: MailParams,
    },
    /// `RCPT TO:<forward-path> [params]` (RFC 5321 §4.1.1.3).
    Rcpt {
        /// The recipient.
        to: Path,
        /// The parameters after the path, keywords uppercased, values as written.
        params: Vec<(String, Option<String>)>,
    },
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `NOOP [string]` (RFC 5321 §4.1.1.9); the string is ignored.
    Noop,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `VRFY string` (RFC 5321 §4.1.1.6).
    Vrfy(String),
    /// `EXPN string` (RFC 5321 §4.1.1.7).
    Expn(String),
    /// `HELP [string]` (RFC 5321 §4.1.1.8).
    Help(Option<String>),
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// The SASL mechanism name, uppercased.
        mechanism: String,
        /// The base64 initial response, or `=` for an empty one, as written.
        initial_response: Option<String>,
    },
}

impl Command {
    /// The verb, uppercased, for logs and reply texts.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Helo(_) => "HELO",
            Self::Ehlo(_) => "EHLO",
            Self::Mail { .. } => "MAIL",
            Self::Rcpt { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
            Self::Vrfy(_) => "VRFY",
            Self::Expn(_) => "EXPN",
            Self::Help(_) => "HELP",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } => "AUTH",
        }
    }
}

/// Parses one command line, given WITHOUT its trailing CRLF.
///
/// Verbs and parameter keywords are case-insensitive. Trailing spaces are ignored; everything
/// else follows the RFC 5321 grammar, except that one space is tolerated after `FROM:` / `TO:`.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let line = line.trim_end_matches(' ');
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, arg) = match line.split_once(' ') {
        Some((verb, arg)) => (verb, Some(arg)),
        None => (line, None),
    };
    if !verb.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ParseError::UnknownCommand);
    }
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => Ok(Command::Helo(helo_domain("HELO", arg)?)),
        "EHLO" => Ok(Command::Ehlo(helo_domain("EHLO", arg)?)),
        "MAIL" => parse_mail(arg),
        "RCPT" => parse_rcpt(arg),
        "DATA" => no_argument("DATA", arg, Command::Data),
        "RSET" => no_argument("RSET", arg, Command::Rset),
        "QUIT" => no_argument("QUIT", arg, Command::Quit),
        "STARTTLS" => no_argument("STARTTLS", arg, Command::StartTls),
        "NOOP" => text_argument("NOOP", arg).map(|_| Command::Noop),
        "HELP" => text_argument("HELP", arg).map(Command::Help),
        "VRFY" => required_text("VRFY", arg).map(Command::Vrfy),
        "EXPN" => required_text("EXPN", arg).map(Command::Expn),
        "AUTH" => parse_auth(arg),
        _ => Err(ParseError::UnknownCommand),
    }
}

/// RFC 5321 §4.1.1.5 / §4.1.1.10 and RFC 3207 §4: these verbs take no parameters.
fn no_argument(
    verb: &'static str,
    arg: Option<&str>,
    command: Command,
) -> Result<Command, ParseError> {
    match arg {
        None => Ok(command),
        Some(_) => Err(ParseError::UnexpectedArgument(verb)),
    }
}

/// A free-text argument (VRFY, EXPN, HELP, NOOP): any printable text, spaces included.
fn text_argument(verb: &'static str, arg: Option<&str>) -> Result<Option<String>, ParseError> {
    match arg {
        Some(text) if text.chars().any(char::is_control) => Err(ParseError::InvalidArgument {
            verb,
            reason: "control character",
        }),
        Some(text) => Ok(Some(text.to_owned())),
        None => Ok(None),
    }
}

fn required_text(verb: &'static str, arg: Option<&str>) -> Result<String, ParseError> {
    text_argument(verb, arg)?.ok_or(ParseError::MissingArgument(verb))
}

/// RFC 5321 §4.1.1.1: HELO/EHLO name the client. The name is returned as written (checking it
/// against DNS is policy); it must be one token without control characters.
fn helo_domain(verb: &'static str, arg: Option<&str>) -> Result<String, ParseError> {
    let name = arg.ok_or(ParseError::MissingArgument(verb))?;
    if name.contains(' ') || name.chars().any(char::is_control) {
        return Err(ParseError::InvalidArgument {
            verb,
            reason: "not a single domain or address literal",
        });
    }
    Ok(name.to_owned())
}

/// Strips a case-insensitive `FROM:` / `TO:` and at most one space after it.
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = &arg[keyword.len()..];
    // Many clients write "MAIL FROM: <a@b>"; tolerate exactly that one space.
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Splits what follows the closing `>`: nothing, or one space and the parameters.
fn after_path(rest: &str) -> Result<&str, AddressError> {
    if rest.is_empty() {
        return Ok(rest);
    }
    rest.strip_prefix(' ').ok_or(AddressError::TrailingGarbage)
}

/// RFC 5321 §4.1.1.2: `MAIL FROM:<reverse-path> [SP Mail-parameters]`.
fn parse_mail(arg: Option<&str>) -> Result<Command, ParseError> {
    let arg = arg.ok_or(ParseError::MissingArgument("MAIL"))?;
    let path_text = strip_keyword(arg, "FROM:").ok_or(ParseError::InvalidArgument {
        verb: "MAIL",
        reason: "expected FROM:<address>",
    })?;
    let (path, rest) = parse_path(path_text, false).map_err(ParseError::BadSender)?;
    let params_text = after_path(rest).map_err(ParseError::BadSender)?;
    let from = match path {
        ParsedPath::Null => ReversePath::Null,
        ParsedPath::Mailbox(path) => ReversePath::Path(path),
    };
    let params = split_params(params_text)
        .and_then(mail_params)
        .map_err(ParseError::BadParameter)?;
    Ok(Command::Mail { from, params })
}

/// RFC 5321 §4.1.1.3: `RCPT TO:( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
/// [SP Rcpt-parameters]`.
fn parse_rcpt(arg: Option<&str>) -> Result<Command, ParseError> {
    let arg = arg.ok_or(ParseError::MissingArgument("RCPT"))?;
    let path_text = strip_keyword(arg, "TO:").ok_or(ParseError::InvalidArgument {
        verb: "RCPT",
        reason: "expected TO:<address>",
    })?;
    let (path, rest) = parse_path(path_text, true).map_err(ParseError::BadRecipient)?;
    let params_text = after_path(rest).map_err(ParseError::BadRecipient)?;
    let to = match path {
        ParsedPath::Null => return Err(ParseError::BadRecipient(AddressError::NullNotAllowed)),
        ParsedPath::Mailbox(path) => path,
    };
    let params = split_params(params_text).map_err(ParseError::BadParameter)?;
    Ok(Command::Rcpt { to, params })
}

/// RFC 4954 §4: `AUTH mechanism [SP initial-response]`, where a mechanism is 1 to 20 of
/// letters, digits, `-` and `_` (RFC 4422 §3.1) and the response is base64 or `=`.
fn parse_auth(arg: Option<&str>) -> Result<Command, ParseError> {
    let arg = arg.ok_or(ParseError::MissingArgument("AUTH"))?;
    let invalid = |reason| ParseError::InvalidArgument {
        verb: "AUTH",
        reason,
    };
    let (mechanism, initial_response) = match arg.split_once(' ') {
        Some((mechanism, response)) => (mechanism, Some(response)),
        None => (arg, None),
    };
    let mechanism_ok = (1..=20).contains(&mechanism.len())
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !mechanism_ok {
        return Err(invalid("malformed mechanism name"));
    }
    if let Some(response) = initial_response {
        let base64_ok = !response.is_empty()
            && response
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if !base64_ok {
            return Err(invalid("malformed initial response"));
        }
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response: initial_response.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests;
