//! Sealgate configuration (layer L1).
//!
//! Owns the TOML schema, its defaults, environment overrides and validation. Every key is
//! documented here and in `config/sealgate.example.toml`. Loading collects every problem and
//! reports them together, each naming its key. This crate reads files it is pointed at but never
//! reads the process environment itself: the binary passes the variables in
//! ([`Config::apply_env`]), so tests and tools stay deterministic.

mod encryption;
mod error;
mod portal;
mod relay;
mod routes;
mod security;
mod units;
mod webhooks;

pub use encryption::{PgpConfig, SmimeCipher, SmimeConfig};
pub use error::{ConfigError, Problem};
pub use portal::PortalConfig;
pub use relay::{RelayClientConfig, RelayTenantConfig};
pub use routes::{RouteConfig, RouteTls, address_literal};
pub use security::{MtaStsConfig, ProbesConfig};
pub use units::{ByteSize, HumanDuration};
pub use webhooks::WebhooksConfig;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity and process behaviour.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where the queue and audit log live.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Files on local disk (the sealing key).
    #[serde(default)]
    pub storage: StorageConfig,
    /// The SMTP ingress.
    #[serde(default)]
    pub smtp: SmtpConfig,
    /// Certificate and key for STARTTLS and implicit TLS; absent = no TLS offered.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Who may relay through Sealgate without authenticating.
    #[serde(default)]
    pub relay: RelayConfig,
    /// Retry schedule and lifetime of queued messages.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Outbound delivery.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// DNS resolution for routing and DNSSEC validation for DANE.
    #[serde(default)]
    pub dns: DnsConfig,
    /// MTA-STS policy fetching (RFC 8461).
    #[serde(default)]
    pub mta_sts: MtaStsConfig,
    /// Caching of probe results (TLSA, MTA-STS).
    #[serde(default)]
    pub probes: ProbesConfig,
    /// The per-recipient security rules: default level, method preference, per-domain and
    /// per-address overrides, content triggers. Parsed and checked by the policy engine
    /// (`sealgate-policy`'s `Rules`); see `config/sealgate.example.toml`. Absent = defaults
    /// (protection required).
    #[serde(default)]
    pub policy: Option<toml::Table>,
    /// Recipients' OpenPGP keys and PGP/MIME.
    #[serde(default)]
    pub pgp: PgpConfig,
    /// Recipients' X.509 certificates and S/MIME.
    #[serde(default)]
    pub smime: SmimeConfig,
    /// The secure portal: sealed messages read in a browser, notices, links.
    #[serde(default)]
    pub portal: PortalConfig,
    /// The REST API for EHRs and other systems (off by default).
    #[serde(default)]
    pub api: ApiConfig,
    /// Returned mail: the domain of the return paths (VERP) that tie a later bounce to its
    /// recipient; absent = off.
    #[serde(default)]
    pub returns: Option<ReturnsConfig>,
    /// How webhook events are posted (endpoints: `sealgate webhooks add`).
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// DKIM signing of what Sealgate sends (`[[dkim.key]]`).
    #[serde(default)]
    pub dkim: DkimConfig,
    /// ARC sealing (RFC 8617) of what arrived DKIM-signed or ARC-sealed; absent = no sealing.
    #[serde(default)]
    pub arc: Option<ArcConfig>,
}

/// `[api]`: the REST API on its own HTTPS listener; requests carry keys made by `sealgate
/// api-keys add`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Serve the API. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Where it listens. Default "127.0.0.1:8444".
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain of its own; default: `[tls] cert_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of its own; default: `[tls] key_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Requests each key may make per minute (429 with Retry-After beyond). Default 600.
    #[serde(default = "default_api_rate")]
    pub requests_per_minute: u32,
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8444))
}

fn default_api_rate() -> u32 {
    600
}

impl ApiConfig {
    /// The certificate chain and key the API serves with, if any: its own, else `[tls]`'s.
    pub fn tls(&self, tls: Option<&TlsConfig>) -> Option<(PathBuf, PathBuf)> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => tls.map(|t| (t.cert_file.clone(), t.key_file.clone())),
        }
    }
}

