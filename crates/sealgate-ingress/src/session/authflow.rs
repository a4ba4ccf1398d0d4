//! The AUTH exchange (RFC 4954). Offered and accepted only over TLS.

use sealgate_crypto::{hash_password, verify_password};
use sealgate_smtp_proto::Reply;
use tracing::{info, warn};

use super::{Conn, MAX_AUTH_LINE, Next, Session};
use crate::auth::{Credentials, decode_plain, decode_text, encode};

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
            Step::Got(Some(creds)) => self.check_credentials(conn, creds).await,
            Step::Got(None) => self.auth_failed(conn, "malformed credentials"),
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
            let filled = conn.fill(self.ctx.limits.command_timeout, None).await;
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

    async fn check_credentials(&mut self, conn: &mut Conn, creds: Credentials) -> Next {
        let stored = match self.ctx.store.user_password_hash(&creds.user).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "user lookup failed");
                conn.reply(&Reply::new(
                    454,
                    Some((4, 7, 0)),
                    "Temporary authentication failure",
                ));
                return Next::Continue;
            }
        };
        let Credentials { user, password } = creds;
        let ok = tokio::task::spawn_blocking(move || match stored {
            Some(hash) => verify_password(&password, &hash),
            None => {
                // Spend the same time for an unknown user, so timing does not reveal names.
                let _ = hash_password(&password);
                false
            }
        })
        .await
        .unwrap_or(false);
        if !ok {
            return self.auth_failed(conn, "invalid credentials");
        }
        info!(user = %user, "authenticated");
        self.auth_user = Some(user);
        conn.reply(&Reply::new(
            235,
            Some((2, 7, 0)),
            "Authentication successful",
        ));
        Next::Continue
    }

    fn auth_failed(&mut self, conn: &mut Conn, why: &str) -> Next {
        self.auth_failures += 1;
        info!(
            reason = why,
            failures = self.auth_failures,
            "authentication failed"
        );
        self.answer(
            conn,
            Reply::new(535, Some((5, 7, 8)), "Authentication credentials invalid"),
        );
        if self.auth_failures >= self.ctx.limits.max_auth_failures {
            conn.reply(&Reply::new(
                421,
                Some((4, 7, 0)),
                format!(
                    "{} Too many failed authentication attempts",
                    self.ctx.hostname
                ),
            ));
            return Next::Close;
        }
        Next::Continue
    }
}
