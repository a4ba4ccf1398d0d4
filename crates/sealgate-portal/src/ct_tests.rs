//! Secrets are compared in fixed time: the code check and both CSRF checks go through
//! [`crate::secret::ct_eq`], and no line that handles a secret compares with `==`.

use sealgate_store::GrantRow;

use crate::secret::code_hash;
use crate::verify::code_matches;

/// The modules that compare secrets, with their sources.
const SOURCES: &[(&str, &str)] = &[
    ("verify.rs", include_str!("verify.rs")),
    ("reply.rs", include_str!("reply.rs")),
    ("access.rs", include_str!("access.rs")),
    ("read.rs", include_str!("read.rs")),
];

#[test]
fn no_secret_is_compared_with_plain_equality() {
    for (name, src) in SOURCES {
        for (i, line) in src.lines().enumerate() {
            let l = line.to_ascii_lowercase();
            let secret = [
                "csrf",
                "code_hash",
                "stored",
                "cookie",
                "passphrase",
                "token",
            ]
            .iter()
            .any(|w| l.contains(w));
            let plain = l.contains("==") || l.contains("!=") || l.contains(".eq(");
            assert!(
                !(secret && plain),
                "{name}:{}: compare secrets with secret::ct_eq, not ==: {line}",
                i + 1
            );
        }
    }
}

#[test]
fn the_code_and_both_csrf_checks_use_the_fixed_time_compare() {
    let verify = include_str!("verify.rs");
    let reply = include_str!("reply.rs");
    assert!(verify.contains("ct_eq(&code_hash(&grant.id, &code), stored)"));
    assert!(verify.contains("ct_eq(&cookie, &form.csrf)"));
    assert!(reply.contains("ct_eq(&form.csrf, &session.csrf)"));
}

fn grant(code: Option<&str>, expires_at: i64) -> GrantRow {
    GrantRow {
        id: "g1".into(),
        token_hash: String::new(),
        portal_message_id: String::new(),
        thread_id: String::new(),
        recipient: "bob@patient.test".into(),
        sender: String::new(),
        expires_at: i64::MAX,
        revoked_at: None,
        passphrase_hash: None,
        code_hash: code.map(|c| code_hash("g1", c)),
        code_expires_at: code.map(|_| expires_at),
        failed_attempts: 0,
        locked_until: None,
        first_viewed_at: None,
        created_at: 0,
    }
}

#[test]
fn a_code_matches_only_while_pending_and_unexpired() {
    let g = grant(Some("12345678"), 1_000);
    assert!(code_matches(&g, "12345678", 999));
    assert!(
        code_matches(&g, " 1234-5678 ", 999),
        "typed with separators"
    );
    assert!(!code_matches(&g, "12345679", 999));
    assert!(
        !code_matches(&g, "12345678", 1_000),
        "expired at its expiry"
    );
    assert!(
        !code_matches(&grant(None, 1_000), "12345678", 0),
        "no code pending"
    );
    let mut other = grant(Some("12345678"), 1_000);
    other.id = "g2".into();
    assert!(
        !code_matches(&other, "12345678", 0),
        "the hash binds the grant"
    );
}
