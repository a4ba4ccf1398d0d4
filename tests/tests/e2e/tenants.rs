//! Tenant binding (`[[relay.tenant]]`) played as Microsoft 365 would: a client presenting a
//! certificate for mail.protection.outlook.com (from the test CA, as the `[tls] client_ca_file`)
//! from the tenant's published networks, with the tenant id header Exchange Online stamps and
//! the secret header a transport rule adds. Only the client with every factor relays; each
//! refusal names the factor it lacks (never the secret), and nothing of a refused client is
//! queued. The secret header never leaves Sealgate.

use sealgate_testkit::tls::{Issued, TestCa};
use sealgate_tests::{Daemon, DaemonOpts, PySend, py_send};

use crate::inspect::Inspect;

const TENANT_ID: &str = "7d0c1e52-4b4e-4b8a-9c1a-2f7e3d9a0001";
const FOREIGN_ID: &str = "0b9a5c3e-1111-4222-8333-944455556666";
const SECRET: &str = "s3cret-from-the-transport-rule-42";
const ID_HEADER: &str = "X-MS-Exchange-CrossTenant-Id";

struct World {
    daemon: Daemon,
    dir: tempfile::TempDir,
    ca_file: String,
    microsoft: (String, String),
    wrong_name: (String, String),
    other_ca: (String, String),
}

fn write(issued: &Issued, dir: &std::path::Path, name: &str) -> (String, String) {
    let (cert, key) = issued.write_to(dir, name);
    (cert.display().to_string(), key.display().to_string())
}

fn world(relay_networks: &str) -> World {
    let ca = TestCa::new();
    let server = ca.issue(&["relay.example.test", "127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_to(dir.path()).display().to_string();
    let microsoft = write(
        &ca.issue(&[
            "mail.protection.outlook.com",
            "*.mail.protection.outlook.com",
        ]),
        dir.path(),
        "microsoft",
    );
    let wrong_name = write(&ca.issue(&["mx.other-cloud.example"]), dir.path(), "other");
    let stranger = TestCa::named("Some Other CA");
    let other_ca = write(
        &stranger.issue(&["mail.protection.outlook.com"]),
        dir.path(),
        "stranger",
    );
    // Microsoft's published ranges, as an operator would download them: here only 127.0.0.2.
    let ranges = dir.path().join("m365-ranges.txt");
    std::fs::write(&ranges, "# Exchange Online (test)\n127.0.0.2/32\n").expect("write");
    let secret = dir.path().join("tenant.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write");
    let extra = format!(
        "[tls]\nclient_ca_file = \"{ca_file}\"\n\
         [relay]\nnetworks = [\"{relay_networks}\"]\n\
         [[relay.tenant]]\nname = \"clinic-m365\"\nnetworks_files = [\"{}\"]\n\
         certificate_name = \"mail.protection.outlook.com\"\nms_tenant_id = \"{TENANT_ID}\"\n\
         secret_header = \"X-Sealgate-Tenant\"\nsecret_file = \"{}\"\nsenders = [\"@clinic.example\"]\n",
        ranges.display(),
        secret.display()
    );
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&server),
        extra_toml: extra,
        ..DaemonOpts::default()
    });
    World {
        daemon,
        dir,
        ca_file,
        microsoft,
        wrong_name,
        other_ca,
    }
}

