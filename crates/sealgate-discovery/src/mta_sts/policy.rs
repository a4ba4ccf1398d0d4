//! The MTA-STS texts: the `_mta-sts` TXT record (RFC 8461 §3.1), the policy file (§3.2), and
//! MX pattern matching (§4.1). Pure functions, no I/O.

use sealgate_store::StsPolicyRow;

use crate::error::{PolicyError, StsRecordError};

/// The largest `max_age` a policy may carry (RFC 8461 §3.2: about one year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// How long a policy `id` may be (RFC 8461 §3.1: 1 to 32 alphanumerics).
const MAX_ID_LEN: usize = 32;

/// How many characters of an offending value an error quotes.
const QUOTE_LIMIT: usize = 64;

/// What a policy asks senders to do (RFC 8461 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StsMode {
    /// Deliver only to a matching MX with a valid certificate, or not at all.
    Enforce,
    /// Report failures (TLS-RPT) but deliver anyway.
    Testing,
    /// The domain has withdrawn its policy.
    None,
}

impl StsMode {
    /// The keyword as written in a policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }

    /// The mode named by `keyword`, in any case (see [`StsPolicy::parse`] on case).
    pub fn from_keyword(keyword: &str) -> Option<Self> {
        [Self::Enforce, Self::Testing, Self::None]
            .into_iter()
            .find(|mode| keyword.eq_ignore_ascii_case(mode.as_str()))
    }
}

impl std::fmt::Display for StsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated MTA-STS policy and when it was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsPolicy {
    /// The `id` of the TXT record the policy was fetched for.
    pub id: String,
    /// What the policy asks for.
    pub mode: StsMode,
    /// Allowed MX patterns, lowercase without a trailing dot (`mx.example.com`, `*.example.net`).
    pub mx: Vec<String>,
    /// Seconds the policy may be cached from `fetched_at`.
    pub max_age: u64,
    /// When it was fetched (microseconds since the epoch).
    pub fetched_at: i64,
    /// `fetched_at + max_age` (microseconds since the epoch).
    pub expires_at: i64,
}

impl StsPolicy {
    /// Parses a policy file (RFC 8461 §3.2) fetched at `fetched_at` for TXT `id`.
    ///
    /// Key names and the `version` and `mode` values are read in any case. RFC 8461's ABNF
    /// spells them as case-sensitive `%s` strings (RFC 7405), but a domain that publishes
    /// `mode: Enforce` plainly asks for enforcement, and reading its policy as invalid would
    /// leave it with none: the lenient reading can only apply what the domain wrote, never
    /// less than no policy.
    ///
    /// `version`, `mode` and `max_age` are each "required once" (§3.2). A repeat with the
    /// same meaning is harmless and ignored; a repeat with another value makes the policy
    /// invalid ([`PolicyError::Conflict`]) rather than letting the first or the weaker value
    /// win: which one the domain meant cannot be known.
    pub fn parse(text: &str, id: &str, fetched_at: i64) -> Result<Self, PolicyError> {
        let fields = parse_fields(text)?;
        let (version, _) = fields
            .version
            .ok_or(PolicyError::Missing { field: "version" })?;
        if !version.eq_ignore_ascii_case("STSv1") {
            return Err(PolicyError::Version {
                found: quote(&version),
            });
        }
        let (mode, _) = fields.mode.ok_or(PolicyError::Missing { field: "mode" })?;
        let mode = StsMode::from_keyword(&mode).ok_or_else(|| PolicyError::Mode {
            found: quote(&mode),
        })?;
        let (max_age, _) = fields
            .max_age
            .ok_or(PolicyError::Missing { field: "max_age" })?;
        let max_age = parse_max_age(&max_age)?;
        // RFC 8461 §3.2: "mx" appears one or more times unless the mode is "none".
        if fields.mx.is_empty() && mode != StsMode::None {
            return Err(PolicyError::Missing { field: "mx" });
        }
        Ok(Self {
            id: id.to_owned(),
            mode,
            mx: fields.mx,
            max_age,
            fetched_at,
            expires_at: expiry(fetched_at, max_age),
        })
    }

