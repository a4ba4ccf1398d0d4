//! A scriptable SMTP server for tests: plays a remote MX on a loopback address.
//!
//! `SmtpSink::start` binds any `127.0.0.x:port` (so tests can put several "MX hosts" on the same
//! port of different loopback addresses), accepts on a tokio task and runs each session on its own
//! thread with blocking I/O (rustls' blocking `StreamOwned` serves STARTTLS without extra crates).
//!
//! The sink is strict so client bugs show: bare CR or LF in a command or in DATA gets a 5xx and
//! the connection is closed, commands out of order get 503, and client protocol slips that a
//! lenient server would swallow (pipelining when not offered, bytes sent after STARTTLS before the
//! handshake) are recorded in [`SmtpSink::violations`].

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a session waits for the client before giving up.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Longest command line accepted, CRLF included (RFC 5321 §4.5.3.1.4 says 512; be generous).
const MAX_COMMAND: usize = 2048;

/// What the sink offers and how it answers.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Address to listen on, e.g. `127.0.0.2:0`.
    pub bind: SocketAddr,
    /// Offer STARTTLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Advertise PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Advertise SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// Advertise `SIZE n` and refuse larger declared or received messages.
    pub size: Option<u64>,
    /// Advertise REQUIRETLS (RFC 8689) once the session is TLS, and accept the `REQUIRETLS`
    /// MAIL parameter there (it shows in [`ReceivedMessage::mail_params`]).
    pub requiretls: bool,
    /// Replies that differ from "accept everything".
    pub script: SinkScript,
}

impl SinkOptions {
    /// Plain sink on `bind`: no TLS, pipelining and SMTPUTF8 offered, no size limit, no
    /// REQUIRETLS.
    pub fn new(bind: SocketAddr) -> Self {
        SinkOptions {
            bind,
            tls: None,
            pipelining: true,
            smtputf8: true,
            size: None,
            requiretls: false,
            script: SinkScript::default(),
        }
    }
}

/// Where a scripted sink stops answering (the connection stays open until the client leaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Never send the greeting.
    Greeting,
    /// Never answer MAIL FROM.
    Mail,
    /// Read the whole message, never send the final reply.
    AfterData,
}

/// Scripted replies. Reply texts are written as sent, e.g. `"550 5.1.1 no such user"` (a
/// multi-line reply may be given with embedded `\r\n`).
#[derive(Debug, Clone, Default)]
pub struct SinkScript {
    greeting: Option<String>,
    ehlo: Option<String>,
    mail: Option<String>,
    rcpt: HashMap<String, String>,
    data_command: Option<String>,
    data_final: Arc<Mutex<VecDeque<String>>>,
    data_without_recipients: bool,
    after_starttls: Option<String>,
    stall: Option<Stall>,
}

impl SinkScript {
    /// Greet with this reply instead of 220 (e.g. `554 5.3.2 no service`, `421 4.3.2 busy`).
    pub fn greeting(mut self, reply: &str) -> Self {
        self.greeting = Some(reply.to_owned());
        self
    }

    /// Answer EHLO with this reply (HELO is still accepted).
    pub fn reject_ehlo(mut self, reply: &str) -> Self {
        self.ehlo = Some(reply.to_owned());
        self
    }

    /// Answer every MAIL FROM with this reply.
    pub fn reject_mail(mut self, reply: &str) -> Self {
        self.mail = Some(reply.to_owned());
        self
    }

    /// Answer `RCPT TO:<address>` with this reply (address compared case-insensitively).
    pub fn reject_rcpt(mut self, address: &str, reply: &str) -> Self {
        self.rcpt
            .insert(address.to_ascii_lowercase(), reply.to_owned());
        self
    }

    /// Answer the DATA command itself with this reply instead of 354.
    pub fn reject_data_command(mut self, reply: &str) -> Self {
        self.data_command = Some(reply.to_owned());
        self
    }

