//! Sender binding at ingress: whose rules apply to a client, and what they say about the
//! envelope sender and the header `From:`/`Sender:` addresses.
//!
//! An authenticated client is bound by its user's rules (authentication is the stronger
//! identity, so they apply even from a relay network). Otherwise the most specific relay
//! network containing the client's address decides: `relay.networks` permit any sender, a
//! `[[relay.client]]` its `senders`. A client on no network that has not authenticated is
//! refused at RCPT anyway, so no rule is needed for it.

use std::net::IpAddr;

use ipnet::IpNet;
use sealgate_config::RelayConfig;
use sealgate_smtp_proto::Reply;
use sealgate_types::{AllowedSenders, SenderRuleError};

use crate::mailbox_list::{Mailbox, mailboxes};

/// One network that may relay without AUTH, with the senders its clients may use.
#[derive(Debug, Clone)]
pub(crate) struct RelayNetwork {
    net: IpNet,
    /// `[[relay.client]]`'s name (or first network); `None` for `relay.networks`.
    label: Option<String>,
    senders: AllowedSenders,
}

/// Every network that may relay without AUTH.
#[derive(Debug, Clone, Default)]
pub struct RelayClients {
    networks: Vec<RelayNetwork>,
}

impl RelayClients {
    /// `relay.networks` (any sender) and each `[[relay.client]]` (its senders).
    pub fn from_config(cfg: &RelayConfig) -> Result<Self, SenderRuleError> {
        let mut networks = Self::any_sender(cfg.networks.clone()).networks;
        for client in &cfg.clients {
            let senders = client.allowed_senders()?;
            let label = client.label();
            networks.extend(client.networks.iter().map(|net| RelayNetwork {
                net: *net,
                label: Some(label.clone()),
                senders: senders.clone(),
            }));
        }
        Ok(Self { networks })
    }

    /// Networks whose clients may relay with any sender.
    pub fn any_sender(networks: Vec<IpNet>) -> Self {
        let networks = networks
            .into_iter()
            .map(|net| RelayNetwork {
                net,
                label: None,
                senders: AllowedSenders::any(),
            })
            .collect();
        Self { networks }
    }

    /// The most specific network containing `ip` (an IPv4-mapped IPv6 address counts as
    /// IPv4).
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<&RelayNetwork> {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.networks
            .iter()
            .filter(|n| n.net.contains(&ip))
            .max_by_key(|n| n.net.prefix_len())
    }
}

/// Whose rules bind a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// An authenticated user.
    User(String),
    /// A relay network: its `[[relay.client]]` label, or the network for `relay.networks`.
    Network(String),
    /// A cloud tenant (`[[relay.tenant]]`), by name.
    Tenant(String),
}

/// The rules that bind a client, and whose they are.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) who: Principal,
    pub(crate) senders: AllowedSenders,
}

impl RelayNetwork {
    pub(crate) fn binding(&self) -> Binding {
        let label = self.label.clone().unwrap_or_else(|| self.net.to_string());
        Binding {
            who: Principal::Network(label),
            senders: self.senders.clone(),
        }
    }
}

/// Header fields whose addresses name the author or the sender of a message.
/// RFC 5322 §3.6.2: `From:` is the author (what a reader sees), `Sender:` the agent
/// responsible for transmission. Both must be permitted: an allowed `Sender:` does not make
/// another author acceptable. `Resent-*` fields are not checked; they do not replace `From:`.
pub(crate) const CHECKED_FIELDS: [(&str, &str); 2] =
    [("from", "header-from"), ("sender", "header-sender")];

/// What a header check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderRefusal {
    /// `header-from` or `header-sender`.
    pub(crate) field: &'static str,
    /// The refused address, or the field's text (cut short) when it could not be read.
    pub(crate) sender: String,
    /// The field could not be read as an address list.
    pub(crate) unreadable: bool,
}

/// Header fields as names and unfolded values ([`header_fields`]).
pub(crate) type Fields = [(String, String)];

/// Checks every address of every `From:` and `Sender:` field of a header section against
/// `senders`. A message without those fields passes: its envelope sender was checked at MAIL.
pub(crate) fn check_header(fields: &Fields, senders: &AllowedSenders) -> Result<(), HeaderRefusal> {
    if senders.is_unrestricted() {
        return Ok(());
    }
    for (name, value) in fields {
        let Some(&(_, field)) = CHECKED_FIELDS
            .iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n))
        else {
            continue;
        };
        let list = mailboxes(value).map_err(|_| HeaderRefusal {
            field,
            sender: cut(value),
            unreadable: true,
        })?;
        if list.is_empty() && name.eq_ignore_ascii_case("from") {
            // RFC 5322 §3.6.2: From holds at least one mailbox (a group alone names no one
            // a reader could mistake for the author, but it is not a From either).
            return Err(HeaderRefusal {
                field,
                sender: cut(value),
                unreadable: true,
            });
        }
        if let Some(m) = list.iter().find(|m| !senders.permits(&m.local, &m.domain)) {
            return Err(HeaderRefusal {
                field,
                sender: display(m),
                unreadable: false,
            });
        }
    }
    Ok(())
}

