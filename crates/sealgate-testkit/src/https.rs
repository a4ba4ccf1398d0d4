//! A real HTTPS server for tests (tokio-rustls and a minimal HTTP/1.1 responder).
//!
//! [`TestHttps::start`] listens on the given address with a certificate from a
//! [`TestCa`](crate::tls::TestCa) for a list of host names, and answers each request by its
//! `Host` header (port ignored) and path with a response the test sets. Unknown routes get
//! 404. Every connection answers one request and is closed. A blocked host's requests are
//! read and then the connection is closed without an answer, as a filtering middlebox would.
//!
//! ```ignore
//! let https = TestHttps::start("127.0.0.1:0".parse()?, &ca, &["mta-sts.example.test"]).await;
//! https.set_mta_sts_policy("example.test", "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n");
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::tls::TestCa;

/// The largest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One canned answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header; `None` sends none.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// Further headers, in order.
    pub headers: Vec<(String, String)>,
    /// Whether a `Content-Length` header is sent; without one the body ends when the
    /// connection closes.
    pub content_length: bool,
}

impl TestResponse {
    /// A response with a body of `content_type` and a `Content-Length`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            body: body.into(),
            headers: Vec::new(),
            content_length: true,
        }
    }

    /// A redirect (`status` 301, 302, 307, ...) to `location`, with no body.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            status,
            content_type: None,
            body: Vec::new(),
            headers: vec![("Location".to_owned(), location.to_owned())],
            content_length: true,
        }
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<(String, String), TestResponse>,
    blocked: HashSet<String>,
    per_host: HashMap<String, usize>,
    total: usize,
}

/// An HTTPS server on a local address, serving canned answers until dropped.
pub struct TestHttps {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestHttps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHttps")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TestHttps {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestHttps {
    /// Listens on `bind` (`127.0.0.1:0` for a free port) presenting a certificate issued by
    /// `ca` for `names`.
    ///
    /// # Panics
    /// When the address cannot be bound: a test setup error.
    pub async fn start(bind: SocketAddr, ca: &TestCa, names: &[&str]) -> Self {
        Self::start_with_config(bind, ca.issue(names).server_config()).await
    }