fn validate_api(cfg: &Config, problems: &mut Vec<Problem>) {
    let a = &cfg.api;
    if a.cert_file.is_some() != a.key_file.is_some() {
        problems.push(Problem::new(
            "api.cert_file".into(),
            "cert_file and key_file go together",
        ));
    }
    if a.requests_per_minute == 0 {
        problems.push(Problem::new(
            "api.requests_per_minute".into(),
            "must be at least 1",
        ));
    }
    // Keys are bearer secrets: never over plain HTTP except to a proxy on this machine.
    if a.enabled && a.tls(cfg.tls.as_ref()).is_none() && !a.listen.ip().is_loopback() {
        problems.push(Problem::new(
            "api.listen".into(),
            "without a certificate (api.cert_file/key_file or [tls]) the API may listen only on loopback, behind a TLS proxy",
        ));
    }
}

/// `[arc]`: arriving messages are checked (DKIM, ARC) and the results recorded in an
/// `Authentication-Results` field under `server.hostname`; each message that arrived signed
/// leaves with an ARC set over it, signed by this key, so a receiver that trusts this relay
/// sees the original authentication although Sealgate's changes broke the signature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArcConfig {
    /// The sealing domain (`d=` of `ARC-Message-Signature` and `ARC-Seal`), e.g. the relay's
    /// own domain.
    pub domain: String,
    /// The selector: the RSA key's record is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// PEM file of the RSA private key, 2048 bits or more (`sealgate dkim keygen DOMAIN
    /// --selector S --algorithm rsa-sha256 --out FILE` writes one and prints the record).
    pub key_file: PathBuf,
}

/// `[dkim]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// Signing keys. Every key of the author's domain (the header `From:`; a key for a parent
    /// domain serves its subdomains) signs each message Sealgate sends, after every change it
    /// makes: two keys of one domain are dual signing (rsa-sha256 and ed25519-sha256), or a
    /// selector rotation. Default: none, and nothing is signed.
    #[serde(default, rename = "key")]
    pub keys: Vec<DkimKeyConfig>,
}

/// `[[dkim.key]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    /// The signing domain (`d=`), e.g. "clinic.example".
    pub domain: String,
    /// The selector (`s=`): the record is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// "rsa-sha256" (default) or "ed25519-sha256".
    #[serde(default = "default_dkim_algorithm")]
    pub algorithm: String,
    /// PEM file of the private key (`sealgate dkim keygen` writes one).
    pub key_file: PathBuf,
}

/// Whether `s` is a DKIM selector: DNS labels (letters, digits, `-`, `_`) joined by dots.
pub fn is_selector(s: &str) -> bool {
    s.split('.').all(is_label)
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The checks every signing key shares (`[[dkim.key]]`, `[arc]`): its selector, its domain and
/// its file, each named under `prefix`.
fn validate_signing_key(
    prefix: &str,
    domain: &str,
    selector: &str,
    key_file: &Path,
    problems: &mut Vec<Problem>,
) {
    let key = |f: &str| format!("{prefix}.{f}");
    if !is_selector(selector) {
        problems.push(Problem::new(
            key("selector"),
            "must be a DNS label such as s2026",
        ));
    }
    if domain.split('.').count() < 2 || !domain.trim_end_matches('.').split('.').all(is_label) {
        problems.push(Problem::new(
            key("domain"),
            "must be a domain name such as clinic.example",
        ));
    }
    if !key_file.is_file() {
        let msg = format!("file {} does not exist", key_file.display());
        problems.push(Problem::new(key("key_file"), &msg));
    }
}

fn validate_dkim(dkim: &DkimConfig, problems: &mut Vec<Problem>) {
    for (i, k) in dkim.keys.iter().enumerate() {
        let prefix = format!("dkim.key[{i}]");
        if !matches!(k.algorithm.as_str(), "rsa-sha256" | "ed25519-sha256") {
            problems.push(Problem::new(
                format!("{prefix}.algorithm"),
                "must be rsa-sha256 or ed25519-sha256",
            ));
        }
        validate_signing_key(&prefix, &k.domain, &k.selector, &k.key_file, problems);
        if dkim.keys[..i]
            .iter()
            .any(|o| o.domain.eq_ignore_ascii_case(&k.domain) && o.selector == k.selector)
        {
            problems.push(Problem::new(
                format!("{prefix}.selector"),
                "another key of this domain has this selector",
            ));
        }
    }
}

/// `[returns]`: what Sealgate sends goes out with a return path of its own per recipient,
/// `rtn-<recipient row>-<tag>@DOMAIN` (the tag: an authentication tag under the node key ring,
/// so it cannot be forged), and Sealgate takes mail for DOMAIN from anyone: a bounce sent there
/// makes its recipient `returned` and the original sender gets a DSN. Publish an MX record for
/// DOMAIN pointing at Sealgate's SMTP listener. DSNs keep the null return path (RFC 5321
/// §4.5.5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnsConfig {
    /// The return-path domain, such as `bounces.relay.clinic.example`: used for nothing else.
    pub domain: String,
}

