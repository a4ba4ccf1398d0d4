//! Zone-file presentation format (RFC 1035 §5.1) as far as a trust-anchor file needs it:
//! records split into fields, `;` comments dropped, parentheses joining lines, a line that
//! starts with a blank repeating the previous owner, and the optional TTL and class in
//! either order (`<owner> [<TTL>] [<class>] <type> <RDATA>` or `<owner> [<class>] [<TTL>]
//! <type> <RDATA>`), as `dig`, `keymgr` and `ldns-key2ds` print records.

use hickory_resolver::proto::serialize::txt::parse_ttl;

/// One record: where it starts and its fields, TTL and class set apart.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TextRecord {
    /// The line the record starts on (1-based), for error messages.
    pub(crate) line: usize,
    /// The owner name as written.
    pub(crate) owner: String,
    /// The class, upper case; `IN` when the record leaves it out (RFC 1035 §5.1: the last
    /// stated class; a trust-anchor file only ever holds IN records).
    pub(crate) class: String,
    /// The record type, upper case.
    pub(crate) rtype: String,
    /// The RDATA fields.
    pub(crate) rdata: Vec<String>,
}

/// Splits `text` into records. An error names the line it is on.
pub(crate) fn records(text: &str) -> Result<Vec<TextRecord>, (usize, String)> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut owner: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let content = line.split(';').next().unwrap_or_default();
        if depth == 0 {
            if content.trim().is_empty() {
                continue;
            }
            start = number;
            if content.starts_with([' ', '\t']) {
                // RFC 1035 §5.1: a blank owner is the previous record's.
                let previous = owner
                    .clone()
                    .ok_or((number, "the first record has no owner name".to_owned()))?;
                fields.push(previous);
            }
        }
        for token in content
            .replace('(', " ( ")
            .replace(')', " ) ")
            .split_whitespace()
        {
            match token {
                "(" => depth += 1,
                ")" => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or((number, "')' without '('".to_owned()))?;
                }
                field => fields.push(field.to_owned()),
            }
        }
        if depth == 0 && !fields.is_empty() {
            let record = record(start, std::mem::take(&mut fields))?;
            owner = Some(record.owner.clone());
            out.push(record);
        }
    }
    if depth > 0 {
        return Err((start, "'(' is never closed".to_owned()));
    }
    Ok(out)
}

/// Sets apart the owner, the optional TTL and class, the type and the RDATA of one record.
fn record(line: usize, fields: Vec<String>) -> Result<TextRecord, (usize, String)> {
    let mut rest = fields.into_iter();
    let owner = rest.next().unwrap_or_default();
    let mut class = None;
    let mut ttl_seen = false;
    let rtype = loop {
        let field = rest
            .next()
            .ok_or((line, "the record has no type".to_owned()))?;
        let upper = field.to_ascii_uppercase();
        if class.is_none() && is_class(&upper) {
            class = Some(upper);
        } else if !ttl_seen && field.starts_with(|c: char| c.is_ascii_digit()) {
            parse_ttl(&field).map_err(|_| (line, format!("{field:?} is not a valid TTL")))?;
            ttl_seen = true;
        } else {
            break upper;
        }
    };
    Ok(TextRecord {
        line,
        owner,
        class: class.unwrap_or_else(|| "IN".to_owned()),
        rtype,
        rdata: rest.collect(),
    })
}

/// Whether an upper-case field names a class (RFC 1035 §3.2.4 mnemonics, RFC 3597 CLASSnn).
fn is_class(upper: &str) -> bool {
    matches!(upper, "IN" | "CH" | "CS" | "HS" | "NONE" | "ANY")
        || upper
            .strip_prefix("CLASS")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    fn one(text: &str) -> TextRecord {
        let mut all = records(text).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn shape(r: &TextRecord) -> (&str, &str, &str, Vec<&str>) {
        let rdata = r.rdata.iter().map(String::as_str).collect();
        (r.owner.as_str(), r.class.as_str(), r.rtype.as_str(), rdata)
    }

    #[test]
    fn ttl_and_class_are_optional_and_may_come_in_either_order() {
        let expected = ("example.", "IN", "DNSKEY", vec!["257", "3", "13", "AbC="]);
        for text in [
            "example. DNSKEY 257 3 13 AbC=",
            "example. 3600 IN DNSKEY 257 3 13 AbC=",
            "example. IN DNSKEY 257 3 13 AbC=",
            "example. 3600 DNSKEY 257 3 13 AbC=",
            "example. IN 3600 DNSKEY 257 3 13 AbC=",
            "example. 1h in dnskey 257 3 13 AbC=",
        ] {
            assert_eq!(shape(&one(text)), expected, "{text}");
        }
    }

    #[test]
    fn another_class_is_kept_for_the_caller_to_refuse() {
        assert_eq!(one("example. ch DNSKEY 257 3 13 AbC=").class, "CH");
        assert_eq!(one("example. CLASS3 DNSKEY 257 3 13 AbC=").class, "CLASS3");
    }

    #[test]
    fn parentheses_join_lines_and_comments_are_dropped() {
        let text = "; anchors\n\nexample. 172800 IN DNSKEY 257 3 8 ( ; KSK\n\
                    \tAwEAAa\n\tBBBB== ) ; key id = 20326\n";
        let r = one(text);
        assert_eq!(r.line, 3);
        assert_eq!(
            shape(&r),
            (
                "example.",
                "IN",
                "DNSKEY",
                vec!["257", "3", "8", "AwEAAa", "BBBB=="]
            )
        );
    }

    #[test]
    fn a_blank_owner_repeats_the_previous_one() {
        let all = records("example. DNSKEY 257 3 13 AA==\n  DNSKEY 256 3 13 BB==\n").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].owner, "example.");
        assert_eq!(all[1].line, 2);
        assert_eq!(
            records("  DNSKEY 257 3 13 AA==\n").unwrap_err(),
            (1, "the first record has no owner name".to_owned())
        );
    }

    #[test]
    fn unbalanced_parentheses_and_bad_ttls_name_their_line() {
        assert_eq!(
            records("\nexample. DNSKEY 257 3 13 ( AA==\n").unwrap_err(),
            (2, "'(' is never closed".to_owned())
        );
        assert_eq!(
            records("example. DNSKEY 257 3 13 AA== )\n").unwrap_err().0,
            1
        );
        assert_eq!(
            records("example. 36x0 DNSKEY 257 3 13 AA==\n").unwrap_err(),
            (1, "\"36x0\" is not a valid TTL".to_owned())
        );
        assert_eq!(
            records("example. IN\n").unwrap_err(),
            (1, "the record has no type".to_owned())
        );
    }
}
