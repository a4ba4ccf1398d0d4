//! Where a state-changing request came from: the portal's own pages, or another site.
//!
//! The expected origin is the configured `portal.public_url`, never the request's `Host`
//! header: behind a proxy `Host` (and the scheme) are what the proxy sent, not what the browser
//! saw, and a DNS-rebinding page at `http://attacker.example:8443` that resolves to the portal
//! sends `Host: attacker.example:8443` together with `Origin: http://attacker.example:8443`,
//! which a comparison with `Host` would accept. Only the configured origin is what recipients'
//! browsers were given in links.

use axum::http::HeaderMap;
use axum::http::header::{ORIGIN, REFERER};

/// Longest origin text kept in an audit record (the header is the client's to choose).
const MAX_SEEN: usize = 200;

/// The ASCII serialization of the origin of `url` (RFC 6454 §6.2): scheme and host in lower
/// case, the port only when it is not the scheme's default, no path. `url` is
/// `portal.public_url`, whose shape the configuration checked.
pub fn serialize(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = split_host_port(authority);
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => host.to_ascii_lowercase(),
    };
    let default_port = match scheme.as_str() {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    };
    match port.filter(|p| Some(*p) != default_port) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// `host` (without IPv6 brackets) and the port, if any, of an authority.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        return (host, after.strip_prefix(':').filter(|p| !p.is_empty()));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() => (host, Some(port)),
        Some((host, _)) => (host, None),
        None => (authority, None),
    }
}

/// Why a request was taken for a cross-origin one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `cross-site`, `null-origin`, `foreign-origin`, `foreign-referer` or `no-origin`.
    pub reason: &'static str,
    /// What the request said (shortened), for the audit record.
    pub seen: Option<String>,
}

impl Refusal {
    fn new(reason: &'static str, seen: Option<&str>) -> Self {
        Self {
            reason,
            seen: seen.map(|s| s.chars().take(MAX_SEEN).collect()),
        }
    }
}

/// Header `name` as text (`(not text)` when it is not).
fn header(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or("(not text)"))
}

/// Accepts a state-changing request only when it comes from `expected` (the serialized
/// public origin):
/// - `Sec-Fetch-Site` (Fetch Metadata), when sent, must be `same-origin`: `same-site`,
///   `cross-site` and `none` (typed in, bookmarked) are not how the portal's forms post;
/// - `Origin`, when sent, must be `expected`. `null` is refused: it is what a sandboxed frame,
///   a `data:` page or a privacy redirect sends (RFC 6454 §7.3), never the portal's pages,
///   whose `Referrer-Policy: same-origin` has browsers send their real origin;
/// - with neither, `Referer` must be on `expected` (old browsers);
/// - with none of the three, refused: every browser of the last decade sends `Origin` on a
///   POST, so only a non-browser would omit all three, and it has no business posting forms.
pub fn check(headers: &HeaderMap, expected: &str) -> Result<(), Refusal> {
    let site = header(headers, "sec-fetch-site");
    if let Some(site) = site.filter(|s| !s.eq_ignore_ascii_case("same-origin")) {
        return Err(Refusal::new("cross-site", Some(site)));
    }
    if let Some(origin) = header(headers, ORIGIN) {
        let origin = origin.trim();
        return match origin {
            "null" => Err(Refusal::new("null-origin", Some(origin))),
            o if o.eq_ignore_ascii_case(expected) => Ok(()),
            o => Err(Refusal::new("foreign-origin", Some(o))),
        };
    }
    if site.is_some() {
        // A browser that says `same-origin` computed it from the real origins.
        return Ok(());
    }
    match header(headers, REFERER) {
        Some(referer) => {
            let from = serialize(referer);
            if referer.contains("://") && from.eq_ignore_ascii_case(expected) {
                Ok(())
            } else {
                Err(Refusal::new("foreign-referer", Some(&from)))
            }
        }
        None => Err(Refusal::new("no-origin", None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PORTAL: &str = "https://portal.clinic.test";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn reason(pairs: &[(&'static str, &'static str)]) -> Option<&'static str> {
        check(&headers(pairs), PORTAL).err().map(|r| r.reason)
    }

    #[test]
    fn origins_serialize_without_default_ports_paths_or_upper_case() {
        for (url, origin) in [
            ("https://Portal.Clinic.Test", "https://portal.clinic.test"),
            (
                "https://portal.clinic.test:443",
                "https://portal.clinic.test",
            ),
            (
                "https://portal.clinic.test:8443/secure",
                "https://portal.clinic.test:8443",
            ),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("http://127.0.0.1:8443", "http://127.0.0.1:8443"),
            ("https://[0:0::1]:8443", "https://[::1]:8443"),
            ("https://a.test/p/x?y#z", "https://a.test"),
        ] {
            assert_eq!(serialize(url), origin, "{url}");
        }
    }

    #[test]
    fn the_portals_own_posts_pass() {
        let chromium = [
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://portal.clinic.test"),
        ];
        assert_eq!(reason(&chromium), None);
        assert_eq!(reason(&[("origin", "https://PORTAL.clinic.test")]), None);
        assert_eq!(reason(&[("sec-fetch-site", "same-origin")]), None);
        assert_eq!(
            reason(&[("referer", "https://portal.clinic.test/p/T/thread")]),
            None
        );
    }

    #[test]
    fn other_sites_null_origins_and_silent_clients_are_refused() {
        for (pairs, why) in [
            (&[("origin", "https://evil.test")][..], "foreign-origin"),
            (
                &[("origin", "https://portal.clinic.test:444")][..],
                "foreign-origin",
            ),
            (
                &[("origin", "http://portal.clinic.test")][..],
                "foreign-origin",
            ),
            (&[("origin", "null")][..], "null-origin"),
            (
                &[("sec-fetch-site", "same-origin"), ("origin", "null")][..],
                "null-origin",
            ),
            (
                &[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://portal.clinic.test"),
                ][..],
                "cross-site",
            ),
            (&[("sec-fetch-site", "same-site")][..], "cross-site"),
            (&[("sec-fetch-site", "none")][..], "cross-site"),
            (
                &[("referer", "https://portal.clinic.test.evil.test/p/T")][..],
                "foreign-referer",
            ),
            (&[("referer", "/p/T/thread")][..], "foreign-referer"),
            (&[][..], "no-origin"),
        ] {
            assert_eq!(reason(pairs), Some(why), "{pairs:?}");
        }
    }

    #[test]
    fn what_a_refused_request_said_is_kept_short() {
        let long = format!("https://{}.test", "a".repeat(500));
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_str(&long).expect("value"));
        let refusal = check(&h, PORTAL).expect_err("foreign");
        assert_eq!(refusal.seen.map(|s| s.len()), Some(MAX_SEEN));
    }
}
