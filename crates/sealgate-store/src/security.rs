//! Per-domain security state: downgrade memory (a domain once seen with verified TLS) and
//! TLS-RPT (RFC 8460) session counts with failure details.

use sealgate_types::time::{from_micros, now_micros};
use sqlx::Row;

use crate::error::StoreError;
use crate::store::Store;

/// A domain remembered as having shown verified TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDomain {
    /// The recipient domain.
    pub domain: String,
    /// `dane` or `mta-sts`: how it was verified when last seen.
    pub verified_via: String,
    /// First sighting (microseconds since the epoch).
    pub first_seen_at: i64,
    /// Latest sighting.
    pub last_seen_at: i64,
}

/// The outcome of one TLS session attempt toward a domain, for TLS-RPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptSession {
    /// The recipient (policy) domain.
    pub domain: String,
    /// RFC 8460 §4.4 policy type: `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// `None` for a successful session; the failure otherwise.
    pub failure: Option<TlsRptFailure>,
    /// When (microseconds since the epoch).
    pub at: i64,
}

/// One failed TLS session (RFC 8460 §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptFailure {
    /// The result type (`starttls-not-supported`, `certificate-host-mismatch`, `tlsa-invalid`, ...).
    pub result_type: String,
    /// The MX host tried.
    pub mx_host: String,
    /// Its address.
    pub ip: String,
    /// What exactly failed (the failure-reason-code).
    pub detail: String,
}

/// Counts for one domain, day and policy type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptCounts {
    /// The recipient domain.
    pub domain: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// Successful sessions.
    pub successes: i64,
    /// Failed sessions.
    pub failures: i64,
}

/// One distinct failure with its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRptFailureCount {
    /// The recipient domain.
    pub domain: String,
    /// The UTC day.
    pub day: String,
    /// The policy type.
    pub policy_type: String,
    /// The failure.
    pub failure: TlsRptFailure,
    /// How many sessions failed this way.
    pub count: i64,
}

fn day_of(micros: i64) -> String {
    from_micros(micros).format("%Y-%m-%d").to_string()
}

