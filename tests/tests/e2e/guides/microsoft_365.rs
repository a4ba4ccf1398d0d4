//! `docs/guides/microsoft-365.md`: Exchange Online as the guide sets it up — a connector
//! presenting Microsoft's certificate (here from the test CA) from Microsoft's published
//! addresses (here 127.0.0.2), the tenant id Exchange Online stamps and the secret header the
//! mail flow rule adds. Only the clinic's tenant relays; another tenant with the same
//! certificate and address, and the clinic's own mail that missed the rule, are refused with
//! the replies the guide lists; the secret never reaches the queue.

use sealgate_tests::{CliRun, Daemon};

use super::{Site, assert_refused, localise, send, start, swap, tested_block};
use crate::clients::inspect;

const TENANT_ID: &str = "7d0c1e52-4b4e-4b8a-9c1a-2f7e3d9a0001";
const FOREIGN_ID: &str = "0b9a5c3e-1111-4222-8333-944455556666";
const SECRET: &str = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c";
const ID_HEADER: &str = "X-MS-Exchange-CrossTenant-Id";
/// Microsoft's sending address in this test (the one line of the ranges file).
const MICROSOFT: &str = "127.0.0.2";

struct Clinic {
    site: Site,
    daemon: Daemon,
    microsoft: (String, String),
}

fn clinic() -> Clinic {
    let site = Site::new();
    let microsoft = site.client_cert(
        &[
            "mail.protection.outlook.com",
            "*.mail.protection.outlook.com",
        ],
        "microsoft",
    );
    let block = tested_block("microsoft-365.md", "microsoft_365");
    let mut local = vec![
        swap("0.0.0.0:25", "127.0.0.1:0"),
        swap("/etc/sealgate/tls/microsoft-cas.pem", &site.ca_file),
        swap(
            "/etc/sealgate/m365-ranges.txt",
            site.file(
                "m365-ranges.txt",
                &format!("# Exchange Online, SMTP (test)\n{MICROSOFT}/32\n"),
            ),
        ),
        swap(
            "/etc/sealgate/m365-tenant.secret",
            site.file("m365-tenant.secret", &format!("{SECRET}\n")),
        ),
        swap("00000000-0000-0000-0000-000000000000", TENANT_ID),
    ];
    local.extend(site.tls_swaps());
    local.extend(site.dkim_keys(&block));
    let daemon = start(localise(&block, &local));
    Clinic {
        site,
        daemon,
        microsoft,
    }
}

impl Clinic {
    /// One message from Exchange Online's address with Microsoft's certificate.
    fn via_exchange_online(&self, from: &str, headers: &[String]) -> sealgate_tests::PySend {
        send(
            &self.daemon,
            &self.site,
            MICROSOFT,
            Some(&self.microsoft),
            from,
            headers,
        )
    }
}

fn stamped(tenant_id: &str, secret: Option<&str>) -> Vec<String> {
    let mut headers = vec![format!("{ID_HEADER}: {tenant_id}")];
    headers.extend(secret.map(|s| format!("X-Sealgate-Tenant: {s}")));
    headers
}

#[test]
fn the_guides_connector_relays_only_the_clinics_tenant_and_each_refusal_names_what_is_missing() {
    let c = clinic();
    let db = inspect(&c.daemon);

    // The clinic's mail, through the rule and the connector.
    let ok = c.via_exchange_online("ehr@clinic.example", &stamped(TENANT_ID, Some(SECRET)));
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
        !body.contains(SECRET) && !body.to_ascii_lowercase().contains("x-sealgate-tenant"),
        "the secret header reached the queue:\n{body}"
    );
    // What the guide's "Test it" step looks at.
    let listed = CliRun::of(c.daemon.cli(["queue", "list"]));
    assert!(listed.stdout.contains(&id), "{}", listed.describe());

    // Another Microsoft 365 customer: the same certificate, the same address, its own
    // tenant id (and no secret, which it does not know).
    assert_refused(
        &c.via_exchange_online("ehr@clinic.example", &stamped(FOREIGN_ID, None)),
        "data",
        550,
        &format!("5.7.1 Relay refused: {ID_HEADER} does not name a permitted tenant"),
    );
    // The clinic's mail that did not pass the rule (the connector's validation email).
    assert_refused(
        &c.via_exchange_online("ehr@clinic.example", &stamped(TENANT_ID, None)),
        "data",
        550,
        "5.7.1 Relay refused: no X-Sealgate-Tenant header",
    );
    assert_refused(
        &c.via_exchange_online(
            "ehr@clinic.example",
            &stamped(TENANT_ID, Some("a-guess-at-the-secret-value")),
        ),
        "data",
        550,
        "5.7.1 Relay refused: the X-Sealgate-Tenant header is wrong",
    );
    // No tenant id at all: not from a Microsoft 365 tenant.
    assert_refused(
        &c.via_exchange_online(
            "ehr@clinic.example",
            &[format!("X-Sealgate-Tenant: {SECRET}")],
        ),
        "data",
        550,
        &format!("5.7.1 Relay refused: no {ID_HEADER} header"),
    );
    // The clinic's tenant, a sender outside its `senders` (known to be the tenant's only
    // once the message's factors are read: refused at the end of DATA).
    assert_refused(
        &c.via_exchange_online("ceo@elsewhere.example", &stamped(TENANT_ID, Some(SECRET))),
        "data",
        553,
        "5.7.1 Sender address not allowed for this client",
    );

    assert_eq!(
        db.message_count(),
        1,
        "nothing of a refused message is queued"
    );
    let logs = c.daemon.all_logs().join("\n");
    assert!(!logs.contains(SECRET), "the secret is in the log");
}

#[test]
fn the_guides_connector_needs_microsofts_certificate_and_address() {
    let c = clinic();
    let right = stamped(TENANT_ID, Some(SECRET));
    let elsewhere = c
        .site
        .client_cert(&["mx.other-cloud.example"], "other-cloud");
    for (cert, factor) in [
        (None, "a TLS client certificate is required"),
        (
            Some(&elsewhere),
            "the TLS client certificate is not valid for the expected name",
        ),
    ] {
        assert_refused(
            &send(
                &c.daemon,
                &c.site,
                MICROSOFT,
                cert,
                "ehr@clinic.example",
                &right,
            ),
            "rcpt",
            554,
            &format!("5.7.1 Relay access denied: {factor}"),
        );
    }
    // Microsoft's certificate from an address outside the ranges file: `[relay] networks = []`
    // in the guide leaves no other way in.
    assert_refused(
        &send(
            &c.daemon,
            &c.site,
            "127.0.0.1",
            Some(&c.microsoft),
            "ehr@clinic.example",
            &right,
        ),
        "rcpt",
        554,
        "5.7.1 Relay access denied: authenticate or send from a permitted network",
    );
    assert_eq!(inspect(&c.daemon).message_count(), 0);
}
