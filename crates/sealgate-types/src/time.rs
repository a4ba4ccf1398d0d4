//! Timestamps as stored: microseconds since the Unix epoch, UTC (an `i64` on both backends).

use chrono::{DateTime, TimeZone, Utc};

/// Now, in stored form.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// A stored timestamp as a UTC date-time (the epoch if out of range).
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// RFC 3339 with microseconds, the form used in audit output.
pub fn rfc3339_micros(micros: i64) -> String {
    from_micros(micros)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
