//! The digest of what a plugin emitted for one record, which both sinks keep with the
//! record to tell a changed record from one a resync merely saw again: `lastupdated`
//! moves only when it changes, and a graph server is spared rewriting what did not.

use sha2::{Digest as _, Sha256};

use crate::Value;

/// The first 128 bits of a SHA-256: a cryptographic hash, so that data a third party
/// controls (a resource's name, its tags) cannot be made to collide with an earlier
/// value and hide a change.
pub type Digest = [u8; 16];

/// The digest of one row: the extra labels given to it (nodes), then each property name
/// and value, in order.
pub fn digest(extra_labels: &[String], columns: &[String], values: &[Value]) -> Digest {
    let mut h = Sha256::new();
    // Length-prefixed, so that no two different rows feed the same bytes.
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(b"infragraph-digest-1");
    for l in extra_labels {
        part(l.as_bytes());
    }
    part(b"");
    for (c, v) in columns.iter().zip(values) {
        part(c.as_bytes());
        // The untagged JSON of a value names its type by its shape (`1`, `1.0`, `"1"`).
        part(&serde_json::to_vec(v).unwrap_or_default());
    }
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_changes_with_any_part_of_the_row() {
        let cols = vec!["a".to_string(), "b".to_string()];
        let row = |a: Value, b: Value| digest(&[], &cols, &[a, b]);
        let base = row(Value::Int(1), Value::Text("x".into()));
        assert_eq!(base, row(Value::Int(1), Value::Text("x".into())));
        for other in [
            row(Value::Float(1.0), Value::Text("x".into())),
            row(Value::Text("1".into()), Value::Text("x".into())),
            row(Value::Int(1), Value::Null),
            digest(
                &["Extra".into()],
                &cols,
                &[Value::Int(1), Value::Text("x".into())],
            ),
            digest(
                &[],
                &["a".into(), "c".into()],
                &[Value::Int(1), Value::Text("x".into())],
            ),
            // The same bytes split differently between name and value.
            digest(&[], &["ab".into()], &[Value::Text("x".into())]),
        ] {
            assert_ne!(base, other);
        }
    }
}
