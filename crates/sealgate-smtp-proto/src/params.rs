//! `MAIL` and `RCPT` parameters (RFC 5321 §4.1.2 `Mail-parameters` / `Rcpt-parameters`).

use crate::error::ParamError;

/// A parameter as written: uppercased keyword and optional value.
pub(crate) type RawParam = (String, Option<String>);

/// The parameters of `MAIL FROM` this library understands; the rest is kept in `other`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`, the declared message size in octets (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=7BIT|8BITMIME|BINARYMIME` (RFC 6152, RFC 3030).
    pub body: Option<Body>,
    /// `SMTPUTF8` was given (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `REQUIRETLS` was given (RFC 8689 §4.1).
    pub requiretls: bool,
    /// `AUTH=`, xtext-decoded (RFC 4954 §5); `<>` means the submitter is unknown.
    pub auth: Option<String>,
    /// Any other parameter, keyword uppercased and value as written; the session refuses these
    /// with 555 unless it implements them.
    pub other: Vec<(String, Option<String>)>,
}

/// The `BODY=` value of `MAIL FROM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030; only valid with BDAT).
    BinaryMime,
}

/// Splits `KEY[=VALUE] KEY[=VALUE]...` into checked parameters, refusing duplicates.
pub(crate) fn split_params(text: &str) -> Result<Vec<RawParam>, ParamError> {
    let mut params: Vec<RawParam> = Vec::new();
    if text.is_empty() {
        return Ok(params);
    }
    for item in text.split(' ') {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (item, None),
        };
        if !is_keyword(key) || !value.is_none_or(is_value) {
            return Err(ParamError::Malformed);
        }
        let key = key.to_ascii_uppercase();
        if params.iter().any(|(seen, _)| *seen == key) {
            return Err(ParamError::Duplicate);
        }
        params.push((key, value.map(str::to_owned)));
    }
    Ok(params)
}

/// Interprets the `MAIL FROM` parameters this library knows.
pub(crate) fn mail_params(raw: Vec<RawParam>) -> Result<MailParams, ParamError> {
    let mut params = MailParams::default();
    for (key, value) in raw {
        match key.as_str() {
            "SIZE" => params.size = Some(parse_size(value.as_deref())?),
            "BODY" => params.body = Some(parse_body(value.as_deref())?),
            "SMTPUTF8" => params.smtputf8 = no_value(value.as_deref())?,
            "REQUIRETLS" => params.requiretls = no_value(value.as_deref())?,
            "AUTH" => params.auth = Some(parse_auth(value.as_deref())?),
            _ => params.other.push((key, value)),
        }
    }
    Ok(params)
}

/// RFC 1870 §3: `size-value ::= 1*20DIGIT`, and it must fit the 64-bit counter we keep.
fn parse_size(value: Option<&str>) -> Result<u64, ParamError> {
    let value = value.ok_or(ParamError::MissingValue)?;
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::BadSize);
    }
    value.parse().map_err(|_| ParamError::BadSize)
}

fn parse_body(value: Option<&str>) -> Result<Body, ParamError> {
    let value = value.ok_or(ParamError::MissingValue)?;
    match value.to_ascii_uppercase().as_str() {
        "7BIT" => Ok(Body::SevenBit),
        "8BITMIME" => Ok(Body::EightBitMime),
        "BINARYMIME" => Ok(Body::BinaryMime),
        _ => Err(ParamError::BadBody),
    }
}

fn no_value(value: Option<&str>) -> Result<bool, ParamError> {
    match value {
        None => Ok(true),
        Some(_) => Err(ParamError::UnexpectedValue),
    }
}

/// RFC 4954 §5: `AUTH=<>` or `AUTH=xtext`. The xtext is decoded (RFC 3461 §4); a value that
/// decodes to invalid UTF-8 or to control characters is refused, so it cannot reach a header.
fn parse_auth(value: Option<&str>) -> Result<String, ParamError> {
    let value = value.ok_or(ParamError::MissingValue)?;
    if value == "<>" {
        return Ok(value.to_owned());
    }
    let mut decoded = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'+' => {
                let high = bytes.next().and_then(upper_hex);
                let low = bytes.next().and_then(upper_hex);
                match (high, low) {
                    (Some(high), Some(low)) => decoded.push((high << 4) | low),
                    _ => return Err(ParamError::BadAuth),
                }
            }
            b'!'..=b'~' if byte != b'=' => decoded.push(byte),
            _ => return Err(ParamError::BadAuth),
        }
    }
    let text = String::from_utf8(decoded).map_err(|_| ParamError::BadAuth)?;
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(ParamError::BadAuth);
    }
    Ok(text)
}

