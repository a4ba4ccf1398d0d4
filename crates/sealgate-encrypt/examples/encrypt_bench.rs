//! Encryptions per second, for bench/encrypt.sh: PGP/MIME to an OpenPGP certificate and
//! S/MIME to an X.509 certificate, for one message, in this process.
//!
//! Usage: encrypt_bench MESSAGE SECONDS (METHOD[:LABEL] CERT)...
//! METHOD is `pgp`, `smime-gcm` or `smime-cbc`; LABEL (say, the key type) only names the line.
//! Prints one line per method: `method[:label] encryptions seconds per_second`.

use std::time::{Duration, Instant};

use sealgate_encrypt::pgp::{self, PgpCert, PgpSettings};
use sealgate_encrypt::smime::{self, ContentCipher, SmimeCert, SmimeSettings};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 || !args.len().is_multiple_of(2) {
        eprintln!(
            "usage: encrypt_bench MESSAGE SECONDS (pgp CERT | smime-gcm CERT | smime-cbc CERT)..."
        );
        std::process::exit(2);
    }
    let message = read(&args[0]);
    let seconds: f64 = args[1].parse().unwrap_or(3.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for pair in args[2..].chunks(2) {
        let cert = read(&pair[1]);
        let method = pair[0].split(':').next().unwrap_or_default();
        let one: Box<dyn Fn() -> usize> = match method {
            "pgp" => {
                let cert = PgpCert::parse_all(&cert)
                    .expect("an OpenPGP certificate")
                    .remove(0);
                let settings = PgpSettings {
                    subject: "Encrypted message".to_owned(),
                    ..Default::default()
                };
                let message = message.clone();
                Box::new(move || {
                    pgp::encrypt(&message, &cert, &settings, now)
                        .expect("pgp encryption")
                        .message
                        .len()
                })
            }
            kind @ ("smime-gcm" | "smime-cbc") => {
                let cert = SmimeCert::parse_all(&cert)
                    .expect("a certificate")
                    .remove(0);
                let cipher = if kind == "smime-gcm" {
                    ContentCipher::Aes256Gcm
                } else {
                    ContentCipher::Aes256Cbc
                };
                let settings = SmimeSettings {
                    subject: "Encrypted message".to_owned(),
                    ..Default::default()
                };
                let message = message.clone();
                Box::new(move || {
                    smime::encrypt(&message, &cert, cipher, &settings)
                        .expect("s/mime encryption")
                        .message
                        .len()
                })
            }
            other => {
                eprintln!("unknown method {other}");
                std::process::exit(2);
            }
        };
        let (n, took) = run(&*one, Duration::from_secs_f64(seconds));
        println!(
            "{} {n} {:.3} {:.1}",
            pair[0],
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    }
}

/// Calls `one` until `budget` is spent; how many calls and how long they took.
fn run(one: &dyn Fn() -> usize, budget: Duration) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    while start.elapsed() < budget {
        bytes += one();
        n += 1;
    }
    assert!(bytes > 0);
    (n, start.elapsed())
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    })
}
