//! Relay control and envelope address rules.
//!
//! Sealgate has no local mailboxes: every recipient is relayed, so every recipient needs a
//! client that may relay (a trusted network, or AUTH). Addresses that could re-route mail
//! behind a later hop — the percent hack, bang paths, source routes, quoted local parts that
//! hide another address, address literals — are refused for everyone.

use std::net::IpAddr;

use sealgate_smtp_proto::{Path, Reply};
use sealgate_types::EmailAddress;

use crate::senders::RelayClients;

/// True when the client may relay: from a trusted network, or authenticated.
pub(crate) fn may_relay(ip: IpAddr, clients: &RelayClients, authenticated: bool) -> bool {
    authenticated || clients.lookup(ip).is_some()
}

pub(crate) fn relay_denied() -> Reply {
    Reply::new(
        554,
        Some((5, 7, 1)),
        "Relay access denied: authenticate or send from a permitted network",
    )
}

/// A cloud tenant's factor did not hold (the reply names the factor, never a secret).
pub(crate) fn tenant_denied(factor: &str) -> Reply {
    Reply::new(
        554,
        Some((5, 7, 1)),
        format!("Relay access denied: {factor}"),
    )
}

fn refuse(code: (u8, u16, u16), text: &str) -> Reply {
    Reply::new(553, Some(code), text)
}

/// Checks the routing-relevant shape of a path; `what` is "sender" or "recipient".
fn check_shape(path: &Path, smtputf8: bool, what: &str) -> Result<EmailAddress, Reply> {
    let status = if what == "sender" {
        (5, 1, 7)
    } else {
        (5, 1, 3)
    };
    if path.source_route.is_some() {
        // RFC 5321 §3.6.1 / Appendix C: source routes are obsolete; we refuse rather than follow them.
        return Err(refuse(status, "Source routes are not accepted"));
    }
    if path.has_percent_or_bang() {
        return Err(refuse(
            status,
            "Addresses with '%' or '!' routing are not accepted",
        ));
    }
    // RFC 5321 §4.1.2: a quoted local part may hold any quoted-pair, such as `"a\"b"`; it is
    // kept, re-quoted canonically, for the next hop. Only what a later hop could take for
    // routing (`@`, and `:` of a source route; `%` and `!` above) is refused.
    if path.quoted && path.local.contains(['@', ':']) {
        return Err(refuse(
            status,
            "Quoted local parts that contain routing characters are not accepted",
        ));
    }
    if path.domain.is_empty() {
        return Err(Reply::new(
            550,
            Some((5, 1, 1)),
            "This relay has no local mailboxes; use a full address",
        ));
    }
    if path.domain.starts_with('[') {
        return Err(refuse(
            (5, 1, 2),
            "Address literals are not accepted; use a domain name",
        ));
    }
    if !smtputf8 && !path.address().is_ascii() {
        // RFC 6531 §3.4: non-ASCII addresses need the SMTPUTF8 parameter on MAIL.
        return Err(refuse((5, 6, 7), "Non-ASCII address needs SMTPUTF8"));
    }
    EmailAddress::parse(&path.address()).map_err(|_| {
        Reply::new(
            501,
            Some((status.0, status.1, status.2)),
            format!("Bad {what} address syntax"),
        )
    })
}

/// The rules for a recipient (after the relay check).
pub(crate) fn check_recipient(path: &Path, smtputf8: bool) -> Result<EmailAddress, Reply> {
    check_shape(path, smtputf8, "recipient")
}

/// The rules for a non-null sender.
pub(crate) fn check_sender(path: &Path, smtputf8: bool) -> Result<EmailAddress, Reply> {
    check_shape(path, smtputf8, "sender")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealgate_smtp_proto::{Command, parse_command};

    fn rcpt(s: &str) -> Path {
        match parse_command(format!("RCPT TO:{s}").as_bytes()) {
            Ok(Command::Rcpt { to, .. }) => to,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn only_trusted_networks_or_authenticated_clients_may_relay() {
        let nets = RelayClients::any_sender(vec![
            "127.0.0.0/8".parse().expect("net"),
            "2001:db8::/32".parse().expect("net"),
        ]);
        assert!(may_relay("127.0.0.9".parse().expect("ip"), &nets, false));
        assert!(may_relay(
            "::ffff:127.0.0.1".parse().expect("ip"),
            &nets,
            false
        ));
        assert!(may_relay("2001:db8::1".parse().expect("ip"), &nets, false));
        assert!(!may_relay("192.0.2.1".parse().expect("ip"), &nets, false));
        assert!(may_relay("192.0.2.1".parse().expect("ip"), &nets, true));
    }

    #[test]
    fn quoted_local_parts_with_escaped_quotes_are_kept_in_canonical_form() {
        for (path, canonical) in [
            ("<\"a\\\"b\"@Example.ORG>", "\"a\\\"b\"@example.org"),
            ("<\"a\\\\b\"@example.org>", "\"a\\\\b\"@example.org"),
            ("<\"a\\\" b\"@example.org>", "\"a\\\" b\"@example.org"),
            ("<\"a\\xb\"@example.org>", "axb@example.org"),
        ] {
            let rcpt =
                check_recipient(&rcpt(path), false).unwrap_or_else(|r| panic!("{path}: {r}"));
            assert_eq!(rcpt.to_string(), canonical, "{path}");
            let sender = check_sender(&rcpt_path_as_sender(path), false).expect(path);
            assert_eq!(sender.to_string(), canonical, "{path}");
        }
    }

    fn rcpt_path_as_sender(s: &str) -> Path {
        match parse_command(format!("MAIL FROM:{s}").as_bytes()) {
            Ok(Command::Mail {
                from: sealgate_smtp_proto::ReversePath::Path(p),
                ..
            }) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn rerouting_addresses_are_refused_with_553() {
        for bad in [
            "<user%other@x.example>",
            "<a!b@x.example>",
            "<@a.example:b@c.example>",
            "<\"u@o\"@x.example>",
            "<u@[192.0.2.1]>",
        ] {
            let r = check_recipient(&rcpt(bad), false).expect_err(bad);
            assert_eq!(r.code, 553, "{bad}");
        }
        assert_eq!(
            check_recipient(&rcpt("<postmaster>"), false)
                .expect_err("no domain")
                .code,
            550
        );
        assert_eq!(
            check_recipient(&rcpt("<jöe@x.example>"), false)
                .expect_err("utf8")
                .code,
            553
        );
        assert!(check_recipient(&rcpt("<jöe@x.example>"), true).is_ok());
        assert!(check_recipient(&rcpt("<\"john doe\"@x.example>"), false).is_ok());
        for bad in [
            "<\"a%b\"@x.example>",
            "<\"a!b\"@x.example>",
            "<\"a:b\"@x.example>",
        ] {
            let r = check_recipient(&rcpt(bad), false).expect_err(bad);
            assert_eq!(r.code, 553, "{bad}");
        }
        assert_eq!(
            check_recipient(&rcpt("<Jane@X.Example>"), false)
                .expect("ok")
                .to_string(),
            "Jane@x.example"
        );
    }
}