fn display(m: &Mailbox) -> String {
    cut(&format!("{}@{}", m.local, m.domain))
}

/// Client text in a log line or audit record: controls dropped, 256 characters at most.
pub(crate) fn cut(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The header fields of `data` (up to the first empty line), unfolded: `(name, value)`. The
/// name is trimmed (RFC 5322 §4.5 obs-optional allows space before the colon); a line with no
/// colon is skipped. Unfolding first means a name split across a fold is still found: the
/// check sees every field any reader could take for `From:`.
pub(crate) fn header_fields(data: &[u8]) -> Vec<(String, String)> {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(data.len());
    let head = String::from_utf8_lossy(&data[..end]);
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            // RFC 5322 §2.2.3: unfolding removes the CRLF before the whitespace.
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ if line.is_empty() => {}
            _ => lines.push(line.to_owned()),
        }
    }
    lines
        .into_iter()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            Some((name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

/// The reply for a refused sender: fixed and generic (the detail goes to the log and the
/// audit record). RFC 3463 §3.8: X.7.1 "delivery not authorized".
pub(crate) fn sender_refused() -> Reply {
    Reply::new(
        553,
        Some((5, 7, 1)),
        "Sender address not allowed for this client",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn senders(rules: &[&str]) -> AllowedSenders {
        AllowedSenders::parse_list(rules).expect("rules")
    }

    #[test]
    fn the_most_specific_network_decides() {
        let cfg = sealgate_config::Config::from_toml(
            "[relay]\nnetworks = [\"10.0.0.0/8\"]\n[[relay.client]]\nname = \"ehr\"\n\
             networks = [\"10.1.0.0/16\"]\nsenders = [\"@clinic.example\"]\n",
        )
        .expect("config");
        let clients = RelayClients::from_config(&cfg.relay).expect("clients");
        let ehr = clients
            .lookup("10.1.2.3".parse().expect("ip"))
            .expect("ehr")
            .binding();
        assert_eq!(ehr.who, Principal::Network("ehr".into()));
        assert_eq!(ehr.senders, senders(&["@clinic.example"]));
        let other = clients
            .lookup("::ffff:10.2.0.1".parse().expect("ip"))
            .expect("wider")
            .binding();
        assert_eq!(other.who, Principal::Network("10.0.0.0/8".into()));
        assert!(other.senders.is_unrestricted());
        assert!(clients.lookup("192.0.2.1".parse().expect("ip")).is_none());
    }

    fn check(message: &str, rules: &[&str]) -> Result<(), HeaderRefusal> {
        check_header(&header_fields(message.as_bytes()), &senders(rules))
    }

    #[test]
    fn every_from_and_sender_address_must_be_permitted() {
        let alice = ["alice@clinic.example"];
        for ok in [
            "From: Alice <alice@clinic.example>\r\nSubject: x\r\n\r\nFrom: ceo@clinic.example\r\n",
            "from : \"A, B\" <ALICE@Clinic.Example> (the doctor)\r\n\r\n",
            "Subject: no author fields at all\r\n\r\nbody\r\n",
            "From: alice@clinic.example\r\nSender: alice@clinic.example\r\n\r\n",
        ] {
            assert_eq!(check(ok, &alice), Ok(()), "{ok:?}");
        }
        for (bad, field, sender) in [
            (
                "From: ceo@clinic.example\r\n\r\n",
                "header-from",
                "ceo@clinic.example",
            ),
            (
                "From: alice@clinic.example, ceo@clinic.example\r\n\r\n",
                "header-from",
                "ceo@clinic.example",
            ),
            (
                "From: alice@clinic.example\r\nFROM: Boss <ceo@clinic.example>\r\n\r\n",
                "header-from",
                "ceo@clinic.example",
            ),
            (
                "From: ceo@clinic.example\r\nSender: alice@clinic.example\r\n\r\n",
                "header-from",
                "ceo@clinic.example",
            ),
            (
                "From: alice@clinic.example\r\nSender: ceo@clinic.example\r\n\r\n",
                "header-sender",
                "ceo@clinic.example",
            ),
            (
                "Subject: x\r\nFrom\r\n : ceo@clinic.example\r\n\r\n",
                "header-from",
                "ceo@clinic.example",
            ),
            (
                "From: staff: alice@clinic.example, ceo@clinic.example;\r\n\r\n",
                "header-from",
                "ceo@clinic.example",
            ),
        ] {
            let got = check(bad, &alice).expect_err(bad);
            assert_eq!((got.field, got.sender.as_str()), (field, sender), "{bad:?}");
            assert!(!got.unreadable);
        }
    }

    #[test]
    fn an_unreadable_or_empty_from_is_refused_unless_unrestricted() {
        for bad in [
            "From: ceo@clinic.example <alice@clinic.example>\r\n\r\n",
            "From: <alice@clinic.example\r\n\r\n",
            "From:\r\n\r\n",
            "From: undisclosed:;\r\n\r\n",
        ] {
            let got = check(bad, &["@clinic.example"]).expect_err(bad);
            assert!(got.unreadable, "{bad:?}");
            assert_eq!(check(bad, &["*"]), Ok(()), "{bad:?}");
        }
    }
}
