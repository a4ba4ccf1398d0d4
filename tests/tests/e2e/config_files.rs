//! A configuration that `sealgate config check` passes must start: `config check` loads every
//! file the configuration names through the functions `serve` loads it with, and names each
//! unusable one. A trust-anchor file in zone-file syntax without TTL and class (as `dig` and
//! `keymgr` print DNSKEY records) is read by both.

use std::path::Path;

use sealgate_testkit::tls::TestCa;
use sealgate_tests::{CliRun, Daemon, DaemonOpts};
use serde_json::Value;

use crate::audit_cli::config_check;
use crate::lab::{SecureLab, spki_sha256};
use crate::trail::mentions;

const MX: &str = "mx.example.test";
const RCPT: &str = "jane@example.test";

/// The lab's anchor file rewritten the way `dig example.test DNSKEY` prints records without
/// its TTL and class column (`example.test. DNSKEY 257 3 13 ...`), with a comment and the
/// key split over lines in parentheses.
fn anchors_without_ttl_or_class(lab: &SecureLab, dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(lab.anchor_file()).expect("read the lab anchors");
    let mut out = String::from("; DNSKEY records as dig prints them, TTL and class left out\n");
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [owner, _ttl, _class, rtype, flags, proto, alg, key @ ..] = fields.as_slice() else {
            panic!("unexpected anchor line {line:?}");
        };
        let key = key.concat();
        let (head, tail) = key.split_at(key.len() / 2);
        out.push_str(&format!(
            "{owner} {rtype} {flags} {proto} {alg} ( ; zone key\n\t{head}\n\t{tail} )\n"
        ));
    }
    let path = dir.join("anchors-dig.keys");
    std::fs::write(&path, out).expect("write the anchors");
    path
}

#[test]
fn a_trust_anchor_file_without_ttl_or_class_passes_config_check_and_serve_validates_with_it() {
    let b = SecureLab::builder();
    let cert = b.issue(&[MX]);
    let zone = format!(
        "@ IN MX 10 mx\nmx IN A 127.0.0.5\n_{}._tcp.mx IN TLSA 3 1 1 {}\n",
        b.port(),
        spki_sha256(&cert)
    );
    let lab = b.signed("example.test", &zone).start();
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = anchors_without_ttl_or_class(&lab, dir.path());
    let lab_anchors = format!("{:?}", lab.anchor_file().display().to_string());
    let config = lab.config("").replace(
        &lab_anchors,
        &format!("{:?}", anchors.display().to_string()),
    );
    assert!(config.contains("anchors-dig.keys"), "{config}");

    let daemon = Daemon::start(DaemonOpts {
        extra_toml: config,
        ..DaemonOpts::default()
    });
    let checked = config_check(daemon.config_path());
    assert_eq!(checked.code, Some(0), "{}", checked.describe());

    // The anchors are in use: the TLSA records of the signed zone validate.
    let run = CliRun::of(daemon.cli(["check", RCPT, "--json"]));
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let report: Value = serde_json::from_str(&run.stdout).expect("check --json prints JSON");
    assert!(
        mentions(&report["decision"], "evidence", "dane: valid"),
        "{report}"
    );
}

/// Writes `toml` (with delivery off unless it says otherwise, so only the files named matter)
/// and asserts that `config check` fails with a line naming `key` and `file`.
fn refused(toml: &str, key: &str, file: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sealgate.toml");
    let mut table: toml::Table = toml.parse().expect("the case is TOML");
    if let Some(delivery) = table
        .entry("delivery")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
    {
        delivery.entry("enabled").or_insert(false.into());
    }
    std::fs::write(&config, toml::to_string(&table).expect("TOML")).expect("write the config");
    let run = config_check(&config);
    assert_eq!(run.code, Some(1), "{toml}\n{}", run.describe());
    let shown = file.display().to_string();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains(key) && l.contains(&shown)),
        "no line names {key} and {shown}\n{}",
        run.describe()
    );
}

/// A file that exists but holds nothing usable.
fn garbage(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "this is not what you think\n").expect("write");
    path
}

#[test]
fn config_check_refuses_an_unusable_tls_certificate_or_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = TestCa::new()
        .issue(&["relay.example.test"])
        .write_to(dir.path(), "server");
    let bad_cert = garbage(dir.path(), "bad-cert.pem");
    let bad_key = garbage(dir.path(), "bad-key.pem");
    refused(
        &format!("[tls]\ncert_file = {bad_cert:?}\nkey_file = {key:?}\n"),
        "tls.",
        &bad_cert,
    );
    refused(
        &format!("[tls]\ncert_file = {cert:?}\nkey_file = {bad_key:?}\n"),
        "tls.",
        &bad_key,
    );
}

#[test]
fn config_check_refuses_an_unreadable_trust_anchor_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = dir.path().join("anchors.keys");
    std::fs::write(&anchors, "example.test. IN DS 12345 13 2 00ff\n").expect("write");
    refused(
        &format!(
            "[dns]\ndnssec = true\ntrust_anchor_file = {anchors:?}\nnameservers = [\"127.0.0.1:9\"]\n"
        ),
        "trust anchor",
        &anchors,
    );
}

#[test]
fn config_check_refuses_a_delivery_ca_file_without_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = garbage(dir.path(), "ca.pem");
    refused(
        &format!("[delivery]\nca_file = {ca:?}\n"),
        "delivery.ca_file",
        &ca,
    );
}

#[test]
fn config_check_refuses_an_unusable_portal_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, key) = TestCa::new()
        .issue(&["portal.example.test"])
        .write_to(dir.path(), "portal");
    let bad_cert = garbage(dir.path(), "portal-cert.pem");
    refused(
        &format!(
            "[portal]\nenabled = true\ntls_cert_file = {bad_cert:?}\ntls_key_file = {key:?}\n"
        ),
        "portal.tls_cert_file",
        &bad_cert,
    );
}

#[test]
fn config_check_refuses_a_broken_sealing_key_ring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = garbage(dir.path(), "seal.key");
    refused(
        &format!("[storage]\nseal_key_file = {ring:?}\n"),
        "storage.seal_key_file",
        &ring,
    );
}

#[test]
fn config_check_refuses_a_broken_portal_master_key_ring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = garbage(dir.path(), "portal.key");
    refused(
        &format!("[portal]\nenabled = true\nmaster_key_file = {ring:?}\n"),
        "portal.master_key_file",
        &ring,
    );
}
