//! An HTTP (or HTTPS) site on loopback for browser tests: fixed pages by path, and a record of
//! every connection and request it got. Serves test pages, and stands in as a "canary" that
//! must never be reached.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The largest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// The largest request body read.
const MAX_BODY: usize = 1024 * 1024;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks whether the site was dropped.
const POLL: Duration = Duration::from_millis(20);

/// One canned response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// Further headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Page {
    /// A 200 response of `content_type`.
    pub fn new(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A 200 `text/html; charset=utf-8` response.
    pub fn html(body: &str) -> Self {
        Self::new("text/html; charset=utf-8", body)
    }

    /// This response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request the site got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// GET, POST, ...
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// The request headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running site. Unknown paths get 404 (and are recorded like any other request). Every
/// connection answers one request and is closed. Stopped when dropped.
pub struct TestSite {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// What the accept loop and the connections share.
#[derive(Default)]
struct State {
    pages: Mutex<HashMap<String, Page>>,
    hits: Mutex<Vec<Hit>>,
    connections: AtomicUsize,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for TestSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSite")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestSite {
    /// Plain HTTP on `bind` (port 0 for any free port).
    pub fn start(bind: SocketAddr) -> io::Result<Self> {
        Self::listen(bind, None)
    }

    /// HTTPS on `bind` with `tls` (e.g. [`Issued::server_config`](crate::tls::Issued::server_config)).
    pub fn start_tls(bind: SocketAddr, tls: rustls::ServerConfig) -> io::Result<Self> {
        Self::listen(bind, Some(Arc::new(tls)))
    }

    fn listen(bind: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Self> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(State {
            tls,
            ..State::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            thread::spawn(move || accept_loop(&listener, &state, &stop))
        };
        Ok(Self {
            addr,
            scheme,
            state,
            stop,
            accept: Some(accept),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{path}` (or `https://`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Serves `page` at `path` (the path alone: a query string is ignored when matching).
    pub fn serve(&self, path: &str, page: Page) {
        lock(&self.state.pages).insert(path.to_owned(), page);
    }

    /// Every request so far, oldest first.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.state.hits).clone()
    }

    /// How many connections were accepted, whether or not a request followed (a TLS
    /// handshake that failed, a plain request to an HTTPS site, a preconnect).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                state.connections.fetch_add(1, Ordering::Relaxed);
                let state = Arc::clone(state);
                thread::spawn(move || {
                    let _ = serve_connection(stream, &state);
                });
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// One connection: TLS first when the site has it, then one request.
fn serve_connection(stream: TcpStream, state: &State) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    match &state.tls {
        Some(config) => {
            let conn =
                rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, stream);
            answer(&mut tls, state)?;
            tls.conn.send_close_notify();
            tls.flush()
        }
        None => {
            let mut stream = stream;
            answer(&mut stream, state)
        }
    }
}

/// Reads one request, records it, and writes the page for its path (or 404).
fn answer(stream: &mut (impl Read + Write), state: &State) -> io::Result<()> {
    let Some(hit) = read_request(stream)? else {
        return Ok(());
    };
    let path = hit.target.split('?').next().unwrap_or("").to_owned();
    lock(&state.hits).push(hit);
    let page = lock(&state.pages)
        .get(&path)
        .cloned()
        .unwrap_or_else(|| Page {
            status: 404,
            ..Page::new("text/plain", "not found")
        });
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        page.status,
        page.content_type,
        page.body.len()
    );
    for (k, v) in &page.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&page.body)?;
    stream.flush()
}

/// The request on `stream`: `None` when the peer closed before sending a whole head.
fn read_request(stream: &mut impl Read) -> io::Result<Option<Hit>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > MAX_HEAD {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Hit {
        method,
        target,
        headers,
        body,
    }))
}
