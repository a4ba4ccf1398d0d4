//! `tls-authenticated` end to end, under the default policy (protection required): a domain
//! without DANE or MTA-STS whose MX offers STARTTLS with TLS ≥ 1.2 and a certificate valid
//! for its name (from the lab CA, the daemon's `delivery.ca_file`) gets the message over that
//! session. A wrong name, an expired certificate, a TLS 1.1-only peer (OpenSSL, through
//! Python) or no STARTTLS is never used: nothing of the message reaches it, and the recipient
//! falls to the next protecting method, the portal, with the reason in its audited attempt.
//! A domain with verified TLS (DANE) gets verified TLS and never authenticated TLS.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use sealgate_testkit::db::TestBackend;

use super::*;
use crate::inspect::fresh_db;
use crate::lab::spki_sha256;

/// A subject only the original message carries (portal notices say nothing of it).
const SUBJECT: &str = "lab result 4711";

/// One recipient domain of the lab: its recipient, its MX's address, and what the MX does.
struct Case {
    rcpt: &'static str,
    domain: &'static str,
    ip: [u8; 4],
}

const GOOD: Case = Case {
    rcpt: "ann@good.test",
    domain: "good.test",
    ip: [127, 0, 0, 21],
};
const WRONG_NAME: Case = Case {
    rcpt: "bo@wrong.test",
    domain: "wrong.test",
    ip: [127, 0, 0, 22],
};
const EXPIRED: Case = Case {
    rcpt: "cy@expired.test",
    domain: "expired.test",
    ip: [127, 0, 0, 23],
};
const TLS11: Case = Case {
    rcpt: "di@old.test",
    domain: "old.test",
    ip: [127, 0, 0, 24],
};
const NO_STARTTLS: Case = Case {
    rcpt: "ed@plain.test",
    domain: "plain.test",
    ip: [127, 0, 0, 25],
};
const DANE: Case = Case {
    rcpt: "fi@dane.test",
    domain: "dane.test",
    ip: [127, 0, 0, 26],
};

impl Case {
    fn mx(&self) -> String {
        format!("mx.{}", self.domain)
    }

    fn zone(&self) -> String {
        let [a, b, c, d] = self.ip;
        format!("@ IN MX 10 mx\nmx IN A {a}.{b}.{c}.{d}\n")
    }
}

/// The TLS 1.1-only peer (`tests/py/tls11_peer.py`), killed when dropped.
struct Tls11Peer {
    child: Child,
    log: std::path::PathBuf,
}

impl Tls11Peer {
    fn start(dir: &Path, ip: [u8; 4], port: u16, cert: &Issued) -> Self {
        let (chain, key) = cert.write_to(dir, "tls11");
        let log = dir.join("tls11.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/tls11_peer.py");
        let python = std::env::var("SEALGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let [a, b, c, d] = ip;
        let mut child = Command::new(python)
            .arg(script)
            .arg(format!("{a}.{b}.{c}.{d}"))
            .arg(port.to_string())
            .arg(&chain)
            .arg(&key)
            .arg(&log)
            .arg("120")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/py/tls11_peer.py");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("peer stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready)
            .expect("read the peer's ready line");
        assert_eq!(ready.trim(), "ready", "the TLS 1.1 peer did not start");
        Self { child, log }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Tls11Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `id`'s recipient fell from `tls-authenticated` to the portal: the decision chose
/// authenticated TLS, the first attempt says why it could not be had (`needle`) and that
/// nothing was sent, the second is the portal's, and the recipient is delivered there.
fn fell_to_the_portal(db: &Inspect, id: &str, case: &Case, needle: &str) {
    wait_for(db, id, case.rcpt, "delivered");
    let decision = first(db, id, "decision");
    assert_eq!(decision["method"], "tls-authenticated", "{decision}");
    let tries = crate::trail::events(db, id, "attempt");
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0]["method"], "tls-authenticated", "{}", tries[0]);
    assert_eq!(tries[0]["verification"], "failed", "{}", tries[0]);
    let reply = tries[0]["reply"].as_str().unwrap_or_default();
    assert!(
        reply.starts_with(&format!(
            "4.7.5 authenticated TLS impossible for {}: ",
            case.domain
        )) && reply.contains(needle)
            && reply.ends_with("nothing was sent; falls to the portal"),
        "{}",
        tries[0]
    );
    assert_eq!(tries[1]["method"], "portal", "{}", tries[1]);
    assert_eq!(
        kinds_for(db, id, case.rcpt),
        [
            "received",
            "decision",
            "attempt",
            "portal_notice",
            "attempt",
            "delivered"
        ]
    );
}

/// Nothing of the original message reached `sink` (a portal notice may have).
fn original_never_reached(sink: &SmtpSink) {
    for m in sink.received() {
        let text = String::from_utf8_lossy(&m.data);
        assert!(
            !text.contains(SUBJECT),
            "the message reached the peer: {text}"
        );
        assert_ne!(m.mail_from, SENDER, "the message reached the peer");
    }
}

