//! PGP/MIME to an imported OpenPGP key: GnuPG decrypts it to the original body and
//! attachments, verifies the organisation's signature, and the archive key opens it too.

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::gpg::{GpgHome, KeySpec};

use super::*;
use crate::inspect::fresh_db;

fn an_imported_openpgp_key_gets_pgp_mime_that_gnupg_decrypts_and_verifies(backend: TestBackend) {
    let lab = lab("");
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    // The recipient, the organisation's signing key and its archive key, all made by GnuPG.
    let jane = GpgHome::new();
    let jane_fpr = jane.gen_key(RCPT, KeySpec::Default);
    let org = GpgHome::new();
    let signer = org.gen_key("security@clinic.test", KeySpec::Rsa3072);
    let archive = org.gen_key("archive@clinic.test", KeySpec::Default);
    let signing_key = write(dir.path(), "org.key", org.export_secret(&signer));
    let archive_cert = write(dir.path(), "archive.asc", org.export_public(&archive, true));
    jane.import(&org.export_public(&signer, true));

    let db = fresh_db(backend);
    let pgp = format!(
        "[pgp]\nsigning_key = {:?}\narchive_key = {:?}\n",
        signing_key.display().to_string(),
        archive_cert.display().to_string()
    );
    let daemon = lab.daemon_with(&db.url, "", &pgp);
    let key_file = write(dir.path(), "jane.asc", jane.export_public(&jane_fpr, true));
    let imported = import(&daemon, &key_file);
    assert!(
        imported.stdout.contains(&jane_fpr),
        "{}",
        imported.describe()
    );

    let id = send(&daemon, dir.path(), RCPT);
    let got = received(&lab, &sink, &daemon);
    assert!(got.tls, "sent without STARTTLS although the MX offers it");
    assert_nothing_leaks(&got);
    let h = header(&got.data);
    assert!(
        h.contains("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\""),
        "{h}"
    );

    let opened = jane.decrypt(&got.data);
    assert!(opened.ok, "gpg could not decrypt: {}", opened.stderr);
    assert_original_inside(&opened.plaintext);
    assert!(opened.good_sig(), "no good signature: {:?}", opened.status);
    assert!(
        opened.valid_sig_by(&signer),
        "not signed by {signer}: {:?}",
        opened.status
    );
    assert!(
        !opened.stderr.contains("not integrity protected"),
        "{}",
        opened.stderr
    );
    // The organisation's archive can read it as well.
    let archived = org.decrypt(&got.data);
    assert!(
        archived.ok,
        "the archive key cannot decrypt: {}",
        archived.stderr
    );
    assert_eq!(archived.plaintext, opened.plaintext);

    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    assert_eq!(
        kinds_for(&db, &id, RCPT),
        ["received", "decision", "attempt", "delivered"]
    );
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "pgp", "{decision}");
    assert_eq!(decision["level"], "required", "{decision}");
    assert!(
        mentions(
            &decision,
            "evidence",
            &format!("pgp: key {jane_fpr} from store: usable")
        ),
        "{decision}"
    );
    assert!(
        mentions(&decision, "evidence", "pgp: encrypted:"),
        "{decision}"
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["method"], "pgp", "{attempt}");
    // A key from the operator's store is no discovery.
    assert!(!db.audit().iter().any(|e| e.kind == "key_discovered"));
}

on_both_backends!(an_imported_openpgp_key_gets_pgp_mime_that_gnupg_decrypts_and_verifies);
