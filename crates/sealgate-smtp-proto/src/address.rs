//! Reverse- and forward-paths of `MAIL FROM` and `RCPT TO` (RFC 5321 §4.1.2, with the UTF-8
//! extensions of RFC 6531 §3.3).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::AddressError;

/// The argument of `MAIL FROM`: a mailbox, or `<>` for bounces (RFC 5321 §4.5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `MAIL FROM:<>`.
    Null,
    /// A real sender mailbox.
    Path(Path),
}

/// A mailbox as written in a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The local part; for a quoted-string, the unquoted form (quotes and backslashes removed).
    pub local: String,
    /// The domain as written: a domain name or an address literal such as `[192.0.2.1]`.
    /// Empty only for the special recipient `<postmaster>` (RFC 5321 §4.1.1.3).
    pub domain: String,
    /// The local part was written as a quoted-string.
    pub quoted: bool,
    /// The `@a,@b` of `<@a,@b:user@c>` (RFC 5321 §4.1.2 `A-d-l`), which servers should refuse.
    pub source_route: Option<String>,
}

impl Path {
    /// `local@domain`, re-quoting the local part when it is not a valid dot-string
    /// (RFC 5321 §4.1.2: quote only when necessary). `<postmaster>` gives just `postmaster`.
    pub fn address(&self) -> String {
        let local = if is_dot_string(&self.local) {
            self.local.clone()
        } else {
            quote(&self.local)
        };
        if self.domain.is_empty() {
            local
        } else {
            format!("{local}@{}", self.domain)
        }
    }

    /// The local part contains `%` or `!`, the old relay hacks (RFC 5321 §3.6.1 lets a server
    /// refuse them, and a relay must not interpret them).
    pub fn has_percent_or_bang(&self) -> bool {
        self.local.contains(['%', '!'])
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// What a parsed path turned out to be, before MAIL/RCPT decide whether it is allowed.
#[derive(Debug)]
pub(crate) enum ParsedPath {
    Null,
    Mailbox(Path),
}

/// Parses `<...>` at the start of `text`; returns the path and the rest after `>`.
///
/// The domain-less form `<postmaster>` (any case) is accepted only when `allow_postmaster` is set.
pub(crate) fn parse_path(
    text: &str,
    allow_postmaster: bool,
) -> Result<(ParsedPath, &str), AddressError> {
    let inner = text
        .strip_prefix('<')
        .ok_or(AddressError::MissingAngleBrackets)?;
    if let Some(rest) = inner.strip_prefix('>') {
        return Ok((ParsedPath::Null, rest));
    }
    let (source_route, inner) = split_source_route(inner)?;
    let (local, quoted, rest) = parse_local_part(inner)?;
    let (domain, rest) = match rest.strip_prefix('@') {
        Some(after_at) => parse_domain_part(after_at)?,
        None if allow_postmaster
            && source_route.is_none()
            && !quoted
            && local.eq_ignore_ascii_case("postmaster") =>
        {
            (String::new(), rest)
        }
        None if rest.starts_with('>') => return Err(AddressError::MissingDomain),
        None if rest.is_empty() => return Err(AddressError::MissingAngleBrackets),
        None => return Err(AddressError::BadLocalPart),
    };
    let rest = rest
        .strip_prefix('>')
        .ok_or(AddressError::MissingAngleBrackets)?;
    let path = Path {
        local,
        domain,
        quoted,
        source_route,
    };
    Ok((ParsedPath::Mailbox(path), rest))
}

/// Splits off `@a,@b:` (RFC 5321 §4.1.2 `A-d-l ":"`), validating each domain.
fn split_source_route(inner: &str) -> Result<(Option<String>, &str), AddressError> {
    if !inner.starts_with('@') {
        return Ok((None, inner));
    }
    let (route, rest) = inner.split_once(':').ok_or(AddressError::BadSourceRoute)?;
    for hop in route.split(',') {
        let domain = hop.strip_prefix('@').ok_or(AddressError::BadSourceRoute)?;
        validate_domain(domain).map_err(|_| AddressError::BadSourceRoute)?;
    }
    Ok((Some(route.to_owned()), rest))
}

/// Parses a dot-string or quoted-string local part; returns it unquoted, whether it was quoted,
/// and the rest (which starts at `@` or `>` on success).
fn parse_local_part(text: &str) -> Result<(String, bool, &str), AddressError> {
    if let Some(after_quote) = text.strip_prefix('"') {
        let (local, rest) = parse_quoted(after_quote)?;
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        return Ok((local, true, rest));
    }
    let end = text.find(['@', '>']).unwrap_or(text.len());
    let local = &text[..end];
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if !is_dot_string(local) {
        return Err(AddressError::BadLocalPart);
    }
    Ok((local.to_owned(), false, &text[end..]))
}

/// Reads a quoted-string body after its opening `"` (RFC 5321 §4.1.2 `QcontentSMTP`); returns
/// the content with escapes removed and the text after the closing `"`.
fn parse_quoted(text: &str) -> Result<(String, &str), AddressError> {
    let mut local = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Ok((local, &text[index + 1..])),
            // quoted-pairSMTP = %d92 %d32-126
            '\\' => match chars.next() {
                Some((_, escaped)) if (' '..='~').contains(&escaped) => local.push(escaped),
                _ => return Err(AddressError::BadLocalPart),
            },
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531 §3.3).
            c if is_qtext(c) => local.push(c),
            _ => return Err(AddressError::BadLocalPart),
        }
    }
    Err(AddressError::BadLocalPart)
}

