//! AUTH against the real daemon: memory under load, as an EHR that opens a connection per
//! message uses it (20 concurrent STARTTLS sessions that each authenticate with PLAIN against
//! a real Argon2id user and send 100 KB), and password guessing across connections.

use std::thread;
use std::time::{Duration, Instant};

use sealgate_testkit::tls::TestCa;
use sealgate_tests::{Daemon, DaemonOpts, PySend, py_send};

use crate::clients::{PASSWORD, add_user};
use crate::inspect::Inspect;

const SESSIONS: usize = 20;
const MIB: u64 = 1024 * 1024;

/// Resident set size of `pid`, from /proc.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

struct AuthWorld {
    _dir: tempfile::TempDir,
    ca_file: String,
    daemon: Daemon,
}

/// A daemon with TLS and the user `ehr`. Loopback clients may relay without AUTH only when
/// `loopback_relays`.
fn auth_world(loopback_relays: bool) -> AuthWorld {
    let ca = TestCa::new();
    let issued = ca.issue(&["localhost", "relay.example.test", "127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_to(dir.path()).display().to_string();
    let daemon = Daemon::start(DaemonOpts {
        tls: Some(&issued),
        extra_toml: format!(
            "[relay]\nnetworks = [\"{}\"]\n[delivery]\nenabled = false\n",
            if loopback_relays {
                "127.0.0.0/8"
            } else {
                "10.255.0.0/16"
            }
        ),
        ..DaemonOpts::default()
    });
    add_user(&daemon);
    AuthWorld {
        _dir: dir,
        ca_file,
        daemon,
    }
}

impl AuthWorld {
    /// One connection: STARTTLS, optionally AUTH as `auth` ("user:password"), one message.
    fn send(&self, auth: Option<&str>, size: &str) -> PySend {
        let mut args = vec!["--starttls", "--cafile", &self.ca_file, "--size", size];
        args.extend(["--to", "jane@example.org"]);
        if let Some(a) = auth {
            args.extend(["--auth", a]);
        }
        py_send(self.daemon.addr("starttls"), &args)
    }

    fn audit_kinds(&self) -> Vec<(String, serde_json::Value)> {
        let db = Inspect::new(self.daemon.db_url(), None);
        db.audit()
            .into_iter()
            .filter(|e| e.kind.starts_with("auth_"))
            .map(|e| (e.kind, serde_json::from_str(&e.data).expect("json")))
            .collect()
    }
}

#[test]
fn password_guessing_is_throttled_across_connections_even_for_the_right_password_and_audited() {
    let w = auth_world(false);
    // smtplib tries PLAIN, then LOGIN: two failures per connection, five connections.
    for n in 0..5 {
        let r = w.send(Some(&format!("ehr:guess {n}")), "100");
        assert_eq!(r.results[0]["code"], 535, "{}", r.describe());
    }
    let right = format!("ehr:{PASSWORD}");
    let r = w.send(Some(&right), "100");
    assert_eq!(r.results[0]["code"], 454, "{}", r.describe());
    assert!(
        r.results[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("4.7.0 Too many failed"),
        "{}",
        r.describe()
    );
    let kinds = w.audit_kinds();
    let failed: Vec<_> = kinds.iter().filter(|(k, _)| k == "auth_failed").collect();
    assert_eq!(failed.len(), 10, "{kinds:?}");
    for (_, d) in &failed {
        assert_eq!(d["user"], "ehr", "{d}");
        assert_eq!(d["client_ip"], "127.0.0.1", "{d}");
        assert_eq!(d["reason"], "invalid credentials", "{d}");
        assert!(
            d["mechanism"] == "PLAIN" || d["mechanism"] == "LOGIN",
            "{d}"
        );
    }
    let throttled: Vec<_> = kinds
        .iter()
        .filter(|(k, _)| k == "auth_throttled")
        .collect();
    assert_eq!(throttled.len(), 1, "{kinds:?}");
    assert_eq!(throttled[0].1["user"], "ehr");
    assert_eq!(throttled[0].1["failures"], 10);
    assert!(
        !kinds.iter().any(|(k, _)| k == "auth_succeeded"),
        "{kinds:?}"
    );
    let text = format!("{kinds:?}") + &w.daemon.logs().join("\n");
    assert!(
        !text.contains("guess ") && !text.contains(PASSWORD),
        "no secret on record or in the log"
    );
}

#[test]
fn twenty_concurrent_authenticated_tls_sessions_keep_memory_bounded_and_return_it() {
    let w = auth_world(true);
    let auth = format!("ehr:{PASSWORD}");
    let concurrently = |auth: Option<&str>| {
        thread::scope(|s| {
            let sends: Vec<_> = (0..SESSIONS)
                .map(|_| s.spawn(|| w.send(auth, "100000")))
                .collect();
            for h in sends {
                h.join().expect("client").assert_all_queued();
            }
        })
    };
    // Warm-up: the same 20 concurrent TLS sessions and 100 KB messages without AUTH (loopback
    // may relay here), so TLS, the database's caches and the runtime's threads are in use
    // before the measurement, and what it measures is what AUTH adds.
    concurrently(None);
    let pid = w.daemon.pid().expect("pid");
    let before = rss(pid);

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(300);
            while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                peak.fetch_max(rss(pid), std::sync::atomic::Ordering::Relaxed);
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    concurrently(Some(&auth));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("sampler");
    let during = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    thread::sleep(Duration::from_secs(2));
    let after = rss(pid).saturating_sub(before);
    eprintln!(
        "rss before {} MiB, growth during {:.1} MiB, after {:.1} MiB",
        before / MIB,
        during as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(
        during < 40 * MIB,
        "RSS grew {during} bytes during the sessions"
    );
    assert!(
        after < 10 * MIB,
        "RSS stayed {after} bytes above the start afterwards"
    );
    let succeeded = w
        .audit_kinds()
        .iter()
        .filter(|(k, _)| k == "auth_succeeded")
        .count();
    assert_eq!(
        succeeded, SESSIONS,
        "every session authenticated, on record"
    );
}
