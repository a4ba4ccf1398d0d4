//! The loopback stand-in for the internet: a real DNS server with the test zones, SMTP peers
//! on 127.0.0.x sharing one port, and a daemon configured to deliver into them. The resolver
//! address and the outbound port are ordinary configuration ([dns] nameservers,
//! [delivery] smtp_port).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealgate_testkit::dns::{TestDns, TestZone};
use sealgate_testkit::https::TestHttps;
use sealgate_testkit::postfix::free_addr;
use sealgate_testkit::smtp_sink::{SinkOptions, SinkScript, SmtpSink};
use sealgate_testkit::tls::{Issued, TestCa};
use sealgate_tests::{Daemon, DaemonOpts};
use sha2::Digest;

use crate::inspect::Inspect;

const SOA: &str =
    "@ 300 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60\n@ IN NS ns.lab.test.\n";

/// DNS zones and the port every test MX listens on.
pub(crate) struct Lab {
    pub rt: tokio::runtime::Runtime,
    pub dns: TestDns,
    pub port: u16,
}

impl Lab {
    /// Serves `zones`: (origin without the final dot, records relative to it).
    pub(crate) fn new(zones: &[(&str, &str)]) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let texts: Vec<(String, String)> = zones
            .iter()
            .map(|(o, body)| (format!("{o}."), format!("{SOA}{body}")))
            .collect();
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(o, t)| (o.as_str(), t.as_str()))
            .collect();
        let dns = rt.block_on(TestDns::start(&refs));
        let port = free_addr(Ipv4Addr::new(127, 0, 0, 5)).port();
        Self { rt, dns, port }
    }

    /// A scripted SMTP peer on `ip`:port.
    pub(crate) fn sink(&self, ip: [u8; 4], script: SinkScript) -> SmtpSink {
        let mut opts = SinkOptions::new(SocketAddr::from((ip, self.port)));
        opts.script = script;
        self.rt.block_on(SmtpSink::start(opts)).expect("start sink")
    }

    /// A daemon on `db_url` that delivers into this lab, retrying after 1 s.
    pub(crate) fn daemon(&self, db_url: &str) -> Daemon {
        self.daemon_retrying(db_url, "1s")
    }

    /// A daemon on `db_url` that delivers into this lab, retrying after `retry_first`.
    pub(crate) fn daemon_retrying(&self, db_url: &str, retry_first: &str) -> Daemon {
        self.daemon_with(db_url, retry_first, "")
    }

    /// Like [`Lab::daemon_retrying`], with extra lines for the `[queue]` table.
    pub(crate) fn daemon_with(&self, db_url: &str, retry_first: &str, queue_lines: &str) -> Daemon {
        let toml = format!(
            "{}retry_first = \"{retry_first}\"\nretry_max = \"{retry_first}\"\nlease = \"30s\"\n{queue_lines}",
            self.config()
        );
        Daemon::start(DaemonOpts {
            extra_toml: toml,
            ..DaemonOpts::with_db(db_url)
        })
    }

    /// The daemon configuration for this lab, ending in an open `[queue]` table: delivery on
    /// with short timeouts, the lab's DNS (unsigned: DNSSEC off), and protection not required
    /// (the lab's peers have no verified TLS).
    pub(crate) fn config(&self) -> String {
        format!(
            "{}[dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\nattempts = 2\ndnssec = false\n\
             [policy]\ndefault_level = \"none\"\n[queue]\n",
            delivery_table(self.port, ""),
            self.dns.addr
        )
    }
}

/// The `[delivery]` table of every lab daemon: delivery on to `port`, short timeouts, and
/// `extra` keys.
fn delivery_table(port: u16, extra: &str) -> String {
    format!(
        "[delivery]\nenabled = true\nsmtp_port = {port}\nconnect_timeout = \"2s\"\n\
         greeting_timeout = \"2s\"\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"\n\
         poll_interval = \"100ms\"\n{extra}"
    )
}

/// Waits until `done` holds (polling every 50 ms), or panics after `limit` with `what`.
pub(crate) fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The audit kinds for one recipient of one message, in order.
pub(crate) fn kinds_for(db: &Inspect, msg: &str, rcpt: &str) -> Vec<String> {
    db.audit()
        .into_iter()
        .filter(|e| {
            e.message_id.as_deref() == Some(msg) && e.recipient.as_deref().is_none_or(|r| r == rcpt)
        })
        .map(|e| e.kind)
        .collect()
}

/// `[policy]` lines for tests whose premise is a recipient reachable by neither verified TLS
/// nor a key, so the portal or a wait: the preference of the releases before
/// `tls-authenticated` (#12), which otherwise takes such a recipient when its MX has a
/// certificate valid for its name (`verified/authenticated.rs` tests that).
pub(crate) const WITHOUT_AUTHENTICATED: &str =
    "preference = [\"tls-verified\", \"pgp\", \"smime\", \"portal\"]\n";

