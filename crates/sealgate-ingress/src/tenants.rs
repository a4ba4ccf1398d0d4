//! Tenant binding (`[[relay.tenant]]`): a cloud mail service's tenant relays without AUTH only
//! when all its factors hold. The connection factors (the client's address in the tenant's
//! networks, its TLS client certificate valid for the tenant's name) are known at RCPT; the
//! factors that tell one tenant of a cloud from another (Microsoft's tenant id header, a secret
//! header a transport rule adds) only once the message is in, at the end of DATA. A client
//! that passes the first is let through RCPT provisionally, and nothing is queued unless one
//! tenant's every factor holds.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use sealgate_audit::TenantMatch;
use sealgate_config::{RelayConfig, RelayTenantConfig};
use sealgate_crypto::arc::Arrival;
use sealgate_types::AllowedSenders;
use subtle::ConstantTimeEq;

use crate::senders::{Binding, Fields, Principal};
use crate::{ClientCert, IngressError};

/// Microsoft 365 stamps the sending tenant's id on mail leaving Exchange Online.
const MS_TENANT_HEADER: &str = "X-MS-Exchange-CrossTenant-Id";

/// One tenant, its files read.
#[derive(Debug, Clone)]
struct Tenant {
    name: String,
    networks: Vec<IpNet>,
    certificate_name: Option<String>,
    ms_tenant_id: Option<String>,
    secret: Option<(String, Vec<u8>)>,
    /// A DKIM signature of the author's domain must have verified on arrival.
    dkim: bool,
    senders: AllowedSenders,
}

/// Every `[[relay.tenant]]`.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    list: Vec<Tenant>,
    /// Every tenant's secret header name: removed from every client's message.
    secret_headers: Vec<String>,
}

/// The tenants a connection may be relaying for: those whose connection factors all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Candidates(Vec<usize>);

/// A factor that did not hold: which tenant, and what (the reply names only the factor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) tenant: String,
    pub(crate) factor: String,
}

/// Why a connection is no tenant's: the first tenant whose address matched and the factor it
/// lacks (`None` when the address is in no tenant's networks).
pub(crate) type ConnectionRefusal = Option<Refusal>;

/// The tenant a message was matched to.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    pub(crate) record: TenantMatch,
    pub(crate) binding: Binding,
}

fn networks_file(path: &Path) -> Result<Vec<IpNet>, IngressError> {
    let bad = |reason: String| IngressError::TenantFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        // A bare address is a /32 or /128.
        let net = line
            .parse::<IpNet>()
            .or_else(|_| line.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| bad(format!("line {}: {line:?} is not a network (CIDR)", n + 1)))?;
        out.push(net);
    }
    if out.is_empty() {
        return Err(bad("no network in the file".into()));
    }
    Ok(out)
}

fn secret_file(path: &Path) -> Result<Vec<u8>, IngressError> {
    let bad = |reason: &str| IngressError::TenantFile {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(&e.to_string()))?;
    let value = text.lines().next().unwrap_or_default().trim();
    if value.len() < 16 {
        return Err(bad(
            "the secret must be at least 16 characters on the first line",
        ));
    }
    Ok(value.as_bytes().to_vec())
}

impl Tenant {
    fn from_config(t: &RelayTenantConfig) -> Result<Self, IngressError> {
        let mut networks = t.networks.clone();
        for path in &t.networks_files {
            networks.extend(networks_file(path)?);
        }
        let secret = match (&t.secret_header, &t.secret_file) {
            (Some(h), Some(f)) => Some((h.clone(), secret_file(f)?)),
            _ => None,
        };
        let senders = t
            .allowed_senders()
            .map_err(|source| IngressError::TenantSenders {
                tenant: t.name.clone(),
                source,
            })?;
        Ok(Self {
            name: t.name.clone(),
            networks,
            certificate_name: t.certificate_name.clone(),
            ms_tenant_id: t.ms_tenant_id.clone(),
            secret,
            dkim: t.dkim,
            senders,
        })
    }

    /// The connection factor this client lacks, if any (`Err(None)`: not this tenant's
    /// address at all).
    fn connection(&self, ip: IpAddr, cert: Option<&ClientCert>) -> Result<(), ConnectionRefusal> {
        if !self.networks.is_empty() && !self.networks.iter().any(|n| n.contains(&ip)) {
            return Err(None);
        }
        if let Some(name) = &self.certificate_name {
            let factor = match cert {
                None => "a TLS client certificate is required".to_owned(),
                Some(c) if c.verified.is_err() => {
                    "the TLS client certificate does not chain to a trusted CA".to_owned()
                }
                Some(c) if !c.valid_for(name) => {
                    "the TLS client certificate is not valid for the expected name".to_owned()
                }
                Some(_) => return Ok(()),
            };
            return Err(Some(self.refusal(factor)));
        }
        Ok(())
    }

