//! The notice a portal recipient gets instead of the message: plain text naming the sending
//! organisation, the link and its expiry — and nothing of the message itself (no subject, no
//! sender's words, no attachment names), since it travels without protection.

use chrono::{DateTime, Utc};
use sealgate_types::MessageId;
use sealgate_types::time::from_micros;

use super::PortalSettings;

/// What one notice says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoticeFacts<'a> {
    /// The notice's own queue id (its Message-ID is made from it).
    pub id: MessageId,
    /// The recipient it goes to.
    pub recipient: &'a str,
    /// The link to the portal: `{public_url}/p/{token}`.
    pub link: &'a str,
    /// When the link expires (micros).
    pub expires_at: i64,
    /// The sender set a passphrase the recipient may use instead of a code.
    pub passphrase: bool,
    /// When the notice is written.
    pub now: DateTime<Utc>,
}

/// A built notice: the complete message and its Message-ID.
#[derive(Debug, Clone)]
pub(crate) struct BuiltNotice {
    /// The RFC 5322 message, CRLF line endings.
    pub content: Vec<u8>,
    /// Its `Message-ID:` value, angle brackets included.
    pub message_id: String,
}

/// `text` as an RFC 5322 quoted-string (§3.2.4): quotes and backslashes escaped, control
/// characters dropped (the configuration only admits printable ASCII anyway).
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The plain-text body, CRLF line endings.
fn body(org: &str, facts: &NoticeFacts<'_>) -> String {
    let expires = from_micros(facts.expires_at).format("%-d %B %Y, %H:%M UTC");
    let how = if facts.passphrase {
        "To open it, confirm your email address with a one-time code that we send to you\r\n\
         in a separate email, or enter the passphrase agreed with the sender."
    } else {
        "To open it, confirm your email address with a one-time code that we send to you\r\n\
         in a separate email."
    };
    format!(
        "{org} has sent you a secure message.\r\n\r\n\
         Read it in your browser:\r\n{link}\r\n\r\n\
         {how}\r\n\r\n\
         The link works until {expires}.\r\n\r\n\
         This email does not contain the message. If you did not expect it, you can\r\n\
         ignore it.\r\n",
        link = facts.link,
    )
}

/// Builds the notice for one recipient (RFC 5322, plain text, `Auto-Submitted:
/// auto-generated` per RFC 3834 so it draws no automatic replies).
pub(crate) fn build(settings: &PortalSettings, facts: &NoticeFacts<'_>) -> BuiltNotice {
    let message_id = format!("<{}.portal@{}>", facts.id, settings.hostname);
    let org: String = settings
        .organisation
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let head = format!(
        "From: {name} <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: {date}\r\nMessage-ID: {message_id}\r\nAuto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n",
        name = quoted(&org),
        from = settings.notice_from,
        to = facts.recipient,
        subject = settings.notice_subject,
        date = facts.now.format("%a, %d %b %Y %H:%M:%S +0000"),
    );
    let mut content = head.into_bytes();
    content.extend_from_slice(body(&org, facts).as_bytes());
    BuiltNotice {
        content,
        message_id,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;

    fn settings(org: &str) -> PortalSettings {
        let dir = tempfile::tempdir().unwrap();
        let (master, _) = sealgate_crypto::KeyRing::load_or_create(&dir.path().join("k")).unwrap();
        PortalSettings {
            master: Arc::new(master),
            public_url: "https://portal.clinic.test".into(),
            grant_days: 30,
            organisation: org.into(),
            notice_from: "portal@relay.clinic.test".into(),
            notice_subject: "A secure message is waiting for you".into(),
            hostname: "relay.clinic.test".into(),
        }
    }

    fn facts(passphrase: bool) -> NoticeFacts<'static> {
        NoticeFacts {
            id: "0195f3a2-7c1e-7000-8000-000000000001".parse().unwrap(),
            recipient: "jane@example.test",
            link: "https://portal.clinic.test/p/TOKEN",
            expires_at: 1_798_113_600_000_000,
            passphrase,
            now: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_notice_names_organisation_link_and_expiry_and_nothing_else() {
        let built = build(&settings("St. Mary's Clinic"), &facts(false));
        let text = String::from_utf8(built.content).unwrap();
        assert_eq!(
            text,
            "From: \"St. Mary's Clinic\" <portal@relay.clinic.test>\r\n\
             To: <jane@example.test>\r\n\
             Subject: A secure message is waiting for you\r\n\
             Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
             Message-ID: <0195f3a2-7c1e-7000-8000-000000000001.portal@relay.clinic.test>\r\n\
             Auto-Submitted: auto-generated\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n\
             St. Mary's Clinic has sent you a secure message.\r\n\r\n\
             Read it in your browser:\r\n\
             https://portal.clinic.test/p/TOKEN\r\n\r\n\
             To open it, confirm your email address with a one-time code that we send to you\r\n\
             in a separate email.\r\n\r\n\
             The link works until 24 December 2026, 12:00 UTC.\r\n\r\n\
             This email does not contain the message. If you did not expect it, you can\r\n\
             ignore it.\r\n"
        );
        assert_eq!(
            built.message_id,
            "<0195f3a2-7c1e-7000-8000-000000000001.portal@relay.clinic.test>"
        );
    }

    #[test]
    fn a_passphrase_is_mentioned_never_shown() {
        let text = String::from_utf8(build(&settings("Clinic"), &facts(true)).content).unwrap();
        assert!(text.contains("or enter the passphrase agreed with the sender"));
    }

    #[test]
    fn quotes_in_the_organisation_cannot_break_the_from_field() {
        let built = build(&settings("The \"Best\" \\ Clinic"), &facts(false));
        let text = String::from_utf8(built.content).unwrap();
        assert!(
            text.starts_with(
                "From: \"The \\\"Best\\\" \\\\ Clinic\" <portal@relay.clinic.test>\r\n"
            ),
            "{text}"
        );
        assert!(text.lines().all(|l| l.len() <= 998));
    }
}
