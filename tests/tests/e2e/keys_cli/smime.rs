//! S/MIME certificates from a test CA: imported (PEM with its key, DER), listed and
//! re-validated against the CRL, removed, refused.

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::smime::{
    EmailCertSpec, EmailKey, Usage, Validity, issue_email, revocation_list,
};
use sealgate_testkit::tls::TestCa;

use super::{Desk, events, path_str, row, rows, sha256_hex};

fn smime_certificates_are_imported_listed_and_removed(backend: TestBackend) {
    let desk = Desk::new(backend);
    // PEM, with its private key in the same file, the address in mixed case.
    let dana = issue_email(&desk.ca, "Dana@Example.NET", EmailCertSpec::default());
    let dana_fpr = sha256_hex(&dana.cert_der);
    let pem = desk.file("dana.pem", format!("{}{}", dana.cert_pem, dana.key_pem));
    let run = desk.keys_ok(&["import", path_str(&pem)]);
    assert_eq!(run.lines().len(), 1, "{}", run.describe());
    assert!(
        run.lines()[0].starts_with(&format!(
            "imported dana@example.net smime {dana_fpr} expires="
        )),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("only the public part is stored"),
        "{}",
        run.describe()
    );

    // DER, RSA.
    let spec = EmailCertSpec {
        key: EmailKey::Rsa2048,
        ..EmailCertSpec::default()
    };
    let frank = issue_email(&desk.ca, "frank@example.net", spec);
    let frank_fpr = sha256_hex(&frank.cert_der);
    let der = desk.file("frank.der", &frank.cert_der);
    let run = desk.keys_ok(&["import", path_str(&der)]);
    assert!(!run.stderr.contains("secret"), "{}", run.describe());

    // A certificate sent with its chain: the CA certificate is skipped, with a note.
    let gina = issue_email(&desk.ca, "gina@example.net", EmailCertSpec::default());
    let gina_fpr = sha256_hex(&gina.cert_der);
    let chain = desk.file(
        "gina-chain.pem",
        format!("{}{}", gina.cert_pem, desk.ca.cert_pem),
    );
    let run = desk.keys_ok(&["import", path_str(&chain)]);
    assert_eq!(run.lines().len(), 1, "{}", run.describe());
    assert!(run.lines()[0].contains(&gina_fpr), "{}", run.describe());
    assert!(
        run.stderr.contains("skipped CA certificate"),
        "{}",
        run.describe()
    );

    let listed = desk.listed(&[]);
    assert_eq!(
        rows(&listed),
        [
            row("dana@example.net", "smime", &dana_fpr),
            row("frank@example.net", "smime", &frank_fpr),
            row("gina@example.net", "smime", &gina_fpr)
        ]
    );
    assert!(
        listed
            .iter()
            .all(|r| r["usable"] == true && r["expires"].is_string()),
        "{listed:?}"
    );

    // Listing validates now: once the CRL revokes frank's certificate, it shows as unusable.
    let crl = revocation_list(&desk.ca, &[&desk.revoked, &frank]);
    desk.file("crl.pem", crl);
    let frank_row = desk.listed(&["--address", "frank@example.net"]);
    assert_eq!(frank_row.len(), 1, "{frank_row:?}");
    assert_eq!(frank_row[0]["usable"], false, "{frank_row:?}");
    assert!(
        frank_row[0]["validity"]
            .as_str()
            .is_some_and(|v| v.starts_with("unusable: revoked")),
        "{frank_row:?}"
    );

    let run = desk.keys(&["remove", &dana_fpr, "--address", "someone@example.net"]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let run = desk.keys_ok(&[
        "remove",
        &dana_fpr.to_uppercase(),
        "--address",
        "dana@example.net",
    ]);
    assert_eq!(
        run.lines(),
        [format!("removed dana@example.net smime {dana_fpr}")]
    );
    assert_eq!(
        rows(&desk.listed(&[])),
        [
            row("frank@example.net", "smime", &frank_fpr),
            row("gina@example.net", "smime", &gina_fpr)
        ]
    );

    let audit = desk.audit();
    let imported = events(&audit, "key_imported");
    assert_eq!(imported.len(), 3, "{audit:?}");
    assert_eq!(imported[0]["kind"], "smime");
    assert_eq!(
        imported[0]["addresses"],
        serde_json::json!(["dana@example.net"])
    );
    assert!(imported[0]["expires"].is_string(), "{:?}", imported[0]);
    let removed = events(&audit, "key_removed");
    assert_eq!(removed.len(), 1, "{audit:?}");
    assert_eq!(removed[0]["fingerprint"], dana_fpr.as_str());
}
on_both_backends!(smime_certificates_are_imported_listed_and_removed);

fn unusable_smime_certificates_are_refused(backend: TestBackend) {
    let desk = Desk::new(backend);
    let expired = EmailCertSpec {
        validity: Validity::Expired,
        ..EmailCertSpec::default()
    };
    let signing_only = EmailCertSpec {
        usage: Usage::SigningOnly,
        ..EmailCertSpec::default()
    };
    let stranger = TestCa::named("Not Trusted CA");
    let cases = [
        (
            "expired",
            issue_email(&desk.ca, "old@example.net", expired),
            "expired at ",
        ),
        ("revoked", desk.revoked.clone(), "revoked"),
        (
            "signing-only",
            issue_email(&desk.ca, "signer@example.net", signing_only),
            "no encryption-capable key",
        ),
        (
            "untrusted",
            issue_email(&stranger, "far@example.net", EmailCertSpec::default()),
            "untrusted",
        ),
    ];
    for (name, cert, problem) in cases {
        let file = desk.file(&format!("{name}.pem"), &cert.cert_pem);
        desk.refused(&file, &[], &sha256_hex(&cert.cert_der), problem);
    }
    assert!(desk.listed(&[]).is_empty());
    assert!(events(&desk.audit(), "key_imported").is_empty());
}
on_both_backends!(unusable_smime_certificates_are_refused);
