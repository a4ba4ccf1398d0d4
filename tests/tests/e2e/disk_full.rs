//! Disk full: the SQLite database lives on a small tmpfs that the test fills. While it is full,
//! a message gets `452 4.3.1` (RFC 3463: mail system full) and nothing of it is stored; once
//! space is freed, the same daemon (no restart) accepts again, delivers what it holds, and its
//! audit chain verifies.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sealgate_testkit::smtp_sink::SinkScript;
use sealgate_tests::{Daemon, PySend, py_send};
use tempfile::TempDir;

use crate::inspect::Inspect;
use crate::lab::{Lab, eventually, kinds_for};

const WAIT: Duration = Duration::from_secs(30);
/// How long the daemon may take to accept again once space is back.
const RECOVERY: Duration = Duration::from_secs(5);
const RCPT: &str = "jane@example.test";

/// A tmpfs mounted on a fresh temp dir, unmounted when dropped.
struct SmallMount {
    dir: TempDir,
}

impl SmallMount {
    /// Mounts a tmpfs of `size` (`mount -o size=`), or `None` when this process is not root
    /// (mounting is impossible there: the caller skips, saying so). As root a failed mount
    /// fails the test.
    fn tmpfs(size: &str) -> Option<SmallMount> {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("SKIPPED: mounting a small filesystem needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sealgate-full-")
            .tempdir()
            .expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount tmpfs as root failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(SmallMount { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallMount {
    fn drop(&mut self) {
        let done = Command::new("umount").arg(self.dir.path()).status();
        if !done.is_ok_and(|s| s.success()) {
            // Still busy (a child not yet reaped): detach it now, it goes when released.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the filesystem has no space left (bounded by the mount's size).
fn fill(path: &Path) -> PathBuf {
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0x5a_u8; 64 * 1024];
    for _ in 0..1024 {
        match file.write_all(&chunk).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return path.to_owned(),
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    panic!("{} never filled up", path.display());
}

fn send(daemon: &Daemon, size: &str) -> PySend {
    py_send(
        daemon.addr("starttls"),
        &["--from", "ehr@clinic.test", "--to", RCPT, "--size", size],
    )
}

/// The final reply (code and text) to a one-message send.
fn reply(sent: &PySend) -> (u64, String) {
    let r = sent.results.first().unwrap_or_else(|| {
        panic!("no result from send.py\n{}", sent.describe());
    });
    let code = r["code"].as_u64().unwrap_or_default();
    (code, r["text"].as_str().unwrap_or_default().to_owned())
}

fn delivered(db: &Inspect, id: &str) -> bool {
    kinds_for(db, id, RCPT).iter().any(|k| k == "delivered")
}

#[test]
fn a_full_data_dir_answers_452_and_recovers_without_a_restart() {
    let Some(mount) = SmallMount::tmpfs("8m") else {
        return;
    };
    let lab = Lab::new(&[("example.test", "@ IN MX 10 mx1\nmx1 IN A 127.0.0.5\n")]);
    // The first delivery is deferred, so a message accepted before the fill is still queued
    // while the disk is full and must go out after.
    let mx = lab.sink(
        [127, 0, 0, 5],
        SinkScript::default().data_replies(["451 4.3.0 try again later"]),
    );
    let url = format!("sqlite://{}", mount.path().join("sealgate.db").display());
    let mut daemon = lab.daemon_retrying(&url, "2s");
    let db = Inspect::new(&url, None);

    let before = send(&daemon, "3000");
    before.assert_all_queued();
    let before = before.queue_ids().remove(0);
    eventually(WAIT, "the first attempt deferred", || {
        kinds_for(&db, &before, RCPT)
            .iter()
            .any(|k| k == "deferred")
    });

    let filler = fill(&mount.path().join("filler"));
    let refused = send(&daemon, "300000");
    let (code, text) = reply(&refused);
    assert_eq!(code, 452, "{text}\n{}", daemon.output_report());
    assert!(text.starts_with("4.3.1 "), "{text}");
    assert_eq!(db.message_count(), 1, "a message answered 452 was stored");
    // Hold the disk full past the deferred message's retry time, so delivery meets it too.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(db.message_count(), 1, "a message answered 452 was stored");

    std::fs::remove_file(&filler).expect("free the space");
    let deadline = Instant::now() + RECOVERY;
    let after = loop {
        let sent = send(&daemon, "300000");
        if reply(&sent).0 == 250 {
            break sent.queue_ids().remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "still refused {RECOVERY:?} after space was freed: {:?}\n{}",
            reply(&sent),
            daemon.output_report()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    eventually(WAIT, "both messages delivered", || {
        delivered(&db, &before) && delivered(&db, &after)
    });
    let arrived: Vec<String> = mx
        .received()
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    for id in [&before, &after] {
        assert!(
            arrived.iter().any(|m| m.contains(&format!("id {id}"))),
            "{id} did not reach the sink"
        );
    }
    assert_eq!(db.message_count(), 2, "only the two accepted messages");
    assert_eq!(db.received_events().len(), 2, "one received event each");
    let verify = daemon.cli(["audit", "verify"]);
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && out.contains("audit log ok"),
        "{out}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(daemon.is_running(), "the daemon was never restarted");
    drop(db);
    drop(daemon);
    drop(mount);
}
