//! A byte-exact SMTP client over plain TCP, for dialogs no polite client will
//! produce (bare LF, pipelined garbage, smuggling attempts). It records a
//! transcript of what each side sent.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Default wait for one reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One server reply: the code and the text of each line (without the code,
/// separator and line ending), plus the exact bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
    pub raw: Vec<u8>,
}

impl Reply {
    /// All lines joined with '\n'.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// One entry of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes the client wrote.
    Sent(Vec<u8>),
    /// A complete reply.
    Reply(Reply),
    /// Bytes that are not a well-formed reply line (kept verbatim).
    Garbage(Vec<u8>),
    /// The server closed the connection.
    Closed,
    /// Nothing (more) arrived within the wait.
    TimedOut,
}

/// What happened on a connection, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    pub events: Vec<Event>,
}

impl Transcript {
    pub fn replies(&self) -> Vec<&Reply> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Reply(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The reply codes in order (the greeting first).
    pub fn codes(&self) -> Vec<u16> {
        self.replies().iter().map(|r| r.code).collect()
    }

    pub fn closed(&self) -> bool {
        self.events.contains(&Event::Closed)
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.events {
            match e {
                Event::Sent(b) => writeln!(f, "C: {}", escape(b))?,
                Event::Reply(r) => writeln!(f, "S: {}", escape(&r.raw))?,
                Event::Garbage(b) => writeln!(f, "S?: {}", escape(b))?,
                Event::Closed => writeln!(f, "-- closed by server")?,
                Event::TimedOut => writeln!(f, "-- timed out")?,
            }
        }
        Ok(())
    }
}

/// Bytes as text with CR, LF and other controls made visible.
fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// One step of a [`raw_smtp`] script.
#[derive(Debug, Clone)]
pub enum Step<'a> {
    /// Write these bytes exactly.
    Send(&'a [u8]),
    /// Write the line plus CRLF, then wait for one reply.
    Cmd(&'a str),
    /// Wait for this many replies.
    Expect(usize),
    /// Collect replies until nothing arrives for this long.
    Idle(Duration),
    /// Wait (up to the reply timeout) for the server to close the connection.
    ExpectClose,
}

/// Connects, reads the greeting, runs `script` and returns the transcript.
/// Failures to receive (timeouts, closes) are recorded, not panicked on, so
/// the test can assert on them.
pub fn raw_smtp(addr: SocketAddr, script: &[Step<'_>]) -> Transcript {
    let mut c = RawSmtp::connect(addr);
    for step in script {
        match step {
            Step::Send(bytes) => c.send(bytes),
            Step::Cmd(line) => {
                c.send_line(line);
                let _ = c.reply();
            }
            Step::Expect(n) => {
                for _ in 0..*n {
                    if c.reply().is_none() {
                        break;
                    }
                }
            }
            Step::Idle(quiet) => {
                c.replies_until_idle(*quiet);
            }
            Step::ExpectClose => {
                c.wait_closed(REPLY_TIMEOUT);
            }
        }
    }
    c.into_transcript()
}

/// A raw SMTP connection with its transcript.
#[derive(Debug)]
pub struct RawSmtp {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
    transcript: Transcript,
    /// How long [`reply`](Self::reply) waits.
    pub timeout: Duration,
}

impl RawSmtp {
    /// Connects and reads the greeting (recorded as the first reply).
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let mut c = Self {
            stream,
            buf: Vec::new(),
            closed: false,
            transcript: Transcript::default(),
            timeout: REPLY_TIMEOUT,
        };
        let _ = c.reply();
        c
    }

    /// Writes `bytes` exactly as given.
    pub fn send(&mut self, bytes: &[u8]) {
        self.transcript.events.push(Event::Sent(bytes.to_vec()));
        if let Err(e) = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
        {
            // The server may have closed already; that shows in the transcript.
            if !self.closed {
                self.transcript
                    .events
                    .push(Event::Garbage(format!("write error: {e}").into_bytes()));
            }
        }
    }

    /// Writes `line` followed by CRLF.
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes());
    }

    /// Sends a command line and returns its reply; panics with the transcript if none comes.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send_line(line);
        self.reply()
            .unwrap_or_else(|| panic!("no reply to {line:?}\n{}", self.transcript))
    }

    /// Waits up to `self.timeout` for one complete reply.
    pub fn reply(&mut self) -> Option<Reply> {
        self.reply_within(self.timeout)
    }

    fn reply_within(&mut self, wait: Duration) -> Option<Reply> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(reply) = self.take_reply() {
                return Some(reply);
            }
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.fill(left) {
                if !self.closed {
                    self.transcript.events.push(Event::TimedOut);
                }
                return None;
            }
        }
    }

    /// Collects replies until the server is quiet for `quiet` (or closes).
    pub fn replies_until_idle(&mut self, quiet: Duration) -> Vec<Reply> {
        let mut got = Vec::new();
        while let Some(r) = self.reply_quietly(quiet) {
            got.push(r);
        }
        got
    }

    /// Like `reply_within` but a timeout is the expected end, not an event.
    fn reply_quietly(&mut self, wait: Duration) -> Option<Reply> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(reply) = self.take_reply() {
                return Some(reply);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.closed || left.is_zero() || !self.fill(left) {
                return None;
            }
        }
    }

    /// Reads (recording any replies) until the server closes; true if it did within `wait`.
    pub fn wait_closed(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.closed {
            let _ = self.take_reply();
            let left = deadline.saturating_duration_since(Instant::now());
            let got_something = !left.is_zero() && self.fill(left);
            if !got_something {
                self.transcript.events.push(Event::TimedOut);
                return false;
            }
        }
        while self.take_reply().is_some() {}
        true
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub fn into_transcript(mut self) -> Transcript {
        while self.take_reply().is_some() {}
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.transcript.events.push(Event::Garbage(rest));
        }
        self.transcript
    }

    /// Reads once, waiting at most `wait`. False on timeout; sets `closed` on EOF or error.
    fn fill(&mut self, wait: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .expect("set read timeout");
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.mark_closed(),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => self.mark_closed(),
        }
    }

    fn mark_closed(&mut self) -> bool {
        if !self.closed {
            self.closed = true;
            // Complete replies were taken before reading; what is left is a partial line.
            if !self.buf.is_empty() {
                let rest = std::mem::take(&mut self.buf);
                self.transcript.events.push(Event::Garbage(rest));
            }
            self.transcript.events.push(Event::Closed);
        }
        true
    }

    /// Takes one complete reply out of the buffer, recording it.
    fn take_reply(&mut self) -> Option<Reply> {
        if let Some(r) = parse_reply(&mut self.buf, &mut self.transcript) {
            self.transcript.events.push(Event::Reply(r.clone()));
            return Some(r);
        }
        None
    }
}

