//! `[portal]`: the secure portal, where a recipient with neither verified TLS nor a key reads
//! a sealed message in a browser after proving control of the address.
//!
//! Only shapes are checked here (and that named files exist); the binary reads the files.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::encryption::{check_subject, optional_path};
use crate::units::HumanDuration;
use crate::{Config, Problem};

/// `[portal]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// The portal method exists: recipients whose decision is `portal` get a sealed copy on
    /// the portal and a notice. Off: they are held (and bounce when too old). Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Where the portal web server listens. Default "127.0.0.1:8443".
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The base of links in notices, as recipients reach the portal (no trailing slash):
    /// `https://…`, or `http://` on a loopback host for labs. Default "https://127.0.0.1:8443".
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// PEM certificate chain; with `tls_key_file` the portal serves HTTPS itself (without
    /// both: plain HTTP, for a TLS-terminating proxy). Default: none ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`. Default: none ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub tls_key_file: Option<PathBuf>,
    /// The key ring that seals each portal message's own key, created with mode 0600 on first
    /// start like the sealing key. Default: `<storage.data_dir>/portal.key` ("").
    #[serde(default, deserialize_with = "optional_path")]
    pub master_key_file: Option<PathBuf>,
    /// How many days a link works (0: links expire at once, until an operator extends them).
    /// Default 30.
    #[serde(default = "default_grant_days")]
    pub grant_days: u32,
    /// How long a one-time code works. Default "15m".
    #[serde(default = "default_fifteen_minutes")]
    pub code_ttl: HumanDuration,
    /// Failed codes (or passphrases) before the link is locked for `lockout`. Default 5.
    #[serde(default = "default_max_code_attempts")]
    pub max_code_attempts: u32,
    /// How long a link stays locked after too many failures. Default "15m".
    #[serde(default = "default_fifteen_minutes")]
    pub lockout: HumanDuration,
    /// How long a browser session lasts after verification. Default "30m".
    #[serde(default = "default_session_ttl")]
    pub session_ttl: HumanDuration,
    /// The sending organisation named in notices. Default "Sealgate".
    #[serde(default = "default_organisation")]
    pub organisation: String,
    /// From and envelope sender of notices and codes. Default: `portal@<server.hostname>` ("").
    #[serde(default)]
    pub notice_from: String,
    /// Subject of notices (printable ASCII; says nothing of the message).
    /// Default "A secure message is waiting for you".
    #[serde(default = "default_notice_subject")]
    pub notice_subject: String,
    /// Tell the sender when a recipient first reads the message. Default false.
    #[serde(default)]
    pub read_receipts: bool,
    /// Refused state-changing requests (a missing or wrong CSRF token, another origin) a
    /// client address may make within `refusal_window`; past that its POSTs get 429 until
    /// the window has passed. Default 10.
    #[serde(default = "default_refusal_limit")]
    pub refusal_limit: u32,
    /// The sliding window of `refusal_limit`. Default "1m".
    #[serde(default = "default_refusal_window")]
    pub refusal_window: HumanDuration,
    /// Addresses of reverse proxies in front of the portal. A request from one of them is
    /// throttled and audited by the right-most `X-Forwarded-For` address that is not one of
    /// them; from any other peer that header is ignored. Default: none (`[]`).
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_public_url() -> String {
    "https://127.0.0.1:8443".to_owned()
}
fn default_grant_days() -> u32 {
    30
}
fn default_fifteen_minutes() -> HumanDuration {
    HumanDuration::from_secs(15 * 60)
}
fn default_max_code_attempts() -> u32 {
    5
}
fn default_session_ttl() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}
fn default_organisation() -> String {
    "Sealgate".to_owned()
}
/// Refusals per client and window before 429: a person mistyping never gets near it, a
/// script guessing tokens is slowed to a crawl.
pub(crate) const DEFAULT_REFUSAL_LIMIT: u32 = 10;
fn default_refusal_limit() -> u32 {
    DEFAULT_REFUSAL_LIMIT
}
fn default_refusal_window() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_notice_subject() -> String {
    "A secure message is waiting for you".to_owned()
}