fn validate_returns(r: Option<&ReturnsConfig>, problems: &mut Vec<Problem>) {
    if let Some(r) = r {
        let d = r.domain.trim_end_matches('.');
        if d.split('.').count() < 2 || !d.split('.').all(is_label) {
            problems.push(Problem::new(
                "returns.domain".into(),
                "must be a domain name such as bounces.relay.clinic.example",
            ));
        }
    }
}

fn validate_arc(arc: Option<&ArcConfig>, problems: &mut Vec<Problem>) {
    if let Some(a) = arc {
        validate_signing_key("arc", &a.domain, &a.selector, &a.key_file, problems);
    }
}

fn default_dkim_algorithm() -> String {
    "rsa-sha256".to_owned()
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The name used in the greeting, EHLO reply and Received headers. Default: the machine's hostname.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// How long SIGTERM waits for open SMTP sessions and outbound transactions. Default "30s".
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: HumanDuration,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded default) or `postgres://USER@HOST:PORT/DB`.
    /// Environment: `SEALGATE_DATABASE_URL` (keeps passwords out of the file). On PostgreSQL,
    /// a least-privilege serving role (README: PostgreSQL roles); the owner's URL is given
    /// to `sealgate migrate` and `sealgate db roles` only.
    /// Default: `sqlite://<storage.data_dir>/sealgate.db`.
    #[serde(default)]
    pub url: Option<String>,
    /// Pool size. Default 16.
    #[serde(default = "default_db_connections")]
    pub max_connections: u32,
    /// How long to wait for a pooled connection before answering SMTP with 451. Default "10s".
    #[serde(default = "default_db_acquire_timeout")]
    pub acquire_timeout: HumanDuration,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for the SQLite database and the sealing key. Default "./data".
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The key ring that seals message bodies at rest (AES-256-GCM), created with mode 0600 on
    /// first start. Keep a backup: without it queued messages cannot be read.
    /// Default: `<data_dir>/seal.key`.
    #[serde(default)]
    pub seal_key_file: Option<PathBuf>,
}

/// How a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerTls {
    /// Plain SMTP that offers STARTTLS when `[tls]` is configured (ports 25/587 style).
    Starttls,
    /// TLS from the first byte (port 465 style, RFC 8314). Needs `[tls]`.
    Implicit,
}

impl ListenerTls {
    /// The name used in config and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Implicit => "implicit",
        }
    }
}

/// `[[smtp.listener]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to bind, e.g. "0.0.0.0:587". Port 0 picks a free port (logged).
    pub addr: SocketAddr,
    /// "starttls" (default) or "implicit".
    #[serde(default = "default_listener_tls")]
    pub tls: ListenerTls,
}