    /// Final replies after the message, used in order across all connections; once used up the
    /// sink answers 250. A message is recorded only when its final reply is 2xx.
    pub fn data_replies<I: IntoIterator<Item = S>, S: Into<String>>(self, replies: I) -> Self {
        lock(&self.data_final).extend(replies.into_iter().map(Into::into));
        self
    }

    /// Answer DATA with 354 even when no recipient was accepted (allowed by RFC 2920 §3.1), then
    /// refuse the (empty) message with 554.
    pub fn data_without_recipients(mut self) -> Self {
        self.data_without_recipients = true;
        self
    }

    /// Send this plaintext reply right behind the STARTTLS 220, in the same write (a response
    /// injection a client must discard, RFC 3207 §4.2).
    pub fn inject_after_starttls(mut self, reply: &str) -> Self {
        self.after_starttls = Some(reply.to_owned());
        self
    }

    /// Stop answering at `stage`.
    pub fn stall(mut self, stage: Stall) -> Self {
        self.stall = Some(stage);
        self
    }
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The reverse-path without angle brackets ("" for the null sender).
    pub mail_from: String,
    /// The MAIL FROM parameters as sent, e.g. `["SIZE=120", "BODY=8BITMIME"]`.
    pub mail_params: Vec<String>,
    /// The accepted recipients, in order.
    pub rcpts: Vec<String>,
    /// The message, de-stuffed, exactly as received (CRLF line ends, no final ".").
    pub data: Vec<u8>,
    /// The message came over TLS.
    pub tls: bool,
}

#[derive(Debug, Default)]
struct Shared {
    received: Vec<ReceivedMessage>,
    commands: Vec<String>,
    violations: Vec<String>,
    connections: usize,
}

/// A running sink; stops listening when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    count: watch::Receiver<usize>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What every session needs.
struct Context {
    options: SinkOptions,
    shared: Arc<Mutex<Shared>>,
    count: watch::Sender<usize>,
}

impl SmtpSink {
    /// Binds `options.bind` and starts accepting.
    pub async fn start(options: SinkOptions) -> io::Result<SmtpSink> {
        let listener = TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (sender, count) = watch::channel(0);
        let context = Arc::new(Context {
            options,
            shared: shared.clone(),
            count: sender,
        });
        let accept = tokio::spawn(accept_loop(listener, context));
        Ok(SmtpSink {
            addr,
            shared,
            count,
            accept,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages accepted so far, in order.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        lock(&self.shared).received.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.shared).connections
    }

    /// Every command line received (without CRLF), over all connections, in order.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.shared).commands.clone()
    }

