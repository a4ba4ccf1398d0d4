//! The service extensions a server lists in its EHLO reply (RFC 5321 §4.1.1.1).

use sealgate_smtp_proto::Reply;

/// What the server offered in its last EHLO reply. After HELO everything is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// SIZE (RFC 1870): `Some(0)` when offered without a fixed limit.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// REQUIRETLS (RFC 8689).
    pub requiretls: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// AUTH mechanisms (RFC 4954), uppercased.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keyword lines of an EHLO reply; the first line is the server's greeting name.
    pub(crate) fn from_ehlo(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                // RFC 1870 §4: a missing or zero value means no fixed maximum.
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "REQUIRETLS" => ext.requiretls = true,
                "DSN" => ext.dsn = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                "CHUNKING" => ext.chunking = true,
                "AUTH" => ext.auth = words.map(str::to_ascii_uppercase).collect(),
                _ => {}
            }
        }
        ext
    }

    /// The advertised fixed size limit, if any.
    pub(crate) fn size_limit(&self) -> Option<u64> {
        self.size.filter(|limit| *limit > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Extensions {
        let lines = lines.iter().map(|l| (*l).to_owned()).collect();
        Extensions::from_ehlo(&Reply::multi(250, None, lines))
    }

    #[test]
    fn keywords_are_case_insensitive_and_the_name_line_is_skipped() {
        let ext = ehlo(&[
            "PIPELINING.example",
            "pipelining",
            "Size 1000",
            "8bitmime",
            "SMTPUTF8",
            "STARTTLS",
            "REQUIRETLS",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "AUTH plain LOGIN",
        ]);
        assert!(ext.pipelining && ext.eight_bit_mime && ext.smtputf8 && ext.starttls);
        assert!(ext.requiretls && ext.dsn && ext.enhanced_status_codes && ext.chunking);
        assert_eq!(ext.size, Some(1000));
        assert_eq!(ext.size_limit(), Some(1000));
        assert_eq!(ext.auth, ["PLAIN", "LOGIN"]);
    }

    #[test]
    fn name_line_alone_offers_nothing() {
        assert_eq!(ehlo(&["STARTTLS"]), Extensions::default());
    }

    #[test]
    fn size_without_a_limit_is_no_limit() {
        assert_eq!(ehlo(&["mx", "SIZE"]).size_limit(), None);
        assert_eq!(ehlo(&["mx", "SIZE 0"]).size, Some(0));
        assert_eq!(ehlo(&["mx", "SIZE 0"]).size_limit(), None);
    }
}