/// The signed zone every [`SecureLab`] serves besides the test's own, so its trust-anchor
/// file always holds a key; the test's unsigned zones sit outside it (insecure).
const ANCHOR_ZONE: &str = "lab.test";

/// Builds a [`SecureLab`]: the outbound port and the test CA exist before the zones are
/// written, so TLSA records can name the port and the digests of certificates issued here.
pub(crate) struct SecureLabBuilder {
    port: u16,
    ca: TestCa,
    zones: Vec<(String, String, bool)>,
    https: Option<(Ipv4Addr, Vec<String>)>,
}

impl SecureLabBuilder {
    /// The port every MX listens on (TLSA owners are `_{port}._tcp.HOST`).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The CA the daemon trusts for WebPKI checks (`delivery.ca_file`).
    pub(crate) fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// A leaf certificate for `names` from the lab CA.
    pub(crate) fn issue(&self, names: &[&str]) -> Issued {
        self.ca.issue(names)
    }

    /// A DNSSEC-signed zone (origin without the final dot, records relative to it), anchored
    /// in the daemon's trust-anchor file.
    pub(crate) fn signed(mut self, origin: &str, body: &str) -> Self {
        self.zones.push((origin.to_owned(), body.to_owned(), true));
        self
    }

    /// An unsigned zone: outside every anchor, so DNSSEC calls it insecure.
    pub(crate) fn unsigned(mut self, origin: &str, body: &str) -> Self {
        self.zones.push((origin.to_owned(), body.to_owned(), false));
        self
    }

    /// An HTTPS server on `ip` (free port) presenting a lab-CA certificate for `names`:
    /// MTA-STS policy hosts (`mta-sts.DOMAIN`, whose A record must point at `ip`).
    pub(crate) fn https(mut self, ip: [u8; 4], names: &[&str]) -> Self {
        let names = names.iter().map(|n| (*n).to_owned()).collect();
        self.https = Some((Ipv4Addr::from(ip), names));
        self
    }

    /// Starts the DNS server (and the HTTPS server) and writes the anchor and CA files.
    pub(crate) fn start(self) -> SecureLab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut texts: Vec<(String, String, bool)> = self
            .zones
            .iter()
            .map(|(o, body, signed)| (format!("{o}."), format!("{SOA}{body}"), *signed))
            .collect();
        texts.push((
            format!("{ANCHOR_ZONE}."),
            format!("{SOA}ns IN A 127.0.0.1\n"),
            true,
        ));
        let zones: Vec<TestZone<'_>> = texts
            .iter()
            .map(|(o, t, signed)| TestZone {
                origin: o,
                text: t,
                signed: *signed,
            })
            .collect();
        let dns = rt.block_on(TestDns::start_zones(&zones));
        let dir = tempfile::tempdir().expect("tempdir");
        let anchors = dns.write_trust_anchor_file(dir.path());
        let ca_file = self.ca.write_to(dir.path());
        let https = self.https.map(|(ip, names)| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let bind = SocketAddr::from((ip, 0));
            rt.block_on(TestHttps::start(bind, &self.ca, &names))
        });
        SecureLab {
            rt,
            dns,
            port: self.port,
            ca: self.ca,
            https,
            anchors,
            ca_file,
            _dir: dir,
        }
    }
}

