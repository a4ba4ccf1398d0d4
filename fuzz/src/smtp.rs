//! Canonical SMTP text for parsed commands and paths (RFC 5321 §4.1), the inverse of
//! `sealgate_smtp_proto::parse_command` up to spelling (case, optional quoting, the space
//! tolerated after `FROM:`).

use sealgate_smtp_proto::{Body, Command, MailParams, Path, ReversePath};

/// `<[@a,@b:]local@domain>`, the local part quoted only when it must be.
pub fn path(path: &Path) -> String {
    match &path.source_route {
        Some(route) => format!("<{route}:{}>", path.address()),
        None => format!("<{}>", path.address()),
    }
}

/// The command as one line, without CRLF.
pub fn command(command: &Command) -> String {
    match command {
        Command::Helo(name) => format!("HELO {name}"),
        Command::Ehlo(name) => format!("EHLO {name}"),
        Command::Mail { from, params } => {
            let from = match from {
                ReversePath::Null => "<>".to_owned(),
                ReversePath::Path(p) => path(p),
            };
            format!("MAIL FROM:{from}{}", mail_params(params))
        }
        Command::Rcpt { to, params } => format!("RCPT TO:{}{}", path(to), raw_params(params)),
        Command::Data => "DATA".to_owned(),
        Command::Rset => "RSET".to_owned(),
        Command::Noop => "NOOP".to_owned(),
        Command::Quit => "QUIT".to_owned(),
        Command::Vrfy(text) => format!("VRFY {text}"),
        Command::Expn(text) => format!("EXPN {text}"),
        Command::Help(None) => "HELP".to_owned(),
        Command::Help(Some(text)) => format!("HELP {text}"),
        Command::StartTls => "STARTTLS".to_owned(),
        Command::Auth {
            mechanism,
            initial_response: None,
        } => format!("AUTH {mechanism}"),
        Command::Auth {
            mechanism,
            initial_response: Some(response),
        } => format!("AUTH {mechanism} {response}"),
    }
}

/// ` KEY[=VALUE]...` for the known MAIL parameters, then the others in order.
fn mail_params(params: &MailParams) -> String {
    let mut out = String::new();
    if let Some(size) = params.size {
        out.push_str(&format!(" SIZE={size}"));
    }
    if let Some(body) = params.body {
        let body = match body {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        };
        out.push_str(&format!(" BODY={body}"));
    }
    if params.smtputf8 {
        out.push_str(" SMTPUTF8");
    }
    if params.requiretls {
        out.push_str(" REQUIRETLS");
    }
    if let Some(auth) = &params.auth {
        out.push_str(&format!(" AUTH={}", xtext(auth)));
    }
    out.push_str(&raw_params(&params.other));
    out
}

fn raw_params(params: &[(String, Option<String>)]) -> String {
    params
        .iter()
        .map(|(key, value)| match value {
            Some(value) => format!(" {key}={value}"),
            None => format!(" {key}"),
        })
        .collect()
}

/// RFC 3461 §4 xtext; `<>` (RFC 4954 §5: unknown submitter) is written as is.
fn xtext(text: &str) -> String {
    if text == "<>" {
        return text.to_owned();
    }
    text.bytes()
        .map(|b| match b {
            b'!'..=b'~' if b != b'+' && b != b'=' => char::from(b).to_string(),
            _ => format!("+{b:02X}"),
        })
        .collect()
}

/// Every string a parsed command carries, for checks that apply to all of them.
pub fn strings(command: &Command) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    match command {
        Command::Helo(s) | Command::Ehlo(s) | Command::Vrfy(s) | Command::Expn(s) => out.push(s),
        Command::Help(Some(s)) => out.push(s),
        Command::Mail { from, params } => {
            if let ReversePath::Path(p) = from {
                out.extend(path_strings(p));
            }
            out.extend(params.auth.as_deref());
            out.extend(param_strings(&params.other));
        }
        Command::Rcpt { to, params } => {
            out.extend(path_strings(to));
            out.extend(param_strings(params));
        }
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            out.push(mechanism);
            out.extend(initial_response.as_deref());
        }
        _ => {}
    }
    out
}

fn path_strings(path: &Path) -> Vec<&str> {
    let mut out = vec![path.local.as_str(), path.domain.as_str()];
    out.extend(path.source_route.as_deref());
    out
}

fn param_strings(params: &[(String, Option<String>)]) -> Vec<&str> {
    params
        .iter()
        .flat_map(|(key, value)| std::iter::once(key.as_str()).chain(value.as_deref()))
        .collect()
}
