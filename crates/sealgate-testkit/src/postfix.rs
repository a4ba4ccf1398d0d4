//! A throwaway real Postfix (the Debian package) on a loopback address: the MX of test domains,
//! or later a relay for benchmarks.
//!
//! Each [`PostfixMx`] owns a temporary directory holding its own `config_directory`,
//! `queue_directory`, `data_directory`, log file and Maildir, and is started with
//! `postfix -c DIR start`, so instances never touch `/etc/postfix`, the system queue or each
//! other; several may run at once on different addresses. Every service runs outside a chroot, so
//! nothing needs copying into the queue directory.
//!
//! Needs root (Postfix's master must start as root) and the `postfix` package, which
//! `scripts/test` installs. Mail for the configured domains is delivered by Postfix's `virtual`
//! agent into one Maildir as the unprivileged `nobody` user; with a relayhost, mail for any other
//! domain is relayed there.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

/// The `postfix` command of the Debian package.
const POSTFIX: &str = "/usr/sbin/postfix";
/// Owner of delivered mail: Debian's `nobody`/`nogroup`. It must be at least
/// `virtual_minimum_uid` (100), so system users such as `postfix` itself are refused.
const MAIL_UID: u32 = 65534;
/// Group of delivered mail.
const MAIL_GID: u32 = 65534;
/// How long `start` waits for the 220 greeting.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How often the readiness and delivery loops look again.
const POLL: Duration = Duration::from_millis(50);

/// How a [`PostfixMx`] is set up.
#[derive(Debug, Clone)]
pub struct PostfixOpts {
    /// Address the SMTP server listens on, e.g. `127.0.0.5:2525` (see [`free_addr`]).
    pub bind: SocketAddr,
    /// Final destinations: every address in these domains is delivered to the Maildir.
    pub domains: Vec<String>,
    /// Certificate chain and private key (PEM files) to offer STARTTLS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Relay mail for every other domain to this next hop, e.g. `[127.0.0.9]:2600`.
    pub relayhost: Option<String>,
    /// Largest message accepted, in bytes (Postfix's `message_size_limit`).
    pub message_size_limit: u64,
    /// `transport_maps` entries (address or domain, transport), e.g. `("nobody@example.test",
    /// "error:5.1.1 User unknown")`: such mail is accepted at RCPT and bounced afterwards, as
    /// a real MX does for a mailbox it cannot deliver to.
    pub transport: Vec<(String, String)>,
    /// Recipients refused at RCPT with the given reply, e.g. `("gone@example.test", "550 5.1.1
    /// No such user")` (`check_recipient_access`).
    pub reject: Vec<(String, String)>,
}

impl PostfixOpts {
    /// Plain MX for `domains` on `bind`: no TLS, no relayhost, 10 MiB messages.
    pub fn new(bind: SocketAddr, domains: &[&str]) -> Self {
        PostfixOpts {
            bind,
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            tls: None,
            relayhost: None,
            message_size_limit: 10 * 1024 * 1024,
            transport: Vec::new(),
            reject: Vec::new(),
        }
    }
}

/// A free TCP port on `ip`, chosen by the kernel (racy, like every such helper, but only
/// loopback tests compete for it).
pub fn free_addr(ip: Ipv4Addr) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("bind a loopback port to find a free one");
    listener
        .local_addr()
        .expect("local address of probe listener")
}

