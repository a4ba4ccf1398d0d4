//! `[[relay.client]]`: networks that may relay without AUTH, bound to some senders.
//!
//! `relay.networks` relay with any sender (as before sender binding). A `[[relay.client]]`
//! names networks and the senders their clients may use in the envelope and in the header
//! `From:`/`Sender:`. When a client's address is in several networks, the most specific one
//! (longest prefix) decides; one network may not be listed twice.

use ipnet::IpNet;
use sealgate_types::{AllowedSenders, SenderRuleError};
use serde::Deserialize;

use crate::{Problem, RelayConfig};

/// `[[relay.client]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayClientConfig {
    /// A name for the log and the audit log (`sender_refused` records it as `network`), such
    /// as "ehr". Default: the first of `networks`.
    #[serde(default)]
    pub name: Option<String>,
    /// Client networks (CIDR). At least one.
    pub networks: Vec<IpNet>,
    /// The senders these clients may use, at least one: `billing@clinic.example` (that
    /// address), `@clinic.example` (any address at the domain), `@.clinic.example` (at its
    /// subdomains) or `*` (any sender). Others get `553 5.7.1`.
    pub senders: Vec<String>,
}

impl RelayClientConfig {
    /// The sender rules (checked when the configuration was loaded).
    pub fn allowed_senders(&self) -> Result<AllowedSenders, SenderRuleError> {
        AllowedSenders::parse_list(&self.senders)
    }

    /// How logs and the audit log name these clients: `name`, else the first network.
    pub fn label(&self) -> String {
        match (&self.name, self.networks.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(net)) => net.to_string(),
            (None, None) => String::new(),
        }
    }
}

pub(crate) fn validate(relay: &RelayConfig, problems: &mut Vec<Problem>) {
    let mut seen: Vec<(IpNet, String)> = relay
        .networks
        .iter()
        .enumerate()
        .map(|(i, n)| (n.trunc(), format!("relay.networks[{i}]")))
        .collect();
    for (i, client) in relay.clients.iter().enumerate() {
        let key = |field: &str| format!("relay.client[{i}].{field}");
        if client.name.as_deref().is_some_and(|n| {
            n.is_empty() || n.contains(|c: char| c.is_control() || c.is_whitespace())
        }) {
            problems.push(Problem::new(key("name"), "must be a word without spaces"));
        }
        if client.networks.is_empty() {
            problems.push(Problem::new(
                key("networks"),
                "at least one network is needed",
            ));
        }
        for (j, net) in client.networks.iter().enumerate() {
            let here = format!("relay.client[{i}].networks[{j}]");
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == net.trunc()) {
                let msg =
                    format!("{net} is already listed as {first}: one network, one sender rule");
                problems.push(Problem::new(here.clone(), &msg));
            }
            seen.push((net.trunc(), here));
        }
        if client.senders.is_empty() {
            problems.push(Problem::new(
                key("senders"),
                "at least one sender is needed (\"*\" for any sender)",
            ));
        }
        for (j, rule) in client.senders.iter().enumerate() {
            if let Err(e) = rule.parse::<sealgate_types::SenderRule>() {
                problems.push(Problem::new(
                    format!("relay.client[{i}].senders[{j}]"),
                    &e.to_string(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn problems(toml: &str) -> Vec<String> {
        match Config::from_toml(toml) {
            Ok(_) => Vec::new(),
            Err(crate::ConfigError::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn relay_clients_bind_networks_to_senders() {
        let cfg = Config::from_toml(
            "[relay]\nnetworks = [\"127.0.0.0/8\"]\n\n[[relay.client]]\nname = \"ehr\"\n\
             networks = [\"10.1.0.0/16\", \"2001:db8::/48\"]\nsenders = [\"@clinic.example\", \"ceo@hospital.example\"]\n",
        )
        .expect("valid");
        let client = &cfg.relay.clients[0];
        assert_eq!(client.label(), "ehr");
        assert_eq!(
            client.allowed_senders().expect("rules").texts(),
            ["@clinic.example", "ceo@hospital.example"]
        );
        assert!(
            Config::default().relay.clients.is_empty(),
            "none by default"
        );
    }

    #[test]
    fn bad_relay_clients_are_named_entry_by_entry() {
        let got = problems(
            "[relay]\nnetworks = [\"10.0.0.0/8\"]\n\n\
             [[relay.client]]\nnetworks = [\"10.1.0.0/16\"]\nsenders = [\"@clinic.example\", \"not a sender\"]\n\n\
             [[relay.client]]\nname = \"two words\"\nnetworks = [\"10.0.0.1/8\"]\nsenders = []\n\n\
             [[relay.client]]\nnetworks = []\nsenders = [\"*\"]\n",
        );
        assert_eq!(
            got,
            [
                "relay.client[0].senders[1]: \"not a sender\" is not a sender rule: write an address (ceo@clinic.example), @domain, @.domain (subdomains) or * (any sender)",
                "relay.client[1].name: must be a word without spaces",
                "relay.client[1].networks[0]: 10.0.0.1/8 is already listed as relay.networks[0]: one network, one sender rule",
                "relay.client[1].senders: at least one sender is needed (\"*\" for any sender)",
                "relay.client[2].networks: at least one network is needed",
            ]
        );
    }

    #[test]
    fn an_unknown_key_in_a_relay_client_is_refused() {
        let got = problems(
            "[[relay.client]]\nnetworks = [\"10.1.0.0/16\"]\nsenders = [\"*\"]\nsender = \"x\"\n",
        );
        assert!(
            got.len() == 1 && got[0].contains("unknown field `sender`"),
            "{got:?}"
        );
    }
}
