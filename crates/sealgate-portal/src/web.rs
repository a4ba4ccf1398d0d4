//! HTTP plumbing shared by the handlers: security headers, cookies, HTML responses and the
//! mapping of internal failures to generic pages.

use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    SET_COOKIE, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{error, warn};

use crate::{Ctx, PortalError, page};

/// The Content-Security-Policy of every page: nothing but our own stylesheet, our own frames
/// and forms posting to us; no scripts at all; never framed.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The Content-Security-Policy of a sanitized message body: inline styles and data images
/// only, sandboxed (no scripts, no forms, an opaque origin), framed only by the portal.
pub(crate) const BODY_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     sandbox; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// The session cookie (after verification): its name, before the link's tag.
pub const SESSION_COOKIE: &str = "__Host-sg_portal-";

/// The pre-session CSRF cookie (double-submit, for the code and verify forms): its name,
/// before the link's tag.
pub const CSRF_COOKIE: &str = "__Host-sg_csrf-";

/// The name of cookie `kind` ([`SESSION_COOKIE`] or [`CSRF_COOKIE`]) for the link `token`.
///
/// The `__Host-` prefix (RFC 6265bis §4.1.3.2) has browsers take the cookie only with
/// `Secure`, `Path=/` and no `Domain`, so no other host or plain-HTTP page can plant or
/// shadow it. `Path=/` means every link's cookies reach every portal path; the name carries a
/// tag of the link so the sessions of two links a recipient has open stay apart.
pub fn cookie_name(kind: &str, token: &str) -> String {
    format!("{kind}{}", crate::secret::cookie_tag(token))
}

/// Adds the security headers to every response (a handler's own CSP and frame options stay).
pub(crate) async fn security_headers(State(ctx): State<Ctx>, mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: with `no-referrer` browsers send `Origin: null` on
    // the portal's own form posts (Fetch §3.1), which the origin check must refuse. Other
    // sites still get no `Referer`, so the link token never leaves the portal.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    h.entry(X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if ctx.settings.tls.is_some() {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// An HTML page with `status`.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// A 303 to `location` (a path of ours), with extra headers (cookies).
pub(crate) fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    for c in cookies {
        res.headers_mut().append(SET_COOKIE, c);
    }
    res
}

/// The one answer for an unknown, expired or revoked link, whichever it is.
pub(crate) fn invalid_link() -> Response {
    html(StatusCode::NOT_FOUND, page::invalid_link())
}

/// Refused: a post from another origin, a missing or wrong CSRF token, or no session.
pub(crate) fn forbidden() -> Response {
    html(StatusCode::FORBIDDEN, page::forbidden())
}

/// Unknown paths.
pub(crate) async fn not_found() -> Response {
    html(StatusCode::NOT_FOUND, page::not_found())
}

/// The stylesheet (the only thing `style-src 'self'` loads).
pub(crate) async fn stylesheet() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        page::STYLESHEET,
    )
        .into_response()
}

/// No icon: 204, so browsers asking for one get no error (and no `img-src` exception).
pub(crate) async fn no_icon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The value of cookie `name` in the request, if sent. With several of that name, the first:
/// browsers send the one with the longest path first (RFC 6265 §5.4).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .next()
}

/// Cookie `name`: `Secure; HttpOnly; SameSite=Strict; Path=/` and no `Domain` (what the
/// `__Host-` prefix requires), lasting `max_age` seconds (0 deletes it).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict");
    // Names, tokens and values are all URL-safe base64, hex or fixed ASCII: always valid.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A handler failure: logged (never with content or secrets) and answered generically.
#[derive(Debug)]
pub(crate) struct Failure(pub PortalError);

impl<E: Into<PortalError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.0.is_transient() {
            warn!(error = %self.0, "portal request failed: storage unavailable");
            html(StatusCode::SERVICE_UNAVAILABLE, page::unavailable())
        } else {
            error!(error = %self.0, "portal request failed");
            html(StatusCode::INTERNAL_SERVER_ERROR, page::unavailable())
        }
    }
}

/// What handlers return.
pub(crate) type Handled = Result<Response, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_the_first_wins() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; sg_portal=abc; b=2"));
        h.append(COOKIE, HeaderValue::from_static("sg_portal=def"));
        assert_eq!(cookie(&h, "sg_portal").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "sg_csrf"), None);
    }

    #[test]
    fn cookies_are_host_prefixed_secure_http_only_strict_and_named_per_link() {
        let name = cookie_name(SESSION_COOKIE, "T");
        assert!(name.starts_with("__Host-sg_portal-"), "{name}");
        assert_eq!(name.len(), "__Host-sg_portal-".len() + 16);
        assert_ne!(name, cookie_name(SESSION_COOKIE, "U"), "one name per link");
        let v = set_cookie(&name, "tok", 60);
        assert_eq!(
            v.to_str().expect("ascii"),
            format!("{name}=tok; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Strict")
        );
        assert!(!v.to_str().expect("ascii").contains("Domain"));
    }
}