    /// Listens on `bind` with the given TLS settings (a certificate from elsewhere, say).
    ///
    /// # Panics
    /// When the address cannot be bound.
    pub async fn start_with_config(bind: SocketAddr, config: rustls::ServerConfig) -> Self {
        let listener = TcpListener::bind(bind)
            .await
            .unwrap_or_else(|e| panic!("bind test HTTPS server on {bind}: {e}"));
        let addr = listener.local_addr().expect("test HTTPS address");
        let state = Arc::new(Mutex::new(State::default()));
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(serve(listener, acceptor, state.clone()));
        Self { addr, state, task }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers GET `path` on `host` with `status`, `content_type` and `body`.
    pub fn set(
        &self,
        host: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) {
        self.set_response(host, path, TestResponse::new(status, content_type, body));
    }

    /// Answers GET `path` on `host` with `response`.
    pub fn set_response(&self, host: &str, path: &str, response: TestResponse) {
        self.lock()
            .routes
            .insert((host.to_ascii_lowercase(), path.to_owned()), response);
    }

    /// Serves `text` as the MTA-STS policy of `domain` (RFC 8461 §3.2: 200, `text/plain`, at
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`).
    pub fn set_mta_sts_policy(&self, domain: &str, text: &str) {
        self.set(
            &format!("mta-sts.{domain}"),
            "/.well-known/mta-sts.txt",
            200,
            "text/plain",
            text,
        );
    }

    /// From now on, requests for `host` are read and the connection closed without answer.
    pub fn block(&self, host: &str) {
        self.lock().blocked.insert(host.to_ascii_lowercase());
    }

    /// Answers `host` again.
    pub fn unblock(&self, host: &str) {
        self.lock().blocked.remove(&host.to_ascii_lowercase());
    }

    /// How many requests arrived (answered or not).
    pub fn requests(&self) -> usize {
        self.lock().total
    }

    /// How many requests arrived for `host`.
    pub fn requests_for(&self, host: &str) -> usize {
        let host = host.to_ascii_lowercase();
        self.lock().per_host.get(&host).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<Mutex<State>>) {
    // Dropped (aborting every connection) when the server task is aborted.
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(answer(tcp, acceptor.clone(), state.clone()));
        while connections.try_join_next().is_some() {}
    }
}

/// One connection: TLS, one request, one answer (or none when blocked), close.
async fn answer(tcp: TcpStream, acceptor: TlsAcceptor, state: Arc<Mutex<State>>) {
    // A client that rejects our certificate ends here: no request was made.
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(Some((path, host))) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut tls))
        .await
        .unwrap_or(Ok(None))
    else {
        return;
    };
    let response = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.total += 1;
        *state.per_host.entry(host.clone()).or_default() += 1;
        if state.blocked.contains(&host) {
            None
        } else {
            Some(
                state
                    .routes
                    .get(&(host, path))
                    .cloned()
                    .unwrap_or_else(|| TestResponse::new(404, "text/plain", "not found\n")),
            )
        }
    };
    if let Some(response) = response {
        let _ = tls.write_all(&encode(&response)).await;
    }
    let _ = tls.shutdown().await;
}

/// Reads a request head; returns its path and its `Host` (lowercase, port dropped).
async fn read_head<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<Option<(String, String)>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (Some(_method), Some(path)) = (request.next(), request.next()) else {
        return Ok(None);
    };
    let host = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim());
    let Some(host) = host else {
        return Ok(None);
    };
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    Ok(Some((path.to_owned(), host.to_ascii_lowercase())))
}

fn encode(response: &TestResponse) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    if let Some(content_type) = &response.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if response.content_length {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio_rustls::TlsConnector;

    async fn get(https: &TestHttps, ca: &TestCa, host: &str, path: &str) -> String {
        let connector = TlsConnector::from(Arc::new(ca.client_config()));
        let tcp = TcpStream::connect(https.addr()).await.expect("connect");
        let name = ServerName::try_from(host.to_owned()).expect("server name");
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
        tls.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn routes_by_host_and_path_and_counts_requests() {
        let ca = TestCa::new();
        let names = ["mta-sts.a.test", "mta-sts.b.test"];
        let https = TestHttps::start("127.0.0.1:0".parse().expect("addr"), &ca, &names).await;
        https.set_mta_sts_policy("a.test", "version: STSv1\n");
        https.set("mta-sts.b.test", "/x", 500, "application/json", "{}");

        let a = get(&https, &ca, "mta-sts.a.test", "/.well-known/mta-sts.txt").await;
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("Content-Type: text/plain\r\n"), "{a}");
        assert!(a.ends_with("\r\n\r\nversion: STSv1\n"), "{a}");
        let b = get(&https, &ca, "mta-sts.b.test", "/x").await;
        assert!(b.starts_with("HTTP/1.1 500 "), "{b}");
        let missing = get(&https, &ca, "mta-sts.b.test", "/.well-known/mta-sts.txt").await;
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");

        assert_eq!(https.requests(), 3);
        assert_eq!(https.requests_for("mta-sts.a.test"), 1);
        assert_eq!(https.requests_for("MTA-STS.B.TEST"), 2);
    }

    #[tokio::test]
    async fn blocked_host_gets_no_answer_until_unblocked() {
        let ca = TestCa::new();
        let https = TestHttps::start("127.0.0.1:0".parse().expect("addr"), &ca, &["h.test"]).await;
        https.set("h.test", "/", 200, "text/plain", "hello");
        https.block("h.test");
        assert_eq!(get(&https, &ca, "h.test", "/").await, "");
        https.unblock("h.test");
        assert!(get(&https, &ca, "h.test", "/").await.ends_with("hello"));
        assert_eq!(https.requests_for("h.test"), 2);
    }

    #[test]
    fn redirects_and_close_delimited_bodies_encode_as_asked() {
        let redirect =
            String::from_utf8(encode(&TestResponse::redirect(301, "https://x/"))).expect("ascii");
        assert!(
            redirect.contains("\r\nLocation: https://x/\r\n"),
            "{redirect}"
        );
        let mut open_ended = TestResponse::new(200, "text/plain", "abc");
        open_ended.content_length = false;
        let text = String::from_utf8(encode(&open_ended)).expect("ascii");
        assert!(!text.contains("Content-Length"), "{text}");
    }
}
