//! Mail loops (RFC 5321 §6.3): a message that has passed this relay `smtp.max_passes` times,
//! or carries `smtp.max_hops` Received fields, is refused at the end of DATA with 554 5.4.6 and
//! nothing is queued; and a real loop — Sealgate delivering to a Postfix that relays everything
//! back to it, as a misrouted Microsoft 365 connector would — stops after three passes with the
//! sender told by the server that sent it the last time.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::postfix::{PostfixMx, PostfixOpts};
use sealgate_tests::{Daemon, DaemonOpts, py_send};
use serde_json::Value;

use crate::inspect::{Inspect, fresh_db};
use crate::lab::{Lab, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// One of our own Received fields, as this relay writes it (`server.hostname` of the test
/// daemon is relay.example.test).
fn ours(n: usize) -> String {
    format!(
        "Received: from m365.example.test ([192.0.2.{n}]) by relay.example.test (Sealgate) with ESMTPS id {n}; Mon, 07 Dec 2026 10:00:0{n} +0000"
    )
}

fn send_with(daemon: &Daemon, received: &[String]) -> sealgate_tests::PySend {
    let mut args = vec!["--to".to_owned(), "jane@example.org".to_owned()];
    for r in received {
        args.push("--header".into());
        args.push(r.clone());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    py_send(daemon.addr("starttls"), &refs)
}

#[test]
fn a_message_round_too_often_is_refused_with_5_4_6_and_nothing_is_queued() {
    let daemon = Daemon::start(DaemonOpts::default());
    let db = Inspect::new(daemon.db_url(), None);

    // Twice through here already: a third pass is still allowed.
    send_with(&daemon, &[ours(1), ours(2)]).assert_all_queued();
    assert_eq!(db.message_count(), 1);

    let looped = send_with(&daemon, &[ours(1), ours(2), ours(3)]);
    let r = &looped.results[0];
    assert_eq!(r["code"], 554, "{}", looped.describe());
    assert_eq!(r["stage"], "data", "{}", looped.describe());
    let text = r["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("5.4.6 "), "{text}");
    assert!(text.contains("passed this relay 3 times"), "{text}");

    // Another relay's fields count only towards the hop limit.
    let foreign: Vec<String> = (0..49)
        .map(|i| format!("Received: from a{i} by mx{i}.elsewhere.example with ESMTP; x"))
        .collect();
    send_with(&daemon, &foreign).assert_all_queued();
    let mut fifty = foreign.clone();
    fifty.push("Received: from z by mx.elsewhere.example with ESMTP; x".into());
    let hops = send_with(&daemon, &fifty);
    let r = &hops.results[0];
    assert_eq!(r["code"], 554, "{}", hops.describe());
    let text = r["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("5.4.6 ") && text.contains("50 Received"),
        "{text}"
    );
    assert_eq!(db.message_count(), 2, "a refused message is never queued");
    assert!(
        daemon
            .log_events()
            .iter()
            .any(|v| v.pointer("/fields/message").and_then(Value::as_str)
                == Some("message refused: mail loop")),
        "{}",
        daemon.output_report()
    );
}

#[test]
fn a_real_loop_through_postfix_stops_after_three_passes_and_the_sender_is_told() {
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    let store = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon(&store.url);
    // example.test's MX is a Postfix that is final for nothing and relays everything back to
    // Sealgate: every delivery comes straight back.
    let mut opts = PostfixOpts::new(
        SocketAddr::from((Ipv4Addr::new(127, 0, 0, 5), lab.port)),
        &["postfix.example.test"],
    );
    let back = daemon.addr("starttls");
    opts.relayhost = Some(format!("[{}]:{}", back.ip(), back.port()));
    let _postfix = PostfixMx::start(opts);

    let sent = py_send(
        daemon.addr("starttls"),
        &[
            "--from",
            "ehr@clinic.test",
            "--to",
            "jane@example.test",
            "--subject",
            "round and round",
        ],
    );
    sent.assert_all_queued();
    let db = Inspect::new(daemon.db_url(), Some(&daemon.data_dir().join("seal.key")));
    let passes = || {
        db.received_events()
            .values()
            .filter(|v| v["recipients"][0] == "jane@example.test")
            .count()
    };
    // Postfix's bounce to the sender comes back through Sealgate too (null sender).
    let bounce = || {
        db.received_events()
            .into_iter()
            .find(|(_, v)| v["sender"] == "" && v["recipients"][0] == "ehr@clinic.test")
    };
    eventually(WAIT, "Postfix's bounce of the looping message", || {
        bounce().is_some()
    });
    assert_eq!(passes(), 3, "three passes, the fourth refused");
    let (id, _) = bounce().expect("bounce");
    let body = db.body(&id);
    assert!(body.contains("5.4.6"), "the sender is told why:\n{body}");
    // Postfix folds long lines of its report: compare without white space.
    let squashed: String = body.split_whitespace().collect();
    assert!(squashed.contains("passedthisrelay3times"), "{body}");
    // Nothing more arrives once the loop is broken.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(passes(), 3);
}