/// `[smtp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Listeners. Default: one STARTTLS-style listener on 127.0.0.1:2525.
    #[serde(default = "default_listeners", rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Largest message accepted, advertised with SIZE (RFC 1870): bytes or "25MiB". Default 25 MiB.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: ByteSize,
    /// Recipients per message; more get 452 4.5.3 (RFC 5321 §4.5.3.1.10). Default 1000.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    /// Open SMTP connections in total; more get 421 4.7.0. Default 500.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open SMTP connections per client IP; more get 421 4.7.0. Default 50.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Idle time allowed while waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes). Default "5m".
    #[serde(default = "default_command_timeout")]
    pub command_timeout: HumanDuration,
    /// Idle time allowed between data blocks (RFC 5321 §4.5.3.2.5: 3 minutes). Default "3m".
    #[serde(default = "default_data_block_timeout")]
    pub data_timeout: HumanDuration,
    /// The whole message, from 354 to the final dot, however the blocks trickle in. Default "30m".
    #[serde(default = "default_data_total_timeout")]
    pub data_total_timeout: HumanDuration,
    /// Failed AUTH attempts in one session before it is closed. Default 3.
    #[serde(default = "default_max_auth_failures")]
    pub max_auth_failures: u32,
    /// Password verifications (Argon2id, about 19 MiB of memory each) running at once; more
    /// clients wait their turn. Default 2.
    #[serde(default = "default_auth_concurrency")]
    pub auth_concurrency: usize,
    /// How long a successful AUTH is remembered (by a keyed hash of user and password, never
    /// the password), so a client that connects per message does not pay Argon2 each time. A
    /// password change or removal ends it at once. "0s" turns the cache off. Default "5m".
    #[serde(default = "default_auth_cache_ttl")]
    pub auth_cache_ttl: HumanDuration,
    /// Failed AUTH attempts for one user from one client address (an IPv6 /64) within
    /// `auth_failure_window`; beyond it every AUTH for that user from there gets 454 4.7.0,
    /// even with the right password, until the window has passed. Default 10.
    #[serde(default = "default_auth_max_failures_per_user")]
    pub auth_max_failures_per_user: u32,
    /// Failed AUTH attempts from one client address (an IPv6 /64) for any users within
    /// `auth_failure_window` before all its AUTH gets 454 4.7.0. Default 30.
    #[serde(default = "default_auth_max_failures_per_ip")]
    pub auth_max_failures_per_ip: u32,
    /// The window (and cool-down) for the two limits above. Default "10m".
    #[serde(default = "default_auth_failure_window")]
    pub auth_failure_window: HumanDuration,
    /// Errors (bad commands, refused recipients) in one session before it is closed. Default 20.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
    /// A message whose header already has this many `Received` fields is refused at the end of
    /// DATA with 554 5.4.6 (a mail loop somewhere: RFC 5321 §6.3). Default 50, Postfix's
    /// `hopcount_limit`.
    #[serde(default = "default_max_hops")]
    pub max_hops: usize,
    /// How many times one message may pass this relay: a message that already carries this
    /// many of our own `Received` fields (`by <server.hostname> (Sealgate)`) is refused with
    /// 554 5.4.6 instead of going round again, e.g. between Microsoft 365 and Sealgate when a
    /// connector sends Sealgate's deliveries back to it. Default 3.
    #[serde(default = "default_max_passes")]
    pub max_passes: usize,
    /// The operator's address, e.g. "ops@clinic.example": mail to `<Postmaster>` (RFC 5321
    /// §4.5.1) and to `postmaster@<server.hostname>` is queued for it, from any client (it can
    /// reach only this address, so it opens no relay). Default: none, and those recipients get
    /// 550 5.1.1.
    #[serde(default)]
    pub postmaster: Option<String>,
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate followed by its chain.
    pub cert_file: PathBuf,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM file of the CAs whose client certificates count for `[[relay.tenant]]`
    /// `certificate_name`. When set, clients are asked for a certificate in the TLS handshake;
    /// one is never required, and one that does not verify only counts as absent. Default:
    /// none (no client certificates asked for).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// `[relay]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Client networks (CIDR) allowed to relay without AUTH, with any sender. Anyone else must
    /// authenticate over TLS or gets 554 5.7.1 at RCPT. Default: loopback only.
    #[serde(default = "default_relay_networks")]
    pub networks: Vec<IpNet>,
    /// Client networks allowed to relay without AUTH with only some senders
    /// (`[[relay.client]]`). Default: none.
    #[serde(default, rename = "client")]
    pub clients: Vec<RelayClientConfig>,
    /// Cloud tenants (Microsoft 365, Google Workspace) that may relay without AUTH when all
    /// their factors hold (`[[relay.tenant]]`). Default: none.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<RelayTenantConfig>,
}

