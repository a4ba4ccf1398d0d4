//! `docs/guides/google-workspace.md`: Gmail as the guide sets it up — a route to Sealgate over
//! TLS from Google's published addresses (here 127.0.0.3) and a routing rule that adds the
//! secret header. The clinic's Workspace relays; another Workspace customer sending from the
//! same address, without the header or with its own value, is refused; nobody relays from
//! outside Google's ranges.

use sealgate_tests::PySend;

use super::{Site, assert_refused, localise, send, start, swap, tested_block};
use crate::clients::inspect;

const SECRET: &str = "4b7d0e3a9c2f6a1d8e5b0c7f3a9d2e6b";
/// Google's sending address in this test (the one line of the ranges file).
const GOOGLE: &str = "127.0.0.3";

fn from_google(daemon: &sealgate_tests::Daemon, site: &Site, headers: &[String]) -> PySend {
    send(
        daemon,
        site,
        GOOGLE,
        None,
        "frontdesk@clinic.example",
        headers,
    )
}

#[test]
fn the_guides_route_relays_the_clinic_and_not_another_workspace_customer_on_the_same_address() {
    let site = Site::new();
    let block = tested_block("google-workspace.md", "google_workspace");
    let mut local = vec![
        swap("0.0.0.0:25", "127.0.0.1:0"),
        swap(
            "/etc/sealgate/google-ranges.txt",
            site.file(
                "google-ranges.txt",
                &format!("# _spf.google.com (test)\n{GOOGLE}/32\n"),
            ),
        ),
        swap(
            "/etc/sealgate/workspace-tenant.secret",
            site.file("workspace-tenant.secret", &format!("{SECRET}\n")),
        ),
    ];
    local.extend(site.tls_swaps());
    local.extend(site.dkim_keys(&block));
    let daemon = start(localise(&block, &local));
    let db = inspect(&daemon);
    let rule = vec![format!("X-Sealgate-Tenant: {SECRET}")];

    let ok = from_google(&daemon, &site, &rule);
    ok.assert_all_queued();
    let id = ok.queue_ids().remove(0);
    let received = &db.received_events()[&id];
    assert_eq!(received["tenant"]["name"], "clinic-workspace", "{received}");
    assert_eq!(
        received["tenant"]["factors"],
        serde_json::json!(["network", "secret-header"])
    );
    let body = db.body(&id);
    assert!(
        !body.contains(SECRET) && !body.to_ascii_lowercase().contains("x-sealgate-tenant"),
        "the secret header reached the queue:\n{body}"
    );

    // Another Workspace customer, from the same Google address: no header, or its own.
    assert_refused(
        &from_google(&daemon, &site, &[]),
        "data",
        550,
        "5.7.1 Relay refused: no X-Sealgate-Tenant header",
    );
    assert_refused(
        &from_google(
            &daemon,
            &site,
            &["X-Sealgate-Tenant: another-customers-own-secret".to_owned()],
        ),
        "data",
        550,
        "5.7.1 Relay refused: the X-Sealgate-Tenant header is wrong",
    );
    // The right header from an address outside Google's ranges.
    assert_refused(
        &send(
            &daemon,
            &site,
            "127.0.0.1",
            None,
            "frontdesk@clinic.example",
            &rule,
        ),
        "rcpt",
        554,
        "5.7.1 Relay access denied: authenticate or send from a permitted network",
    );
    // The clinic's own route, a sender the tenant may not use.
    assert_refused(
        &send(&daemon, &site, GOOGLE, None, "someone@gmail.example", &rule),
        "data",
        553,
        "5.7.1 Sender address not allowed for this client",
    );
    assert_eq!(
        db.message_count(),
        1,
        "nothing of a refused message is queued"
    );
    assert!(!daemon.all_logs().join("\n").contains(SECRET));
}
