//! ARC (RFC 8617) and DKIM on arrival, played as Microsoft 365 would: the tenant's message
//! arrives DKIM-signed by the clinic's own domain (a dkimpy signature made here, covering the
//! secret header the tenant's transport rule added) and, for one message, with Microsoft's
//! ARC set i=1. Sealgate records what it verified in an `Authentication-Results` field,
//! credits the tenant's `dkim` factor, removes the secret header (which breaks the clinic's
//! signature), then signs with its own DKIM key and seals an ARC set over its change. At the
//! far side dkimpy verifies Sealgate's DKIM signature and validates the whole ARC chain; a
//! forged `Authentication-Results` under Sealgate's name never survives; an unsigned message
//! of the same tenant is refused for want of the factor.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::{Daemon, PySend, py_send};
use serde_json::Value;

use crate::dkim::{dkim_key, dkimpy, evidence_mentions, keygen, txt};
use crate::inspect::{Inspect, fresh_db};
use crate::lab::{Lab, eventually};
use crate::trail::first;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "transport-rule-secret-2026-xyz";

/// An RSA key in PKCS#1 PEM (what dkimpy reads) and its DKIM record, made by openssl.
fn openssl_rsa(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.pem"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let k = key.display().to_string();
    run(&["genrsa", "-traditional", "-out", &k, "2048"]);
    let der = run(&["rsa", "-in", &k, "-pubout", "-outform", "DER"]);
    use base64::Engine as _;
    let p = base64::engine::general_purpose::STANDARD.encode(der);
    (k, format!("v=DKIM1; k=rsa; p={p}"))
}

fn arc_tool(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/arc_tool.py");
    Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .output()
        .expect("run arc_tool.py (Debian package python3-dkim)")
}

