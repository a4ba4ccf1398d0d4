//! The client against the scriptable sink from `sealgate-testkit`: real TCP on 127.0.0.x, real
//! TLS with certificates from a throwaway test CA.

mod delivery;
mod failures;
mod requiretls;
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use sealgate_testkit::smtp_sink::{SinkOptions, SinkScript, SmtpSink};

use super::*;

const MX: &str = "mx1.example.test";

fn cfg() -> ClientConfig {
    ClientConfig {
        helo_name: "relay.example.test".into(),
        connect_timeout: Duration::from_secs(5),
        greeting_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
    }
}

fn bind(host: &str) -> SocketAddr {
    format!("{host}:0").parse().expect("valid socket address")
}

fn options(script: SinkScript) -> SinkOptions {
    SinkOptions {
        script,
        ..SinkOptions::new(bind("127.0.0.2"))
    }
}

/// [`options`] with PIPELINING offered or not.
fn pipelined(script: SinkScript, pipelining: bool) -> SinkOptions {
    SinkOptions {
        pipelining,
        ..options(script)
    }
}

async fn sink(options: SinkOptions) -> SmtpSink {
    SmtpSink::start(options).await.expect("start sink")
}

async fn connect(sink: &SmtpSink) -> SmtpConnection {
    SmtpConnection::connect(sink.addr(), MX, &cfg(), &TlsPolicy::Disabled)
        .await
        .expect("connect to sink")
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        sender: "sender@relay.example.test".into(),
        recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        requiretls: false,
    }
}

const MESSAGE: &[u8] = b"From: a@relay.example.test\r\nSubject: test\r\n\r\nhello\r\n";

/// The commands the sink saw that start with `verb`.
fn count_verb(sink: &SmtpSink, verb: &str) -> usize {
    sink.commands()
        .iter()
        .filter(|c| c.to_ascii_uppercase().starts_with(verb))
        .count()
}

fn codes(result: &TransactionResult) -> Vec<u16> {
    result.rcpts.iter().map(|(_, r)| r.code).collect()
}
