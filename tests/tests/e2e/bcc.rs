//! Bcc is never forwarded (RFC 5322 §3.6.3): a message submitted with `Bcc:` (folded, in the
//! obsolete `Bcc :` form, and as `Resent-Bcc:`) reaches every envelope recipient — the blind
//! one included — without those fields and without the blind address anywhere, by every
//! method: opportunistic TLS and the portal here, verified TLS in `verified::bcc`, PGP/MIME and
//! S/MIME (checked after GnuPG and `openssl cms` decrypt) in `encrypted::bcc`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use sealgate_crypto::KeyRing;
use sealgate_crypto::portal::open_message;
use sealgate_store::Store;
use sealgate_testkit::db::TestBackend;
use sealgate_testkit::postfix::free_addr;
use sealgate_testkit::smtp_sink::{ReceivedMessage, SinkScript, SmtpSink};
use sealgate_tests::{Daemon, py_send};

use crate::inspect::{fresh_db, runtime};
use crate::lab::{Lab, SecureLab};

/// The blind recipient: in the envelope, named only in `Bcc:`.
pub(crate) const BLIND: &str = "blind@example.test";
/// A second blind address, named only in `Resent-Bcc:` and not in the envelope.
const RESENT_BLIND: &str = "resent-blind@example.test";
/// Longest wait for one delivery step.
const WAIT: Duration = Duration::from_secs(30);

/// The blind-copy fields every test message carries, in every form a reader accepts.
pub(crate) fn bcc_fields() -> String {
    format!(
        "Bcc: Blind <{BLIND}>,\r\n\tother-{BLIND}\r\nbcc : {BLIND}\r\nResent-Bcc: {RESENT_BLIND}\r\n"
    )
}

/// A plain message from `from` to `to` with [`bcc_fields`] among its header fields.
fn message(from: &str, to: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\n{}Subject: blind copy test\r\n\
         Message-ID: <bcc-1@clinic.test>\r\n\r\nThe body names nobody.\r\n",
        bcc_fields()
    )
    .into_bytes()
}

/// Sends `data` from `from` to every address of `to` through the daemon; the queue id.
pub(crate) fn send_file(d: &Daemon, dir: &Path, from: &str, to: &[&str], data: &[u8]) -> String {
    let file = dir.join("bcc-message.eml");
    std::fs::write(&file, data).expect("write message");
    let path = file.display().to_string();
    let mut args = vec!["--from", from, "--body-file", &path];
    for rcpt in to {
        args.extend(["--to", rcpt]);
    }
    let sent = py_send(d.addr("starttls"), &args);
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

/// Panics if `content` (what a recipient got, decrypted where it was encrypted) shows a
/// blind-copy field or a blind address anywhere.
pub(crate) fn assert_no_blind_copy(what: &str, content: &[u8]) {
    let text = String::from_utf8_lossy(content);
    let lower = text.to_ascii_lowercase();
    for needle in ["\nbcc", "\nresent-bcc", BLIND, RESENT_BLIND] {
        assert!(
            !lower.contains(needle) && !lower.starts_with(needle.trim_start()),
            "{what}: {needle:?} is visible:\n{text}"
        );
    }
}

/// Waits until the copies at `sink` cover every address of `rcpts`; those copies.
pub(crate) fn copies_for(sink: &SmtpSink, rcpts: &[&str], d: &Daemon) -> Vec<ReceivedMessage> {
    let covered = |got: &[ReceivedMessage]| {
        rcpts
            .iter()
            .all(|r| got.iter().any(|m| m.rcpts.iter().any(|x| x == r)))
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !covered(&sink.received()) {
        assert!(
            std::time::Instant::now() < deadline,
            "not every recipient got a copy: {:?}\n{}",
            sink.received().iter().map(|m| &m.rcpts).collect::<Vec<_>>(),
            d.output_report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sink.received()
}

fn opportunistic_copies_have_no_bcc(backend: TestBackend) {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")]);
    let sink = lab.sink([127, 0, 0, 5], SinkScript::default());
    let db = fresh_db(backend);
    let daemon = lab.daemon(&db.url);
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpts = ["jane@example.test", BLIND];
    let data = message("ehr@clinic.test", rcpts[0]);
    send_file(&daemon, dir.path(), "ehr@clinic.test", &rcpts, &data);
    for copy in copies_for(&sink, &rcpts, &daemon) {
        assert_no_blind_copy("opportunistic copy", &copy.data);
        let text = String::from_utf8_lossy(&copy.data);
        assert!(
            text.contains("To: <jane@example.test>\r\nSubject: blind copy test\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\r\n\r\nThe body names nobody.\r\n"),
            "{text}"
        );
    }
}

on_both_backends!(opportunistic_copies_have_no_bcc);

/// Both recipients go to the portal (no TLS, no key, protection required): what the portal
/// stores — and so shows — for each has no blind copy.
#[test]
fn portal_copies_have_no_bcc() {
    let lab = SecureLab::builder()
        .unsigned("example.test", "@ IN MX 10 mx\nmx IN A 127.0.0.5\n")
        .start();
    let mx = lab.sink_with([127, 0, 0, 5], |_| {});
    let db = fresh_db(TestBackend::Sqlite);
    let portal = format!(
        "[portal]\nenabled = true\nlisten = \"{}\"\npublic_url = \"https://portal.clinic.test\"\n",
        free_addr(Ipv4Addr::LOCALHOST)
    );
    let daemon = lab.daemon_with(&db.url, "", &portal);
    let dir = tempfile::tempdir().expect("tempdir");
    let rcpts = ["jane@example.test", BLIND];
    let data = message("ehr@clinic.test", rcpts[0]);
    send_file(&daemon, dir.path(), "ehr@clinic.test", &rcpts, &data);
    // The notices arrive once both copies are stored.
    copies_for(&mx, &rcpts, &daemon);

    let master = KeyRing::load(&daemon.data_dir().join("portal.key")).expect("portal.key");
    let rt = runtime();
    let store = rt
        .block_on(Store::connect(daemon.db_url(), 1, Duration::from_secs(10)))
        .expect("connect");
    let grants = rt.block_on(store.portal_grants()).expect("grants");
    let mut recipients: Vec<&str> = grants.iter().map(|g| g.recipient.as_str()).collect();
    recipients.sort_unstable();
    assert_eq!(recipients, [BLIND, "jane@example.test"]);
    for grant in &grants {
        let row = rt
            .block_on(store.portal_message(&grant.portal_message_id))
            .expect("read")
            .expect("the portal message");
        let opened = open_message(
            &master,
            &row.key_sealed,
            &row.content_sealed,
            row.id.as_bytes(),
        )
        .expect("the stored copy opens with the master key");
        assert_no_blind_copy(&format!("portal copy for {}", grant.recipient), &opened);
        assert!(String::from_utf8_lossy(&opened).contains("The body names nobody."));
    }
    for notice in mx.received() {
        let text = String::from_utf8_lossy(&notice.data).into_owned();
        assert!(!text.contains("The body names nobody."), "{text}");
    }
}
