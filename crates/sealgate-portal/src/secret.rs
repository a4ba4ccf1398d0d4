//! Secrets of the portal: link tokens, one-time codes, session and CSRF tokens, and the
//! fixed-time comparison every check of a secret goes through.
//!
//! Tokens are 32 bytes from the operating system's RNG, URL-safe base64 without padding
//! (256 bits, above the 128 the issue asks for). Only their SHA-256 is stored, so a copy of the
//! database does not open any link or session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sealgate_crypto::sha256_hex;
use subtle::ConstantTimeEq;

use crate::PortalError;

/// Length of a token's text form: 32 bytes in unpadded base64 are 43 characters.
pub const TOKEN_LEN: usize = 43;

/// Digits in a one-time code.
pub const CODE_DIGITS: usize = 8;

fn random_bytes<const N: usize>() -> Result<[u8; N], PortalError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| PortalError::Random(e.to_string()))?;
    Ok(b)
}

/// A fresh 256-bit token (session cookie, CSRF token), URL-safe base64 without padding.
pub fn new_token() -> Result<String, PortalError> {
    Ok(B64URL.encode(random_bytes::<32>()?))
}

/// True when `s` looks like a token (43 URL-safe base64 characters). Anything else is refused
/// before it reaches the database.
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the store keeps of a token or cookie: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The tag in the names of a link's cookies: 16 hex digits of a hash of the link token,
/// kept apart from [`token_hash`] (which the database stores) by a prefix. Says nothing of the
/// token that the cookie's own value would not.
pub fn cookie_tag(token: &str) -> String {
    let mut tag = sha256_hex(format!("sealgate-portal-cookie:{token}").as_bytes());
    tag.truncate(16);
    tag
}

/// A fresh one-time code: [`CODE_DIGITS`] decimal digits, uniformly drawn (rejection sampling,
/// so no digit string is likelier than another).
pub fn new_code() -> Result<String, PortalError> {
    const SPAN: u32 = 100_000_000; // 10^CODE_DIGITS
    // The largest multiple of SPAN that fits in u32: values at or above it would bias.
    const LIMIT: u32 = u32::MAX - (u32::MAX % SPAN);
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>()?);
        if n < LIMIT {
            return Ok(format!("{:0width$}", n % SPAN, width = CODE_DIGITS));
        }
    }
}

/// What the store keeps of a code: SHA-256 hex of `"grant_id:code"` (the contract's form), so
/// the same code for two grants hashes differently.
pub fn code_hash(grant_id: &str, code: &str) -> String {
    sha256_hex(format!("{grant_id}:{code}").as_bytes())
}

/// Compares two secrets (hashes, CSRF tokens) in time independent of where they differ.
/// Lengths are public (every secret here has a fixed-length form), so unequal lengths return
/// false at once.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A code as a person may type it: digits only (spaces and dashes dropped), or `None` when
/// anything else is in it or it has the wrong length.
pub fn normalize_code(typed: &str) -> Option<String> {
    let digits: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_distinct() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert!(is_token_shaped(&a), "{a}");
        assert_eq!(B64URL.decode(&a).expect("base64").len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn token_shape_refuses_anything_but_43_url_safe_characters() {
        assert!(is_token_shaped(&"A".repeat(43)));
        assert!(!is_token_shaped(&"A".repeat(42)));
        assert!(!is_token_shaped(&"A".repeat(44)));
        assert!(!is_token_shaped(&format!("{}/", "A".repeat(42))));
        assert!(!is_token_shaped(&format!("{}=", "A".repeat(42))));
    }

    #[test]
    fn codes_are_eight_digits_and_vary() {
        let codes: Vec<String> = (0..50).map(|_| new_code().expect("code")).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert!(distinct.len() > 45, "codes repeat too often: {codes:?}");
    }

    #[test]
    fn code_hash_binds_the_grant() {
        assert_eq!(
            code_hash("g1", "12345678"),
            sha256_hex(b"g1:12345678"),
            "the contract's form"
        );
        assert_ne!(code_hash("g1", "12345678"), code_hash("g2", "12345678"));
    }

    #[test]
    fn fixed_time_compare_is_equality() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
        assert!(!ct_eq("", "a"));
        assert!(ct_eq("", ""));
    }

    #[test]
    fn typed_codes_lose_spaces_and_dashes_and_nothing_else_passes() {
        assert_eq!(normalize_code(" 1234 5678 ").as_deref(), Some("12345678"));
        assert_eq!(normalize_code("1234-5678").as_deref(), Some("12345678"));
        assert_eq!(normalize_code("1234567"), None);
        assert_eq!(normalize_code("1234567a"), None);
        assert_eq!(normalize_code("١٢٣٤٥٦٧٨"), None, "only ASCII digits");
    }
}