/// A running Postfix instance; stopped and deleted on drop.
#[derive(Debug)]
pub struct PostfixMx {
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl PostfixMx {
    /// Writes the configuration, starts Postfix and waits for its 220 greeting.
    ///
    /// Panics when Postfix is not installed, when it refuses the configuration, or when it does
    /// not greet within 20 s (with its log in the message).
    pub fn start(opts: PostfixOpts) -> PostfixMx {
        assert!(
            Path::new(POSTFIX).exists(),
            "{POSTFIX} not found: run scripts/test, which installs postfix"
        );
        assert!(!opts.domains.is_empty(), "PostfixOpts::domains is empty");
        let dir = tempfile::Builder::new()
            .prefix("sealgate-postfix.")
            .tempdir()
            .expect("create postfix temp dir");
        let mx = PostfixMx {
            dir,
            addr: opts.bind,
        };
        mx.lay_out(&opts);
        mx.postfix("start"); // runs `postfix check` first, which creates the queue
        mx.wait_ready();
        mx
    }

    /// The address the SMTP server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until at least `n` messages were delivered and returns them all (see
    /// [`messages`](Self::messages)); panics with Postfix's log after `timeout`.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if Instant::now() >= deadline {
                panic!(
                    "postfix at {} delivered {} of {n} messages within {timeout:?}; its log:\n{}",
                    self.addr,
                    messages.len(),
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The delivered messages as raw files (Maildir `new/` entries, headers Postfix added
    /// included), sorted by file name, which starts with the delivery time. Lines end in bare
    /// LF (Postfix stores them so) and dot-stuffing is undone; headers are not rewritten.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.maildir().join("new");
        let Ok(entries) = fs::read_dir(&new) else {
            return Vec::new(); // the virtual agent creates the Maildir on first delivery
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.expect("read Maildir entry").path())
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
            .collect()
    }

    /// Postfix's log (its `maillog_file`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.path("maillog")).unwrap_or_default()
    }

    /// The instance directory (config, queue, data, log and Maildir live under it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn maildir(&self) -> PathBuf {
        self.path("mail").join("maildir")
    }

    /// Creates the directories and writes `main.cf` and `master.cf`. The queue's
    /// subdirectories and the data directory are created by `postfix check` with the owners
    /// Postfix wants.
    fn lay_out(&self, opts: &PostfixOpts) {
        // Postfix's daemons run as `postfix` and deliver as `nobody`: both must traverse.
        fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o755))
            .expect("open up postfix temp dir");
        let config = self.path("config");
        fs::create_dir(&config).expect("create config dir");
        // Root-owned like /var/spool/postfix; `postfix check` fills in the rest.
        fs::create_dir(self.path("queue")).expect("create queue dir");
        let mail = self.path("mail");
        fs::create_dir(&mail).expect("create mail dir");
        std::os::unix::fs::chown(&mail, Some(MAIL_UID), Some(MAIL_GID))
            .expect("chown mail dir to nobody (tests must run as root)");
        fs::write(config.join("main.cf"), main_cf(opts, self.dir.path())).expect("write main.cf");
        let transport: String = opts
            .transport
            .iter()
            .map(|(key, value)| format!("{key} {value}\n"))
            .collect();
        fs::write(config.join("transport"), transport).expect("write transport");
        let reject: String = opts
            .reject
            .iter()
            .map(|(key, value)| format!("{key} {value}\n"))
            .collect();
        fs::write(config.join("reject"), reject).expect("write reject");
        fs::write(config.join("master.cf"), master_cf(opts.bind)).expect("write master.cf");
    }

    /// Runs `postfix -c CONFIG <verb>`; panics with its output and the log when it fails.
    fn postfix(&self, verb: &str) -> Output {
        let out = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.path("config"))
            .arg(verb)
            .output()
            .unwrap_or_else(|e| panic!("run {POSTFIX}: {e}"));
        // A fatal error found while reading main.cf goes to syslog only (there is none here),
        // hence the hint when the output and the log say nothing.
        assert!(
            out.status.success(),
            "postfix {verb} failed ({}):\n{}{}\nlog (if empty, check main.cf with \
             `postconf -c {}`):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.path("config").display(),
            self.log()
        );
        out
    }

    /// Connects until the server sends a 220 greeting.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_LIMIT;
        let mut last = String::from("never connected");
        while Instant::now() < deadline {
            match greeting(self.addr) {
                Ok(line) if line.starts_with("220") => return,
                Ok(line) => last = format!("greeting {line:?}"),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(POLL);
        }
        panic!(
            "postfix at {} not ready within {READY_LIMIT:?} (last: {last}); its log:\n{}",
            self.addr,
            self.log()
        );
    }

    /// The master's pid, if its pid file is there.
    fn master_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.path("queue").join("pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for PostfixMx {
    fn drop(&mut self) {
        let pid = self.master_pid();
        // `postfix stop` waits up to 5 s for the master, then kills it itself.
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.path("config"))
            .arg("stop")
            .output();
        if let Some(pid) = pid
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        // The TempDir removes the directory after this.
    }
}