    /// True when `host` (an MX host name) matches one of the policy's `mx` patterns
    /// (RFC 8461 §4.1): exactly, or a `*.` wildcard standing for exactly one leftmost label.
    /// Case-insensitive; a trailing dot on `host` is ignored.
    pub fn mx_matches(&self, host: &str) -> bool {
        self.mx
            .iter()
            .any(|pattern| mx_pattern_matches(pattern, host))
    }

    /// True once `now_micros` has reached `expires_at` (RFC 8461 §5.1: a policy is used only
    /// until `max_age` has passed since it was fetched).
    pub fn is_expired(&self, now_micros: i64) -> bool {
        now_micros >= self.expires_at
    }

    /// The row that caches this policy for `domain`, with the text it was parsed from.
    pub fn to_row(&self, domain: &str, body: &str) -> StsPolicyRow {
        StsPolicyRow {
            domain: domain.to_owned(),
            policy_id: self.id.clone(),
            mode: self.mode.as_str().to_owned(),
            mx: self.mx.clone(),
            max_age: i64::try_from(self.max_age).unwrap_or(i64::MAX),
            fetched_at: self.fetched_at,
            expires_at: self.expires_at,
            body: body.to_owned(),
        }
    }

    /// The policy a cached row holds; `None` when the row's mode is not one this version knows.
    pub fn from_row(row: &StsPolicyRow) -> Option<Self> {
        Some(Self {
            id: row.policy_id.clone(),
            mode: StsMode::from_keyword(&row.mode)?,
            mx: row.mx.clone(),
            max_age: u64::try_from(row.max_age).ok()?,
            fetched_at: row.fetched_at,
            expires_at: row.expires_at,
        })
    }
}

/// `fetched_at + max_age` seconds, in microseconds (saturating).
fn expiry(fetched_at: i64, max_age: u64) -> i64 {
    let micros = i64::try_from(max_age)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    fetched_at.saturating_add(micros)
}

/// The known fields of a policy file: each single field's value and the line it was first
/// found on, and every `mx` pattern.
#[derive(Default)]
struct Fields {
    version: Option<(String, usize)>,
    mode: Option<(String, usize)>,
    max_age: Option<(String, usize)>,
    mx: Vec<String>,
}

impl Fields {
    /// Records `value` for the single field `field` found on `line`; a repeat must mean the
    /// same (see [`StsPolicy::parse`]).
    fn single(&mut self, field: &'static str, value: &str, line: usize) -> Result<(), PolicyError> {
        let slot = match field {
            "version" => &mut self.version,
            "mode" => &mut self.mode,
            _ => &mut self.max_age,
        };
        match slot {
            None => *slot = Some((value.to_owned(), line)),
            Some((first, _)) if same_meaning(first, value) => {}
            Some((first, first_line)) => {
                return Err(PolicyError::Conflict {
                    field,
                    first: quote(first),
                    first_line: *first_line,
                    second: quote(value),
                    line,
                });
            }
        }
        Ok(())
    }
}

/// Whether two values of one field mean the same: equal in any case, or the same number
/// (`max_age: 86400` and `max_age: 086400`).
fn same_meaning(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || number(a).is_some_and(|n| Some(n) == number(b))
}

/// The digits of `value` without leading zeros, if it is all digits.
fn number(value: &str) -> Option<&str> {
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.trim_start_matches('0'))
}

/// Splits a policy into `key: value` lines. RFC 8461 §3.2: lines end in CRLF or LF and
/// unknown fields are ignored; key names are read in any case, and a single field repeated
/// with another value is an error (see [`StsPolicy::parse`]).
fn parse_fields(text: &str) -> Result<Fields, PolicyError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut fields = Fields::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        if content.trim_matches(is_wsp).is_empty() {
            continue;
        }
        let (key, value) = content
            .split_once(':')
            .ok_or(PolicyError::Malformed { line })?;
        if !is_field_name(key) {
            return Err(PolicyError::Malformed { line });
        }
        let value = value.trim_matches(is_wsp);
        if value.chars().any(char::is_control) {
            return Err(PolicyError::Malformed { line });
        }
        match key.to_ascii_lowercase().as_str() {
            "version" => fields.single("version", value, line)?,
            "mode" => fields.single("mode", value, line)?,
            "max_age" => fields.single("max_age", value, line)?,
            "mx" => fields.mx.push(parse_mx_pattern(value, line)?),
            _ => {}
        }
    }
    Ok(fields)
}