    fn refusal(&self, factor: String) -> Refusal {
        Refusal {
            tenant: self.name.clone(),
            factor,
        }
    }

    /// The message factors: `Ok(factors that held)` or the first that did not. `arrival`
    /// is what the message proved on arrival (`None`: not checked).
    fn message(
        &self,
        fields: &[(String, String)],
        arrival: Option<&Arrival>,
    ) -> Result<Vec<String>, Refusal> {
        let mut held = Vec::new();
        if !self.networks.is_empty() {
            held.push("network".to_owned());
        }
        if self.certificate_name.is_some() {
            held.push("certificate".to_owned());
        }
        let values = |name: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .collect()
        };
        if let Some(id) = &self.ms_tenant_id {
            // One field, with exactly this tenant's id: two fields are a forgery's sign.
            match values(MS_TENANT_HEADER).as_slice() {
                [] => return Err(self.refusal(format!("no {MS_TENANT_HEADER} header"))),
                [v] if v.eq_ignore_ascii_case(id) => held.push("ms-tenant-id".to_owned()),
                _ => {
                    return Err(self.refusal(format!(
                        "{MS_TENANT_HEADER} does not name a permitted tenant"
                    )));
                }
            }
        }
        if let Some((header, secret)) = &self.secret {
            match values(header).as_slice() {
                [] => return Err(self.refusal(format!("no {header} header"))),
                [v] if bool::from(v.as_bytes().ct_eq(secret)) => {
                    held.push("secret-header".to_owned());
                }
                // Never echo what was sent or what was expected.
                _ => return Err(self.refusal(format!("the {header} header is wrong"))),
            }
        }
        if self.dkim {
            // The author's domain signed it, and that domain is one the tenant may send as
            // (the header senders are checked against `senders` next).
            let author = values("From")
                .first()
                .and_then(|v| crate::mailbox_list::mailboxes(v).ok())
                .and_then(|m| m.first().map(|b| b.domain.clone()));
            let signed = match (arrival, &author) {
                (Some(a), Some(domain)) => a.dkim_aligned(domain).is_some(),
                _ => false,
            };
            if !signed {
                return Err(
                    self.refusal("no DKIM signature of the From: domain verified".to_owned())
                );
            }
            held.push("dkim".to_owned());
        }
        Ok(held)
    }
}

impl Tenants {
    /// Every `[[relay.tenant]]` of `cfg`, with its networks and secret files read (a reload
    /// reads them again).
    pub fn from_config(cfg: &RelayConfig) -> Result<Self, IngressError> {
        let list: Vec<Tenant> = cfg
            .tenants
            .iter()
            .map(Tenant::from_config)
            .collect::<Result<_, _>>()?;
        let secret_headers = list
            .iter()
            .filter_map(|t| t.secret.as_ref().map(|(h, _)| h.clone()))
            .collect();
        Ok(Self {
            list,
            secret_headers,
        })
    }

