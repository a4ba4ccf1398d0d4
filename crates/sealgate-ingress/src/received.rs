//! The Received trace header (RFC 5321 §4.4), prepended to every accepted message.

use std::net::IpAddr;

use crate::senders::Fields;

/// What the header records about the session.
pub(crate) struct Trace<'a> {
    pub helo: &'a str,
    pub ip: IpAddr,
    pub hostname: &'a str,
    pub esmtp: bool,
    pub tls: Option<&'a str>,
    pub authenticated: bool,
    pub queue_id: &'a str,
    pub single_recipient: Option<&'a str>,
    pub date: chrono::DateTime<chrono::Utc>,
}

/// Strips anything that could break the header out of a client-supplied token.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !matches!(c, '(' | ')' | ';' | '\\'))
        .take(255)
        .collect()
}

impl Trace<'_> {
    /// "with" protocol types from RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA.
    fn protocol(&self) -> &'static str {
        match (self.esmtp, self.tls.is_some(), self.authenticated) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        }
    }

    /// The header field, folded, ending in CRLF.
    pub(crate) fn header(&self) -> String {
        let literal = match self.ip {
            IpAddr::V4(v4) => format!("[{v4}]"),
            IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
        };
        let mut h = format!(
            "Received: from {} ({literal})\r\n\tby {} (Sealgate) with {}",
            clean(self.helo),
            self.hostname,
            self.protocol()
        );
        if let Some(tls) = self.tls {
            let mut parts = tls.splitn(2, ' ');
            let version = parts.next().unwrap_or_default();
            let cipher = parts.next().unwrap_or_default();
            h.push_str(&format!("\r\n\t(version={version} cipher={cipher})"));
        }
        h.push_str(&format!("\r\n\tid {}", self.queue_id));
        if let Some(rcpt) = self.single_recipient {
            h.push_str(&format!("\r\n\tfor <{}>", clean(rcpt)));
        }
        h.push_str(&format!(
            ";\r\n\t{}\r\n",
            self.date.format("%a, %d %b %Y %H:%M:%S %z")
        ));
        h
    }
}

/// The trace a message arrives with: its `Received` fields, and how many of them this relay
/// wrote (`by <hostname> (Sealgate)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hops {
    pub total: usize,
    pub ours: usize,
}

/// Counts the `Received` fields of the header section of `data`, and those of them that name
/// `hostname` as the Sealgate that received the message.
pub(crate) fn hops(fields: &Fields, hostname: &str) -> Hops {
    let ours_marker = format!("by {} (sealgate)", hostname.to_ascii_lowercase());
    let mut hops = Hops { total: 0, ours: 0 };
    for (name, value) in fields {
        if !name.eq_ignore_ascii_case("received") {
            continue;
        }
        hops.total += 1;
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if value.to_ascii_lowercase().contains(&ours_marker) {
            hops.ours += 1;
        }
    }
    hops
}

/// The header section of `data` (up to its blank line), as text.
fn header_section(data: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end])
}

/// The Message-ID header of `data`, if its header section has one (unfolded, trimmed).
pub(crate) fn header_message_id(data: &[u8]) -> Option<String> {
    let head = header_section(data);
    let mut found: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = found.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("message-id")
        {
            found = Some(value.trim().to_owned());
        }
    }
    found.map(|v| v.chars().filter(|c| !c.is_control()).take(998).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::senders::header_fields;

    #[test]
    fn received_header_records_tls_and_auth_and_cannot_be_broken_by_helo() {
        let t = Trace {
            helo: "evil\r\nX-Injected: 1 (x);",
            ip: "192.0.2.7".parse().expect("ip"),
            hostname: "relay.example",
            esmtp: true,
            tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384"),
            authenticated: true,
            queue_id: "0190-abc",
            single_recipient: Some("a@b.example"),
            date: chrono::DateTime::from_timestamp(0, 0).expect("date"),
        };
        let h = t.header();
        assert!(h.starts_with("Received: from evilX-Injected: 1 x ([192.0.2.7])\r\n\tby relay.example (Sealgate) with ESMTPSA"), "{h}");
        assert!(
            h.contains("(version=TLSv1.3 cipher=TLS13_AES_256_GCM_SHA384)"),
            "{h}"
        );
        assert!(
            h.contains(
                "id 0190-abc\r\n\tfor <a@b.example>;\r\n\tThu, 01 Jan 1970 00:00:00 +0000\r\n"
            ),
            "{h}"
        );
        assert_eq!(h.matches("\r\n").count(), h.matches("\r\n\t").count() + 1);
    }

    #[test]
    fn hops_count_every_received_field_and_ours_by_host_name_folded_or_not() {
        let ours = Trace {
            helo: "m365.example",
            ip: "192.0.2.7".parse().expect("ip"),
            hostname: "Relay.Example",
            esmtp: true,
            tls: None,
            authenticated: false,
            queue_id: "0190-abc",
            single_recipient: None,
            date: chrono::DateTime::from_timestamp(0, 0).expect("date"),
        }
        .header();
        let data = format!(
            "{ours}Received: from a by mx.other.example (Sealgate) with ESMTP; x\r\n\
             received:from b\r\n by relay.example   (Sealgate)\r\n with SMTP; y\r\n\
             X-Received: by relay.example (Sealgate)\r\nSubject: s\r\n\r\n\
             Received: by relay.example (Sealgate) in the body\r\n"
        );
        assert_eq!(
            hops(&header_fields(data.as_bytes()), "relay.example"),
            Hops { total: 3, ours: 2 }
        );
        assert_eq!(
            hops(
                &header_fields(b"Subject: s\r\n\r\nbody\r\n"),
                "relay.example"
            ),
            Hops { total: 0, ours: 0 }
        );
    }

    #[test]
    fn message_id_is_found_case_insensitively_and_unfolded_in_the_header_only() {
        let m = b"From: a\r\nmessage-ID:\r\n <x@y>\r\nSubject: s\r\n\r\nMessage-ID: <body@z>\r\n";
        assert_eq!(header_message_id(m).as_deref(), Some("<x@y>"));
        assert_eq!(
            header_message_id(b"Subject: s\r\n\r\nMessage-ID: <b@z>\r\n"),
            None
        );
    }
}
