//! `sealgate config check` reads the `[pgp]` and `[smime]` files and names each unusable one.

use sealgate_testkit::gpg::{GpgHome, KeySpec};
use sealgate_testkit::smime::{EmailCertSpec, issue_email, revocation_list};
use sealgate_testkit::tls::TestCa;

use super::{path_str, run_with_config};

#[test]
fn config_check_names_each_unusable_encryption_file_and_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gpg = GpgHome::new();
    let expired = gpg.gen_key("archive@clinic.example", KeySpec::Expired);
    let archive = dir.path().join("archive.asc");
    std::fs::write(&archive, gpg.export_public(&expired, true)).expect("write");
    let garbage_ca = dir.path().join("garbage-ca.pem");
    std::fs::write(&garbage_ca, "not a certificate\n").expect("write");
    let missing_key = dir.path().join("missing-signing.key");
    let missing_crl = dir.path().join("missing.crl");
    let ca = TestCa::new();
    let ca_file = ca.write_to(dir.path());
    let cases = [
        (
            format!("[pgp]\nsigning_key = {missing_key:?}\narchive_key = {archive:?}\n"),
            vec![
                ("pgp.signing_key", &missing_key, "No such file"),
                ("pgp.archive_key", &archive, "expired at "),
            ],
        ),
        (
            format!("[smime]\nca_file = {garbage_ca:?}\n"),
            vec![("smime.ca_file", &garbage_ca, "")],
        ),
        (
            format!("[smime]\nca_file = {ca_file:?}\ncrl_files = [{missing_crl:?}]\n"),
            vec![("smime.crl_files[0]", &missing_crl, "No such file")],
        ),
    ];
    for (text, expected) in cases {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, &text).expect("write config");
        let run = run_with_config(&bad, &["config", "check", path_str(&bad)]);
        assert_eq!(run.code, Some(1), "{text}\n{}", run.describe());
        for (key, file, why) in expected {
            let shown = file.display().to_string();
            assert!(
                run.stderr
                    .lines()
                    .any(|l| l.contains(key) && l.contains(&shown) && l.contains(why)),
                "{key} {shown} {why}\n{}",
                run.describe()
            );
        }
    }

    // Usable files: a gpg secret key, a current archive key, the CA, an S/MIME signer.
    let signer = gpg.gen_key("relay@clinic.example", KeySpec::Default);
    let signing_key = dir.path().join("signing.gpg");
    std::fs::write(&signing_key, gpg.export_secret(&signer)).expect("write");
    std::fs::write(&archive, gpg.export_public(&signer, true)).expect("write");
    let org = issue_email(&ca, "relay@clinic.example", EmailCertSpec::default());
    let (org_cert, org_key) = org.write_to(dir.path(), "org");
    let crl = dir.path().join("crl.pem");
    std::fs::write(&crl, revocation_list(&ca, &[])).expect("write");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[pgp]\nsigning_key = {signing_key:?}\narchive_key = {archive:?}\n\
             [smime]\nca_file = {ca_file:?}\ncrl_files = [{crl:?}]\n\
             signing_cert = {org_cert:?}\nsigning_key = {org_key:?}\n"
        ),
    )
    .expect("write config");
    let run = run_with_config(&good, &["config", "check", path_str(&good)]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
}

/// `config check` shows the effective chain of every policy rule, and refuses a bad chain.
#[test]
fn config_check_shows_each_rules_chain_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[policy]\npreference = [\"tls-verified\", \"pgp\", \"smime\", \"portal\"]\n\
         [[policy.addresses]]\nkey = \"bob@partner.example\"\nmethod = \"pgp\"\n\
         [[policy.domains]]\nkey = \"hospital.example\"\nchain = [\"smime\", \"tls-verified\"]\n",
    )
    .expect("write");
    let run = run_with_config(&good, &["config", "check", path_str(&good)]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    for line in [
        "  org default: tls-verified > pgp > smime > portal (the preference)",
        "  domain hospital.example: smime > tls-verified > portal (the rule's own chain)",
        "  address bob@partner.example: pgp > smime > portal \
         (forced end-to-end method: no transport-only method follows it)",
    ] {
        assert!(run.lines().contains(&line), "{line:?}\n{}", run.describe());
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[policy]\n[[policy.addresses]]\nkey = \"bob@partner.example\"\nchain = [\"pgp\", \"pgp\"]\n",
    )
    .expect("write");
    let run = run_with_config(&bad, &["config", "check", path_str(&bad)]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(
        run.stderr.contains(
            "policy: address override \"bob@partner.example\": chain must name at least one method, each once"
        ),
        "{}",
        run.describe()
    );
}

/// The default chain holds `tls-authenticated` before the portal; `config check` names every
/// misuse of `protecting` and an order that puts authenticated before verified TLS.
#[test]
fn config_check_shows_authenticated_tls_in_the_default_chain_and_refuses_its_misuse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[policy]\n[policy.content]\nchain = [\"pgp\", \"portal\"]\n",
    )
    .expect("write");
    let run = run_with_config(&good, &["config", "check", path_str(&good)]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    for line in [
        "  org default: tls-verified > pgp > smime > tls-authenticated > portal (the preference)",
        "  content triggers: pgp > portal (the rule's own chain)",
    ] {
        assert!(run.lines().contains(&line), "{line:?}\n{}", run.describe());
    }

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[policy]\npreference = [\"tls-authenticated\", \"tls-verified\", \"portal\"]\n\
         protecting = [\"tls-opportunistic\", \"tls-verified\"]\n",
    )
    .expect("write");
    let run = run_with_config(&bad, &["config", "check", path_str(&bad)]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    for problem in [
        "protecting: tls-opportunistic never satisfies protection level required",
        "protecting: the portal must be listed",
        "preference: tls-authenticated must come after tls-verified",
    ] {
        assert!(
            run.stderr.contains(problem),
            "{problem:?}\n{}",
            run.describe()
        );
    }
}