/// Longest link lifetime accepted: ten years.
const MAX_GRANT_DAYS: u32 = 3650;

impl Config {
    /// The From and envelope sender of portal notices and codes: `portal.notice_from`, or
    /// `portal@<server.hostname>`.
    pub fn portal_notice_from(&self) -> String {
        match self.portal.notice_from.trim() {
            "" => format!("portal@{}", self.server.hostname),
            set => set.to_owned(),
        }
    }

    /// The portal master key file in effect (`portal.master_key_file`, or
    /// `<storage.data_dir>/portal.key`).
    pub fn portal_master_key_file(&self) -> PathBuf {
        self.portal
            .master_key_file
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("portal.key"))
    }
}

/// The shape rules of `[portal]`, added to `problems`.
pub(crate) fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    let p = &cfg.portal;
    let mut bad = |key: &str, msg: &str| problems.push(Problem::new(format!("portal.{key}"), msg));
    if let Err(why) = check_public_url(&p.public_url) {
        bad("public_url", &why);
    }
    if p.tls_cert_file.is_some() != p.tls_key_file.is_some() {
        bad(
            "tls_key_file",
            "portal.tls_cert_file and portal.tls_key_file go together: set both or neither",
        );
    }
    for (key, file) in [
        ("tls_cert_file", &p.tls_cert_file),
        ("tls_key_file", &p.tls_key_file),
    ] {
        if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
            bad(key, &format!("file {} does not exist", f.display()));
        }
    }
    if p.grant_days > MAX_GRANT_DAYS {
        bad("grant_days", &format!("must be at most {MAX_GRANT_DAYS}"));
    }
    if p.max_code_attempts == 0 {
        bad("max_code_attempts", "must be at least 1");
    }
    if p.refusal_limit == 0 {
        bad("refusal_limit", "must be at least 1");
    }
    for (key, d) in [
        ("code_ttl", p.code_ttl),
        ("lockout", p.lockout),
        ("session_ttl", p.session_ttl),
        ("refusal_window", p.refusal_window),
    ] {
        if d.0.is_zero() {
            bad(key, "must be above 0");
        }
    }
    if let Err(why) = check_subject(&p.organisation) {
        bad("organisation", &why);
    }
    if let Err(why) = check_subject(&p.notice_subject) {
        bad("notice_subject", &why);
    }
    if !p.notice_from.trim().is_empty() && !is_plain_address(p.notice_from.trim()) {
        bad(
            "notice_from",
            "must be a plain address such as portal@relay.example (no name, no <>)",
        );
    }
}

/// `https://host[:port][/path]` (or `http://` on a loopback host), without a trailing slash,
/// query, fragment or spaces: links are made by appending `/p/{token}`.
fn check_public_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL: expected https://host[:port]"))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} needs a host and no spaces"));
    }
    match scheme {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must be https:// (http:// only on a loopback host)".to_owned()),
        _ => return Err(format!("{url:?}: the scheme must be https")),
    }
    if url.ends_with('/') || url.contains(['?', '#']) {
        return Err("must not end with / or hold a query or fragment".to_owned());
    }
    Ok(())
}

