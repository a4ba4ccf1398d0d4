//! The loopback stand-in for the internet: a real DNS server with the test zones, SMTP peers
//! on 127.0.0.x sharing one port, and a daemon configured to deliver into them. The resolver
//! address and the outbound port are ordinary configuration ([dns] nameservers,
//! [delivery] smtp_port).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sealgate_testkit::dns::TestDns;
use sealgate_testkit::postfix::free_addr;
use sealgate_testkit::smtp_sink::{SinkOptions, SinkScript, SmtpSink};
use sealgate_tests::{Daemon, DaemonOpts};

use crate::inspect::Inspect;

const SOA: &str =
    "@ 300 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60\n@ IN NS ns.lab.test.\n";

/// DNS zones and the port every test MX listens on.
pub struct Lab {
    pub rt: tokio::runtime::Runtime,
    pub dns: TestDns,
    pub port: u16,
}

impl Lab {
    /// Serves `zones`: (origin without the final dot, records relative to it).
    pub fn new(zones: &[(&str, &str)]) -> Self {
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
    pub fn sink(&self, ip: [u8; 4], script: SinkScript) -> SmtpSink {
        let mut opts = SinkOptions::new(SocketAddr::from((ip, self.port)));
        opts.script = script;
        self.rt.block_on(SmtpSink::start(opts)).expect("start sink")
    }

    /// A daemon on `db_url` that delivers into this lab, retrying after 1 s.
    pub fn daemon(&self, db_url: &str) -> Daemon {
        self.daemon_retrying(db_url, "1s")
    }

    /// A daemon on `db_url` that delivers into this lab, retrying after `retry_first`.
    pub fn daemon_retrying(&self, db_url: &str, retry_first: &str) -> Daemon {
        self.daemon_with(db_url, retry_first, "")
    }

    /// Like [`Lab::daemon_retrying`], with extra lines for the `[queue]` table.
    pub fn daemon_with(&self, db_url: &str, retry_first: &str, queue_lines: &str) -> Daemon {
        let lab = format!(
            "[delivery]\nenabled = true\nsmtp_port = {}\nconnect_timeout = \"2s\"\ngreeting_timeout = \"2s\"\n\
             command_timeout = \"2s\"\ndata_timeout = \"3s\"\npoll_interval = \"100ms\"\n\
             [dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\nattempts = 2\ndnssec = false\n\
             [policy]\ndefault_level = \"none\"\n\
             [queue]\nretry_first = \"{retry_first}\"\nretry_max = \"{retry_first}\"\nlease = \"30s\"\n{queue_lines}",
            self.port, self.dns.addr
        );
        Daemon::start(DaemonOpts {
            extra_toml: lab,
            ..DaemonOpts::with_db(db_url)
        })
    }
}

/// Waits until `done` holds (polling every 50 ms), or panics after `limit` with `what`.
pub fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The audit kinds for one recipient of one message, in order.
pub fn kinds_for(db: &Inspect, msg: &str, rcpt: &str) -> Vec<String> {
    db.audit()
        .into_iter()
        .filter(|e| {
            e.message_id.as_deref() == Some(msg) && e.recipient.as_deref().is_none_or(|r| r == rcpt)
        })
        .map(|e| e.kind)
        .collect()
}
