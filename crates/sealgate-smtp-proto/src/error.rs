//! Everything that can go wrong while reading SMTP from a client, and the reply each failure earns.
//!
//! The `Display` texts are for logs (lowercase, no trailing period, never raw client input). The
//! wire text comes from `reply()`: short constants naming the problem (RFC 3463 / RFC 5248
//! enhanced codes), so a hostile client never sees its own bytes echoed back.

use crate::reply::Reply;

/// A command line that could not be parsed (RFC 5321 §4.1.1, §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line had no verb at all.
    #[error("empty command line")]
    Empty,
    /// The line carried bytes that are not UTF-8.
    #[error("command line is not valid utf-8")]
    NotUtf8,
    /// The verb is not one this library knows.
    #[error("unknown command verb")]
    UnknownCommand,
    /// A verb that needs an argument arrived without one.
    #[error("{0} requires an argument")]
    MissingArgument(&'static str),
    /// A verb that takes no argument arrived with one.
    #[error("{0} takes no argument")]
    UnexpectedArgument(&'static str),
    /// The argument of a verb is malformed.
    #[error("invalid {verb} argument: {reason}")]
    InvalidArgument {
        /// The verb, as this library spells it.
        verb: &'static str,
        /// What is wrong with the argument.
        reason: &'static str,
    },
    /// The reverse-path of `MAIL FROM` is malformed.
    #[error("bad sender address: {0}")]
    BadSender(AddressError),
    /// The forward-path of `RCPT TO` is malformed.
    #[error("bad recipient address: {0}")]
    BadRecipient(AddressError),
    /// A `MAIL` or `RCPT` parameter is malformed or repeated.
    #[error("bad mail/rcpt parameter: {0}")]
    BadParameter(ParamError),
}

impl ParseError {
    /// The reply the server sends for this error.
    pub fn reply(&self) -> Reply {
        match self {
            Self::Empty => Reply::new(500, Some((5, 5, 2)), "Syntax error: empty command"),
            Self::NotUtf8 => Reply::new(
                500,
                Some((5, 5, 2)),
                "Syntax error: command is not valid UTF-8",
            ),
            Self::UnknownCommand => Reply::new(500, Some((5, 5, 1)), "Command not recognized"),
            Self::MissingArgument(verb) => Reply::new(
                501,
                Some((5, 5, 4)),
                format!("Syntax error: {verb} requires an argument"),
            ),
            Self::UnexpectedArgument(verb) => Reply::new(
                501,
                Some((5, 5, 4)),
                format!("Syntax error: {verb} takes no arguments"),
            ),
            Self::InvalidArgument { verb, .. } => Reply::new(
                501,
                Some((5, 5, 4)),
                format!("Syntax error in {verb} arguments"),
            ),
            Self::BadSender(_) => Reply::new(501, Some((5, 1, 7)), "Bad sender address syntax"),
            Self::BadRecipient(_) => {
                Reply::new(501, Some((5, 1, 3)), "Bad recipient address syntax")
            }
            // A parameter given twice is a syntax error in the arguments (RFC 5321 §4.2.2: 501),
            // not an unrecognized parameter (§4.1.1.11: 555).
            Self::BadParameter(ParamError::Duplicate) => {
                Reply::new(501, Some((5, 5, 4)), ParamError::Duplicate.wire_text())
            }
            Self::BadParameter(problem) => Reply::new(555, Some((5, 5, 4)), problem.wire_text()),
        }
    }
}

/// What is wrong with a path (RFC 5321 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The path is not enclosed in `<` and `>`.
    #[error("path is not enclosed in angle brackets")]
    MissingAngleBrackets,
    /// `<>` where a real mailbox is required.
    #[error("null path is not allowed here")]
    NullNotAllowed,
    /// A mailbox without `@domain` (only `<postmaster>` may omit it, and only in RCPT).
    #[error("mailbox has no domain")]
    MissingDomain,
    /// The local part is empty.
    #[error("empty local part")]
    EmptyLocalPart,
    /// The local part is neither a dot-string nor a quoted-string.
    #[error("malformed local part")]
    BadLocalPart,
    /// The domain is empty or has an empty label.
    #[error("empty domain label")]
    EmptyLabel,
    /// The domain has a character or label shape no domain may have.
    #[error("malformed domain")]
    BadDomain,
    /// The bracketed address literal is not an IPv4 or IPv6 address.
    #[error("malformed address literal")]
    BadAddressLiteral,
    /// The `@a,@b:` source route is malformed.
    #[error("malformed source route")]
    BadSourceRoute,
    /// Something other than parameters follows the closing `>`.
    #[error("unexpected text after the path")]
    TrailingGarbage,
}

