//! Idle outbound connections kept briefly per domain, so consecutive claim batches for the
//! same domain reuse a session instead of opening a new one each time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::SmtpConnection;
use crate::route::Target;

/// How long an idle connection is kept (Postfix keeps 2 s by default; servers may drop idle
/// clients after their own timeout, which `reset` detects before reuse).
const IDLE: Duration = Duration::from_secs(5);

type Idle = (SmtpConnection, Target, Instant);

/// The cache. Never holds more than `per_domain` connections for one domain.
#[derive(Default)]
pub struct ConnectionCache {
    idle: Mutex<HashMap<String, Vec<Idle>>>,
}

impl std::fmt::Debug for ConnectionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCache").finish_non_exhaustive()
    }
}

impl ConnectionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live idle connection to `domain`, if one is cached (checked with RSET).
    pub(crate) async fn take(&self, domain: &str) -> Option<(SmtpConnection, Target)> {
        loop {
            let entry = self.lock().get_mut(domain).and_then(Vec::pop);
            let (mut conn, target, since) = entry?;
            if since.elapsed() < IDLE && conn.reset().await {
                return Some((conn, target));
            }
            conn.quit().await;
        }
    }

    /// Keeps `conn` for reuse, or closes it when `per_domain` are already kept.
    pub(crate) async fn put(
        &self,
        domain: &str,
        conn: SmtpConnection,
        target: Target,
        per_domain: usize,
    ) {
        let expired = {
            let mut idle = self.lock();
            let list = idle.entry(domain.to_owned()).or_default();
            if list.len() >= per_domain {
                Some(conn)
            } else {
                list.push((conn, target, Instant::now()));
                None
            }
        };
        if let Some(c) = expired {
            c.quit().await;
        }
        self.close_stale().await;
    }

    /// Closes connections idle too long.
    async fn close_stale(&self) {
        let stale: Vec<Idle> = {
            let mut idle = self.lock();
            let mut out = Vec::new();
            for list in idle.values_mut() {
                let (keep, old): (Vec<Idle>, Vec<Idle>) =
                    list.drain(..).partition(|(_, _, t)| t.elapsed() < IDLE);
                *list = keep;
                out.extend(old);
            }
            idle.retain(|_, l| !l.is_empty());
            out
        };
        for (c, _, _) in stale {
            c.quit().await;
        }
    }

    /// Closes everything (shutdown).
    pub(crate) async fn close_all(&self) {
        let all: Vec<Idle> = self.lock().drain().flat_map(|(_, l)| l).collect();
        for (c, _, _) in all {
            c.quit().await;
        }
    }
}
