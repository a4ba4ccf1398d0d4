//! A PGP/MIME copy leaves DKIM-signed: the signature is made over the encrypted message as
//! it goes out (after the change), and dkimpy verifies it with the key from the lab's DNS.

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::gpg::{GpgHome, KeySpec};

use super::*;
use crate::dkim::{dkim_key, dkimpy, evidence_mentions, keygen, txt};
use crate::inspect::fresh_db;

#[test]
fn a_pgp_mime_copy_is_dkim_signed_after_encryption() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (rsa_file, rsa) = keygen(keys.path(), "clinic.test", "s1", "rsa-sha256");
    let lab = SecureLab::builder()
        .signed(
            "example.test",
            "@ IN MX 10 mx\nmx IN A 127.0.0.5\nopenpgpkey IN A 127.0.0.6\n",
        )
        .unsigned("clinic.test", &txt("s1._domainkey", &rsa))
        .https(WKD_IP, &["openpgpkey.example.test"])
        .start();
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let jane = GpgHome::new();
    let fpr = jane.gen_key(RCPT, KeySpec::Default);
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(
        &db.url,
        "",
        &dkim_key("clinic.test", "s1", "rsa-sha256", &rsa_file),
    );
    import(
        &daemon,
        &write(dir.path(), "jane.asc", jane.export_public(&fpr, true)),
    );

    let id = send(&daemon, dir.path(), RCPT);
    let got = received(&lab, &sink, &daemon);
    assert!(
        header(&got.data).contains("multipart/encrypted"),
        "{}",
        header(&got.data)
    );
    let (ok, sigs) = dkimpy(lab.dns.addr, &got.data);
    assert!(ok, "dkimpy on the PGP/MIME copy: {sigs:?}");
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    assert_eq!(sigs[0]["d"], "clinic.test");
    assert!(
        jane.decrypt(&got.data).ok,
        "the signed copy no longer decrypts"
    );
    let decision = first(&inspect(&daemon), &id, "decision");
    assert_eq!(decision["method"], "pgp", "{decision}");
    assert!(
        evidence_mentions(&decision, "dkim: signed d=clinic.test s=s1"),
        "{decision}"
    );
}
