//! How `sealgate audit tail` prints rows: one readable line, or one JSON object per line.

use sealgate_types::AuditEntry;
use sealgate_types::time::rfc3339_micros;
use serde_json::Value;

/// One readable line:
/// `2026-11-24T12:00:00.123456Z #42 received msg=<id> rcpt=<r> key=value …`.
///
/// Data fields follow in stored (sorted) order. Strings are printed bare unless they are empty
/// or contain whitespace, quotes, `=` or control characters; then they are JSON-quoted, so a
/// hostile HELO name cannot forge a line. Lists are comma-separated; nested objects are JSON.
pub fn format_line(e: &AuditEntry) -> String {
    let mut line = format!("{} #{} {}", rfc3339_micros(e.at), e.seq, text(&e.kind));
    if let Some(m) = &e.message_id {
        push_pair(&mut line, "msg", &text(m));
    }
    if let Some(r) = &e.recipient {
        push_pair(&mut line, "rcpt", &text(r));
    }
    match serde_json::from_str::<Value>(&e.data) {
        Ok(Value::Object(map)) => {
            for (k, v) in &map {
                push_pair(&mut line, &text(k), &value(v));
            }
        }
        // Not an object (never written by Sealgate): show it as stored.
        _ => push_pair(&mut line, "data", &text(&e.data)),
    }
    line
}

/// One JSON object (no newline) with `seq`, `at` (RFC 3339), `kind`, `message_id`, `recipient`,
/// `data` (as an object), `prev_hash` and `hash`, in that order.
pub fn format_json(e: &AuditEntry) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        seq: i64,
        at: String,
        kind: &'a str,
        message_id: Option<&'a str>,
        recipient: Option<&'a str>,
        data: Value,
        prev_hash: &'a str,
        hash: &'a str,
    }
    let line = Line {
        seq: e.seq,
        at: rfc3339_micros(e.at),
        kind: &e.kind,
        message_id: e.message_id.as_deref(),
        recipient: e.recipient.as_deref(),
        data: serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone())),
        prev_hash: &e.prev_hash,
        hash: &e.hash,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

fn push_pair(line: &mut String, key: &str, value: &str) {
    line.push(' ');
    line.push_str(key);
    line.push('=');
    line.push_str(value);
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'))
}

/// A string, bare when that is unambiguous, JSON-quoted otherwise.
fn text(s: &str) -> String {
    if needs_quotes(s) {
        Value::from(s).to_string()
    } else {
        s.to_owned()
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => text(s),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) if s.contains(',') => Value::from(s.as_str()).to_string(),
                other => value(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(data: &str) -> AuditEntry {
        AuditEntry {
            seq: 42,
            at: 1_795_521_600_123_456, // 2026-11-24T12:00:00.123456Z
            kind: "received".into(),
            message_id: Some("0195f3a2-7c1e-7000-8000-000000000001".into()),
            recipient: Some("bob@example.net".into()),
            data: data.into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        }
    }

    #[test]
    fn line_flattens_data_and_quotes_only_where_needed() {
        let e = entry(
            r#"{"helo":"mx.example.org","recipients":["a@x.example","b@x.example"],"sender":"","size":1234,"tls":"TLSv1.3 TLS13_AES_256_GCM_SHA384"}"#,
        );
        assert_eq!(
            format_line(&e),
            "2026-11-24T12:00:00.123456Z #42 received \
             msg=0195f3a2-7c1e-7000-8000-000000000001 rcpt=bob@example.net \
             helo=mx.example.org recipients=a@x.example,b@x.example sender=\"\" size=1234 \
             tls=\"TLSv1.3 TLS13_AES_256_GCM_SHA384\""
        );
    }

    #[test]
    fn line_cannot_be_split_by_hostile_values() {
        let mut e =
            entry(r#"{"helo":"evil\n2026-01-01T00:00:00Z #1 forged","n":null,"o":{"k":1}}"#);
        e.message_id = None;
        e.recipient = None;
        let line = format_line(&e);
        assert!(!line.contains('\n'));
        assert!(
            line.ends_with(r#"helo="evil\n2026-01-01T00:00:00Z #1 forged" n=null o={"k":1}"#),
            "{line}"
        );
    }

    #[test]
    fn json_line_keeps_column_order_and_data_as_object() {
        let e = entry(r#"{"size":1234}"#);
        assert_eq!(
            format_json(&e),
            format!(
                r#"{{"seq":42,"at":"2026-11-24T12:00:00.123456Z","kind":"received","message_id":"0195f3a2-7c1e-7000-8000-000000000001","recipient":"bob@example.net","data":{{"size":1234}},"prev_hash":"{}","hash":"{}"}}"#,
                "a".repeat(64),
                "b".repeat(64)
            )
        );
    }
}