/// The clinic's message as Exchange Online hands it over: the transport rule's secret header
/// in it, DKIM-signed by clinic.test (the secret header signed too), with Microsoft's ARC set
/// when `arc` is set.
fn m365_message(dir: &Path, key: &str, n: u32, arc: bool, extra: &str) -> String {
    let raw = dir.join(format!("raw{n}.eml"));
    let signed = dir.join(format!("signed{n}.eml"));
    let body = format!(
        "From: Dr Grey <grey@clinic.test>\r\nTo: jane@example.test\r\nSubject: results {n}\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m{n}@clinic.test>\r\n\
         X-Sealgate-Tenant: {SECRET}\r\n{extra}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nYour results are ready.\r\n"
    );
    std::fs::write(&raw, body).expect("write");
    let mut args = vec![
        "sign",
        "--key",
        key,
        "--domain",
        "clinic.test",
        "--selector",
        "selector1",
        "--sign-header",
        "X-Sealgate-Tenant",
    ];
    if arc {
        args.extend(["--arc-srv-id", "mx.protection.test"]);
    }
    let (r, s) = (raw.display().to_string(), signed.display().to_string());
    args.extend([r.as_str(), s.as_str()]);
    let out = arc_tool(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

fn send_file(daemon: &Daemon, file: &str) -> PySend {
    py_send(
        daemon.addr("starttls"),
        &[
            "--source",
            "127.0.0.2",
            "--from",
            "grey@clinic.test",
            "--to",
            "jane@example.test",
            "--body-file",
            file,
        ],
    )
}

/// dkimpy's verdict on the ARC chain of `message`.
fn arcverify(dns: std::net::SocketAddr, message: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("m.eml");
    std::fs::write(&file, message).expect("write");
    let f = file.display().to_string();
    let out = arc_tool(&["verify", "--dns", &dns.to_string(), &f]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_message_m365_signed_arrives_with_a_valid_sealgate_dkim_signature_and_a_valid_arc_chain() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (m365_key, m365_record) = openssl_rsa(keys.path(), "m365");
    let (dkim_file, dkim_record) = keygen(keys.path(), "clinic.test", "sg", "rsa-sha256");
    let (arc_file, arc_record) = keygen(keys.path(), "relay.example.test", "arc1", "rsa-sha256");
    let lab = Lab::new(&[
        ("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n"),
        (
            "clinic.test",
            &format!(
                "{}{}",
                txt("selector1._domainkey", &m365_record),
                txt("sg._domainkey", &dkim_record)
            ),
        ),
        ("relay.example.test", &txt("arc1._domainkey", &arc_record)),
    ]);
    let far = lab.sink([127, 0, 0, 5], SinkScript::default());
    let secret = keys.path().join("tenant.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write");
    let extra = format!(
        "{}[arc]\ndomain = \"relay.example.test\"\nselector = \"arc1\"\nkey_file = \"{arc_file}\"\n\
         [relay]\nnetworks = [\"10.255.0.0/16\"]\n\
         [[relay.tenant]]\nname = \"clinic-m365\"\nnetworks = [\"127.0.0.2/32\"]\n\
         secret_header = \"X-Sealgate-Tenant\"\nsecret_file = \"{}\"\ndkim = true\n\
         senders = [\"@clinic.test\"]\n",
        dkim_key("clinic.test", "sg", "rsa-sha256", &dkim_file),
        secret.display()
    );
    let store = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(&store.url, "1s", &extra);
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    // 1. Signed by the clinic and sealed by Microsoft (ARC i=1); a forged result under
    // Sealgate's own name rides along.
    let forged = format!(
        "Authentication-Results: {}; dkim=pass header.d=evil.test\r\n",
        hostname(&daemon)
    );
    let first_file = m365_message(keys.path(), &m365_key, 1, true, &forged);
    let sent = send_file(&daemon, &first_file);
    sent.assert_all_queued();
    let id = sent.queue_ids().remove(0);
    eventually(WAIT, "the first message at the far side", || {
        !far.received().is_empty()
    });
    let arrived = far.received()[0].data.clone();
    let text = String::from_utf8_lossy(&arrived).into_owned();
    assert!(
        !text.contains(SECRET),
        "the secret header left Sealgate:\n{text}"
    );
    assert!(
        !text.contains("header.d=evil.test"),
        "a forged result survived:\n{text}"
    );

    // Sealgate's DKIM signature verifies; the clinic's no longer does (its signed secret
    // header was removed): that is what ARC is for.
    let (_, sigs) = dkimpy(lab.dns.addr, &arrived);
    let verdict = |d: &str, s: &str| {
        sigs.iter()
            .find(|x| x["d"] == d && x["s"] == s)
            .map(|x| x["valid"] == true)
    };
    assert_eq!(verdict("clinic.test", "sg"), Some(true), "{sigs:?}\n{text}");
    assert_eq!(verdict("clinic.test", "selector1"), Some(false), "{sigs:?}");
    // The chain Microsoft began and Sealgate continued validates.
    let chain = arcverify(lab.dns.addr, &arrived);
    assert_eq!(chain["cv"], "pass", "{chain}\n{text}");
    assert_eq!(chain["sets"], 2, "{chain}");
    assert!(
        text.contains("ARC-Authentication-Results: i=2; ")
            && text.contains("dkim=pass header.d=clinic.test header.s=selector1"),
        "{text}"
    );
    let decision = first(&db, &id, "decision");
    assert!(
        evidence_mentions(&decision, "arc: sealed i=2 cv=pass"),
        "{decision}"
    );
    let received = first(&db, &id, "received");
    assert_eq!(
        received["tenant"]["factors"],
        serde_json::json!(["network", "secret-header", "dkim"]),
        "{received}"
    );
    // The oracle is real: a changed body breaks the chain.
    let mut tampered = arrived.clone();
    let at = tampered.len() - 4;
    tampered[at] ^= 0x01;
    assert_ne!(arcverify(lab.dns.addr, &tampered)["cv"], "pass");

    // 2. Signed by the clinic without Microsoft's set: Sealgate's set is i=1, cv=none.
    let second = m365_message(keys.path(), &m365_key, 2, false, "");
    let sent = send_file(&daemon, &second);
    sent.assert_all_queued();
    eventually(WAIT, "the second message", || far.received().len() >= 2);
    let arrived = far.received()[1].data.clone();
    let chain = arcverify(lab.dns.addr, &arrived);
    assert_eq!(
        chain["cv"],
        "pass",
        "{chain}\n{}",
        String::from_utf8_lossy(&arrived)
    );
    assert_eq!(chain["sets"], 1, "{chain}");

    // 3. The same tenant's address and secret, but no signature of clinic.test: refused.
    let unsigned = keys.path().join("unsigned.eml");
    std::fs::write(
        &unsigned,
        format!(
            "From: grey@clinic.test\r\nTo: jane@example.test\r\nSubject: x\r\n\
             X-Sealgate-Tenant: {SECRET}\r\n\r\nbody\r\n"
        ),
    )
    .expect("write");
    let refused = send_file(&daemon, &unsigned.display().to_string());
    let r = &refused.results[0];
    assert_eq!(r["code"], 550, "{r}");
    assert!(
        r["text"].as_str().is_some_and(
            |t| t.contains("Relay refused: no DKIM signature of the From: domain verified")
        ),
        "{r}"
    );
}

/// The daemon's `server.hostname` (the authserv-id of its results).
fn hostname(daemon: &Daemon) -> String {
    let text = std::fs::read_to_string(daemon.config_path()).expect("config");
    let table: toml::Table = text.parse().expect("toml");
    table
        .get("server")
        .and_then(|s| s.get("hostname"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the test daemon's config names no server.hostname:\n{text}"))
}
