//! docs/guides/partner-route.md: the laboratory partner's domains go only to its gateway (a
//! real Postfix) over TLS to the pinned key; every other domain goes to the perimeter gateway
//! over TLS verified for its name under the hospital's CA; `sealgate check` shows the route.

use std::net::SocketAddr;
use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::postfix::{PostfixMx, PostfixOpts};
use sealgate_tests::{Daemon, DaemonOpts, py_send};

use super::{localise, swap, tested_block};
use crate::audit_cli::config_check;
use crate::inspect::fresh_db;
use crate::lab::{SecureLab, spki_sha256};
use crate::trail::{first, inspect, wait_for};

const WAIT: Duration = Duration::from_secs(30);

fn send(daemon: &Daemon, to: &str) -> String {
    let sent = py_send(
        daemon.addr("starttls"),
        &["--from", "ehr@hospital.example", "--to", to],
    );
    sent.assert_all_queued();
    sent.queue_ids().remove(0)
}

#[test]
fn the_guides_routes_send_the_partner_to_its_pinned_gateway_and_the_rest_to_the_perimeter() {
    let b = SecureLab::builder();
    let partner_cert = b.issue(&["smtp-gw.lab-partner.example"]);
    let perimeter_cert = b.issue(&["mailgw.hospital.example"]);
    let lab = b.start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = partner_cert.write_to(dir.path(), "partner");
    let mut opts = PostfixOpts::new(
        SocketAddr::from(([127, 0, 0, 7], lab.port)),
        &["lab-partner.example", "results.lab-partner.example"],
    );
    opts.tls = Some((cert, key));
    let partner = PostfixMx::start(opts);
    let perimeter = lab.tls_sink([127, 0, 0, 8], &perimeter_cert);

    let block = tested_block("partner-route.md", "partner_route");
    let local = [
        swap("[198.51.100.20]", "[127.0.0.7]"),
        swap("[10.20.0.25]", "[127.0.0.8]"),
        swap("PIN-FROM-STEP-1", spki_sha256(&partner_cert)),
        swap(
            "/etc/sealgate/hospital-ca.pem",
            lab.ca_file().display().to_string(),
        ),
    ];
    let routes = localise(&block, &local);
    let db = fresh_db(TestBackend::Sqlite);
    // The lab's defaults (protection required) with the guide's routes.
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: lab.config_with("", &routes),
        ..DaemonOpts::with_db(&db.url)
    });
    let checked = config_check(daemon.config_path());
    assert_eq!(checked.code, Some(0), "{}", checked.describe());

    let to_partner = send(&daemon, "dr.house@lab-partner.example");
    let to_subdomain = send(&daemon, "intake@results.lab-partner.example");
    let elsewhere = send(&daemon, "patient@elsewhere.example");
    let arrived = partner.wait_for_messages(2, WAIT);
    for m in &arrived {
        let text = String::from_utf8_lossy(m);
        assert!(text.contains("(Postfix) with ESMTPS"), "{text}");
    }
    assert!(
        lab.rt.block_on(perimeter.wait_for(1, WAIT)),
        "the perimeter gateway received nothing\n{}",
        daemon.output_report()
    );
    let got = &perimeter.received()[0];
    assert!(got.tls, "sent to the perimeter in the clear");
    assert_eq!(got.rcpts, ["patient@elsewhere.example"]);

    let db = inspect(&daemon);
    for (id, rcpt, how, ip) in [
        (
            &to_partner,
            "dr.house@lab-partner.example",
            "pinned",
            "127.0.0.7",
        ),
        (
            &to_subdomain,
            "intake@results.lab-partner.example",
            "pinned",
            "127.0.0.7",
        ),
        (
            &elsewhere,
            "patient@elsewhere.example",
            "webpki",
            "127.0.0.8",
        ),
    ] {
        wait_for(&db, id, rcpt, "delivered");
        let decision = first(&db, id, "decision");
        assert_eq!(decision["method"], "tls-verified", "{rcpt}: {decision}");
        let attempt = first(&db, id, "attempt");
        assert_eq!(attempt["verification"], how, "{rcpt}: {attempt}");
        assert_eq!(attempt["ip"], ip, "{rcpt}: {attempt}");
    }

    let out = daemon.cli(["check", "dr.house@lab-partner.example"]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("route: lab-partner (pinned TLS to [127.0.0.7]:")
            && shown.contains("pinned (route lab-partner)"),
        "{shown}"
    );
}