/// `[queue]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Delay before the first retry after a temporary failure; doubles each time. Default "5m".
    #[serde(default = "default_retry_first")]
    pub retry_first: HumanDuration,
    /// The longest delay between two attempts. Default "4h".
    #[serde(default = "default_retry_max")]
    pub retry_max: HumanDuration,
    /// Give up (bounce with a DSN) after a message has been queued this long (RFC 5321
    /// §4.5.4.1 suggests 4-5 days). Default "5d".
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    /// Send the sender a delay notice once a message has waited this long; "0s" turns it off.
    /// Default "4h".
    #[serde(default = "default_delay_warning")]
    pub delay_warning: HumanDuration,
    /// How long a worker holds claimed recipients before another node may take them over.
    /// Default "10m" (longer than the slowest transaction's timeouts).
    #[serde(default = "default_lease")]
    pub lease: HumanDuration,
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Run outbound delivery in this process. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Outbound connections at once, in total. Default 50.
    #[serde(default = "default_delivery_concurrency")]
    pub max_connections: usize,
    /// Outbound connections at once to one recipient domain. Default 5.
    #[serde(default = "default_domain_concurrency")]
    pub max_connections_per_domain: usize,
    /// TCP port of remote MX hosts. Default 25; another value is for labs and private relays.
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// Name sent in EHLO. Default: `server.hostname`.
    #[serde(default)]
    pub helo_name: Option<String>,
    /// TCP connect timeout per address. Default "30s".
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Waiting for the greeting (RFC 5321 §4.5.3.2.1: 5 minutes). Default "5m".
    #[serde(default = "default_five_minutes")]
    pub greeting_timeout: HumanDuration,
    /// Waiting for a reply to MAIL, RCPT and other commands (§4.5.3.2.2-3: 5 minutes). Default "5m".
    #[serde(default = "default_five_minutes")]
    pub command_timeout: HumanDuration,
    /// Waiting for the reply after the message data (§4.5.3.2.6: 10 minutes). Default "10m".
    #[serde(default = "default_data_timeout")]
    pub data_timeout: HumanDuration,
    /// How often an idle worker looks for due recipients. Default "1s".
    #[serde(default = "default_poll")]
    pub poll_interval: HumanDuration,
    /// Trust the public (Mozilla) root CAs for WebPKI checks of MX hosts under MTA-STS and of
    /// MTA-STS policy hosts. Default true.
    #[serde(default = "default_true")]
    pub public_roots: bool,
    /// A PEM file of further CA certificates to trust for those WebPKI checks (a private PKI,
    /// a lab CA). Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `[[delivery.route]]`: next hops for some domains instead of their MX hosts, and the
    /// smarthost (`domains = ["*"]`). Default: none (every domain by its MX hosts).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

/// `[dns]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers to ask ("127.0.0.1:53"); empty = the system's /etc/resolv.conf.
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
    /// Timeout per query. Default "5s".
    #[serde(default = "default_dns_timeout")]
    pub timeout: HumanDuration,
    /// Tries per query. Default 2.
    #[serde(default = "default_dns_attempts")]
    pub attempts: usize,
    /// Validate DNSSEC in-process for DANE (TLSA and the MX route). Default true; false turns
    /// DANE off (every domain then counts as unsigned).
    #[serde(default = "default_true")]
    pub dnssec: bool,
    /// A file of DNSKEY records (zone-file syntax as `dig` and `keymgr` print them: TTL and
    /// class optional, `;` comments, parentheses across lines) to trust as DNSSEC anchors
    /// instead of the built-in root keys: for private or lab zones. Default: the root keys.
    #[serde(default)]
    pub trust_anchor_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// "human" (default) or "json"; `--log-format` overrides.
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// A tracing filter such as "info" or "sealgate_ingress=debug,info". `RUST_LOG` overrides.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

fn default_hostname() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
fn default_shutdown_grace() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_db_connections() -> u32 {
    16
}
fn default_db_acquire_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_listener_tls() -> ListenerTls {
    ListenerTls::Starttls
}
fn default_listeners() -> Vec<ListenerConfig> {
    vec![ListenerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 2525)),
        tls: ListenerTls::Starttls,
    }]
}
fn default_max_message_size() -> ByteSize {
    ByteSize(25 * 1024 * 1024)
}
fn default_max_recipients() -> usize {
    1000
}
fn default_max_connections() -> usize {
    500
}
fn default_max_connections_per_ip() -> usize {
    50
}
fn default_command_timeout() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_data_block_timeout() -> HumanDuration {
    HumanDuration::from_secs(180)
}
fn default_max_auth_failures() -> u32 {
    3
}
fn default_data_total_timeout() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}
fn default_auth_concurrency() -> usize {
    2
}
fn default_auth_cache_ttl() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_auth_max_failures_per_user() -> u32 {
    10
}
fn default_auth_max_failures_per_ip() -> u32 {
    30
}
fn default_auth_failure_window() -> HumanDuration {
    HumanDuration::from_secs(600)
}
fn default_max_errors() -> u32 {
    20
}
fn default_max_hops() -> usize {
    50
}
fn default_max_passes() -> usize {
    3
}
fn default_relay_networks() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}
fn default_retry_first() -> HumanDuration {
    HumanDuration::from_secs(5 * 60)
}
fn default_retry_max() -> HumanDuration {
    HumanDuration::from_secs(4 * 3600)
}
fn default_max_age() -> HumanDuration {
    HumanDuration::from_secs(5 * 86400)
}
fn default_delay_warning() -> HumanDuration {
    HumanDuration::from_secs(4 * 3600)
}
fn default_lease() -> HumanDuration {
    HumanDuration::from_secs(600)
}
pub(crate) fn default_true() -> bool {
    true
}
fn default_delivery_concurrency() -> usize {
    50
}
fn default_domain_concurrency() -> usize {
    5
}
fn default_smtp_port() -> u16 {
    25
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_five_minutes() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_data_timeout() -> HumanDuration {
    HumanDuration::from_secs(600)
}
fn default_poll() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_dns_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_dns_attempts() -> usize {
    2
}
fn default_log_format() -> LogFormat {
    LogFormat::Human
}
fn default_log_filter() -> String {
    "info".to_owned()
}

macro_rules! default_from_serde {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                toml::from_str("").unwrap_or_else(|e| unreachable!("empty table must deserialize: {e}"))
            }
        }
    )*};
}
default_from_serde!(
    QueueConfig,
    DeliveryConfig,
    DnsConfig,
    ServerConfig,
    DatabaseConfig,
    StorageConfig,
    SmtpConfig,
    RelayConfig,
    LogConfig,
    MtaStsConfig,
    ProbesConfig,
    PgpConfig,
    SmimeConfig,
    PortalConfig,
    ApiConfig
);

