//! SMTP AUTH (RFC 4954) mechanisms PLAIN (RFC 4616) and LOGIN. Offered only over TLS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Credentials decoded from a client response.
pub(crate) struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Decodes base64 into UTF-8 text; `None` when it is neither.
pub(crate) fn decode_text(b64: &str) -> Option<String> {
    let raw = B64.decode(b64.trim()).ok()?;
    String::from_utf8(raw).ok()
}

/// PLAIN: `[authzid] NUL authcid NUL passwd`. An authzid other than the authcid is refused
/// (no proxy authorization).
pub(crate) fn decode_plain(b64: &str) -> Option<Credentials> {
    let text = decode_text(b64)?;
    let mut parts = text.split('\0');
    let (authz, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || (!authz.is_empty() && authz != user) {
        return None;
    }
    Some(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// Base64 of a server challenge.
pub(crate) fn encode(text: &str) -> String {
    B64.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses_decode_and_proxy_authorization_is_refused() {
        let c = decode_plain(&B64.encode("\0ehr\0s3cret")).expect("plain");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("ehr", "s3cret"));
        assert!(decode_plain(&B64.encode("ehr\0ehr\0pw")).is_some());
        assert!(decode_plain(&B64.encode("admin\0ehr\0pw")).is_none());
        assert!(decode_plain(&B64.encode("\0\0pw")).is_none());
        assert!(decode_plain("not base64!").is_none());
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
