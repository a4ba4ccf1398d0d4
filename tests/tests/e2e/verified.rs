//! Verified TLS end to end: the real daemon decides per recipient from DNSSEC-validated TLSA
//! records, MTA-STS policies served over HTTPS, the downgrade memory and content triggers,
//! then delivers only over a session verified as decided — or sends nothing and defers. Each
//! test asserts on what the peer received (or that it received nothing) and on the audit
//! rows and store tables an operator reads.

mod authenticated;
mod bcc;
mod dane;
mod holds;
mod mta_sts;
mod requiretls;
mod routes;
mod rules;

use std::time::Duration;

use sealgate_store::{Store, TlsRptCounts, TlsRptFailureCount, VerifiedDomain};
use sealgate_testkit::smtp_sink::SmtpSink;
use sealgate_testkit::tls::Issued;
use sealgate_tests::{Daemon, py_send};
use serde_json::Value;

use crate::inspect::{Inspect, runtime};
use crate::lab::{SecureLab, SecureLabBuilder, kinds_for};
use crate::trail::{first, inspect, lines, mentions, wait_for};

/// Longest wait for one delivery step.
const WAIT: Duration = Duration::from_secs(20);
/// The recipient domain's only MX host.
const MX: &str = "mx.example.test";
/// Where [`MX`] listens.
const MX_IP: [u8; 4] = [127, 0, 0, 5];
/// The recipient of most tests.
const RCPT: &str = "jane@example.test";
/// The envelope sender.
const SENDER: &str = "ehr@clinic.test";

/// Sends one message to `to` through the daemon (extra send.py flags in `extra`); its queue id.
fn send(d: &Daemon, to: &str, extra: &[&str]) -> String {
    let mut args = vec!["--from", SENDER, "--to", to];
    args.extend_from_slice(extra);
    let sent = py_send(d.addr("starttls"), &args);
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

/// The peer saw no transaction: nothing accepted and no MAIL, RCPT or DATA command.
fn assert_nothing_sent(sink: &SmtpSink) {
    assert!(sink.received().is_empty(), "{:?}", sink.received());
    let commands = sink.commands();
    assert!(
        !commands.iter().any(|c| {
            let verb = c.get(..4).unwrap_or_default().to_ascii_uppercase();
            ["MAIL", "RCPT", "DATA"].contains(&verb.as_str())
        }),
        "a transaction was started: {commands:?}"
    );
}

/// The `deferred` event of a recipient of example.test whose verified TLS was impossible: its
/// reason names `needle` (an RFC 8460 result type, or what ruled the MX out).
fn verification_refused(db: &Inspect, id: &str, needle: &str) -> Value {
    let deferred = first(db, id, "deferred");
    let reason = deferred["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("4.7.5 verified TLS impossible for example.test: ")
            && reason.contains(needle),
        "{deferred}"
    );
    deferred
}

/// A TLS-RPT failure of example.test under `policy_type` with `result_type`, at [`MX`].
fn assert_rpt_failure(daemon: &Daemon, policy_type: &str, result_type: &str) {
    let failures = SecurityTables::new(daemon.db_url()).rpt_failures("example.test");
    assert!(
        failures.iter().any(|f| f.policy_type == policy_type
            && f.failure.result_type == result_type
            && f.failure.mx_host == MX
            && f.failure.ip == "127.0.0.5"),
        "{failures:?}"
    );
}

/// A signed example.test whose MX [`MX`] has a lab-CA certificate and the TLSA record
/// `tlsa(builder, cert)` at `_PORT._tcp.mx`.
fn dane_lab(tlsa: impl FnOnce(&SecureLabBuilder, &Issued) -> String) -> (SecureLab, Issued) {
    let b = SecureLab::builder();
    let cert = b.issue(&[MX]);
    let record = tlsa(&b, &cert);
    let zone = format!(
        "@ IN MX 10 mx\nmx IN A 127.0.0.5\n_{}._tcp.mx IN TLSA {record}\n",
        b.port()
    );
    (b.signed("example.test", &zone).start(), cert)
}

/// A first lab on `db_url` where example.test is DANE-signed: one message delivered over
/// verified TLS, so the downgrade memory holds `dane` for the domain.
fn delivered_once_over_dane(db_url: &str) {
    let (lab, cert) = dane_lab(|_, cert| format!("3 1 1 {}", crate::lab::spki_sha256(cert)));
    let sink = lab.tls_sink(MX_IP, &cert);
    let daemon = lab.daemon(db_url, "");
    let id = send(&daemon, RCPT, &[]);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "the first message was not delivered\n{}",
        daemon.output_report()
    );
    wait_for(&inspect(&daemon), &id, RCPT, "delivered");
    let memory = SecurityTables::new(daemon.db_url()).verified_domain("example.test");
    assert_eq!(memory.map(|v| v.verified_via), Some("dane".to_owned()));
}

/// The second lab of the downgrade tests: example.test unsigned (no TLSA any more), its MX
/// offering STARTTLS with a valid lab certificate for its name.
fn lab_after_dane_is_gone() -> (SecureLab, SmtpSink) {
    let b = SecureLab::builder();
    let cert = b.issue(&[MX]);
    let lab = b
        .unsigned("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
        .start();
    let sink = lab.tls_sink(MX_IP, &cert);
    (lab, sink)
}

/// The store tables behind TLS-RPT and the downgrade memory, read the way an operator's
/// report job would.
struct SecurityTables {
    rt: tokio::runtime::Runtime,
    store: Store,
}

impl SecurityTables {
    fn new(url: &str) -> Self {
        let rt = runtime();
        let store = rt
            .block_on(Store::connect(url, 2, Duration::from_secs(10)))
            .expect("connect to the daemon's store");
        Self { rt, store }
    }

    fn rpt_failures(&self, domain: &str) -> Vec<TlsRptFailureCount> {
        self.rt
            .block_on(self.store.tls_rpt_failures(Some(domain)))
            .expect("read tls_rpt_failures")
    }

    fn rpt_counts(&self, domain: &str) -> Vec<TlsRptCounts> {
        self.rt
            .block_on(self.store.tls_rpt_counts(Some(domain)))
            .expect("read tls_rpt_results")
    }

    fn verified_domain(&self, domain: &str) -> Option<VerifiedDomain> {
        self.rt
            .block_on(self.store.verified_domain(domain))
            .expect("read domain_security")
    }
}
