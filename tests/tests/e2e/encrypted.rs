//! End-to-end encryption end to end: the real daemon finds a recipient's OpenPGP key or S/MIME
//! certificate (imported with `sealgate keys import`, or discovered through WKD, DNS
//! OPENPGPKEY or SMIMEA in DNSSEC-signed zones), decides for PGP/MIME or S/MIME, and delivers
//! a message that GnuPG or `openssl cms` — not our code — decrypts back to the original body
//! and attachments, byte for byte. Keys that are expired, revoked or signing-only are never
//! used, and the audit says why.

mod bcc;
mod discovery;
mod dkim;
mod fallback;
mod pgp;
mod smime;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sealgate_testkit::smtp_sink::{ReceivedMessage, SmtpSink};
use sealgate_tests::{CliRun, Daemon, py_send};
use serde_json::Value;

use crate::inspect::Inspect;
use crate::lab::{SecureLab, eventually, kinds_for};
use crate::trail::{events, first, inspect, mentions, wait_for};

/// Longest wait for one delivery step.
const WAIT: Duration = Duration::from_secs(30);
/// The recipient domain's only MX host: no TLSA, no MTA-STS, so verified TLS is impossible
/// and (with protection required) the chain is pgp > smime > portal.
const MX: &str = "mx.example.test";
/// Where [`MX`] listens.
const MX_IP: [u8; 4] = [127, 0, 0, 5];
/// Where the WKD server (`openpgpkey.example.test`) listens.
const WKD_IP: [u8; 4] = [127, 0, 0, 6];
/// The recipient of most tests.
const RCPT: &str = "jane@example.test";
/// The envelope sender.
const SENDER: &str = "ehr@clinic.test";
/// The subject of [`message`]: must never show outside the encryption.
const SUBJECT: &str = "Lab results for J. Doe";

/// A lab whose signed `example.test` zone holds the MX, `openpgpkey` (for WKD) and `records`.
fn lab(records: &str) -> SecureLab {
    SecureLab::builder()
        .signed(
            "example.test",
            &format!("@ IN MX 10 mx\nmx IN A 127.0.0.5\nopenpgpkey IN A 127.0.0.6\n{records}"),
        )
        .https(WKD_IP, &["openpgpkey.example.test"])
        .start()
}

/// The MX, offering STARTTLS with a lab certificate.
fn mx(lab: &SecureLab) -> SmtpSink {
    lab.tls_sink(MX_IP, &lab.ca.issue(&[MX]))
}

/// A clinical message as an EHR would send it: 8-bit text and a binary attachment.
fn message() -> Vec<u8> {
    let attachment: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut b64 = String::new();
    {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(&attachment);
        for chunk in text.as_bytes().chunks(76) {
            b64.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            b64.push_str("\r\n");
        }
    }
    format!(
        "From: EHR <{SENDER}>\r\nTo: Jane <{RCPT}>\r\nSubject: {SUBJECT}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <lab-1@clinic.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Potassium 5.9 mmol/L — please call the patient. Grüße\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"result.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"result.pdf\"\r\n\r\n{b64}--b1--\r\n"
    )
    .into_bytes()
}

/// Everything after the header of `msg` (CRLF CRLF).
fn body(msg: &[u8]) -> &[u8] {
    msg.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&msg[msg.len()..], |i| &msg[i + 4..])
}

/// The header of `msg` as text.
fn header(msg: &[u8]) -> String {
    let end = msg.len() - body(msg).len();
    String::from_utf8_lossy(&msg[..end]).into_owned()
}

/// Sends [`message`] to `to` through the daemon; its queue id.
fn send(d: &Daemon, dir: &Path, to: &str) -> String {
    let file = dir.join("message.eml");
    std::fs::write(&file, message()).expect("write message");
    let path = file.display().to_string();
    let sent = py_send(
        d.addr("starttls"),
        &["--from", SENDER, "--to", to, "--body-file", &path],
    );
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

/// Runs `sealgate keys import FILE` against the daemon's database; asserts success.
fn import(d: &Daemon, file: &Path) -> CliRun {
    let run = CliRun::of(d.cli(["keys", "import", &file.display().to_string()]));
    assert_eq!(run.code, Some(0), "keys import failed: {}", run.describe());
    run
}

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write file");
    p
}

/// The one message the MX received, once it did.
fn received(lab: &SecureLab, sink: &SmtpSink, d: &Daemon) -> ReceivedMessage {
    assert!(
        lab.rt.block_on(sink.wait_for(1, WAIT)),
        "the MX received nothing\n{}",
        d.output_report()
    );
    sink.received().remove(0)
}

/// What an observer of the wire sees must not include the protected subject or body.
fn assert_nothing_leaks(got: &ReceivedMessage) {
    let text = String::from_utf8_lossy(&got.data);
    for secret in [SUBJECT, "Potassium", "result.pdf", "multipart/mixed"] {
        assert!(
            !text.contains(secret),
            "{secret:?} visible outside the encryption:\n{text}"
        );
    }
    assert!(
        header(&got.data).contains("Subject: Encrypted message\r\n"),
        "{}",
        header(&got.data)
    );
}

/// The decrypted entity: its body must be the original body byte for byte, and its header
/// must carry the real subject (RFC 9788 header protection).
fn assert_original_inside(entity: &[u8]) {
    let original = message();
    assert_eq!(
        body(entity),
        body(&original),
        "the decrypted body differs from the original"
    );
    let h = header(entity);
    assert!(h.contains(&format!("Subject: {SUBJECT}\r\n")), "{h}");
    assert!(h.contains("hp=\"cipher\""), "{h}");
}