impl Store {
    /// The downgrade memory of `domain`, if it was ever seen with verified TLS.
    pub async fn verified_domain(
        &self,
        domain: &str,
    ) -> Result<Option<VerifiedDomain>, StoreError> {
        let fail = |source| StoreError::Security { op: "read", source };
        let row = sqlx::query(
            "SELECT domain, verified_via, first_seen_at, last_seen_at FROM domain_security \
             WHERE domain = $1",
        )
        .bind(domain.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        row.map(|r| {
            Ok(VerifiedDomain {
                domain: r.try_get("domain").map_err(fail)?,
                verified_via: r.try_get("verified_via").map_err(fail)?,
                first_seen_at: r.try_get("first_seen_at").map_err(fail)?,
                last_seen_at: r.try_get("last_seen_at").map_err(fail)?,
            })
        })
        .transpose()
    }

    /// Remembers that `domain` showed verified TLS (`via`: `dane` or `mta-sts`) now. The
    /// memory only ever moves forward; [`Store::forget_verified_domain`] is the operator's
    /// way back.
    pub async fn mark_verified_domain(&self, domain: &str, via: &str) -> Result<(), StoreError> {
        let fail = |source| StoreError::Security {
            op: "mark-verified",
            source,
        };
        let now = now_micros();
        let mut tx = self.begin_write().await.map_err(fail)?;
        sqlx::query(
            "INSERT INTO domain_security (domain, verified_via, first_seen_at, last_seen_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (domain) DO UPDATE \
             SET verified_via = excluded.verified_via, last_seen_at = excluded.last_seen_at",
        )
        .bind(domain.to_ascii_lowercase())
        .bind(via.to_owned())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    /// Drops the downgrade memory of `domain` (an operator confirmed the change); true if
    /// there was any.
    pub async fn forget_verified_domain(&self, domain: &str) -> Result<bool, StoreError> {
        let fail = |source| StoreError::Security {
            op: "forget",
            source,
        };
        let mut tx = self.begin_write().await.map_err(fail)?;
        let done = sqlx::query("DELETE FROM domain_security WHERE domain = $1")
            .bind(domain.to_ascii_lowercase())
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(done.rows_affected() > 0)
    }

    /// Counts TLS sessions for TLS-RPT, in one transaction.
    pub async fn tls_rpt_record(&self, sessions: &[TlsRptSession]) -> Result<(), StoreError> {
        if sessions.is_empty() {
            return Ok(());
        }
        let fail = |source| StoreError::Security {
            op: "tls-rpt-record",
            source,
        };
        let mut tx = self.begin_write().await.map_err(fail)?;
        for s in sessions {
            let day = day_of(s.at);
            let domain = s.domain.to_ascii_lowercase();
            let (ok, bad) = if s.failure.is_some() { (0, 1) } else { (1, 0) };
            sqlx::query(
                "INSERT INTO tls_rpt_results (domain, day, policy_type, successes, failures) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (domain, day, policy_type) DO UPDATE \
                 SET successes = tls_rpt_results.successes + excluded.successes, \
                     failures = tls_rpt_results.failures + excluded.failures",
            )
            .bind(domain.clone())
            .bind(day.clone())
            .bind(s.policy_type.clone())
            .bind(ok)
            .bind(bad)
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
            if let Some(f) = &s.failure {
                sqlx::query(
                    "INSERT INTO tls_rpt_failures (domain, day, policy_type, result_type, \
                     mx_host, ip, detail, count, first_at, last_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8) \
                     ON CONFLICT (domain, day, policy_type, result_type, mx_host, ip, detail) \
                     DO UPDATE SET count = tls_rpt_failures.count + 1, last_at = excluded.last_at",
                )
                .bind(domain)
                .bind(day)
                .bind(s.policy_type.clone())
                .bind(f.result_type.clone())
                .bind(f.mx_host.clone())
                .bind(f.ip.clone())
                .bind(f.detail.clone())
                .bind(s.at)
                .execute(&mut **tx)
                .await
                .map_err(fail)?;
            }
        }
        tx.commit().await.map_err(fail)
    }

    /// The TLS-RPT counts, optionally for one domain, by domain, day and policy type.
    pub async fn tls_rpt_counts(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<TlsRptCounts>, StoreError> {
        let fail = |source| StoreError::Security {
            op: "tls-rpt-read",
            source,
        };
        let rows = sqlx::query(
            "SELECT domain, day, policy_type, successes, failures FROM tls_rpt_results \
             WHERE ($1 = '' OR domain = $1) ORDER BY domain, day, policy_type",
        )
        .bind(domain.unwrap_or("").to_ascii_lowercase())
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|r| {
                Ok(TlsRptCounts {
                    domain: r.try_get("domain").map_err(fail)?,
                    day: r.try_get("day").map_err(fail)?,
                    policy_type: r.try_get("policy_type").map_err(fail)?,
                    successes: r.try_get("successes").map_err(fail)?,
                    failures: r.try_get("failures").map_err(fail)?,
                })
            })
            .collect()
    }

    /// The distinct TLS-RPT failures with their counts, optionally for one domain.
    pub async fn tls_rpt_failures(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<TlsRptFailureCount>, StoreError> {
        let fail = |source| StoreError::Security {
            op: "tls-rpt-read",
            source,
        };
        let rows = sqlx::query(
            "SELECT domain, day, policy_type, result_type, mx_host, ip, detail, count \
             FROM tls_rpt_failures WHERE ($1 = '' OR domain = $1) \
             ORDER BY domain, day, policy_type, result_type, mx_host, ip, detail",
        )
        .bind(domain.unwrap_or("").to_ascii_lowercase())
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|r| {
                Ok(TlsRptFailureCount {
                    domain: r.try_get("domain").map_err(fail)?,
                    day: r.try_get("day").map_err(fail)?,
                    policy_type: r.try_get("policy_type").map_err(fail)?,
                    failure: TlsRptFailure {
                        result_type: r.try_get("result_type").map_err(fail)?,
                        mx_host: r.try_get("mx_host").map_err(fail)?,
                        ip: r.try_get("ip").map_err(fail)?,
                        detail: r.try_get("detail").map_err(fail)?,
                    },
                    count: r.try_get("count").map_err(fail)?,
                })
            })
            .collect()
    }
}
