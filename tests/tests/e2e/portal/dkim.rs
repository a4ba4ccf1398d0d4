//! The portal's notice (written by Sealgate, from `portal.notice_from`) leaves DKIM-signed with
//! the key of its domain; dkimpy verifies it with the key from the lab's DNS.

use super::*;
use crate::dkim::{dkim_key, dkimpy, keygen, txt};

#[test]
fn the_portal_notice_is_dkim_signed_with_its_domains_key() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (file, record) = keygen(keys.path(), "relay.example.test", "p1", "ed25519-sha256");
    let lab = SecureLab::builder()
        .signed("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
        .unsigned("relay.example.test", &txt("p1._domainkey", &record))
        .start();
    let mx = lab.sink_with(MX_IP, |_| {});
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = free_addr(Ipv4Addr::LOCALHOST);
    let base = format!("https://{listen}");
    let extra = format!(
        "{}\n{}",
        portal_table(
            &lab,
            dir.path(),
            listen,
            &base,
            "notice_from = \"portal@relay.example.test\"\n"
        ),
        dkim_key("relay.example.test", "p1", "ed25519-sha256", &file)
    );
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: lab.config_with(WITHOUT_AUTHENTICATED, &extra),
        ..DaemonOpts::default()
    });
    wait_listening(listen, &daemon);
    let sent = py_send(daemon.addr("starttls"), &["--from", SENDER, "--to", RCPT]);
    sent.assert_all_queued();
    eventually(WAIT, "the notice at the recipient's MX", || {
        !mx.received().is_empty()
    });
    let notice = mx.received().remove(0);
    let text = String::from_utf8_lossy(&notice.data).into_owned();
    assert!(
        text.contains("From: ") && text.contains("portal@relay.example.test"),
        "{text}"
    );
    let (ok, sigs) = dkimpy(lab.dns.addr, &notice.data);
    assert!(ok, "dkimpy on the notice: {sigs:?}\n{text}");
    assert_eq!(sigs[0]["d"], "relay.example.test");
    assert_eq!(sigs[0]["a"], "ed25519-sha256");
}
