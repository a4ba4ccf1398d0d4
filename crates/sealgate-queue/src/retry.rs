//! When to try again: exponential backoff with jitter, and when to give up.

use std::time::Duration;

/// The retry schedule (RFC 5321 §4.5.4.1: retry at least 30 minutes apart is the classic
/// advice for the steady state, give up after 4-5 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub first_retry: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// After this long in the queue a temporary failure becomes a bounce.
    pub max_age: Duration,
    /// Spread of the random jitter, in percent of the delay (both ways).
    pub jitter_percent: u32,
    /// Warn the sender once when a message has waited this long; zero turns warnings off.
    pub delay_warning: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(5 * 60),
            max_delay: Duration::from_secs(4 * 3600),
            max_age: Duration::from_secs(5 * 86400),
            jitter_percent: 20,
            delay_warning: Duration::from_secs(4 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The delay after the `attempts`-th failed attempt (1 = the first), doubling each time up
    /// to `max_delay`, spread by `unit` (a random number in [0, 1)) within ± the jitter.
    pub fn delay_after(&self, attempts: u32, unit: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let base = self
            .first_retry
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        let spread = f64::from(self.jitter_percent) / 100.0;
        let factor = 1.0 - spread + 2.0 * spread * unit.clamp(0.0, 1.0);
        base.mul_f64(factor.max(0.0)).min(self.max_delay)
    }

    /// True when a message received at `received_at` has waited long enough at `now` for the
    /// sender to be told of the delay.
    pub fn warning_due(&self, received_at: i64, now: i64) -> bool {
        let age = u128::try_from(now.saturating_sub(received_at)).unwrap_or(0);
        !self.delay_warning.is_zero() && age >= self.delay_warning.as_micros()
    }

    /// True when a message received at `received_at` is too old to retry at `now`
    /// (both microseconds since the epoch).
    pub fn expired(&self, received_at: i64, now: i64) -> bool {
        let age = u128::try_from(now.saturating_sub(received_at)).unwrap_or(0);
        age >= self.max_age.as_micros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_minutes_up_to_the_cap() {
        let p = RetryPolicy {
            jitter_percent: 0,
            ..RetryPolicy::default()
        };
        let mins: Vec<u64> = (1..=8)
            .map(|a| p.delay_after(a, 0.5).as_secs() / 60)
            .collect();
        assert_eq!(mins, [5, 10, 20, 40, 80, 160, 240, 240]);
        assert_eq!(p.delay_after(1000, 0.5), p.max_delay);
    }

    #[test]
    fn jitter_stays_within_its_percentage_and_under_the_cap() {
        let p = RetryPolicy::default();
        let low = p.delay_after(1, 0.0).as_secs();
        let high = p.delay_after(1, 0.999_999).as_secs();
        assert_eq!((low, high), (240, 359));
        assert!(p.delay_after(9, 0.999).as_secs() <= 4 * 3600);
    }

    #[test]
    fn messages_expire_after_max_age() {
        let p = RetryPolicy::default();
        let day = 86_400_000_000i64;
        assert!(!p.expired(0, 5 * day - 1));
        assert!(p.expired(0, 5 * day));
    }
}
