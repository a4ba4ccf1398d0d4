//! A key usable when the message was first tried but expired by the retry is not used: the
//! recipient falls to the next method of its chain (here S/MIME), and the decision says why.

use sealgate_testkit::gpg::GpgHome;
use sealgate_testkit::smime::{EmailCertSpec, cms_decrypt, issue_email};

use super::*;
use crate::inspect::fresh_db;

#[test]
fn a_key_that_expires_before_the_retry_falls_to_s_mime() {
    let lab = lab("");
    let dir = tempfile::tempdir().expect("tempdir");
    let jane = GpgHome::new();
    // Expires ten seconds from now (GnuPG's own "seconds=" expiry).
    let made = jane.run(
        &[
            "--quick-gen-key",
            &format!("Jane <{RCPT}>"),
            "future-default",
            "default",
            "seconds=10",
        ],
        None,
    );
    assert!(made.ok, "{}", made.stderr);
    let expires = std::time::Instant::now() + Duration::from_secs(10);
    let fpr = jane.fingerprint_of(RCPT);
    let cert = issue_email(&lab.ca, RCPT, EmailCertSpec::default());

    let db = fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let smime = format!(
        "[smime]\nca_file = {:?}\n",
        lab.ca_file().display().to_string()
    );
    let daemon = lab.daemon_with(&db.url, "", &smime);
    import(
        &daemon,
        &write(dir.path(), "jane.asc", jane.export_public(&fpr, true)),
    );
    import(&daemon, &cert.write_to(dir.path(), "jane").0);

    // No MX listening yet: the PGP attempt is deferred.
    let id = send(&daemon, dir.path(), RCPT);
    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "deferred");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "pgp", "{decision}");

    // Once the key has expired, the MX comes up.
    std::thread::sleep(expires.saturating_duration_since(std::time::Instant::now()));
    std::thread::sleep(Duration::from_secs(1));
    let sink = mx(&lab);
    let got = received(&lab, &sink, &daemon);
    let inner = cms_decrypt(&got.data, &cert.cert_pem, &cert.key_pem)
        .unwrap_or_else(|e| panic!("not S/MIME to jane's certificate: {e}"));
    assert_original_inside(&inner);

    eventually(WAIT, "the delivery", || {
        kinds_for(&db, &id, RCPT).contains(&"delivered".to_owned())
    });
    let decisions = events(&db, &id, "decision");
    let last = decisions.last().expect("decisions");
    assert_eq!(last["method"], "smime", "{last}");
    assert!(
        mentions(
            last,
            "evidence",
            &format!("pgp: key {fpr} from store: unusable: expired")
        ),
        "{last}"
    );
}