/// Reads the first reply line from `addr`.
fn greeting(addr: SocketAddr) -> std::io::Result<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// The `main.cf` of an instance rooted at `dir`.
fn main_cf(opts: &PostfixOpts, dir: &Path) -> String {
    let d = dir.display();
    let ip = opts.bind.ip();
    let mut cf = String::new();
    let mut set = |key: &str, value: &str| {
        writeln!(cf, "{key} = {value}").expect("write to String");
    };
    set("compatibility_level", "3.6");
    set("queue_directory", &format!("{d}/queue"));
    set("data_directory", &format!("{d}/data"));
    set("maillog_file", &format!("{d}/maillog"));
    // maillog_file must start with one of these (default "/var, /dev/stdout"); otherwise every
    // command dies before it can log anything.
    set("maillog_file_prefixes", &d.to_string());
    set("myhostname", &format!("mx.{}", opts.domains[0]));
    set("smtpd_banner", "$myhostname ESMTP Postfix (sealgate test)");
    // Postfix refuses an inet_interfaces address that is not configured on an interface, and
    // Linux has only 127.0.0.1 on lo while answering for all of 127/8. So: listen through the
    // master.cf line alone, and tell Postfix the address is its own (loop detection).
    set(
        "inet_interfaces",
        &if ip.is_loopback() {
            "loopback-only".to_owned()
        } else {
            ip.to_string()
        },
    );
    set("proxy_interfaces", &ip.to_string());
    set("inet_protocols", if ip.is_ipv6() { "ipv6" } else { "ipv4" });
    set("mynetworks", mynetworks(ip));
    set("mydestination", "");
    set("alias_maps", "");
    set("alias_database", "");
    set("biff", "no");
    set("append_dot_mydomain", "no");
    set("smtputf8_enable", "yes");
    // Like an MX on the internet: add no Date, Message-ID or From to anyone's mail (Postfix does
    // by default for clients on its own interfaces, which on loopback means every client).
    set("local_header_rewrite_clients", "");
    set("message_size_limit", &opts.message_size_limit.to_string());
    // Both must not be smaller than message_size_limit; 0 means no limit.
    set("mailbox_size_limit", "0");
    set("virtual_mailbox_limit", "0");
    set("virtual_mailbox_domains", &opts.domains.join(", "));
    set("virtual_mailbox_base", &format!("{d}/mail"));
    // "maildir/" (trailing slash: Maildir format) for every recipient of every domain.
    set("virtual_mailbox_maps", "static:maildir/");
    set("virtual_uid_maps", &format!("static:{MAIL_UID}"));
    set("virtual_gid_maps", &format!("static:{MAIL_GID}"));
    set(
        "smtpd_relay_restrictions",
        "permit_mynetworks, reject_unauth_destination",
    );
    set(
        "smtpd_recipient_restrictions",
        &format!("check_recipient_access texthash:{d}/config/reject"),
    );
    if !opts.transport.is_empty() {
        // Take mail for addresses routed to the error transport, and bounce it afterwards.
        set("smtpd_reject_unlisted_recipient", "no");
    }
    if let Some(relayhost) = &opts.relayhost {
        set("relayhost", relayhost);
    }
    // texthash: read as written, no postmap.
    set("transport_maps", &format!("texthash:{d}/config/transport"));
    if let Some((cert, key)) = &opts.tls {
        set("smtpd_tls_security_level", "may");
        set("smtpd_tls_cert_file", &cert.display().to_string());
        set("smtpd_tls_key_file", &key.display().to_string());
        set("smtpd_tls_loglevel", "1");
    }
    cf
}

fn mynetworks(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "[::1]/128"
    } else {
        "127.0.0.0/8"
    }
}