#[test]
fn authenticated_tls_is_used_only_with_a_valid_certificate_for_the_mx_name_over_tls_1_2_or_later() {
    let b = SecureLab::builder();
    let port = b.port();
    let good = b.issue(&[&GOOD.mx()]);
    let other_name = b.issue(&["mx.elsewhere.test"]);
    let expired = b.ca().issue_expired(&[&EXPIRED.mx()]);
    let old = b.issue(&[&TLS11.mx()]);
    let dane = b.issue(&[&DANE.mx()]);
    let dane_zone = format!(
        "{}_{port}._tcp.mx IN TLSA 3 1 1 {}\n",
        DANE.zone(),
        spki_sha256(&dane)
    );
    let lab = b
        .unsigned(GOOD.domain, &GOOD.zone())
        .unsigned(WRONG_NAME.domain, &WRONG_NAME.zone())
        .unsigned(EXPIRED.domain, &EXPIRED.zone())
        .unsigned(TLS11.domain, &TLS11.zone())
        .unsigned(NO_STARTTLS.domain, &NO_STARTTLS.zone())
        .signed(DANE.domain, &dane_zone)
        .start();
    let good_sink = lab.tls_sink(GOOD.ip, &good);
    let wrong_sink = lab.tls_sink(WRONG_NAME.ip, &other_name);
    let expired_sink = lab.tls_sink(EXPIRED.ip, &expired);
    let plain_sink = lab.sink_with(NO_STARTTLS.ip, |_| {});
    let dane_sink = lab.tls_sink(DANE.ip, &dane);
    let dir = tempfile::tempdir().expect("temp dir");
    let tls11 = Tls11Peer::start(dir.path(), TLS11.ip, port, &old);

    let db = fresh_db(TestBackend::Sqlite);
    let listen = sealgate_testkit::postfix::free_addr(std::net::Ipv4Addr::LOCALHOST);
    let portal = format!(
        "[portal]\nenabled = true\nlisten = \"{listen}\"\npublic_url = \"https://portal.clinic.test\"\n"
    );
    let daemon = lab.daemon_with(&db.url, "", &portal);
    let ids: Vec<String> = [&GOOD, &WRONG_NAME, &EXPIRED, &TLS11, &NO_STARTTLS, &DANE]
        .iter()
        .map(|c| send(&daemon, c.rcpt, &["--subject", SUBJECT]))
        .collect();
    let db = inspect(&daemon);

    // A valid certificate for the MX name: the message goes over authenticated TLS.
    wait_for(&db, &ids[0], GOOD.rcpt, "delivered");
    let decision = first(&db, &ids[0], "decision");
    assert_eq!(decision["method"], "tls-authenticated", "{decision}");
    assert!(
        mentions(
            &decision,
            "evidence",
            "skip tls-verified: no DANE (dane insecure), no MTA-STS enforce"
        ),
        "{decision}"
    );
    let attempt = first(&db, &ids[0], "attempt");
    assert_eq!(attempt["method"], "tls-authenticated", "{attempt}");
    assert_eq!(attempt["verification"], "webpki", "{attempt}");
    let got = good_sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].tls, "delivered without TLS");
    assert!(String::from_utf8_lossy(&got[0].data).contains(SUBJECT));

    // Never used: a certificate for another name, an expired one, TLS 1.1, no STARTTLS.
    fell_to_the_portal(&db, &ids[1], &WRONG_NAME, "certificate-host-mismatch");
    original_never_reached(&wrong_sink);
    fell_to_the_portal(&db, &ids[2], &EXPIRED, "certificate-expired");
    original_never_reached(&expired_sink);
    fell_to_the_portal(
        &db,
        &ids[3],
        &TLS11,
        "mx.old.test (webpki): validation-failure: received fatal alert: ProtocolVersion: \
         the peer does not speak TLS 1.2 or later",
    );
    let seen = tls11.lines();
    assert!(
        seen.iter().any(|l| l.starts_with("TLS failed")),
        "the TLS 1.1 peer saw no refused handshake: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("TLS ok") || l.to_ascii_uppercase().starts_with("MAIL")),
        "a session or transaction happened with the TLS 1.1 peer: {seen:?}"
    );
    fell_to_the_portal(&db, &ids[4], &NO_STARTTLS, "starttls-not-supported");
    original_never_reached(&plain_sink);

    // Verified TLS works: verified TLS, and authenticated TLS not even in the chain.
    wait_for(&db, &ids[5], DANE.rcpt, "delivered");
    let decision = first(&db, &ids[5], "decision");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    assert!(
        !lines(&decision, "chain").contains(&"tls-authenticated".to_owned()),
        "{decision}"
    );
    assert!(
        mentions(
            &decision,
            "evidence",
            "skip tls-authenticated: the domain offers verified TLS"
        ),
        "{decision}"
    );
    assert_eq!(first(&db, &ids[5], "attempt")["verification"], "dane");
    assert_eq!(dane_sink.received().len(), 1);
}

/// Downgrade memory across tiers. First lab: example.test is DANE-signed and a message is
/// delivered over verified TLS (the memory is written). Second lab, same database:
/// example.test is unsigned and its MX has a valid certificate for its name. With the
/// operator's `authenticated_after_verified = true` the message goes over authenticated TLS,
/// and the downgrade alert is still raised: never silent. (Without it, the existing
/// `a_domain_that_loses_dane_after_a_verified_delivery…` test shows nothing is sent.)
#[test]
fn an_operator_may_let_a_once_verified_domain_fall_to_authenticated_tls_with_the_alert_raised() {
    let db = fresh_db(TestBackend::Sqlite);
    delivered_once_over_dane(&db.url);
    let (lab, sink) = lab_after_dane_is_gone();
    let daemon = lab.daemon(&db.url, "authenticated_after_verified = true\n");
    let id = send(&daemon, RCPT, &["--subject", SUBJECT]);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "tls-authenticated", "{decision}");
    assert!(
        mentions(&decision, "alerts", "downgrade: example.test"),
        "{decision}"
    );
    let alert = first(&db, &id, "alert");
    assert!(
        alert["alert"]
            .as_str()
            .is_some_and(|a| a.starts_with("downgrade:")),
        "{alert}"
    );
    assert_eq!(first(&db, &id, "attempt")["verification"], "webpki");
    let got = sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].tls);
}
