//! Sans-I/O SMTP server-side protocol (layer L1).
//!
//! This crate owns the wire grammar a Sealgate server speaks with SMTP clients: framing of command
//! lines ([`find_line`]), parsing of commands and paths ([`parse_command`], RFC 5321 §4.1 with the
//! SIZE, 8BITMIME, BINARYMIME, SMTPUTF8, REQUIRETLS and AUTH extensions), formatting of replies
//! ([`Reply`]) and the strict DATA decoder ([`DataDecoder`]) that refuses bare CR and LF so SMTP
//! smuggling cannot work through it. For the client side it has the strict reply parser
//! ([`ReplyParser`]) the outbound SMTP client reads server replies with.
//!
//! Everything here is pure functions and small state machines over byte slices: no I/O, no async,
//! no tokio, no logging. It must not depend on any other Sealgate crate; policy (which commands are
//! allowed when, which parameters are supported) belongs to the session in `sealgate-ingress`.

mod address;
mod client_reply;
mod command;
mod data;
mod error;
mod line;
mod params;
mod reply;

pub use address::{Path, ReversePath};
pub use client_reply::{MAX_REPLY_LINE_LEN, MAX_REPLY_LINES, ReplyError, ReplyParser};
pub use command::{Command, parse_command};
pub use data::{DataDecoder, DataEvent};
pub use error::{AddressError, DataError, LineError, ParamError, ParseError};
pub use line::find_line;
pub use params::{Body, MailParams};
pub use reply::Reply;
