//! Audit records and the hash chain that makes the log tamper-evident.
//!
//! Every row carries `prev_hash` (the previous row's `hash`, or [`GENESIS_HASH`] for the first)
//! and `hash = SHA-256(canonical(seq, at, kind, message_id, recipient, data, prev_hash))`.
//! The canonical encoding is each field as an 8-byte big-endian length followed by its bytes
//! (an absent optional field is the length `u64::MAX` and no bytes), so no two different rows
//! encode alike. `data` is hashed exactly as stored (compact JSON text), so verification needs
//! nothing but the stored columns. Editing, deleting or reordering a row breaks the chain at
//! that row: its own hash no longer matches, or the next row's `prev_hash` does not.

use sha2::{Digest, Sha256};

/// `prev_hash` of the very first row: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event about to be written, in the same transaction as the change it describes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// The event kind (`received`, `attempt`, `delivered`, …), lowercase.
    pub kind: String,
    /// The queue id the event is about, if any.
    pub message_id: Option<String>,
    /// The recipient the event is about, if any.
    pub recipient: Option<String>,
    /// The evidence, as a JSON object.
    pub data: serde_json::Value,
}

/// A stored audit row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was written, microseconds since the Unix epoch (UTC).
    pub at: i64,
    /// The event kind.
    pub kind: String,
    /// The queue id, if any.
    pub message_id: Option<String>,
    /// The recipient, if any.
    pub recipient: Option<String>,
    /// The evidence: compact JSON text exactly as stored and hashed.
    pub data: String,
    /// The previous row's hash (hex).
    pub prev_hash: String,
    /// This row's hash (hex).
    pub hash: String,
}

impl AuditEntry {
    /// The hash this row should carry given its own columns and `prev_hash`.
    pub fn expected_hash(&self) -> String {
        chain_hash(
            self.seq,
            self.at,
            &self.kind,
            self.message_id.as_deref(),
            self.recipient.as_deref(),
            &self.data,
            &self.prev_hash,
        )
    }
}

fn put(h: &mut Sha256, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        None => h.update(u64::MAX.to_be_bytes()),
    }
}

/// The chain hash of one row (lowercase hex). See the module docs for the encoding.
pub fn chain_hash(
    seq: i64,
    at: i64,
    kind: &str,
    message_id: Option<&str>,
    recipient: Option<&str>,
    data: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"sealgate-audit-v1");
    put(&mut h, Some(&seq.to_be_bytes()));
    put(&mut h, Some(&at.to_be_bytes()));
    put(&mut h, Some(kind.as_bytes()));
    put(&mut h, message_id.map(str::as_bytes));
    put(&mut h, recipient.map(str::as_bytes));
    put(&mut h, Some(data.as_bytes()));
    put(&mut h, Some(prev_hash.as_bytes()));
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        let mut e = AuditEntry {
            seq: 1,
            at: 1_700_000_000_000_000,
            kind: "received".into(),
            message_id: Some("m1".into()),
            recipient: None,
            data: r#"{"size":10}"#.into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        e.hash = e.expected_hash();
        e
    }

    #[test]
    fn any_changed_column_changes_the_hash() {
        let base = entry();
        let mut variants = vec![base.clone(); 6];
        variants[0].seq = 2;
        variants[1].at += 1;
        variants[2].kind = "attempt".into();
        variants[3].message_id = None;
        variants[4].recipient = Some(String::new());
        variants[5].data = r#"{"size":11}"#.into();
        for v in variants {
            assert_ne!(v.expected_hash(), base.hash, "{v:?}");
        }
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let a = chain_hash(1, 0, "k", None, Some(""), "{}", GENESIS_HASH);
        let b = chain_hash(1, 0, "k", Some(""), None, "{}", GENESIS_HASH);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
