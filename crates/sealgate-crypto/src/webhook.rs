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
/// An Ed25519 signing key (PKCS#8, base64): what is sealed for a `v1a` endpoint.
const SECRET_KEY_PREFIX: &str = "whsk_";
/// An Ed25519 public key (32 bytes, base64): what a `v1a` endpoint's receiver verifies with.
const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// An endpoint's signing secret: a shared HMAC key (`v1`, 32 random bytes), or an Ed25519 key
/// pair (`v1a`) whose public half the receiver holds.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookSecret {
    /// `v1`: HMAC-SHA256 with a shared key.
    Hmac(Vec<u8>),
    /// `v1a`: Ed25519; the PKCS#8 document of the private key.
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("WebhookSecret::Hmac(..)"),
            Self::Ed25519(_) => f.write_str("WebhookSecret::Ed25519(..)"),
        }
    }
}

impl WebhookSecret {
    /// A fresh `v1` secret.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| CryptoError::Random(e.to_string()))?;
        Ok(Self::Hmac(bytes))
    }

    /// A fresh `v1a` key pair.
    pub fn generate_ed25519() -> Result<Self, CryptoError> {
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|e| CryptoError::Random(e.to_string()))?;
        Ok(Self::Ed25519(pkcs8.as_ref().to_vec()))
    }

    /// Reads `whsec_<base64>` (24 to 64 bytes) or `whsk_<base64 PKCS#8>`, as
    /// [`WebhookSecret::display`] writes them.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix(SECRET_KEY_PREFIX) {
            let der = B64.decode(rest).ok()?;
            aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&der).ok()?;
            return Some(Self::Ed25519(der));
        }
        let b = B64.decode(text.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&b.len()).then_some(Self::Hmac(b))
    }

    /// `whsec_…` or `whsk_…`: what is sealed (and, for `v1`, shown to the operator once).
    pub fn display(&self) -> String {
        match self {
            Self::Hmac(b) => format!("{PREFIX}{}", B64.encode(b)),
            Self::Ed25519(der) => format!("{SECRET_KEY_PREFIX}{}", B64.encode(der)),
        }
    }

    /// What the receiver verifies with: the shared secret (`whsec_…`) for `v1`, the public key
    /// (`whpk_…`) for `v1a` (the private key never leaves Sealgate).
    pub fn for_receiver(&self) -> String {
        match self {
            Self::Hmac(_) => self.display(),
            Self::Ed25519(der) => match aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der) {
                Ok(pair) => {
                    use aws_lc_rs::signature::KeyPair as _;
                    format!(
                        "{PUBLIC_KEY_PREFIX}{}",
                        B64.encode(pair.public_key().as_ref())
                    )
                }
                Err(_) => String::new(),
            },
        }
    }

    /// `v1` or `v1a`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Hmac(_) => "v1",
            Self::Ed25519(_) => "v1a",
        }
    }

    /// A fresh secret of the same scheme (a rotation keeps the scheme).
    pub fn regenerate(&self) -> Result<Self, CryptoError> {
        match self {
            Self::Hmac(_) => Self::generate(),
            Self::Ed25519(_) => Self::generate_ed25519(),
        }
    }

    /// The `v1,<base64>` or `v1a,<base64>` signature of one request, over
    /// `<id>.<timestamp>.<body>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut signed = Vec::with_capacity(id.len() + 24 + body.len());
        signed.extend_from_slice(id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.to_string().as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        match self {
            Self::Hmac(key) => {
                // HMAC takes a key of any length: new_from_slice cannot fail for it.
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                    return String::new();
                };
                mac.update(&signed);
                format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
            }
            Self::Ed25519(der) => match aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der) {
                Ok(pair) => format!("v1a,{}", B64.encode(pair.sign(&signed).as_ref())),
                Err(_) => String::new(),
            },
        }
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
    fn a_v1a_signature_verifies_with_the_public_key_the_receiver_is_given() {
        let s = WebhookSecret::generate_ed25519().expect("key");
        assert_eq!(s.scheme(), "v1a");
        let sealed = s.display();
        assert!(sealed.starts_with("whsk_"));
        assert_eq!(WebhookSecret::parse(&sealed), Some(s.clone()));
        let public = s.for_receiver();
        let raw = B64
            .decode(public.strip_prefix("whpk_").expect("whpk_"))
            .expect("b64");
        assert_eq!(raw.len(), 32);
        let sig = s.sign("evt_1", 1_700_000_000, b"{\"a\":1}");
        let sig = B64
            .decode(sig.strip_prefix("v1a,").expect("v1a"))
            .expect("b64");
        let key =
            aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &raw);
        assert!(key.verify(b"evt_1.1700000000.{\"a\":1}", &sig).is_ok());
        assert!(key.verify(b"evt_1.1700000001.{\"a\":1}", &sig).is_err());
        assert_eq!(s.regenerate().expect("key").scheme(), "v1a");
    }

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
        assert_eq!(s.for_receiver(), shown);
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