/// Parses one complete reply from the front of `buf`; malformed lines are
/// moved to the transcript as garbage.
fn parse_reply(buf: &mut Vec<u8>, transcript: &mut Transcript) -> Option<Reply> {
    let mut lines = Vec::new();
    let mut used = 0;
    loop {
        let rest = &buf[used..];
        let end = rest.iter().position(|&b| b == b'\n')? + 1;
        let line = &rest[..end];
        let content = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(line);
        match split_reply_line(content) {
            Some((code, last, text)) => {
                if lines.first().is_some_and(|(c, _)| *c != code) {
                    // A code change mid-reply: treat what came before as garbage.
                    transcript
                        .events
                        .push(Event::Garbage(buf.drain(..used).collect()));
                    return parse_reply(buf, transcript);
                }
                lines.push((code, text));
                used += end;
                if last {
                    let raw: Vec<u8> = buf.drain(..used).collect();
                    return Some(Reply {
                        code,
                        lines: lines.into_iter().map(|(_, t)| t).collect(),
                        raw,
                    });
                }
            }
            None => {
                let bad: Vec<u8> = buf.drain(..used + end).collect();
                transcript.events.push(Event::Garbage(bad));
                return parse_reply(buf, transcript);
            }
        }
    }
}

/// "250-text" → (250, false, "text"); "250 text" or "250" → (250, true, ...).
fn split_reply_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let text = |from: usize| String::from_utf8_lossy(line.get(from..).unwrap_or(&[])).into_owned();
    match line.get(3) {
        None => Some((code, true, String::new())),
        Some(b' ') => Some((code, true, text(4))),
        Some(b'-') => Some((code, false, text(4))),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Transcript {
        let mut buf = bytes.to_vec();
        let mut t = Transcript::default();
        while let Some(r) = parse_reply(&mut buf, &mut t) {
            t.events.push(Event::Reply(r));
        }
        t
    }

    #[test]
    fn multiline_reply_is_one_reply() {
        let t = parse_all(b"250-relay.example.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
        let r = t.replies();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, 250);
        assert_eq!(r[0].lines, ["relay.example.test", "PIPELINING", "SIZE 100"]);
    }

    #[test]
    fn pipelined_replies_are_separate_and_partial_line_waits() {
        let mut buf = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go".to_vec();
        let mut t = Transcript::default();
        assert_eq!(parse_reply(&mut buf, &mut t).map(|r| r.code), Some(250));
        assert_eq!(parse_reply(&mut buf, &mut t).map(|r| r.code), Some(250));
        assert_eq!(parse_reply(&mut buf, &mut t), None);
        assert_eq!(buf, b"354 go");
    }

    #[test]
    fn malformed_line_is_recorded_as_garbage() {
        let t = parse_all(b"hello\r\n221 bye\r\n");
        assert_eq!(t.events[0], Event::Garbage(b"hello\r\n".to_vec()));
        assert_eq!(t.codes(), [221]);
    }

    #[test]
    fn transcript_display_shows_line_endings() {
        let t = Transcript {
            events: vec![Event::Sent(b"DATA\n".to_vec()), Event::Closed],
        };
        assert_eq!(t.to_string(), "C: DATA\\n\n-- closed by server\n");
    }

    #[test]
    fn dialog_against_a_scripted_loopback_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(b"220 test ESMTP\r\n").expect("greet");
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).expect("read");
            assert_eq!(&buf[..n], b"EHLO me\r\n");
            s.write_all(b"250-test\r\n250 PIPELINING\r\n")
                .expect("ehlo");
            let n = s.read(&mut buf).expect("read");
            assert_eq!(&buf[..n], b"QUIT\r\n");
            s.write_all(b"221 bye\r\n").expect("quit");
        });
        let t = raw_smtp(
            addr,
            &[Step::Cmd("EHLO me"), Step::Cmd("QUIT"), Step::ExpectClose],
        );
        server.join().expect("server thread");
        assert_eq!(t.codes(), [220, 250, 221], "{t}");
        assert!(t.closed(), "{t}");
    }
}
