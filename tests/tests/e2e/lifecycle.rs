//! The process as an operator sees it: embedded defaults, graceful SIGTERM, connection limits.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealgate_tests::{Daemon, DaemonOpts, RawSmtp, py_send, sealgate_bin, swaks};

use crate::inspect::Inspect;

#[test]
fn sigterm_lets_a_message_in_progress_finish_and_tells_idle_sessions_421() {
    let mut daemon = Daemon::start(DaemonOpts::default());
    let addr = daemon.addr("starttls");
    let mut idle = RawSmtp::connect(addr);
    assert_eq!(idle.cmd("EHLO idle.example.test").code, 250);
    let mut busy = RawSmtp::connect(addr);
    assert_eq!(busy.cmd("EHLO busy.example.test").code, 250);
    assert_eq!(busy.cmd("MAIL FROM:<ehr@clinic.example.test>").code, 250);
    assert_eq!(busy.cmd("RCPT TO:<jane@example.org>").code, 250);
    assert_eq!(busy.cmd("DATA").code, 354);
    busy.send(b"Subject: lab results\r\n\r\nfirst half\r\n");

    daemon.signal("TERM");
    let told = idle.reply().expect("idle session is told before the close");
    assert_eq!(told.code, 421, "{}", idle.transcript());
    assert!(told.text().contains("4.3.2"), "{}", idle.transcript());

    busy.send(b"second half\r\n.\r\n");
    let accepted = busy.reply().expect("reply to the end of data");
    assert_eq!(accepted.code, 250, "{}", busy.transcript());
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "still accepting after SIGTERM"
    );
    busy.send_line("QUIT");
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit {status}\n{}",
        daemon.output_report()
    );
    assert_eq!(Inspect::new(daemon.db_url(), None).message_count(), 1);
}

#[test]
fn connections_beyond_the_per_ip_limit_are_told_421() {
    let daemon = Daemon::start(DaemonOpts {
        extra_toml: "[smtp]\nmax_connections_per_ip = 2\n".into(),
        ..DaemonOpts::default()
    });
    let addr = daemon.addr("starttls");
    let first = RawSmtp::connect(addr);
    let second = RawSmtp::connect(addr);
    assert_eq!(first.transcript().codes(), [220]);
    assert_eq!(second.transcript().codes(), [220]);
    let mut third = RawSmtp::connect(addr);
    assert_eq!(third.transcript().codes(), [421], "{}", third.transcript());
    assert!(
        third.wait_closed(Duration::from_secs(5)),
        "turned-away connection left open"
    );
    drop(first);
    // The slot frees when a session ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = RawSmtp::connect(addr);
        if c.transcript().codes() == [220] {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    py_send(addr, &[]).assert_all_queued();
}

#[test]
fn serve_without_a_config_runs_on_the_embedded_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(sealgate_bin())
        .args(["--log-format", "json", "serve"])
        .current_dir(dir.path())
        .env_remove("SEALGATE_CONFIG")
        .env_remove("SEALGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sealgate");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("sealgate ready")) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no ready line (is 127.0.0.1:2525 taken?)\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    let logs = seen.join("\n");
    assert!(logs.contains("running on the embedded defaults"), "{logs}");
    assert!(logs.contains("\"addr\":\"127.0.0.1:2525\""), "{logs}");
    let out = swaks([
        "--server",
        "127.0.0.1:2525",
        "--from",
        "ehr@clinic.example.test",
        "--to",
        "jane@example.org",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    assert!(status.success(), "exit {status}");
    let data = dir.path().join("data");
    assert!(
        data.join("sealgate.db").is_file(),
        "SQLite database under ./data"
    );
    let mode = std::fs::metadata(data.join("seal.key"))
        .expect("seal.key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "sealing key must be private");
}