/// Parses the part after `@` up to (not including) the closing `>`.
fn parse_domain_part(text: &str) -> Result<(String, &str), AddressError> {
    if text.starts_with('[') {
        let end = text.find(']').ok_or(AddressError::BadAddressLiteral)? + 1;
        validate_address_literal(&text[..end])?;
        return Ok((text[..end].to_owned(), &text[end..]));
    }
    let end = text.find('>').ok_or(AddressError::MissingAngleBrackets)?;
    validate_domain(&text[..end])?;
    Ok((text[..end].to_owned(), &text[end..]))
}

/// RFC 5321 §4.1.3: `[IPv4]`, or `[IPv6:...]`. General literals (`tag:content`) have no
/// registered tag besides IPv6 and are refused.
fn validate_address_literal(literal: &str) -> Result<(), AddressError> {
    let inner = literal
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(AddressError::BadAddressLiteral)?;
    let valid = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..].parse::<Ipv6Addr>().is_ok(),
        _ => inner.parse::<Ipv4Addr>().is_ok(),
    };
    if valid {
        Ok(())
    } else {
        Err(AddressError::BadAddressLiteral)
    }
}

/// RFC 5321 §4.1.2 `Domain`: dot-separated labels of letters, digits and inner hyphens; U-labels
/// (RFC 6531 §3.3) may also hold non-ASCII characters. ASCII names keep the DNS limits of
/// 63 octets per label and 255 in total (RFC 1035 §2.3.4).
pub(crate) fn validate_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() {
        return Err(AddressError::EmptyLabel);
    }
    if domain.is_ascii() && domain.len() > 255 {
        return Err(AddressError::BadDomain);
    }
    for label in domain.split('.') {
        validate_label(label)?;
    }
    Ok(())
}

fn validate_label(label: &str) -> Result<(), AddressError> {
    if label.is_empty() {
        return Err(AddressError::EmptyLabel);
    }
    if label.is_ascii() && label.len() > 63 {
        return Err(AddressError::BadDomain);
    }
    let chars_ok = label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || is_utf8_text(c));
    if !chars_ok || label.starts_with('-') || label.ends_with('-') {
        return Err(AddressError::BadDomain);
    }
    Ok(())
}

/// RFC 5321 §4.1.2 `Dot-string`: non-empty atoms of `atext` joined by single dots.
fn is_dot_string(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// RFC 5322 §3.2.3 `atext`, extended with UTF-8 by RFC 6531 §3.3.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_utf8_text(c)
}

fn is_qtext(c: char) -> bool {
    matches!(c, ' ' | '!' | '#'..='[' | ']'..='~') || is_utf8_text(c)
}

/// A non-ASCII character that is printable: RFC 6531 `UTF8-non-ascii`, minus the control and
/// white-space characters no address should hide.
fn is_utf8_text(c: char) -> bool {
    !c.is_ascii() && !c.is_control() && !c.is_whitespace()
}

/// Writes `local` as a quoted-string, escaping `"` and `\`.
fn quote(local: &str) -> String {
    let mut quoted = String::with_capacity(local.len() + 2);
    quoted.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests;
