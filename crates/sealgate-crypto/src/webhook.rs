//! Standard Webhooks 1.0 signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the endpoint's secret. The secret is
//! shown to the operator as `whsec_<base64 of its bytes>` (the form receivers' libraries take)
//! and stored sealed under the node key ring. While a secret is rotated, both sign: receivers
//! accept a request whose header carries any signature they can check.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::CryptoError;

const PREFIX: &str = "whsec_";

/// An endpoint's signing secret (32 random bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A fresh secret.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| CryptoError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// Reads `whsec_<base64>` (what [`WebhookSecret::display`] shows); between 24 and 64
    /// bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let b = B64.decode(text.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&b.len()).then_some(Self(b))
    }

    /// `whsec_<base64>`: shown to the operator once, and what is sealed.
    pub fn display(&self) -> String {
        format!("{PREFIX}{}", B64.encode(&self.0))
    }

    /// The `v1,<base64>` signature of one request.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length: new_from_slice cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one `v1,…` per secret, space-separated (the current secret
/// first, then the one being rotated out).
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The associated data an endpoint's secret is sealed with (it opens for that endpoint only).
pub fn sealing_context(endpoint_id: &str) -> Vec<u8> {
    format!("webhook-secret\0{endpoint_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (1.0, "Signature scheme").
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_round_trips_and_hides_in_debug_output() {
        let s = WebhookSecret::generate().expect("random");
        let shown = s.display();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&shown), Some(s.clone()));
        assert!(!format!("{s:?}").contains(&shown[6..]));
        for bad in [
            "",
            "whsec_",
            "whsec_!!!",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_AAAA",
        ] {
            assert!(WebhookSecret::parse(bad).is_none(), "{bad}");
        }
        let other = WebhookSecret::generate().expect("random");
        let header = signature_header(&[s.clone(), other.clone()], "evt_1", 5, b"{}");
        assert_eq!(
            header,
            format!(
                "{} {}",
                s.sign("evt_1", 5, b"{}"),
                other.sign("evt_1", 5, b"{}")
            )
        );
    }
}