/// `local@domain` with nothing else around it.
pub(crate) fn is_plain_address(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !a
                    .contains(|c: char| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigError;

    fn problem_keys(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid(p)) => p.into_iter().map(|p| p.key).collect(),
            Ok(_) => Vec::new(),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn the_portal_is_off_by_default_with_the_documented_values() {
        let c = Config::from_toml("[server]\nhostname = \"relay.clinic.test\"\n").expect("valid");
        let p = &c.portal;
        assert!(!p.enabled && !p.read_receipts);
        assert_eq!(p.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(p.public_url, "https://127.0.0.1:8443");
        assert_eq!((p.grant_days, p.max_code_attempts), (30, 5));
        assert_eq!(p.code_ttl.0.as_secs(), 900);
        assert_eq!(p.lockout.0.as_secs(), 900);
        assert_eq!(p.session_ttl.0.as_secs(), 1800);
        assert_eq!(p.organisation, "Sealgate");
        assert_eq!(p.notice_subject, "A secure message is waiting for you");
        assert_eq!(c.portal_notice_from(), "portal@relay.clinic.test");
        assert!(c.portal_master_key_file().ends_with("data/portal.key"));
        assert_eq!((&p.tls_cert_file, &p.master_key_file), (&None, &None));
        assert_eq!(p.refusal_limit, 10);
        assert_eq!(p.refusal_window.0.as_secs(), 60);
        assert!(p.trusted_proxies.is_empty());
    }

    #[test]
    fn empty_strings_mean_no_file_and_the_default_sender() {
        let c = Config::from_toml(
            "[portal]\nenabled = true\ntls_cert_file = \"\"\ntls_key_file = \"\"\n\
             master_key_file = \"/srv/keys/portal.key\"\nnotice_from = \"notices@clinic.test\"\n",
        )
        .expect("valid");
        assert!(c.portal.enabled);
        assert_eq!(c.portal.tls_cert_file, None);
        assert_eq!(
            c.portal_master_key_file(),
            PathBuf::from("/srv/keys/portal.key")
        );
        assert_eq!(c.portal_notice_from(), "notices@clinic.test");
    }

    #[test]
    fn every_portal_problem_is_named() {
        let keys = problem_keys(
            "[portal]\npublic_url = \"https://portal.example/\"\ntls_cert_file = \"/nope.pem\"\n\
             grant_days = 4000\nmax_code_attempts = 0\ncode_ttl = \"0s\"\nlockout = \"0s\"\n\
             session_ttl = \"0s\"\norganisation = \"\"\nnotice_subject = \"Line\\nbreak\"\n\
             notice_from = \"Portal <p@x.test>\"\nrefusal_limit = 0\nrefusal_window = \"0s\"\n",
        );
        let expected = [
            "portal.public_url",
            "portal.tls_key_file",
            "portal.tls_cert_file",
            "portal.grant_days",
            "portal.max_code_attempts",
            "portal.refusal_limit",
            "portal.code_ttl",
            "portal.lockout",
            "portal.session_ttl",
            "portal.refusal_window",
            "portal.organisation",
            "portal.notice_subject",
            "portal.notice_from",
        ];
        assert_eq!(keys, expected);
    }

    #[test]
    fn public_urls_must_be_https_except_on_loopback() {
        for good in [
            "https://portal.clinic.example",
            "https://portal.clinic.example:8443/secure",
            "http://127.0.0.1:8443",
            "http://localhost:9000",
            "http://[::1]:8443",
        ] {
            assert_eq!(check_public_url(good), Ok(()), "{good}");
        }
        for bad in [
            "http://portal.clinic.example",
            "portal.clinic.example",
            "ftp://portal.clinic.example",
            "https://portal.clinic.example/",
            "https://portal.clinic.example?x=1",
            "https://",
            "https://portal example",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_portal_keys_are_refused() {
        let err = Config::from_toml("[portal]\nenable = true\n").expect_err("typo");
        assert!(err.to_string().contains("enable"), "{err}");
    }
}

#[cfg(test)]
mod example {
    use crate::Config;

    #[test]
    fn the_example_documents_every_portal_key_with_its_default() {
        let text = include_str!("../../../config/sealgate.example.toml");
        let example: Config = toml::from_str(text).expect("example parses");
        let table: toml::Table = text.parse().expect("example is TOML");
        let mut keys: Vec<&String> = table["portal"]
            .as_table()
            .expect("[portal]")
            .keys()
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "code_ttl",
                "enabled",
                "grant_days",
                "listen",
                "lockout",
                "master_key_file",
                "max_code_attempts",
                "notice_from",
                "notice_subject",
                "organisation",
                "public_url",
                "read_receipts",
                "refusal_limit",
                "refusal_window",
                "session_ttl",
                "tls_cert_file",
                "tls_key_file",
                "trusted_proxies"
            ]
        );
        assert_eq!(
            format!("{:?}", example.portal),
            format!("{:?}", Config::default().portal)
        );
    }
}
