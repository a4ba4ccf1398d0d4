//! DKIM signing cost per message, in process: `bench/dkim.sh` runs it beside `openssl speed`
//! (the cost of the bare RSA-2048 and Ed25519 signatures on the same machine).
//!
//!     cargo run --release -p sealgate-crypto --example dkim_bench -- [SECONDS] [SIZE]

use std::time::{Duration, Instant};

use sealgate_crypto::dkim::{DkimAlgorithm, DkimKey, DkimKeys, generate};

fn key(dir: &std::path::Path, selector: &str, algorithm: DkimAlgorithm) -> DkimKey {
    let (pem, _) = generate(algorithm).expect("generate");
    let path = dir.join(format!("{selector}.pem"));
    std::fs::write(&path, pem).expect("write key");
    DkimKey::load("clinic.example", selector, algorithm, &path).expect("load key")
}

fn message(size: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: \"EHR\" <ehr@clinic.example>\r\nTo: <jane@example.org>\r\nSubject: lab results\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench@clinic.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
    );
    while m.len() < size {
        m.push_str(
            "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstu\r\n",
        );
    }
    m.into_bytes()
}

/// CPU time of this process so far (user + system).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn measure(label: &str, keys: &DkimKeys, msg: &[u8], seconds: u64) {
    let (wall0, cpu0) = (Instant::now(), cpu());
    let mut n = 0u64;
    while wall0.elapsed() < Duration::from_secs(seconds) {
        let (headers, _) = keys
            .sign(Some("\"EHR\" <ehr@clinic.example>"), msg)
            .expect("sign");
        assert!(!headers.is_empty());
        n += 1;
    }
    let (wall, used) = (wall0.elapsed(), cpu() - cpu0);
    println!(
        "{label:<28} {n:>7} signed   {:>7.3} ms/msg wall   {:>7.3} ms/msg CPU",
        wall.as_secs_f64() * 1000.0 / n as f64,
        used.as_secs_f64() * 1000.0 / n as f64
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(3, |s| s.parse().expect("SECONDS"));
    let size: usize = args.next().map_or(2048, |s| s.parse().expect("SIZE"));
    let dir = std::env::temp_dir().join(format!("sealgate-dkim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let msg = message(size);
    println!("message: {} bytes", msg.len());
    let rsa = || key(&dir, "r", DkimAlgorithm::RsaSha256);
    let ed = || key(&dir, "e", DkimAlgorithm::Ed25519Sha256);
    measure("rsa-sha256", &DkimKeys::new(vec![rsa()]), &msg, seconds);
    measure("ed25519-sha256", &DkimKeys::new(vec![ed()]), &msg, seconds);
    measure(
        "rsa-sha256 + ed25519-sha256",
        &DkimKeys::new(vec![rsa(), ed()]),
        &msg,
        seconds,
    );
    arc_seal(&dir, &msg, seconds);
    let _ = std::fs::remove_dir_all(&dir);
}

/// ARC sealing of a message that arrived signed (the sender's DKIM signature and the arrival's
/// recorded results in it), as delivery does after its own DKIM signature.
fn arc_seal(dir: &std::path::Path, msg: &[u8], seconds: u64) {
    let (pem, _) = generate(DkimAlgorithm::RsaSha256).expect("generate");
    let path = dir.join("arc.pem");
    std::fs::write(&path, pem).expect("write key");
    let sealer =
        sealgate_crypto::arc::ArcSealer::load("relay.example", "arc", &path, "relay.example")
            .expect("load the ARC key");
    let upstream = DkimKeys::new(vec![key(dir, "up", DkimAlgorithm::RsaSha256)]);
    let (signature, _) = upstream
        .sign(Some("\"EHR\" <ehr@clinic.example>"), msg)
        .expect("sign");
    let mut arrived = format!(
        "Authentication-Results: relay.example; dkim=pass header.d=clinic.example; arc=none\r\n{signature}"
    )
    .into_bytes();
    arrived.extend_from_slice(msg);
    let (wall0, cpu0) = (Instant::now(), cpu());
    let mut n = 0u64;
    while wall0.elapsed() < Duration::from_secs(seconds) {
        let (set, _) = sealer.seal(&arrived).expect("seal");
        assert!(!set.is_empty());
        n += 1;
    }
    let (wall, used) = (wall0.elapsed(), cpu() - cpu0);
    println!(
        "{:<28} {n:>7} sealed   {:>7.3} ms/msg wall   {:>7.3} ms/msg CPU",
        "arc set (rsa-sha256)",
        wall.as_secs_f64() * 1000.0 / n as f64,
        used.as_secs_f64() * 1000.0 / n as f64
    );
}