    /// The tenants whose connection factors this client meets, or why none does.
    pub(crate) fn at_connection(
        &self,
        ip: IpAddr,
        cert: Option<&ClientCert>,
    ) -> Result<Candidates, ConnectionRefusal> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let mut found = Vec::new();
        let mut why = None;
        for (i, t) in self.list.iter().enumerate() {
            match t.connection(ip, cert) {
                Ok(()) => found.push(i),
                Err(reason) => why = why.or(reason),
            }
        }
        if found.is_empty() {
            Err(why)
        } else {
            Ok(Candidates(found))
        }
    }

    /// The first candidate whose message factors all hold in `data`'s header, or the reason
    /// the first candidate gave for refusing.
    pub(crate) fn at_data(
        &self,
        candidates: &Candidates,
        fields: &Fields,
        arrival: Option<&Arrival>,
    ) -> Result<Matched, Refusal> {
        let mut first_refusal = None;
        for &i in &candidates.0 {
            let t = &self.list[i];
            match t.message(fields, arrival) {
                Ok(factors) => {
                    return Ok(Matched {
                        record: TenantMatch {
                            name: t.name.clone(),
                            factors,
                        },
                        binding: Binding {
                            who: Principal::Tenant(t.name.clone()),
                            senders: t.senders.clone(),
                        },
                    });
                }
                Err(why) => {
                    first_refusal.get_or_insert(why);
                }
            }
        }
        Err(first_refusal.unwrap_or_else(|| Refusal {
            tenant: String::new(),
            factor: "no tenant matches this connection".to_owned(),
        }))
    }

    /// Whether a tenant needs the DKIM result of its messages.
    pub fn need_dkim(&self) -> bool {
        self.list.iter().any(|t| t.dkim)
    }

    /// Every tenant's secret header name: removed from every client's message, so no secret
    /// leaves Sealgate.
    pub(crate) fn secret_headers(&self) -> &[String] {
        &self.secret_headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::senders::header_fields;

    fn tenants(toml: &str) -> Tenants {
        let cfg = sealgate_config::Config::from_toml(toml).expect("config");
        Tenants::from_config(&cfg.relay).expect("tenants")
    }

    const M365: &str = "[[relay.tenant]]\nname = \"clinic\"\nnetworks = [\"192.0.2.0/24\"]\n\
        ms_tenant_id = \"7d0c1e52-aaaa-bbbb-cccc-000000000001\"\nsenders = [\"@clinic.example\"]\n";

    #[test]
    fn the_tenant_id_must_be_there_once_and_name_this_tenant() {
        let t = tenants(M365);
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        let c = t.at_connection(ip, None).expect("candidate");
        let msg = |h: &str| header_fields(format!("{h}Subject: s\r\n\r\nbody\r\n").as_bytes());
        let ok = t.at_data(
            &c,
            &msg("X-MS-Exchange-CrossTenant-Id: 7D0C1E52-AAAA-BBBB-CCCC-000000000001\r\n"),
            None,
        );
        let m = ok.expect("match");
        assert_eq!(m.record.name, "clinic");
        assert_eq!(m.record.factors, ["network", "ms-tenant-id"]);
        let other = t.at_data(
            &c,
            &msg("X-MS-Exchange-CrossTenant-Id: 00000000-0000-0000-0000-000000000000\r\n"),
            None,
        );
        let refused = other.expect_err("refused");
        assert_eq!(refused.tenant, "clinic");
        assert_eq!(
            refused.factor,
            "X-MS-Exchange-CrossTenant-Id does not name a permitted tenant"
        );
        let twice = t.at_data(
            &c,
            &msg("X-MS-Exchange-CrossTenant-Id: 7d0c1e52-aaaa-bbbb-cccc-000000000001\r\nX-MS-Exchange-CrossTenant-Id: x\r\n"),
            None,
        );
        assert!(twice.is_err());
        assert_eq!(
            t.at_data(&c, &msg(""), None).expect_err("refused").factor,
            "no X-MS-Exchange-CrossTenant-Id header"
        );
        // Outside the networks: no tenant, and nothing to name.
        assert_eq!(
            t.at_connection("198.51.100.1".parse().expect("ip"), None),
            Err(None)
        );
    }

    #[test]
    fn networks_files_are_read_line_by_line_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("ranges.txt");
        std::fs::write(
            &good,
            "# Microsoft 365\n40.92.0.0/15\n\n2a01:111:f400::/48 # v6\n52.100.0.1\n",
        )
        .expect("write");
        let t = tenants(&format!(
            "[[relay.tenant]]\nname = \"t\"\nnetworks_files = [\"{}\"]\nms_tenant_id = \"x\"\nsenders = [\"*\"]\n",
            good.display()
        ));
        for ip in [
            "40.93.1.1",
            "2a01:111:f400::1",
            "52.100.0.1",
            "::ffff:40.92.0.1",
        ] {
            assert!(
                t.at_connection(ip.parse().expect("ip"), None).is_ok(),
                "{ip}"
            );
        }
        assert!(
            t.at_connection("52.100.0.2".parse().expect("ip"), None)
                .is_err()
        );
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "40.92.0.0/15\nnot a network\n").expect("write");
        let cfg = sealgate_config::Config::from_toml(&format!(
            "[[relay.tenant]]\nname = \"t\"\nnetworks_files = [\"{}\"]\nms_tenant_id = \"x\"\nsenders = [\"*\"]\n",
            bad.display()
        ))
        .expect("config");
        let e = Tenants::from_config(&cfg.relay)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("bad.txt") && e.contains("line 2"), "{e}");
    }
}
