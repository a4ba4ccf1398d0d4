//! REQUIRETLS (RFC 8689): a message submitted with REQUIRETLS over STARTTLS travels only over
//! verified TLS to a peer that offers REQUIRETLS, carrying the parameter on; otherwise it
//! bounces with 5.7.30 and nothing is sent.

use sealgate_tests::{DaemonOpts, python_smtp};

use super::*;
use crate::lab::spki_sha256;

/// smtplib: STARTTLS (verifying the relay against the CA file), then one message with the
/// REQUIRETLS MAIL parameter; prints the queue id.
const SEND_REQUIRETLS: &str = r#"
import re, smtplib, ssl, sys
host, port, cafile, sender, rcpt = sys.argv[1:6]
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo("client.example.test")
s.starttls(context=ssl.create_default_context(cafile=cafile))
s.ehlo("client.example.test")
if not s.has_extn("requiretls"):
    sys.exit("REQUIRETLS not offered after STARTTLS")
code, resp = s.mail(sender, ["REQUIRETLS"])
assert code == 250, (code, resp)
code, resp = s.rcpt(rcpt)
assert code == 250, (code, resp)
msg = f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: requiretls\r\n\r\nLab results.\r\n"
code, resp = s.data(msg.encode())
assert code == 250, (code, resp)
print(re.search(r"queued as (\S+)", resp.decode()).group(1))
s.quit()
"#;

/// A DANE lab whose MX offers REQUIRETLS or not, and a daemon offering STARTTLS whose
/// default level is `none` (REQUIRETLS alone must raise it). Returns the queue id too.
fn send_with_requiretls(peer_offers: bool) -> (SecureLab, SmtpSink, Daemon, String) {
    let (lab, cert) = dane_lab(|_, cert| format!("3 1 1 {}", spki_sha256(cert)));
    let sink = lab.sink_with(MX_IP, |o| {
        o.tls = Some(std::sync::Arc::new(cert.server_config()));
        o.requiretls = peer_offers;
    });
    let relay = lab.ca.issue(&["relay.example.test", "127.0.0.1"]);
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&relay),
        extra_toml: lab.config("default_level = \"none\"\n"),
        ..DaemonOpts::default()
    });
    let addr = daemon.addr("starttls");
    let out = python_smtp(
        SEND_REQUIRETLS,
        [
            addr.ip().to_string(),
            addr.port().to_string(),
            lab.ca_file().display().to_string(),
            SENDER.to_owned(),
            RCPT.to_owned(),
        ],
    );
    assert!(
        out.status.success(),
        "REQUIRETLS submission failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (lab, sink, daemon, id)
}

#[test]
fn requiretls_mail_reaches_a_dane_peer_offering_requiretls_with_the_parameter() {
    let (lab, sink, daemon, id) = send_with_requiretls(true);
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "nothing delivered\n{}",
        daemon.output_report()
    );
    let got = &sink.received()[0];
    assert!(got.tls);
    assert!(
        got.mail_params.iter().any(|p| p == "REQUIRETLS"),
        "{:?}",
        got.mail_params
    );
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["level"], "required", "{decision}");
    assert_eq!(decision["method"], "tls-verified", "{decision}");
    assert!(
        !lines(&decision, "chain").contains(&"tls-opportunistic".to_owned()),
        "{decision}"
    );
    assert!(mentions(&decision, "evidence", "REQUIRETLS"), "{decision}");
    assert_eq!(first(&db, &id, "attempt")["verification"], "dane");
}

#[test]
fn requiretls_mail_to_a_verified_peer_without_requiretls_bounces_with_5_7_30() {
    let (_lab, sink, daemon, id) = send_with_requiretls(false);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "bounced");
    assert!(sink.connections() >= 1, "the MX was never tried");
    assert_nothing_sent(&sink);
    assert_eq!(
        kinds_for(&db, &id, RCPT),
        ["received", "decision", "attempt", "bounced"]
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["outcome"], "permanent", "{attempt}");
    assert!(
        attempt["reply"]
            .as_str()
            .is_some_and(|r| r.starts_with("5.7.30 ")),
        "{attempt}"
    );
    assert_eq!(db.recipients(&id)[0].1, "bounced");
}