impl Config {
    /// Parses TOML text and validates it, collecting every problem.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::from_toml(&e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Ok(Self::load_with_text(path)?.0)
    }

    /// Reads and parses a file; also returns its text (a reload compares one load's text
    /// with the next).
    pub fn load_with_text(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cfg = Self::from_toml(&text).map_err(|e| e.in_file(path))?;
        Ok((cfg, text))
    }

    /// Applies `SEALGATE_*` overrides from the given variables (the binary passes the
    /// process environment). Known: `SEALGATE_DATABASE_URL`.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) {
        for (k, v) in vars {
            if k == "SEALGATE_DATABASE_URL" && !v.is_empty() {
                self.database.url = Some(v);
            }
        }
    }

    /// The database URL in effect (explicit, or SQLite under the data directory).
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.storage.data_dir.join("sealgate.db").display()
            ),
        }
    }

    /// The sealing key file in effect.
    pub fn seal_key_file(&self) -> PathBuf {
        self.storage
            .seal_key_file
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("seal.key"))
    }

    /// The operator address that `<Postmaster>` is routed to (`smtp.postmaster`), if set (an
    /// empty string counts as unset).
    pub fn postmaster(&self) -> Option<sealgate_types::EmailAddress> {
        let set = self.smtp.postmaster.as_deref()?.trim();
        sealgate_types::EmailAddress::parse(set).ok()
    }

    /// What is wrong with `smtp.postmaster`, if anything.
    fn postmaster_problem(&self) -> Option<&'static str> {
        let set = self.smtp.postmaster.as_deref()?.trim();
        if set.is_empty() {
            return None;
        }
        if !portal::is_plain_address(set) || sealgate_types::EmailAddress::parse(set).is_err() {
            return Some("must be a plain address such as ops@clinic.example (no name, no <>)");
        }
        let (local, domain) = set.rsplit_once('@').unwrap_or_default();
        if local.eq_ignore_ascii_case("postmaster")
            && domain.eq_ignore_ascii_case(&self.server.hostname)
        {
            return Some("must not be postmaster@<server.hostname>, which is routed to it");
        }
        None
    }

    /// Checks what serde cannot: cross-key rules and value ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: String, msg: &str| problems.push(Problem::new(key, msg));
        if self.smtp.listeners.is_empty() {
            bad("smtp.listener".into(), "at least one listener is needed");
        }
        for (i, l) in self.smtp.listeners.iter().enumerate() {
            if l.tls == ListenerTls::Implicit && self.tls.is_none() {
                bad(
                    format!("smtp.listener[{i}].tls"),
                    "implicit TLS needs a [tls] section with cert_file and key_file",
                );
            }
        }
        let s = &self.smtp;
        for (key, v) in [
            ("smtp.max_recipients", s.max_recipients),
            ("smtp.max_hops", s.max_hops),
            ("smtp.max_passes", s.max_passes),
            ("smtp.max_connections", s.max_connections),
            ("smtp.max_connections_per_ip", s.max_connections_per_ip),
            ("smtp.auth_concurrency", s.auth_concurrency),
            (
                "smtp.auth_max_failures_per_user",
                s.auth_max_failures_per_user as usize,
            ),
            (
                "smtp.auth_max_failures_per_ip",
                s.auth_max_failures_per_ip as usize,
            ),
        ] {
            if v == 0 {
                bad(key.into(), "must be at least 1");
            }
        }
        if let Some(why) = self.postmaster_problem() {
            bad("smtp.postmaster".into(), why);
        }
        if s.max_message_size.0 < 1024 {
            bad("smtp.max_message_size".into(), "must be at least 1 KiB");
        }
        let d = &self.delivery;
        for (key, v) in [
            ("delivery.max_connections", d.max_connections),
            (
                "delivery.max_connections_per_domain",
                d.max_connections_per_domain,
            ),
            ("dns.attempts", self.dns.attempts),
        ] {
            if v == 0 {
                bad(key.into(), "must be at least 1");
            }
        }
        if d.smtp_port == 0 {
            bad(
                "delivery.smtp_port".into(),
                "must be a port number from 1 to 65535",
            );
        }
        let q = &self.queue;
        if q.retry_first.0.is_zero() || q.retry_max.0 < q.retry_first.0 {
            bad(
                "queue.retry_max".into(),
                "must be at least queue.retry_first, which must be above 0",
            );
        }
        if q.lease.0 < d.data_timeout.0 {
            bad(
                "queue.lease".into(),
                "must be at least delivery.data_timeout, or another node could take over a transaction still running",
            );
        }
        if self.database.max_connections == 0 {
            bad("database.max_connections".into(), "must be at least 1");
        }
        if self.server.hostname.is_empty() || self.server.hostname.contains(char::is_whitespace) {
            bad(
                "server.hostname".into(),
                "must be a host name without spaces",
            );
        }
        let known_scheme = |u: &str| {
            ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| u.starts_with(p))
        };
        if self
            .database
            .url
            .as_deref()
            .is_some_and(|u| !known_scheme(u))
        {
            bad(
                "database.url".into(),
                "must start with sqlite:// or postgres://",
            );
        }
        if self.mta_sts.https_port == 0 {
            bad(
                "mta_sts.https_port".into(),
                "must be a port number from 1 to 65535",
            );
        }
        if self.probes.max_entries == 0 {
            bad("probes.max_entries".into(), "must be at least 1");
        }
        for (key, p) in [
            ("delivery.ca_file", &self.delivery.ca_file),
            ("dns.trust_anchor_file", &self.dns.trust_anchor_file),
        ] {
            if let Some(p) = p.as_ref().filter(|p| !p.is_file()) {
                bad(key.into(), &format!("file {} does not exist", p.display()));
            }
        }
        if let Some(tls) = &self.tls {
            for (key, p) in [
                ("tls.cert_file", &tls.cert_file),
                ("tls.key_file", &tls.key_file),
            ] {
                if !p.is_file() {
                    bad(key.into(), &format!("file {} does not exist", p.display()));
                }
            }
            if let Some(p) = tls.client_ca_file.as_ref().filter(|p| !p.is_file()) {
                bad(
                    "tls.client_ca_file".into(),
                    &format!("file {} does not exist", p.display()),
                );
            }
        }
        for (i, t) in self.relay.tenants.iter().enumerate() {
            let files = t
                .networks_files
                .iter()
                .enumerate()
                .map(|(j, p)| (format!("relay.tenant[{i}].networks_files[{j}]"), p))
                .chain(
                    t.secret_file
                        .iter()
                        .map(|p| (format!("relay.tenant[{i}].secret_file"), p)),
                );
            for (key, p) in files {
                if !p.is_file() {
                    bad(key, &format!("file {} does not exist", p.display()));
                }
            }
        }
        encryption::validate(self, &mut problems);
        portal::validate(self, &mut problems);
        relay::validate(&self.relay, self.tls.as_ref(), &mut problems);
        validate_dkim(&self.dkim, &mut problems);
        validate_arc(self.arc.as_ref(), &mut problems);
        validate_api(self, &mut problems);
        webhooks::validate(&self.webhooks, &mut problems);
        validate_returns(self.returns.as_ref(), &mut problems);
        routes::validate(&self.delivery.routes, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests;
