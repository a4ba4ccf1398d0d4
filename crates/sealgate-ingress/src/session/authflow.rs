//! The AUTH exchange (RFC 4954). Offered and accepted only over TLS.

use sealgate_audit::AuditEvent;
use sealgate_smtp_proto::Reply;
use sealgate_types::time::now_micros;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Conn, MAX_AUTH_LINE, Next, Session};
use crate::auth::{Credentials, decode_plain, decode_text, encode};
use crate::guard::Blocked;

/// One step of the exchange.
enum Step<T> {
    Got(T),
    Cancelled,
    Closed,
}

impl Session {
    pub(super) async fn auth(
        &mut self,
        conn: &mut Conn,
        mechanism: &str,
        initial: Option<String>,
    ) -> Next {
        if let Some(refusal) = self.auth_precondition() {
            self.answer(conn, refusal);
            return Next::Continue;
        }
        if self.ctx.auth.throttle.is_blocked(self.info.peer.ip(), None) {
            return self.auth_throttled(conn, None);
        }
        let step = match mechanism {
            "PLAIN" => self.read_plain(conn, initial).await,
            "LOGIN" => self.read_login(conn, initial).await,
            _ => {
                self.answer(
                    conn,
                    Reply::new(
                        504,
                        Some((5, 5, 4)),
                        "Unrecognized authentication mechanism",
                    ),
                );
                return Next::Continue;
            }
        };
        match step {
            Step::Got(Some(creds)) => self.check_credentials(conn, mechanism, creds).await,
            Step::Got(None) => {
                self.auth_failed(conn, mechanism, None, "malformed credentials")
                    .await
            }
            Step::Cancelled => {
                self.answer(
                    conn,
                    Reply::new(501, Some((5, 0, 0)), "Authentication cancelled"),
                );
                Next::Continue
            }
            Step::Closed => Next::Close,
        }
    }

    fn auth_precondition(&self) -> Option<Reply> {
        if self.info.tls.is_none() {
            // RFC 4954 §6 / RFC 3207: no credentials in the clear.
            return Some(Reply::new(
                538,
                Some((5, 7, 11)),
                "Encryption required for requested authentication mechanism",
            ));
        }
        if self.helo.is_none() {
            return Some(Reply::new(503, Some((5, 5, 1)), "Send EHLO first"));
        }
        if self.auth_user.is_some() {
            return Some(Reply::new(503, Some((5, 5, 1)), "Already authenticated"));
        }
        if self.tx.is_some() {
            return Some(Reply::new(
                503,
                Some((5, 5, 1)),
                "AUTH is not allowed during a mail transaction",
            ));
        }
        None
    }