/// A lab for verified TLS: signed and unsigned zones on a real DNS server, a test CA, SMTP
/// sinks presenting its certificates, an optional MTA-STS policy server, and daemons that
/// validate DNSSEC from the lab's anchors and trust only the lab CA.
pub(crate) struct SecureLab {
    pub rt: tokio::runtime::Runtime,
    pub dns: TestDns,
    pub port: u16,
    pub ca: TestCa,
    /// The MTA-STS policy server, when the builder asked for one.
    pub https: Option<TestHttps>,
    anchors: PathBuf,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl SecureLab {
    /// A builder with a fresh CA and a free port.
    pub(crate) fn builder() -> SecureLabBuilder {
        SecureLabBuilder {
            port: free_addr(Ipv4Addr::new(127, 0, 0, 5)).port(),
            ca: TestCa::new(),
            zones: Vec::new(),
            https: None,
        }
    }

    /// The MTA-STS policy server (panics when the lab has none).
    pub(crate) fn https(&self) -> &TestHttps {
        self.https
            .as_ref()
            .expect("SecureLab built with .https(..)")
    }

    /// The trust-anchor file of the signed zones (`dns.trust_anchor_file`).
    pub(crate) fn anchor_file(&self) -> &std::path::Path {
        &self.anchors
    }

    /// The PEM file of the lab CA (what the daemon trusts as `delivery.ca_file`).
    pub(crate) fn ca_file(&self) -> &std::path::Path {
        &self.ca_file
    }

    /// An SMTP peer on `ip`:port offering STARTTLS with `cert`.
    pub(crate) fn tls_sink(&self, ip: [u8; 4], cert: &Issued) -> SmtpSink {
        self.sink_with(ip, |o| o.tls = Some(Arc::new(cert.server_config())))
    }

    /// An SMTP peer on `ip`:port with options set by `configure` (no TLS unless it sets some).
    pub(crate) fn sink_with(
        &self,
        ip: [u8; 4],
        configure: impl FnOnce(&mut SinkOptions),
    ) -> SmtpSink {
        let mut opts = SinkOptions::new(SocketAddr::from((ip, self.port)));
        configure(&mut opts);
        self.rt.block_on(SmtpSink::start(opts)).expect("start sink")
    }

    /// The daemon configuration for this lab (for [`DaemonOpts::extra_toml`]): delivery on
    /// with short timeouts, DNSSEC from the lab anchors, only the lab CA trusted, MTA-STS
    /// fetched from the lab's HTTPS server, retries after 1 s; `policy` is the body of the
    /// `[policy]` table (empty: the defaults, protection required).
    pub(crate) fn config(&self, policy: &str) -> String {
        self.config_with(policy, "")
    }

    /// [`SecureLab::config`] followed by `extra` (whole TOML tables such as `[pgp]`).
    /// Tables of `extra` that the lab also sets (such as `[pgp]`) are merged key by key.
    pub(crate) fn config_with(&self, policy: &str, extra: &str) -> String {
        let base = self.base_config(policy);
        let mut merged: toml::Table = base.parse().expect("the lab config is TOML");
        let extra: toml::Table = extra.parse().expect("extra config is TOML");
        merge(&mut merged, extra);
        toml::to_string(&merged).expect("serialise the lab config")
    }

    fn base_config(&self, policy: &str) -> String {
        let https_port = self.https.as_ref().map_or(443, |h| h.addr().port());
        let delivery = format!(
            "public_roots = false\nca_file = {:?}\n",
            self.ca_file.display().to_string()
        );
        format!(
            "{delivery}\
             [dns]\nnameservers = [\"{dns}\"]\ntimeout = \"2s\"\nattempts = 2\ndnssec = true\n\
             trust_anchor_file = {anchors:?}\n\
             [mta_sts]\nenabled = true\nhttps_port = {https_port}\nfetch_timeout = \"3s\"\n\
             [queue]\nretry_first = \"1s\"\nretry_max = \"1s\"\nlease = \"30s\"\nmax_age = \"1d\"\n\
             [pgp]\nwkd_https_port = {https_port}\nwkd_timeout = \"3s\"\n\
             [policy]\n{policy}\n",
            delivery = delivery_table(self.port, &delivery),
            dns = self.dns.addr,
            anchors = self.anchors.display().to_string(),
        )
    }

    /// A daemon on `db_url` configured by [`SecureLab::config`].
    pub(crate) fn daemon(&self, db_url: &str, policy: &str) -> Daemon {
        Daemon::start(DaemonOpts {
            extra_toml: self.config(policy),
            ..DaemonOpts::with_db(db_url)
        })
    }

    /// A daemon on `db_url` configured by [`SecureLab::config_with`].
    pub(crate) fn daemon_with(&self, db_url: &str, policy: &str, extra: &str) -> Daemon {
        Daemon::start(DaemonOpts {
            extra_toml: self.config_with(policy, extra),
            ..DaemonOpts::with_db(db_url)
        })
    }

    /// Like [`SecureLab::daemon`], over a SQLite file in the daemon's own directory.
    pub(crate) fn daemon_on_sqlite(&self, policy: &str) -> Daemon {
        Daemon::start(DaemonOpts {
            extra_toml: self.config(policy),
            ..DaemonOpts::default()
        })
    }
}

/// `extra` merged into `into`: tables key by key, anything else replaced.
fn merge(into: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// SHA-256 (hex) of the SubjectPublicKeyInfo of `issued`'s key: TLSA selector 1, matching 1.
pub(crate) fn spki_sha256(issued: &Issued) -> String {
    use rcgen::PublicKeyData;
    let key = rcgen::KeyPair::from_pem(&issued.key_pem).expect("parse the leaf key");
    hex::encode(sha2::Sha256::digest(key.subject_public_key_info()))
}

/// SHA-256 (hex) of DER bytes (a whole certificate: TLSA selector 0, matching 1).
pub(crate) fn der_sha256(der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(der))
}