    /// Client protocol slips the sink noticed (should be empty).
    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared).violations.clone()
    }

    /// Waits until at least `n` messages were accepted; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut count = self.count.clone();
        tokio::time::timeout(timeout, count.wait_for(|c| *c >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn accept_loop(listener: TcpListener, context: Arc<Context>) {
    while let Ok((socket, _)) = listener.accept().await {
        lock(&context.shared).connections += 1;
        let context = context.clone();
        let Ok(socket) = socket.into_std() else {
            continue;
        };
        std::thread::spawn(move || {
            let _ = run_session(socket, &context);
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The byte stream of one session, before or after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    /// Only while the socket moves into the TLS stream.
    Gone,
}

fn gone() -> io::Error {
    io::Error::from(io::ErrorKind::NotConnected)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Err(gone()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(gone()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Err(gone()),
        }
    }
}

/// The transaction being built.
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    mail_params: Vec<String>,
    rcpts: Vec<String>,
}

struct Session<'a> {
    context: &'a Context,
    stream: Stream,
    buf: Vec<u8>,
    greeted: bool,
    tls: bool,
    tx: Transaction,
}

/// What a command handler wants next.
enum Next {
    Continue,
    Close,
}

fn run_session(socket: TcpStream, context: &Context) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(IDLE_LIMIT))?;
    socket.set_nodelay(true)?;
    let mut session = Session {
        context,
        stream: Stream::Plain(socket),
        buf: Vec::new(),
        greeted: false,
        tls: false,
        tx: Transaction::default(),
    };
    let script = &context.options.script;
    if script.stall == Some(Stall::Greeting) {
        return session.drain();
    }
    match &script.greeting {
        Some(reply) => {
            session.reply(reply)?;
            if !reply.starts_with('2') {
                // RFC 5321 §3.1: after a 554 greeting the server waits for QUIT.
                return session.serve_until_quit();
            }
        }
        None => session.reply("220 sink.example.test ESMTP Sealgate test sink")?,
    }
    session.serve()
}

impl Session<'_> {
    /// Writes one reply, its line end included, in one write: a reply (and anything scripted
    /// with it, such as an injection after STARTTLS) leaves in one segment, never with its
    /// line end trailing behind where a client could read it after a TLS handshake began.
    fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut line = Vec::with_capacity(text.len() + 2);
        line.extend_from_slice(text.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.stream.write_all(&line)?;
        self.stream.flush()
    }

    fn violation(&self, what: String) {
        lock(&self.context.shared).violations.push(what);
    }

    /// Reads until the client leaves, answering nothing.
    fn drain(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        while self.stream.read(&mut chunk)? > 0 {}
        Ok(())
    }

    /// Reads more bytes into the buffer; false at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next command line without CRLF; `Ok(None)` when the client left or sent a bare
    /// CR/LF or an overlong line (answered and to be closed).
    fn next_line(&mut self) -> io::Result<Option<String>> {
        loop {
            match frame(&self.buf) {
                Framed::Line(end) => {
                    let line: Vec<u8> = self.buf.drain(..end).collect();
                    let text = String::from_utf8_lossy(&line[..end - 2]).into_owned();
                    return Ok(Some(text));
                }
                Framed::Bad(reply) => {
                    self.violation(format!("command framing: {reply}"));
                    self.reply(reply)?;
                    return Ok(None);
                }
                Framed::More => {
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn serve_until_quit(&mut self) -> io::Result<()> {
        while let Some(line) = self.next_line()? {
            lock(&self.context.shared).commands.push(line.clone());
            if line.eq_ignore_ascii_case("QUIT") {
                return self.reply("221 2.0.0 bye");
            }
            self.reply("503 5.5.1 no service, only QUIT")?;
        }
        Ok(())
    }

    fn serve(&mut self) -> io::Result<()> {
        while let Some(line) = self.next_line()? {
            lock(&self.context.shared).commands.push(line.clone());
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            if !self.context.options.pipelining && !self.buf.is_empty() {
                self.violation(format!("pipelined after {verb} without PIPELINING"));
            }
            let next = match verb.as_str() {
                "EHLO" => self.ehlo()?,
                "HELO" => self.helo()?,
                "STARTTLS" => self.starttls()?,
                "MAIL" => self.mail(&line)?,
                "RCPT" => self.rcpt(&line)?,
                "DATA" => self.data()?,
                "RSET" => {
                    self.tx = Transaction::default();
                    self.reply("250 2.0.0 reset")?;
                    Next::Continue
                }
                "NOOP" => {
                    self.reply("250 2.0.0 ok")?;
                    Next::Continue
                }
                "QUIT" => {
                    self.reply("221 2.0.0 bye")?;
                    Next::Close
                }
                _ => {
                    self.reply("500 5.5.1 command not recognized")?;
                    Next::Continue
                }
            };
            if let Next::Close = next {
                break;
            }
        }
        Ok(())
    }

    fn ehlo(&mut self) -> io::Result<Next> {
        if let Some(reply) = self.context.options.script.ehlo.clone() {
            self.reply(&reply)?;
            return Ok(Next::Continue);
        }
        let options = &self.context.options;
        let mut lines = vec!["sink.example.test".to_owned()];
        if options.pipelining {
            lines.push("PIPELINING".into());
        }
        if let Some(size) = options.size {
            lines.push(format!("SIZE {size}"));
        }
        lines.push("8BITMIME".into());
        if options.smtputf8 {
            lines.push("SMTPUTF8".into());
        }
        if options.tls.is_some() && !self.tls {
            lines.push("STARTTLS".into());
        }
        if options.requiretls && self.tls {
            lines.push("REQUIRETLS".into());
        }
        lines.push("ENHANCEDSTATUSCODES".into());
        let last = lines.len() - 1;
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect();
        self.greeted = true;
        self.tx = Transaction::default();
        self.reply(&text.join("\r\n"))?;
        Ok(Next::Continue)
    }

    fn helo(&mut self) -> io::Result<Next> {
        self.greeted = true;
        self.tx = Transaction::default();
        self.reply("250 sink.example.test")?;
        Ok(Next::Continue)
    }

    fn starttls(&mut self) -> io::Result<Next> {
        let Some(config) = self.context.options.tls.clone().filter(|_| !self.tls) else {
            self.reply("502 5.5.1 STARTTLS not offered")?;
            return Ok(Next::Continue);
        };
        if !self.buf.is_empty() {
            // RFC 3207 §4.2 / CVE-2011-0411: anything sent before the handshake is discarded.
            self.violation("bytes sent after STARTTLS before the handshake".into());
            self.buf.clear();
        }
        let mut ready = "220 2.0.0 ready to start TLS".to_owned();
        if let Some(injected) = &self.context.options.script.after_starttls {
            ready = format!("{ready}\r\n{injected}");
        }
        self.reply(&ready)?;
        let Stream::Plain(socket) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Ok(Next::Close);
        };
        let connection = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(connection, socket);
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                return Ok(Next::Close);
            }
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.tls = true;
        self.greeted = false;
        self.tx = Transaction::default();
        Ok(Next::Continue)
    }

    fn mail(&mut self, line: &str) -> io::Result<Next> {
        let reply = self.check_mail(line);
        if reply.starts_with('2') {
            let (path, params) = split_path(line, "MAIL FROM:").unwrap_or_default();
            self.tx = Transaction {
                mail_from: Some(path),
                mail_params: params,
                rcpts: Vec::new(),
            };
        }
        if self.context.options.script.stall == Some(Stall::Mail) {
            self.drain()?;
            return Ok(Next::Close);
        }
        self.reply(&reply)?;
        Ok(Next::Continue)
    }

    fn check_mail(&self, line: &str) -> String {
        let options = &self.context.options;
        if !self.greeted {
            return "503 5.5.1 EHLO first".into();
        }
        if self.tx.mail_from.is_some() {
            return "503 5.5.1 nested MAIL".into();
        }
        let Some((path, params)) = split_path(line, "MAIL FROM:") else {
            return "501 5.5.4 syntax error in MAIL".into();
        };
        let mut smtputf8 = false;
        for param in &params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "SMTPUTF8" if options.smtputf8 => smtputf8 = true,
                "REQUIRETLS" if options.requiretls && self.tls && value.is_empty() => {}
                "BODY" if ["7BIT", "8BITMIME"].contains(&value.to_ascii_uppercase().as_str()) => {}
                "SIZE" => match (value.parse::<u64>(), options.size) {
                    (Err(_), _) => return "501 5.5.4 bad SIZE".into(),
                    (Ok(n), Some(limit)) if limit > 0 && n > limit => {
                        return "552 5.3.4 message too big".into();
                    }
                    _ => {}
                },
                _ => return "555 5.5.4 unsupported parameter".into(),
            }
        }
        if !path.is_ascii() && !smtputf8 {
            return "553 5.6.7 non-ASCII sender needs SMTPUTF8".into();
        }
        if let Some(reply) = &options.script.mail {
            return reply.clone();
        }
        "250 2.1.0 sender ok".into()
    }

    fn rcpt(&mut self, line: &str) -> io::Result<Next> {
        let reply = self.check_rcpt(line);
        if reply.starts_with('2')
            && let Some((path, _)) = split_path(line, "RCPT TO:")
        {
            self.tx.rcpts.push(path);
        }
        self.reply(&reply)?;
        Ok(Next::Continue)
    }

    fn check_rcpt(&self, line: &str) -> String {
        if self.tx.mail_from.is_none() {
            return "503 5.5.1 MAIL first".into();
        }
        let Some((path, params)) = split_path(line, "RCPT TO:") else {
            return "501 5.5.4 syntax error in RCPT".into();
        };
        if !params.is_empty() {
            return "555 5.5.4 unsupported parameter".into();
        }
        let smtputf8 = self.tx.mail_params.iter().any(|p| p == "SMTPUTF8");
        if !path.is_ascii() && !smtputf8 {
            return "553 5.6.7 non-ASCII recipient needs SMTPUTF8".into();
        }
        match self
            .context
            .options
            .script
            .rcpt
            .get(&path.to_ascii_lowercase())
        {
            Some(reply) => reply.clone(),
            None => "250 2.1.5 recipient ok".into(),
        }
    }

    fn data(&mut self) -> io::Result<Next> {
        if self.tx.mail_from.is_none() {
            self.reply("503 5.5.1 MAIL first")?;
            return Ok(Next::Continue);
        }
        let script = &self.context.options.script;
        if self.tx.rcpts.is_empty() && !script.data_without_recipients {
            self.reply("554 5.5.1 no valid recipients")?;
            return Ok(Next::Continue);
        }
        if let Some(reply) = self.context.options.script.data_command.clone() {
            self.reply(&reply)?;
            return Ok(Next::Continue);
        }
        self.reply("354 end data with <CRLF>.<CRLF>")?;
        let body = match self.read_message()? {
            Ok(body) => body,
            Err(reply) => {
                self.violation(format!("message data: {reply}"));
                self.reply(reply)?;
                return Ok(Next::Close);
            }
        };
        if self.context.options.script.stall == Some(Stall::AfterData) {
            self.drain()?;
            return Ok(Next::Close);
        }
        let reply = if self.tx.rcpts.is_empty() {
            "554 5.5.1 no valid recipients".to_owned()
        } else {
            self.final_reply(body.len())
        };
        if reply.starts_with('2') {
            self.record(body);
        }
        self.tx = Transaction::default();
        self.reply(&reply)?;
        Ok(Next::Continue)
    }

    fn final_reply(&self, size: usize) -> String {
        if let Some(limit) = self.context.options.size
            && limit > 0
            && size as u64 > limit
        {
            return "552 5.3.4 message too big".into();
        }
        lock(&self.context.options.script.data_final)
            .pop_front()
            .unwrap_or_else(|| "250 2.0.0 queued".into())
    }

    fn record(&mut self, data: Vec<u8>) {
        let tx = std::mem::take(&mut self.tx);
        let message = ReceivedMessage {
            mail_from: tx.mail_from.unwrap_or_default(),
            mail_params: tx.mail_params,
            rcpts: tx.rcpts,
            data,
            tls: self.tls,
        };
        let mut shared = lock(&self.context.shared);
        shared.received.push(message);
        let count = shared.received.len();
        drop(shared);
        self.context.count.send_replace(count);
    }

    /// Reads the message up to CRLF "." CRLF, de-stuffing; `Err(reply)` for a bare CR or LF.
    fn read_message(&mut self) -> io::Result<Result<Vec<u8>, &'static str>> {
        let mut decoder = Destuffer::default();
        loop {
            let (used, done) = decoder.feed(&self.buf);
            self.buf.drain(..used);
            match done {
                Some(result) => return Ok(result),
                None => {
                    if !self.fill()? {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
    }
}

enum Framed {
    Line(usize),
    More,
    Bad(&'static str),
}

/// Finds one CRLF-terminated command line, refusing bare CR/LF and overlong lines.
fn frame(buf: &[u8]) -> Framed {
    for (index, byte) in buf.iter().enumerate().take(MAX_COMMAND) {
        match (byte, buf.get(index + 1)) {
            (b'\n', _) => return Framed::Bad("500 5.5.2 bare LF in command"),
            (b'\r', Some(b'\n')) => return Framed::Line(index + 2),
            (b'\r', Some(_)) => return Framed::Bad("500 5.5.2 bare CR in command"),
            (b'\r', None) => return Framed::More,
            _ => {}
        }
    }
    if buf.len() >= MAX_COMMAND {
        Framed::Bad("500 5.5.2 line too long")
    } else {
        Framed::More
    }
}

/// `MAIL FROM:<path> params` → (path, params); `None` if the prefix or brackets are missing.
fn split_path(line: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].strip_prefix('<')?;
    let close = rest.find('>')?;
    let path = rest[..close].to_owned();
    let params = rest[close + 1..]
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    Some((path, params))
}

/// Strict incremental DATA de-stuffer (RFC 5321 §4.5.2).
#[derive(Default)]
struct Destuffer {
    body: Vec<u8>,
    state: DataState,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum DataState {
    #[default]
    LineStart,
    Dot,
    DotCr,
    Text,
    Cr,
}

impl Destuffer {
    /// Consumes bytes; returns how many and, at the end of data, the message or the refusal.
    fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<Vec<u8>, &'static str>>) {
        const BARE_CR: &str = "550 5.5.2 bare CR in message data";
        const BARE_LF: &str = "550 5.5.2 bare LF in message data";
        for (index, &byte) in input.iter().enumerate() {
            let used = index + 1;
            self.state = match (self.state, byte) {
                (DataState::Cr, b'\n') => {
                    self.body.extend_from_slice(b"\r\n");
                    DataState::LineStart
                }
                (DataState::DotCr, b'\n') => {
                    return (used, Some(Ok(std::mem::take(&mut self.body))));
                }
                (DataState::Cr | DataState::DotCr, _) => return (used, Some(Err(BARE_CR))),
                (_, b'\n') => return (used, Some(Err(BARE_LF))),
                (DataState::Dot, b'\r') => DataState::DotCr,
                (_, b'\r') => DataState::Cr,
                (DataState::LineStart, b'.') => DataState::Dot,
                _ => {
                    self.body.push(byte);
                    DataState::Text
                }
            };
        }
        (input.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destuff(wire: &[u8]) -> (usize, Option<Result<Vec<u8>, &'static str>>) {
        Destuffer::default().feed(wire)
    }

    #[test]
    fn destuffer_removes_one_leading_dot_per_line() {
        let (used, got) = destuff(b"..a\r\n.\r\n");
        assert_eq!(used, 8);
        assert_eq!(got, Some(Ok(b".a\r\n".to_vec())));
        assert_eq!(destuff(b".\r\n").1, Some(Ok(Vec::new())));
    }

    #[test]
    fn destuffer_refuses_bare_line_ends() {
        assert!(matches!(destuff(b"a\n.\r\n").1, Some(Err(_))));
        assert!(matches!(destuff(b"a\r.\r\n").1, Some(Err(_))));
        assert!(matches!(destuff(b"a\r\n.\n").1, Some(Err(_))));
    }

    #[test]
    fn framing_refuses_bare_lf() {
        assert!(matches!(frame(b"QUIT\n"), Framed::Bad(_)));
        assert!(matches!(frame(b"QUIT\r\n"), Framed::Line(6)));
        assert!(matches!(frame(b"QUIT\r"), Framed::More));
    }

    #[test]
    fn paths_and_params_are_split() {
        let (path, params) =
            split_path("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME", "MAIL FROM:").expect("valid");
        assert_eq!(path, "a@b");
        assert_eq!(params, ["SIZE=10", "BODY=8BITMIME"]);
        assert_eq!(
            split_path("mail from:<>", "MAIL FROM:"),
            Some((String::new(), vec![]))
        );
        assert_eq!(split_path("RCPT TO:a@b", "RCPT TO:"), None);
    }
}