    /// Sends a 334 challenge and reads the response line.
    async fn challenge(&mut self, conn: &mut Conn, text: &str) -> Step<String> {
        conn.reply(&Reply::new(334, None, encode(text)));
        let deadline = Instant::now() + self.ctx.limits.command_timeout;
        loop {
            match conn.take_line(MAX_AUTH_LINE) {
                Ok(Some(line)) => {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    return if line.trim() == "*" {
                        Step::Cancelled
                    } else {
                        Step::Got(line)
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    self.refuse_line(conn, e);
                    return Step::Closed;
                }
            }
            let filled = conn.fill(deadline, None).await;
            if !self.still_open(conn, filled) {
                return Step::Closed;
            }
        }
    }

    async fn read_plain(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> Step<Option<Credentials>> {
        let response = match initial {
            // RFC 4954 §4: "=" is an empty initial response.
            Some(r) if r == "=" => String::new(),
            Some(r) => r,
            None => match self.challenge(conn, "").await {
                Step::Got(l) => l,
                Step::Cancelled => return Step::Cancelled,
                Step::Closed => return Step::Closed,
            },
        };
        Step::Got(decode_plain(&response))
    }

    async fn read_login(
        &mut self,
        conn: &mut Conn,
        initial: Option<String>,
    ) -> Step<Option<Credentials>> {
        let user = match initial {
            Some(u) => u,
            None => match self.challenge(conn, "Username:").await {
                Step::Got(l) => l,
                Step::Cancelled => return Step::Cancelled,
                Step::Closed => return Step::Closed,
            },
        };
        let password = match self.challenge(conn, "Password:").await {
            Step::Got(l) => l,
            Step::Cancelled => return Step::Cancelled,
            Step::Closed => return Step::Closed,
        };
        let creds = match (decode_text(&user), decode_text(&password)) {
            (Some(user), Some(password)) if !user.is_empty() => {
                Some(Credentials { user, password })
            }
            _ => None,
        };
        Step::Got(creds)
    }

    async fn check_credentials(
        &mut self,
        conn: &mut Conn,
        mechanism: &str,
        creds: Credentials,
    ) -> Next {
        let ip = self.info.peer.ip();
        if self.ctx.auth.throttle.is_blocked(ip, Some(&creds.user)) {
            return self.auth_throttled(conn, Some(&creds.user));
        }
        let stored = match self.ctx.store.user_password_hash(&creds.user).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "user lookup failed");
                return self.auth_unavailable(conn);
            }
        };
        let Credentials { user, password } = creds;
        if !self
            .ctx
            .auth
            .passwords
            .check(&user, &password, stored)
            .await
        {
            return self
                .auth_failed(conn, mechanism, Some(user), "invalid credentials")
                .await;
        }
        let event = AuditEvent::AuthSucceeded {
            user: user.clone(),
            client_ip: ip.to_string(),
            mechanism: mechanism.to_owned(),
        };
        // Every AUTH success is on record, or it does not happen. Concurrent sessions' events
        // share one commit (group commit), so AUTH per message costs no durable commit of its own.
        if let Err(e) = self.ctx.recorder.record(vec![event]).await {
            warn!(user = %user, error = %e, "could not record the authentication");
            return self.auth_unavailable(conn);
        }
        self.ctx.auth.throttle.succeeded(ip, &user);
        info!(user = %user, mechanism, "authenticated");
        self.auth_user = Some(user);
        conn.reply(&Reply::new(
            235,
            Some((2, 7, 0)),
            "Authentication successful",
        ));
        Next::Continue
    }

    fn auth_unavailable(&mut self, conn: &mut Conn) -> Next {
        conn.reply(&Reply::new(
            454,
            Some((4, 7, 0)),
            "Temporary authentication failure",
        ));
        Next::Continue
    }

    /// AUTH while this user or this address is throttled: refused without checking anything.
    fn auth_throttled(&mut self, conn: &mut Conn, user: Option<&str>) -> Next {
        self.auth_failures += 1;
        info!(
            user = user.unwrap_or_default(),
            "authentication refused: too many recent failures"
        );
        conn.reply(&Reply::new(
            454,
            Some((4, 7, 0)),
            "Too many failed authentication attempts, try again later",
        ));
        self.close_after_failures(conn)
    }

    async fn auth_failed(
        &mut self,
        conn: &mut Conn,
        mechanism: &str,
        user: Option<String>,
        why: &str,
    ) -> Next {
        self.auth_failures += 1;
        let ip = self.info.peer.ip();
        info!(
            user = user.as_deref().unwrap_or_default(),
            mechanism,
            reason = why,
            failures = self.auth_failures,
            "authentication failed"
        );
        let reached = self.ctx.auth.throttle.failed(ip, user.as_deref());
        let mut events = vec![AuditEvent::AuthFailed {
            user,
            client_ip: ip.to_string(),
            mechanism: mechanism.to_owned(),
            reason: why.to_owned(),
        }];
        events.extend(reached.into_iter().map(throttled_event));
        if let Err(e) = self.ctx.recorder.record(events).await {
            warn!(error = %e, "could not record the failed authentication");
        }
        self.answer(
            conn,
            Reply::new(535, Some((5, 7, 8)), "Authentication credentials invalid"),
        );
        self.close_after_failures(conn)
    }

    fn close_after_failures(&mut self, conn: &mut Conn) -> Next {
        if self.auth_failures < self.ctx.limits.max_auth_failures {
            return Next::Continue;
        }
        conn.reply(&Reply::new(
            421,
            Some((4, 7, 0)),
            format!(
                "{} Too many failed authentication attempts",
                self.ctx.hostname
            ),
        ));
        Next::Close
    }
}

fn throttled_event(b: Blocked) -> AuditEvent {
    warn!(user = b.user.as_deref().unwrap_or_default(), client = %b.client, failures = b.failures, "authentication throttled");
    let micros = i64::try_from(b.for_.as_micros()).unwrap_or(i64::MAX);
    AuditEvent::AuthThrottled {
        user: b.user,
        client: b.client.to_string(),
        failures: b.failures,
        until: now_micros().saturating_add(micros),
    }
}
