//! OpenPGP keys made by GnuPG: imported (armored, binary, secret), listed, removed, refused.

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::gpg::{GpgHome, KeySpec};

use super::{Desk, OPERATOR, events, path_str, row, rows};

fn pgp_keys_made_by_gpg_are_imported_listed_and_removed(backend: TestBackend) {
    let desk = Desk::new(backend);
    let gpg = GpgHome::new();
    let bob = gpg.gen_key("Bob@Example.NET", KeySpec::Default);
    let carol = gpg.gen_key("carol@example.net", KeySpec::Rsa3072);

    let armored = desk.file("bob.asc", gpg.export_public(&bob, true));
    let run = desk.keys_ok(&["import", path_str(&armored)]);
    let lines = run.lines();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    assert!(
        lines[0].starts_with(&format!(
            "imported bob@example.net pgp {bob} expires=never usable: "
        )),
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains("secret"), "{}", run.describe());

    // A binary secret key: only the public part is stored, and the operator is told.
    let secret = desk.file("carol.gpg", gpg.export_secret(&carol));
    let run = desk.keys_ok(&["import", path_str(&secret)]);
    assert!(
        run.stderr
            .contains("holds secret key material: only the public part is stored"),
        "{}",
        run.describe()
    );
    assert_eq!(run.lines().len(), 1, "{}", run.describe());
    assert_stored_material_is_public_only(&desk, &gpg, &carol, backend);

    let listed = desk.listed(&[]);
    assert_eq!(
        rows(&listed),
        [
            row("bob@example.net", "pgp", &bob),
            row("carol@example.net", "pgp", &carol)
        ]
    );
    for r in &listed {
        assert_eq!(r["usable"], true, "{r}");
        assert_eq!(
            (r["source"].as_str(), r["expires"].is_null()),
            (Some("import"), true)
        );
        assert!(
            r["validity"]
                .as_str()
                .is_some_and(|v| v.starts_with("usable: ")),
            "{r}"
        );
    }
    let text = desk.keys_ok(&["list", "--address", "CAROL@example.net"]);
    assert_eq!(text.lines().len(), 1, "{}", text.describe());
    assert!(
        text.lines()[0].starts_with(&format!(
            "carol@example.net pgp {carol} source=import expires=never usable: "
        )),
        "{}",
        text.describe()
    );

    // As gpg prints it: lowercase is fine too, and spaces are ignored.
    let typed = bob
        .to_lowercase()
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let run = desk.keys_ok(&["remove", &typed]);
    assert_eq!(run.lines(), [format!("removed bob@example.net pgp {bob}")]);
    let again = desk.keys(&["remove", &bob]);
    assert_eq!(again.code, Some(1), "{}", again.describe());
    assert!(
        again
            .stderr
            .contains(&format!("no stored key or certificate {bob}")),
        "{}",
        again.describe()
    );
    assert_eq!(
        rows(&desk.listed(&[])),
        [row("carol@example.net", "pgp", &carol)]
    );

    let audit = desk.audit();
    let imported = events(&audit, "key_imported");
    assert_eq!(imported.len(), 2, "{audit:?}");
    assert_eq!(imported[0]["fingerprint"], bob.as_str());
    assert_eq!(
        imported[0]["addresses"],
        serde_json::json!(["bob@example.net"])
    );
    assert_eq!(imported[0]["operator"], OPERATOR);
    assert!(
        imported[0]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("usable: "))
    );
    let removed = events(&audit, "key_removed");
    assert_eq!(
        removed.len(),
        1,
        "one event, none for the removal that matched nothing"
    );
    assert_eq!(removed[0]["fingerprint"], bob.as_str());
    assert_eq!(
        removed[0]["addresses"],
        serde_json::json!(["bob@example.net"])
    );
    let verify = desk.run(&["audit", "verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.describe());
}
on_both_backends!(pgp_keys_made_by_gpg_are_imported_listed_and_removed);

/// gpg, as the oracle, finds no secret key packet in what the store kept for `fpr`.
fn assert_stored_material_is_public_only(
    desk: &Desk,
    gpg: &GpgHome,
    fpr: &str,
    backend: TestBackend,
) {
    let rt = crate::inspect::runtime();
    let stored = rt.block_on(async {
        let url = desk.db.url.clone();
        let store = sealgate_store::Store::connect(&url, 1, std::time::Duration::from_secs(10))
            .await
            .expect("connect");
        store.keys_list().await.expect("keys")
    });
    let row = stored
        .iter()
        .find(|k| k.fingerprint == fpr)
        .unwrap_or_else(|| panic!("{fpr} stored on {backend:?}"));
    let packets = gpg.run(&["--list-packets"], Some(&row.material));
    assert!(packets.ok, "{}", packets.stderr);
    assert!(
        packets.stdout.contains(":public key packet:"),
        "{}",
        packets.stdout
    );
    assert!(!packets.stdout.contains("secret"), "{}", packets.stdout);
}

fn unusable_pgp_keys_are_refused_and_nothing_is_stored(backend: TestBackend) {
    let desk = Desk::new(backend);
    let gpg = GpgHome::new();
    for (email, spec, problem) in [
        ("old@example.net", KeySpec::Expired, "expired at "),
        ("gone@example.net", KeySpec::Revoked, "revoked"),
        (
            "signer@example.net",
            KeySpec::SigningOnly,
            "no encryption-capable key",
        ),
    ] {
        let fpr = gpg.gen_key(email, spec);
        let file = desk.file(&format!("{email}.asc"), gpg.export_public(&fpr, true));
        desk.refused(&file, &[], &fpr, problem);
    }

    // A good key beside an expired one: the whole file is refused.
    let good = gpg.gen_key("dan@example.net", KeySpec::Default);
    let old = gpg.fingerprint_of("old@example.net");
    let mut both = gpg.export_public(&good, false);
    both.extend(gpg.export_public(&old, false));
    let run = desk.refused(&desk.file("both.gpg", both), &[], &old, "expired at ");
    assert!(
        run.stderr.contains("nothing imported"),
        "{}",
        run.describe()
    );

    // A usable key, but not for the address asked for.
    let alone = desk.file("dan.asc", gpg.export_public(&good, true));
    let run = desk.refused(
        &alone,
        &["--address", "erin@example.net"],
        &good,
        "binds none of erin@example.net",
    );
    assert!(
        run.stderr
            .contains("erin@example.net: no key or certificate in the file binds it"),
        "{}",
        run.describe()
    );
    assert!(desk.listed(&[]).is_empty());
    assert!(events(&desk.audit(), "key_imported").is_empty());

    // With the address it binds, it is stored for that address only.
    let run = desk.keys_ok(&["import", path_str(&alone), "--address", "DAN@example.net"]);
    assert_eq!(run.lines().len(), 1, "{}", run.describe());
    assert_eq!(
        rows(&desk.listed(&[])),
        [row("dan@example.net", "pgp", &good)]
    );
}
on_both_backends!(unusable_pgp_keys_are_refused_and_nothing_is_stored);