/// RFC 3461 §4 `hexchar`: uppercase hex digits only.
fn upper_hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// RFC 5321 §4.1.2: `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
fn is_keyword(key: &str) -> bool {
    key.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// RFC 5321 §4.1.2: `esmtp-value = 1*(%d33-60 / %d62-126)`, plus UTF-8 (RFC 6531 §3.3).
fn is_value(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            matches!(c, '!'..='<' | '>'..='~')
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(text: &str) -> Result<MailParams, ParamError> {
        mail_params(split_params(text)?)
    }

    #[test]
    fn no_parameters_give_the_defaults() {
        assert_eq!(mail(""), Ok(MailParams::default()));
    }

    #[test]
    fn known_mail_parameters_are_interpreted() {
        let params = mail("SIZE=12345 BODY=8BITMIME SMTPUTF8 REQUIRETLS AUTH=<>").expect("valid");
        assert_eq!(params.size, Some(12345));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert!(params.smtputf8);
        assert!(params.requiretls);
        assert_eq!(params.auth.as_deref(), Some("<>"));
        assert!(params.other.is_empty());
    }

    #[test]
    fn keywords_and_body_values_are_case_insensitive() {
        let params = mail("size=1 body=binarymime smtputf8 RequireTLS").expect("valid");
        assert_eq!(params.size, Some(1));
        assert_eq!(params.body, Some(Body::BinaryMime));
        assert!(params.smtputf8 && params.requiretls);
        assert_eq!(mail("Body=7bit").expect("valid").body, Some(Body::SevenBit));
    }

    #[test]
    fn unknown_parameters_are_kept_with_uppercased_keys() {
        let params = mail("ret=HDRS ENVID=abc+2B1 X-FLAG").expect("valid");
        let expected = vec![
            ("RET".to_owned(), Some("HDRS".to_owned())),
            ("ENVID".to_owned(), Some("abc+2B1".to_owned())),
            ("X-FLAG".to_owned(), None),
        ];
        assert_eq!(params.other, expected);
    }

    #[test]
    fn size_accepts_twenty_digits_and_the_largest_u64() {
        assert_eq!(mail("SIZE=0").expect("valid").size, Some(0));
        assert_eq!(
            mail("SIZE=00000000000000000042").expect("valid").size,
            Some(42)
        );
        assert_eq!(
            mail("SIZE=18446744073709551615").expect("valid").size,
            Some(u64::MAX)
        );
    }

    #[test]
    fn auth_values_are_xtext_decoded() {
        let params = mail("AUTH=e+3Dmc2@example.com").expect("valid");
        assert_eq!(params.auth.as_deref(), Some("e=mc2@example.com"));
    }

    #[test]
    fn malformed_parameters_are_refused_with_the_matching_problem() {
        let table = [
            ("SIZE=abc", ParamError::BadSize),
            ("SIZE=-1", ParamError::BadSize),
            ("SIZE=18446744073709551616", ParamError::BadSize),
            ("SIZE=000000000000000000001", ParamError::BadSize),
            ("SIZE=", ParamError::Malformed),
            ("SIZE", ParamError::MissingValue),
            ("SIZE=1 SIZE=2", ParamError::Duplicate),
            ("SIZE=1 size=1", ParamError::Duplicate),
            ("BODY=9BIT", ParamError::BadBody),
            ("BODY", ParamError::MissingValue),
            ("SMTPUTF8=yes", ParamError::UnexpectedValue),
            ("REQUIRETLS=1", ParamError::UnexpectedValue),
            ("SMTPUTF8 SMTPUTF8", ParamError::Duplicate),
            ("AUTH=a+2", ParamError::BadAuth),
            ("AUTH=a+2b", ParamError::BadAuth),
            ("AUTH=a+0D+0Ab", ParamError::BadAuth),
            ("AUTH=+FF", ParamError::BadAuth),
            ("AUTH", ParamError::MissingValue),
            ("SIZE=1  BODY=7BIT", ParamError::Malformed),
            ("=1", ParamError::Malformed),
            ("-X=1", ParamError::Malformed),
            ("X_Y=1", ParamError::Malformed),
            ("X=a=b", ParamError::Malformed),
            ("X=a\tb", ParamError::Malformed),
            ("X=a\u{7f}", ParamError::Malformed),
        ];
        for (text, expected) in table {
            assert_eq!(mail(text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn utf8_values_are_allowed_in_unknown_parameters() {
        let params = mail("X-NOTE=grüße").expect("valid");
        assert_eq!(params.other[0].1.as_deref(), Some("grüße"));
    }
}