/// What is wrong with a `MAIL` or `RCPT` parameter (RFC 5321 §4.1.2 `Mail-parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Not `keyword[=value]` with a valid keyword and value.
    #[error("malformed parameter syntax")]
    Malformed,
    /// The same keyword twice.
    #[error("duplicate parameter")]
    Duplicate,
    /// `SIZE` is not 1 to 20 digits or does not fit in 64 bits (RFC 1870 §3).
    #[error("malformed size value")]
    BadSize,
    /// `BODY` is not `7BIT`, `8BITMIME` or `BINARYMIME` (RFC 6152, RFC 3030).
    #[error("unknown body type")]
    BadBody,
    /// `AUTH` is not `<>` or valid xtext (RFC 4954 §5).
    #[error("malformed auth value")]
    BadAuth,
    /// A keyword that takes no value (`SMTPUTF8`, `REQUIRETLS`) was given one.
    #[error("parameter takes no value")]
    UnexpectedValue,
    /// A keyword that needs a value was given none.
    #[error("parameter requires a value")]
    MissingValue,
    /// A well-formed parameter this server does not support; the parser never returns it, the
    /// session builds it to reply 555 for entries of `MailParams::other`.
    #[error("parameter not supported")]
    Unsupported,
}

impl ParamError {
    fn wire_text(&self) -> &'static str {
        match self {
            Self::Malformed => "Malformed MAIL/RCPT parameter",
            Self::Duplicate => "Duplicate MAIL/RCPT parameter",
            Self::BadSize => "Malformed SIZE parameter",
            Self::BadBody => "Unknown BODY type",
            Self::BadAuth => "Malformed AUTH parameter",
            Self::UnexpectedValue => "Parameter takes no value",
            Self::MissingValue => "Parameter requires a value",
            Self::Unsupported => "MAIL/RCPT parameter not recognized or not implemented",
        }
    }
}

/// Why a command line could not be framed (RFC 5321 §2.3.8, §4.5.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// An LF without a CR before it.
    #[error("bare lf in command line")]
    BareLf,
    /// A CR followed by something other than LF.
    #[error("bare cr in command line")]
    BareCr,
    /// No CRLF within the line limit.
    #[error("command line too long")]
    TooLong,
}

impl LineError {
    /// The reply the server sends for this error.
    pub fn reply(&self) -> Reply {
        match self {
            Self::BareLf => Reply::new(
                500,
                Some((5, 5, 2)),
                "Syntax error: bare LF in command; lines must end with CRLF",
            ),
            Self::BareCr => Reply::new(
                500,
                Some((5, 5, 2)),
                "Syntax error: bare CR in command; lines must end with CRLF",
            ),
            // RFC 5321 §4.2.2 lists "500 Line too long" for this case.
            Self::TooLong => Reply::new(500, Some((5, 5, 2)), "Line too long"),
        }
    }
}

/// Why message content sent after DATA was refused (RFC 5321 §4.1.1.4, §4.5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// An LF without a CR before it: the smuggling vector of CVE-2023-51764 and relatives.
    #[error("bare lf in message data")]
    BareLf,
    /// A CR followed by something other than LF.
    #[error("bare cr in message data")]
    BareCr,
    /// A NUL byte (RFC 5322 §2.3): a next hop that drops NULs could read `CRLF NUL "." CRLF`
    /// as an end of data, so the message is refused, never relayed.
    #[error("nul byte in message data")]
    Nul,
    /// A line longer than the configured limit (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1).
    #[error("message line too long")]
    LineTooLong,
    /// The message grew past the size limit (RFC 1870).
    #[error("message larger than {limit} bytes")]
    TooBig {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl DataError {
    /// The reply the server sends for this error.
    pub fn reply(&self) -> Reply {
        match self {
            Self::BareLf => Reply::new(
                550,
                Some((5, 5, 2)),
                "Message refused: bare LF in DATA; lines must end with CRLF",
            ),
            Self::BareCr => Reply::new(
                550,
                Some((5, 5, 2)),
                "Message refused: bare CR in DATA; lines must end with CRLF",
            ),
            Self::Nul => Reply::new(
                550,
                Some((5, 6, 0)),
                "Message refused: NUL character in DATA (RFC 5322 2.3)",
            ),
            Self::LineTooLong => Reply::new(
                550,
                Some((5, 6, 0)),
                "Message refused: line longer than the 1000 octet limit (RFC 5322 2.1.1)",
            ),
            Self::TooBig { .. } => Reply::new(
                552,
                Some((5, 3, 4)),
                "Message size exceeds fixed maximum message size",
            ),
        }
    }
}