/// One message over STARTTLS from `source`, presenting `cert`, with `headers`.
fn send(
    w: &World,
    source: &str,
    cert: Option<&(String, String)>,
    from: &str,
    headers: &[String],
) -> PySend {
    let mut args: Vec<String> = [
        "--starttls",
        "--cafile",
        &w.ca_file,
        "--servername",
        "relay.example.test",
        "--source",
        source,
        "--from",
        from,
        "--to",
        "patient@example.org",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some((c, k)) = cert {
        args.extend([
            "--cert".to_owned(),
            c.clone(),
            "--key".to_owned(),
            k.clone(),
        ]);
    }
    for h in headers {
        args.extend(["--header".to_owned(), h.clone()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    py_send(w.daemon.addr("starttls"), &refs)
}

fn tenant_headers(id: &str, secret: &str) -> Vec<String> {
    vec![
        format!("{ID_HEADER}: {id}"),
        format!("X-Sealgate-Tenant: {secret}"),
    ]
}

/// The refusal: stage, code and text.
fn refusal(sent: &PySend) -> (String, u64, String) {
    let r = &sent.results[0];
    (
        r["stage"].as_str().unwrap_or_default().to_owned(),
        r["code"].as_u64().unwrap_or_default(),
        r["text"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn only_the_tenant_with_every_factor_relays_and_each_refusal_names_its_factor() {
    let w = world("10.255.0.0/16");
    let db = Inspect::new(
        w.daemon.db_url(),
        Some(&w.daemon.data_dir().join("seal.key")),
    );
    let right = tenant_headers(TENANT_ID, SECRET);

    // The right tenant: every factor holds.
    let ok = send(
        &w,
        "127.0.0.2",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &right,
    );
    ok.assert_all_queued();
    let id = ok.queue_ids().remove(0);
    let received = &db.received_events()[&id];
    assert_eq!(received["tenant"]["name"], "clinic-m365", "{received}");
    assert_eq!(
        received["tenant"]["factors"],
        serde_json::json!(["network", "certificate", "ms-tenant-id", "secret-header"])
    );
    let body = db.body(&id);
    assert!(
        !body.contains(SECRET) && !body.contains("X-Sealgate-Tenant"),
        "the secret is stored:\n{body}"
    );
    assert!(
        body.contains(&format!("{ID_HEADER}: {TENANT_ID}")),
        "{body}"
    );

    // Another tenant of the same cloud: same address, same certificate, its own tenant id.
    let foreign = send(
        &w,
        "127.0.0.2",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &tenant_headers(FOREIGN_ID, "guess"),
    );
    assert_eq!(
        refusal(&foreign),
        (
            "data".into(),
            550,
            format!("5.7.1 Relay refused: {ID_HEADER} does not name a permitted tenant")
        ),
        "{}",
        foreign.describe()
    );
    // The tenant id header missing.
    let missing = send(
        &w,
        "127.0.0.2",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &right[1..],
    );
    assert_eq!(
        refusal(&missing),
        (
            "data".into(),
            550,
            format!("5.7.1 Relay refused: no {ID_HEADER} header")
        ),
        "{}",
        missing.describe()
    );
    // The secret header wrong: named, never echoed.
    let wrong_secret = send(
        &w,
        "127.0.0.2",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &tenant_headers(TENANT_ID, "not-the-secret-at-all"),
    );
    let (stage, code, text) = refusal(&wrong_secret);
    assert_eq!(
        (stage.as_str(), code),
        ("data", 550),
        "{}",
        wrong_secret.describe()
    );
    assert_eq!(
        text,
        "5.7.1 Relay refused: the X-Sealgate-Tenant header is wrong"
    );
    // A certificate for another name, one from another CA, none at all: refused at RCPT.
    for (cert, factor) in [
        (
            Some(&w.wrong_name),
            "the TLS client certificate is not valid for the expected name",
        ),
        (
            Some(&w.other_ca),
            "the TLS client certificate does not chain to a trusted CA",
        ),
        (None, "a TLS client certificate is required"),
    ] {
        let sent = send(&w, "127.0.0.2", cert, "ehr@clinic.example", &right);
        assert_eq!(
            refusal(&sent),
            (
                "rcpt".into(),
                554,
                format!("5.7.1 Relay access denied: {factor}")
            ),
            "{}",
            sent.describe()
        );
    }
    // From outside the tenant's networks: the client is no tenant's.
    let outside = send(
        &w,
        "127.0.0.1",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &right,
    );
    let (stage, code, text) = refusal(&outside);
    assert_eq!(
        (stage.as_str(), code),
        ("rcpt", 554),
        "{}",
        outside.describe()
    );
    assert!(text.starts_with("5.7.1 Relay access denied"), "{text}");
    // The right tenant, a sender it may not use.
    let sender = send(
        &w,
        "127.0.0.2",
        Some(&w.microsoft),
        "ceo@elsewhere.example",
        &right,
    );
    let (stage, code, text) = refusal(&sender);
    assert_eq!(
        (stage.as_str(), code),
        ("data", 553),
        "{}",
        sender.describe()
    );
    assert!(text.starts_with("5.7.1"), "{text}");

    assert_eq!(
        db.message_count(),
        1,
        "nothing of a refused client is queued"
    );
    let logs = w.daemon.all_logs().join("\n");
    assert!(!logs.contains(SECRET), "the secret is logged");
}

#[test]
fn the_secret_header_never_leaves_sealgate_and_two_of_them_are_no_secret() {
    // 127.0.0.1 may relay as a relay network; the tenant's range is 127.0.0.2.
    let w = world("127.0.0.1/32");
    let db = Inspect::new(
        w.daemon.db_url(),
        Some(&w.daemon.data_dir().join("seal.key")),
    );
    let folded = "x-sealgate-tenant: a value\r\n\tfolded over two lines".to_owned();
    let network = send(
        &w,
        "127.0.0.1",
        None,
        "billing@clinic.example",
        std::slice::from_ref(&folded),
    );
    network.assert_all_queued();
    let body = db.body(&network.queue_ids()[0]);
    assert!(
        !body.to_ascii_lowercase().contains("x-sealgate-tenant") && !body.contains("folded over"),
        "{body}"
    );

    let twice = vec![
        format!("{ID_HEADER}: {TENANT_ID}"),
        format!("X-Sealgate-Tenant: {SECRET}"),
        folded,
    ];
    let sent = send(
        &w,
        "127.0.0.2",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &twice,
    );
    assert_eq!(
        refusal(&sent),
        (
            "data".into(),
            550,
            "5.7.1 Relay refused: the X-Sealgate-Tenant header is wrong".into()
        ),
        "{}",
        sent.describe()
    );
    assert_eq!(db.message_count(), 1);
}

/// The tenant's networks file is what an operator refreshes from the provider's list: a
/// reload (SIGHUP) reads it again, and the next connection is judged by the new ranges.
#[test]
fn a_refreshed_networks_file_applies_after_a_reload() {
    let w = world("10.255.0.0/16");
    let right = tenant_headers(TENANT_ID, SECRET);
    let before = send(
        &w,
        "127.0.0.3",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &right,
    );
    assert_eq!(refusal(&before).1, 554, "{}", before.describe());

    let ranges = w.dir.path().join("m365-ranges.txt");
    std::fs::write(
        &ranges,
        "# Exchange Online (test), refreshed\n127.0.0.2/32\n127.0.0.3/32\n",
    )
    .expect("write");
    w.daemon.signal("HUP");
    w.daemon
        .wait_for_log(std::time::Duration::from_secs(10), |v| {
            v.pointer("/fields/message")
                .and_then(serde_json::Value::as_str)
                == Some("configuration reloaded")
        });
    send(
        &w,
        "127.0.0.3",
        Some(&w.microsoft),
        "ehr@clinic.example",
        &right,
    )
    .assert_all_queued();
}