/// Services of the `master.cf`: name, type, private, unprivileged, maxproc, command. Chroot
/// (column 5) is `n` for all of them.
const SERVICES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("pickup", "unix", "n", "-", "1", "pickup"),
    ("cleanup", "unix", "n", "-", "0", "cleanup"),
    ("qmgr", "unix", "n", "-", "1", "qmgr"),
    ("tlsmgr", "unix", "-", "-", "1", "tlsmgr"),
    ("rewrite", "unix", "-", "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", "-", "0", "bounce"),
    ("defer", "unix", "-", "-", "0", "bounce"),
    ("trace", "unix", "-", "-", "0", "bounce"),
    ("verify", "unix", "-", "-", "1", "verify"),
    ("flush", "unix", "n", "-", "0", "flush"),
    ("proxymap", "unix", "-", "-", "-", "proxymap"),
    ("proxywrite", "unix", "-", "-", "1", "proxymap"),
    ("smtp", "unix", "-", "-", "-", "smtp"),
    ("relay", "unix", "-", "-", "-", "smtp"),
    ("showq", "unix", "n", "-", "-", "showq"),
    ("error", "unix", "-", "-", "-", "error"),
    ("retry", "unix", "-", "-", "-", "error"),
    ("discard", "unix", "-", "-", "-", "discard"),
    ("local", "unix", "-", "n", "-", "local"),
    ("virtual", "unix", "-", "n", "-", "virtual"),
    ("lmtp", "unix", "-", "-", "-", "lmtp"),
    ("anvil", "unix", "-", "-", "1", "anvil"),
    ("scache", "unix", "-", "-", "1", "scache"),
    // Writes maillog_file: there is no syslog in containers and CI.
    ("postlog", "unix-dgram", "n", "-", "1", "postlogd"),
];