/// RFC 8461 §3.2 `sts-policy-max-age-value = 1*10(DIGIT)`, at most [`MAX_AGE_LIMIT`].
fn parse_max_age(value: &str) -> Result<u64, PolicyError> {
    let bad = || PolicyError::MaxAge {
        found: quote(value),
    };
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let max_age: u64 = value.parse().map_err(|_| bad())?;
    // RFC 8461 §3.2: max_age MUST be less than or equal to 31557600.
    if max_age > MAX_AGE_LIMIT {
        return Err(PolicyError::MaxAgeTooLarge { max_age });
    }
    Ok(max_age)
}

/// RFC 8461 §3.2 `sts-policy-mx-value = ["*."] Domain`, lowercased; a trailing dot is dropped.
fn parse_mx_pattern(value: &str, line: usize) -> Result<String, PolicyError> {
    let (wildcard, name) = match value.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let name = normalize_domain(name).ok_or_else(|| PolicyError::Mx {
        line,
        found: quote(value),
    })?;
    Ok(if wildcard { format!("*.{name}") } else { name })
}

/// `name` lowercased without a trailing dot, if it is a syntactically valid host name: labels
/// of letters, digits and hyphens (not at either end), 1–63 octets each, 253 in all.
pub fn normalize_domain(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.split('.')
        .all(valid_label)
        .then(|| name.to_ascii_lowercase())
}

/// RFC 8461 §4.1: a pattern matches a host exactly, or as `*.` plus exactly one leftmost label.
pub fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if host.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| {
            !label.is_empty() && label != "*" && rest.eq_ignore_ascii_case(suffix)
        }),
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// `sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")` (§3.2; the
/// TXT record's `sts-ext-name` of §3.1 is the same).
fn is_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// At most [`QUOTE_LIMIT`] characters of `value`, for an error message.
fn quote(value: &str) -> String {
    value.chars().take(QUOTE_LIMIT).collect()
}

/// The policy `id` of the `_mta-sts` TXT answer (RFC 8461 §3.1), given each record's strings
/// already concatenated.
///
/// RFC 8461 §3.1: records not beginning with `v=STSv1` are discarded; unless exactly one
/// remains and it is syntactically valid, the domain has no available policy (the error says
/// which case it was).
pub fn parse_sts_record(records: &[String]) -> Result<String, StsRecordError> {
    let sts: Vec<&String> = records.iter().filter(|r| is_sts_record(r)).collect();
    match sts.as_slice() {
        [] => Err(StsRecordError::Missing),
        [record] => parse_record_fields(record),
        several => Err(StsRecordError::Several {
            count: several.len(),
        }),
    }
}

/// `v=STSv1` followed by the end, white space or `;` (so `v=STSv10` is not one).
fn is_sts_record(record: &str) -> bool {
    record
        .strip_prefix("v=STSv1")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
}

/// `sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field) [field-delim]`, where
/// `sts-id = "id=" 1*32(ALPHA / DIGIT)` must be present; a repeated `id` counts once (first).
fn parse_record_fields(record: &str) -> Result<String, StsRecordError> {
    let invalid = |reason: &str| StsRecordError::Invalid {
        reason: reason.to_owned(),
        record: quote(record),
    };
    let rest = record.strip_prefix("v=STSv1").unwrap_or_default();
    let mut parts = rest.split(';');
    if !parts
        .next()
        .unwrap_or_default()
        .trim_matches(is_wsp)
        .is_empty()
    {
        return Err(invalid("text after the version"));
    }
    let parts: Vec<&str> = parts.collect();
    let mut id = None;
    for (i, part) in parts.iter().enumerate() {
        let field = part.trim_matches(is_wsp);
        if field.is_empty() {
            // Only a final delimiter may be followed by nothing.
            if i + 1 == parts.len() && i > 0 {
                continue;
            }
            return Err(invalid("empty field"));
        }
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| invalid("field without '='"))?;
        if !is_field_name(name) || !is_ext_value(value) {
            return Err(invalid("malformed field"));
        }
        if name == "id" && id.is_none() {
            if value.len() > MAX_ID_LEN || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid("id is not 1 to 32 letters and digits"));
            }
            id = Some(value.to_owned());
        }
    }
    id.ok_or_else(|| invalid("no id"))
}

/// `sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)`: visible ASCII except `;` and `=`.
fn is_ext_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=')
}
