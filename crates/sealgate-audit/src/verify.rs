//! Checking the hash chain end to end.

use std::fmt;

use sealgate_store::{AuditFilter, Store};
use sealgate_types::{AuditEntry, GENESIS_HASH};

use crate::error::AuditError;

/// Rows read per query while verifying.
const PAGE: i64 = 1000;

/// The first thing found wrong with the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainProblem {
    /// The row's columns no longer hash to its stored `hash`: it was edited.
    EditedRow {
        /// The row.
        seq: i64,
        /// What is stored.
        stored_hash: String,
        /// What its columns hash to.
        computed_hash: String,
    },
    /// The row's `prev_hash` is not the hash of the row before it: a row before it was
    /// deleted or rows were reordered.
    BrokenLink {
        /// The first row whose link is broken.
        seq: i64,
        /// The previous row's hash (genesis for the first row).
        expected_prev_hash: String,
        /// The `prev_hash` it carries.
        found_prev_hash: String,
    },
    /// Sequence numbers are not consecutive (though the hashes link).
    Gap {
        /// The seq that should come next.
        expected_seq: i64,
        /// The seq found instead.
        found_seq: i64,
    },
    /// The last row is not the one the head names: the tail was deleted or truncated.
    HeadMismatch {
        /// The head's seq.
        head_seq: i64,
        /// The head's hash.
        head_hash: String,
        /// The last row's seq (0 when there are none).
        last_seq: i64,
        /// The last row's hash (genesis when there are none).
        last_hash: String,
    },
}

impl ChainProblem {
    /// The seq the problem is at (for a head mismatch, the head's).
    pub fn seq(&self) -> i64 {
        match self {
            Self::EditedRow { seq, .. } | Self::BrokenLink { seq, .. } => *seq,
            Self::Gap { found_seq, .. } => *found_seq,
            Self::HeadMismatch { head_seq, .. } => *head_seq,
        }
    }
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EditedRow { seq, .. } => {
                write!(
                    f,
                    "row #{seq} was edited: its contents do not match its hash"
                )
            }
            Self::BrokenLink { seq, .. } => write!(
                f,
                "chain broken at row #{seq}: the row before it was deleted or rows were reordered"
            ),
            Self::Gap {
                expected_seq,
                found_seq,
            } => write!(f, "gap: expected row #{expected_seq}, found #{found_seq}"),
            Self::HeadMismatch {
                head_seq, last_seq, ..
            } => write!(
                f,
                "head names row #{head_seq} but the last row is #{last_seq}: the tail was deleted"
            ),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows read and checked.
    pub rows: u64,
    /// The head's seq when verification started.
    pub head_seq: i64,
    /// The head's hash when verification started: the value to note down for later checks.
    pub head_hash: String,
    /// The first problem found, if any.
    pub problem: Option<ChainProblem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Reads the whole log in seq order and checks that seqs run 1, 2, 3… without gaps, that every
/// row links to the one before it (genesis for the first), that every row hashes to its stored
/// hash, and that the last row is the one the head names.
///
/// The head is read first and rows after it are ignored, so verifying while the relay writes is
/// safe: a committed head implies every row up to it is committed.
pub async fn verify(store: &Store) -> Result<VerifyReport, AuditError> {
    verify_paged(store, PAGE).await
}

/// Where the walk is: the next expected seq and the last hash seen.
struct Walk {
    next_seq: i64,
    last_seq: i64,
    last_hash: String,
    rows: u64,
    problem: Option<ChainProblem>,
}

impl Walk {
    fn step(&mut self, e: AuditEntry) {
        self.rows += 1;
        if self.problem.is_none() {
            self.problem = check_row(&e, self.next_seq, &self.last_hash);
        }
        self.next_seq = e.seq + 1;
        self.last_seq = e.seq;
        self.last_hash = e.hash;
    }
}

fn check_row(e: &AuditEntry, expected_seq: i64, prev_hash: &str) -> Option<ChainProblem> {
    if e.prev_hash != prev_hash {
        return Some(ChainProblem::BrokenLink {
            seq: e.seq,
            expected_prev_hash: prev_hash.to_owned(),
            found_prev_hash: e.prev_hash.clone(),
        });
    }
    if e.seq != expected_seq {
        return Some(ChainProblem::Gap {
            expected_seq,
            found_seq: e.seq,
        });
    }
    let computed = e.expected_hash();
    (computed != e.hash).then(|| ChainProblem::EditedRow {
        seq: e.seq,
        stored_hash: e.hash.clone(),
        computed_hash: computed,
    })
}

pub(crate) async fn verify_paged(store: &Store, page: i64) -> Result<VerifyReport, AuditError> {
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut walk = Walk {
        next_seq: 1,
        last_seq: 0,
        last_hash: GENESIS_HASH.to_owned(),
        rows: 0,
        problem: None,
    };
    'pages: loop {
        let rows = store
            .audit_after(walk.last_seq, &AuditFilter::default(), page)
            .await?;
        let full = rows.len() as i64 == page;
        for e in rows {
            if e.seq > head_seq {
                break 'pages;
            }
            walk.step(e);
        }
        if !full {
            break;
        }
    }
    if walk.problem.is_none() && (walk.last_seq != head_seq || walk.last_hash != head_hash) {
        walk.problem = Some(ChainProblem::HeadMismatch {
            head_seq,
            head_hash: head_hash.clone(),
            last_seq: walk.last_seq,
            last_hash: walk.last_hash.clone(),
        });
    }
    Ok(VerifyReport {
        rows: walk.rows,
        head_seq,
        head_hash,
        problem: walk.problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealgate_testkit::db::{TestBackend, TestDb};
    use sealgate_types::AuditRecord;

    #[tokio::test]
    async fn verification_walks_across_page_boundaries() {
        let db = TestDb::new(TestBackend::Sqlite).await;
        let store = Store::connect(&db.url, 2, std::time::Duration::from_secs(5))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        for n in 0..20 {
            let rec = AuditRecord {
                kind: "note".into(),
                message_id: None,
                recipient: None,
                data: serde_json::json!({ "n": n }),
            };
            store.append_audit(&rec).await.expect("append");
        }
        for page in [1, 7, 20, 21] {
            let report = verify_paged(&store, page).await.expect("verify");
            assert_eq!(
                (report.rows, report.head_seq, report.problem),
                (20, 20, None)
            );
        }
    }
}
