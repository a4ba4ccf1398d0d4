//! `[[relay.client]]`: networks that may relay without AUTH, bound to some senders.
//!
//! `relay.networks` relay with any sender (as before sender binding). A `[[relay.client]]`
//! names networks and the senders their clients may use in the envelope and in the header
//! `From:`/`Sender:`. When a client's address is in several networks, the most specific one
//! (longest prefix) decides; one network may not be listed twice.

use std::path::PathBuf;

use ipnet::IpNet;
use sealgate_types::{AllowedSenders, SenderRuleError};
use serde::Deserialize;

use crate::{Problem, RelayConfig, TlsConfig};

/// `[[relay.tenant]]`: one tenant of a cloud mail service (Microsoft 365, Google Workspace)
/// that hands its outbound mail to Sealgate without SMTP AUTH. The cloud's addresses and its
/// client certificate are shared by all of its tenants, so they alone would let every tenant
/// in the world relay: a tenant relays only when *all* its factors hold, and it must have at
/// least one that tells it from every other tenant of the same cloud (`ms_tenant_id` or a
/// secret header).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayTenantConfig {
    /// A name for the log and the audit log, such as "clinic-m365".
    pub name: String,
    /// The cloud's sending networks (CIDR).
    #[serde(default)]
    pub networks: Vec<IpNet>,
    /// Files of more networks, one CIDR per line (`#` starts a comment), so the published
    /// lists can be refreshed and picked up by a reload.
    #[serde(default)]
    pub networks_files: Vec<PathBuf>,
    /// A DNS name the client's TLS certificate must be valid for (and the certificate must
    /// chain to `[tls] client_ca_file`), e.g. "mail.protection.outlook.com".
    #[serde(default)]
    pub certificate_name: Option<String>,
    /// Microsoft 365: the tenant id the message's `X-MS-Exchange-CrossTenant-Id` header must
    /// carry (Exchange Online sets it on mail leaving the tenant).
    #[serde(default)]
    pub ms_tenant_id: Option<String>,
    /// A header a transport rule of the tenant adds, such as "X-Sealgate-Tenant"; its value
    /// must be the first line of `secret_file` (compared in constant time). Removed from the
    /// message before it is queued, and from every client's messages.
    #[serde(default)]
    pub secret_header: Option<String>,
    /// The file holding the secret header's value.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Require a DKIM signature that verified on arrival, made by the domain of the header
    /// `From:` or a parent of it (which `senders` must allow): only the tenant holds its
    /// domain's signing key. Checked with the relay's DNS servers (`[dns]`).
    #[serde(default)]
    pub dkim: bool,
    /// The senders the tenant may use in the envelope and in `From:`/`Sender:`, at least one
    /// (rules as in `[[relay.client]]`: `@clinic.example`, an address, `@.domain`, `*`).
    pub senders: Vec<String>,
}

impl RelayTenantConfig {
    /// The sender rules (checked when the configuration was loaded).
    pub fn allowed_senders(&self) -> Result<AllowedSenders, SenderRuleError> {
        AllowedSenders::parse_list(&self.senders)
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_control() || c.is_whitespace())
}