/// The `master.cf`: smtpd on exactly `bind` instead of the default `smtp inet` line.
fn master_cf(bind: SocketAddr) -> String {
    let mut cf = String::from("# service type private unpriv chroot wakeup maxproc command\n");
    let listen = match bind {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let mut line = |name: &str, kind: &str, private: &str, unpriv: &str, max: &str, cmd: &str| {
        writeln!(cf, "{name} {kind} {private} {unpriv} n - {max} {cmd}").expect("write to String");
    };
    line(&listen, "inet", "n", "-", "-", "smtpd");
    for (name, kind, private, unpriv, max, cmd) in SERVICES {
        line(name, kind, private, unpriv, max, cmd);
    }
    cf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Sends one message with plain SMTP and returns the server's final reply to DATA.
    fn send(addr: SocketAddr, rcpt: &str, message: &str) -> String {
        let stream = TcpStream::connect(addr).expect("connect to postfix");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("set read timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let mut writer = stream;
        let mut expect = |code: &str| -> String {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read reply");
                reply.push_str(&line);
                assert!(line.starts_with(code), "expected {code}, got {reply:?}");
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        };
        expect("220");
        let mut say = |cmd: &str| writer.write_all(cmd.as_bytes()).expect("write command");
        say("EHLO client.test\r\n");
        expect("250");
        say("MAIL FROM:<sender@client.test>\r\n");
        expect("250");
        say(&format!("RCPT TO:<{rcpt}>\r\n"));
        expect("250");
        say("DATA\r\n");
        expect("354");
        // RFC 5321 §4.5.2: a line starting with "." gets one more "." on the wire.
        let mut wire = String::new();
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        say(&wire);
        let reply = expect("250");
        say("QUIT\r\n");
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        reply
    }

    fn text(message: &[u8]) -> String {
        String::from_utf8(message.to_vec()).expect("delivered message is UTF-8")
    }

    #[test]
    fn postfix_delivers_to_maildir_with_its_own_headers() {
        let mx = PostfixMx::start(PostfixOpts::new(
            free_addr(Ipv4Addr::new(127, 0, 0, 5)),
            &["example.test"],
        ));
        let body = "Subject: hello\r\n\r\nthe body line\r\n.hidden\r\n..two dots\r\nlast";
        send(mx.addr(), "user@example.test", body);
        let messages = mx.wait_for_messages(1, Duration::from_secs(20));
        assert_eq!(messages.len(), 1);
        let got = text(&messages[0]);
        // The virtual agent writes Maildir files with bare LF line ends.
        let lines: Vec<&str> = got.lines().collect();
        assert!(lines.contains(&"the body line"), "{got}");
        assert!(lines.contains(&".hidden"), "dot-stuffing undone: {got}");
        assert!(lines.contains(&"..two dots"), "{got}");
        assert!(lines.contains(&"Delivered-To: user@example.test"), "{got}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Received: from ") && got.contains("by mx.example.test")),
            "{got}"
        );
        assert!(
            !got.contains("Message-Id:"),
            "postfix rewrote headers: {got}"
        );
        assert!(mx.log().contains("status=sent"), "{}", mx.log());
    }

    #[test]
    fn postfix_instances_run_side_by_side() {
        let a = PostfixMx::start(PostfixOpts::new(
            free_addr(Ipv4Addr::new(127, 0, 0, 5)),
            &["a.test"],
        ));
        let b = PostfixMx::start(PostfixOpts::new(
            free_addr(Ipv4Addr::new(127, 0, 0, 6)),
            &["b.test"],
        ));
        send(a.addr(), "x@a.test", "Subject: to a\r\n\r\nfor a");
        send(b.addr(), "y@b.test", "Subject: to b\r\n\r\nfor b");
        let got_a = text(&a.wait_for_messages(1, Duration::from_secs(20))[0]);
        let got_b = text(&b.wait_for_messages(1, Duration::from_secs(20))[0]);
        assert!(got_a.contains("Delivered-To: x@a.test") && got_a.contains("for a"));
        assert!(got_b.contains("Delivered-To: y@b.test") && got_b.contains("for b"));
        assert_eq!(a.messages().len(), 1);
        assert_eq!(b.messages().len(), 1);
    }

    #[test]
    fn postfix_offers_starttls_when_given_a_certificate() {
        let ca = crate::tls::TestCa::new();
        let certs = tempfile::tempdir().expect("temp dir for certificate");
        let tls = ca.issue(&["mx.tls.test"]).write_to(certs.path(), "mx");
        let mut opts = PostfixOpts::new(free_addr(Ipv4Addr::new(127, 0, 0, 5)), &["tls.test"]);
        opts.tls = Some(tls);
        let mx = PostfixMx::start(opts);

        let stream = TcpStream::connect(mx.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let mut writer = stream.try_clone().expect("clone stream");
        let mut replies = String::new();
        let mut read_reply = |replies: &mut String| loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read reply");
            replies.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line;
            }
        };
        read_reply(&mut replies);
        writer.write_all(b"EHLO client.test\r\n").expect("write");
        read_reply(&mut replies);
        assert!(replies.contains("250-STARTTLS"), "{replies}");
        writer.write_all(b"STARTTLS\r\n").expect("write");
        assert!(read_reply(&mut replies).starts_with("220"), "{replies}");
        drop(reader); // nothing buffered past the 220: the server waits for our handshake

        let name = rustls::pki_types::ServerName::try_from("mx.tls.test").expect("server name");
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(ca.client_config()), name)
            .expect("client connection");
        let mut tls = rustls::StreamOwned::new(conn, stream);
        tls.write_all(b"EHLO client.test\r\n")
            .expect("EHLO over TLS");
        let mut line = String::new();
        BufReader::new(&mut tls)
            .read_line(&mut line)
            .expect("read over TLS");
        assert!(line.starts_with("250"), "{line}");
    }

    #[test]
    fn postfix_relays_other_domains_to_the_relayhost() {
        let hop = PostfixMx::start(PostfixOpts::new(
            free_addr(Ipv4Addr::new(127, 0, 0, 6)),
            &["far.test"],
        ));
        let mut opts = PostfixOpts::new(free_addr(Ipv4Addr::new(127, 0, 0, 5)), &["near.test"]);
        opts.relayhost = Some(format!("[{}]:{}", hop.addr().ip(), hop.addr().port()));
        let relay = PostfixMx::start(opts);
        send(
            relay.addr(),
            "z@far.test",
            "Subject: relayed\r\n\r\nvia relay",
        );
        let got = text(&hop.wait_for_messages(1, Duration::from_secs(20))[0]);
        assert!(
            got.contains("via relay") && got.contains("by mx.near.test"),
            "{got}"
        );
        assert!(relay.messages().is_empty());
    }
}
