//! `[pgp]` and `[smime]`: defaults, "" as no file, and the shape rules.

use std::path::Path;

use super::*;
use crate::ConfigError;

fn problem_keys(text: &str) -> Vec<String> {
    match Config::from_toml(text) {
        Err(ConfigError::Invalid(problems)) => problems.into_iter().map(|p| p.key).collect(),
        Ok(_) => Vec::new(),
        Err(other) => panic!("expected validation problems, got {other}"),
    }
}

#[test]
fn encryption_defaults_turn_both_methods_on_without_organisation_keys() {
    let c = Config::from_toml("").expect("defaults are valid");
    let p = &c.pgp;
    assert!(p.enabled && p.wkd && p.openpgpkey);
    assert_eq!(p.wkd_https_port, 443);
    assert_eq!(p.wkd_timeout.0.as_secs(), 10);
    assert_eq!(p.subject, "Encrypted message");
    assert_eq!((&p.signing_key, &p.archive_key), (&None, &None));
    let s = &c.smime;
    assert!(s.enabled && s.smimea);
    assert_eq!(s.cipher, SmimeCipher::Aes256Gcm);
    assert_eq!(s.ca_file, None);
    assert!(s.crl_files.is_empty() && s.cbc_for.is_empty());
    assert_eq!((&s.signing_cert, &s.signing_key), (&None, &None));
    assert!(c.openpgpkey_lookups() && c.smimea_lookups());
}

#[test]
fn empty_paths_mean_no_file_and_set_paths_are_kept() {
    let c = Config::from_toml(
        "[pgp]\nsigning_key = \"\"\narchive_key = \"/etc/sealgate/archive.asc\"\n\
         [smime]\nca_file = \"\"\ncipher = \"aes-256-cbc\"\n\
         signing_cert = \"/etc/sealgate/smime.pem\"\nsigning_key = \"/etc/sealgate/smime.key\"\n",
    )
    .expect("valid");
    assert_eq!(c.pgp.signing_key, None);
    assert_eq!(
        c.pgp.archive_key.as_deref(),
        Some(Path::new("/etc/sealgate/archive.asc"))
    );
    assert_eq!(c.smime.ca_file, None);
    assert_eq!(c.smime.cipher, SmimeCipher::Aes256Cbc);
    assert!(c.smime.signing_cert.is_some() && c.smime.signing_key.is_some());
}

#[test]
fn dns_lookups_of_keys_need_dnssec() {
    let c = Config::from_toml("[dns]\ndnssec = false\n").expect("valid");
    assert!(!c.openpgpkey_lookups() && !c.smimea_lookups());
    let c =
        Config::from_toml("[pgp]\nopenpgpkey = false\n[smime]\nenabled = false\n").expect("valid");
    assert!(!c.openpgpkey_lookups() && !c.smimea_lookups());
}

#[test]
fn unknown_keys_and_ciphers_in_the_encryption_sections_are_refused_by_name() {
    let err = Config::from_toml("[pgp]\nwkd_port = 443\n").expect_err("typo");
    assert!(err.to_string().contains("wkd_port"), "{err}");
    let err = Config::from_toml("[smime]\ncipher = \"3des\"\n").expect_err("unknown cipher");
    let text = err.to_string();
    assert!(
        text.contains("cipher") && text.contains("aes-256-gcm"),
        "{text}"
    );
}

#[test]
fn every_encryption_rule_violation_is_reported_with_its_key() {
    let keys = problem_keys(
        "[pgp]\nwkd_https_port = 0\nwkd_timeout = \"0s\"\nsubject = \"Secure \u{e9}\"\n\
         [smime]\nsubject = \"a\\r\\nBcc: x@example.net\"\n\
         signing_cert = \"/etc/sealgate/smime.pem\"\n\
         crl_files = [\"\"]\ncbc_for = [\"example.net\", \"bob@\", \"two words.net\", \"nodot\"]\n",
    );
    assert_eq!(
        keys,
        [
            "pgp.wkd_https_port",
            "pgp.wkd_timeout",
            "pgp.subject",
            "smime.subject",
            "smime.signing_key",
            "smime.crl_files[0]",
            "smime.cbc_for[1]",
            "smime.cbc_for[2]",
            "smime.cbc_for[3]",
        ]
    );
}

#[test]
fn subjects_are_printable_ascii_of_bounded_length() {
    assert_eq!(check_subject("Encrypted message"), Ok(()));
    assert!(check_subject("").is_err());
    assert!(check_subject("   ").is_err());
    assert!(check_subject("tab\there").is_err());
    assert!(check_subject(&"x".repeat(MAX_SUBJECT)).is_ok());
    assert!(check_subject(&"x".repeat(MAX_SUBJECT + 1)).is_err());
}

#[test]
fn cbc_for_takes_addresses_and_domains() {
    for ok in [
        "example.net",
        "Bob+tag@Example.NET",
        "mail.xn--bcher-kva.example",
    ] {
        assert_eq!(check_address_or_domain(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "@example.net",
        "a@b@example.net",
        "example",
        "bob@example..net",
    ] {
        assert!(check_address_or_domain(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_example_documents_every_encryption_key_with_its_default() {
    let text = include_str!("../../../config/sealgate.example.toml");
    let example: Config = toml::from_str(text).expect("example parses");
    let table: toml::Table = text.parse().expect("example is TOML");
    let keys = |section: &str| -> Vec<String> {
        let mut k: Vec<String> = table[section]
            .as_table()
            .expect("section")
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys("pgp"),
        [
            "archive_key",
            "enabled",
            "openpgpkey",
            "signing_key",
            "subject",
            "wkd",
            "wkd_https_port",
            "wkd_timeout"
        ]
    );
    assert_eq!(
        keys("smime"),
        [
            "ca_file",
            "cbc_for",
            "cipher",
            "crl_files",
            "enabled",
            "signing_cert",
            "signing_key",
            "smimea",
            "subject"
        ]
    );
    let defaults = Config::default();
    assert_eq!(format!("{:?}", example.pgp), format!("{:?}", defaults.pgp));
    assert_eq!(
        format!("{:?}", example.smime),
        format!("{:?}", defaults.smime)
    );
}