fn validate_tenants(relay: &RelayConfig, tls: Option<&TlsConfig>, problems: &mut Vec<Problem>) {
    for (i, t) in relay.tenants.iter().enumerate() {
        let key = |field: &str| format!("relay.tenant[{i}].{field}");
        if !is_word(&t.name) {
            problems.push(Problem::new(key("name"), "must be a word without spaces"));
        } else if relay.tenants[..i].iter().any(|o| o.name == t.name) {
            problems.push(Problem::new(key("name"), "another tenant has this name"));
        }
        if t.networks.is_empty() && t.networks_files.is_empty() && t.certificate_name.is_none() {
            problems.push(Problem::new(
                key("networks"),
                "a tenant needs networks, networks_files or certificate_name to say where its mail comes from",
            ));
        }
        if t.ms_tenant_id.is_none() && t.secret_header.is_none() && !t.dkim {
            problems.push(Problem::new(
                key("ms_tenant_id"),
                "a tenant needs ms_tenant_id, secret_header or dkim = true: the cloud's addresses and certificate are shared by all its tenants",
            ));
        }
        if t.ms_tenant_id.as_deref().is_some_and(|id| !is_word(id)) {
            problems.push(Problem::new(
                key("ms_tenant_id"),
                "must be the tenant id, without spaces",
            ));
        }
        match (&t.secret_header, &t.secret_file) {
            (Some(h), Some(_)) => {
                let valid = !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                if !valid {
                    problems.push(Problem::new(key("secret_header"), "must be a header name"));
                }
            }
            (Some(_), None) => problems.push(Problem::new(
                key("secret_file"),
                "secret_header needs secret_file, the file holding its value",
            )),
            (None, Some(_)) => problems.push(Problem::new(
                key("secret_header"),
                "secret_file needs secret_header, the header that carries it",
            )),
            (None, None) => {}
        }
        if let Some(name) = &t.certificate_name {
            if dns_name(name).is_err() {
                problems.push(Problem::new(
                    key("certificate_name"),
                    "must be a DNS name such as mail.protection.outlook.com",
                ));
            }
            if tls.and_then(|t| t.client_ca_file.as_ref()).is_none() {
                problems.push(Problem::new(
                    key("certificate_name"),
                    "needs [tls] client_ca_file, the CAs client certificates must chain to",
                ));
            }
        }
        if t.senders.is_empty() {
            problems.push(Problem::new(
                key("senders"),
                "at least one sender is needed (\"*\" for any sender)",
            ));
        }
        for (j, rule) in t.senders.iter().enumerate() {
            if let Err(e) = rule.parse::<sealgate_types::SenderRule>() {
                problems.push(Problem::new(
                    format!("relay.tenant[{i}].senders[{j}]"),
                    &e.to_string(),
                ));
            }
        }
    }
}

/// A plain DNS name (letters, digits, hyphens, dots; no wildcard).
fn dns_name(name: &str) -> Result<(), ()> {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok { Ok(()) } else { Err(()) }
}

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

pub(crate) fn validate(relay: &RelayConfig, tls: Option<&TlsConfig>, problems: &mut Vec<Problem>) {
    validate_tenants(relay, tls, problems);
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

    #[test]
    fn tenants_need_a_place_a_factor_of_their_own_and_senders() {
        let got = problems(
            "[[relay.tenant]]\nname = \"two words\"\nsenders = []\n\n\
             [[relay.tenant]]\nname = \"m365\"\nnetworks = [\"40.92.0.0/15\"]\n\
             certificate_name = \"*.outlook.com\"\nsecret_header = \"X-Sealgate-Tenant\"\n\
             senders = [\"@clinic.example\"]\n\n\
             [[relay.tenant]]\nname = \"m365\"\nnetworks = [\"40.92.0.0/15\"]\nms_tenant_id = \"x\"\n\
             senders = [\"*\"]\n",
        );
        assert_eq!(
            got,
            [
                "relay.tenant[0].name: must be a word without spaces",
                "relay.tenant[0].networks: a tenant needs networks, networks_files or certificate_name to say where its mail comes from",
                "relay.tenant[0].ms_tenant_id: a tenant needs ms_tenant_id, secret_header or dkim = true: the cloud's addresses and certificate are shared by all its tenants",
                "relay.tenant[0].senders: at least one sender is needed (\"*\" for any sender)",
                "relay.tenant[1].secret_file: secret_header needs secret_file, the file holding its value",
                "relay.tenant[1].certificate_name: must be a DNS name such as mail.protection.outlook.com",
                "relay.tenant[1].certificate_name: needs [tls] client_ca_file, the CAs client certificates must chain to",
                "relay.tenant[2].name: another tenant has this name",
            ]
        );
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["c.pem", "k.pem", "ca.pem"] {
            std::fs::write(dir.path().join(f), "x").expect("write");
        }
        let at = |f: &str| dir.path().join(f).display().to_string();
        let cfg = Config::from_toml(&format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n\
             [[relay.tenant]]\nname = \"m365\"\nnetworks = [\"40.92.0.0/15\"]\n\
             certificate_name = \"mail.protection.outlook.com\"\nms_tenant_id = \"x\"\n\
             senders = [\"@clinic.example\"]\n",
            at("c.pem"),
            at("k.pem"),
            at("ca.pem")
        ))
        .expect("a complete tenant is valid");
        assert_eq!(cfg.relay.tenants[0].name, "m365");
        assert!(
            Config::default().relay.tenants.is_empty(),
            "none by default"
        );
    }
}
