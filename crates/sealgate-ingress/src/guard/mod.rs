//! What stands between AUTH and the password store: bounded, cached password checks
//! ([`passwords`]) and failure throttling across sessions ([`throttle`]).

mod passwords;
mod throttle;

use std::time::Duration;

pub use throttle::ThrottleLimits;

pub(crate) use passwords::PasswordChecker;
pub(crate) use throttle::{AuthThrottle, Blocked};

use crate::IngressError;

/// Settings for [`AuthGuard`].
#[derive(Debug, Clone, Copy)]
pub struct AuthSettings {
    /// Password verifications running at once.
    pub concurrency: usize,
    /// How long a successful check is remembered; zero: not at all.
    pub cache_ttl: Duration,
    /// Failure limits across sessions.
    pub throttle: ThrottleLimits,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            concurrency: 2,
            cache_ttl: Duration::from_secs(300),
            throttle: ThrottleLimits {
                per_user: 10,
                per_client: 30,
                window: Duration::from_secs(600),
            },
        }
    }
}

/// Shared by all sessions: the password checker and the failure counts.
pub struct AuthGuard {
    pub(crate) passwords: PasswordChecker,
    pub(crate) throttle: AuthThrottle,
}

impl std::fmt::Debug for AuthGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGuard").finish_non_exhaustive()
    }
}

impl AuthGuard {
    /// A guard with `settings`.
    pub fn new(settings: AuthSettings) -> Result<Self, IngressError> {
        Ok(Self {
            passwords: PasswordChecker::new(settings.concurrency, settings.cache_ttl)?,
            throttle: AuthThrottle::new(settings.throttle),
        })
    }
}
