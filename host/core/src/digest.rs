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
/// and value, in order. Written straight into the hash, without a buffer: it runs once per
/// record of every sync.
pub fn digest(extra_labels: &[String], columns: &[String], values: &[Value]) -> Digest {
    let mut h = start(extra_labels);
    for (c, v) in columns.iter().zip(values) {
        name(&mut h, c.as_bytes());
        // The untagged JSON of a value names its type by its shape (`1`, `1.0`, `"1"`).
        // Writing into a hash cannot fail, nor can serializing a `Value`.
        let _ = serde_json::to_writer(Feed(&mut h), v);
        h.update([0xFF]);
    }
    finish(h)
}

/// [`digest`] from each value's JSON (as `serde_json` writes a [`Value`], `null` for a
/// null) where the caller has written it already, as a sink encoding the properties
/// has: the same digest without serialising every value a second time.
pub fn digest_json<'a>(
    extra_labels: &[String],
    columns: &[String],
    values_json: impl IntoIterator<Item = &'a [u8]>,
) -> Digest {
    let mut h = start(extra_labels);
    for (c, v) in columns.iter().zip(values_json) {
        name(&mut h, c.as_bytes());
        h.update(v);
        h.update([0xFF]);
    }
    finish(h)
}

// Names are length-prefixed and each value's JSON ends with 0xFF, a byte no JSON text
// holds: no two different rows feed the same bytes.
#[inline]
fn name(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

fn start(extra_labels: &[String]) -> Sha256 {
    let mut h = Sha256::new();
    name(&mut h, b"infragraph-digest-1");
    for l in extra_labels {
        name(&mut h, l.as_bytes());
    }
    name(&mut h, b"");
    h
}

fn finish(h: Sha256) -> Digest {
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The hash as a writer, for `serde_json::to_writer`.
struct Feed<'a>(&'a mut Sha256);

impl std::io::Write for Feed<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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

    #[test]
    fn a_digest_of_written_json_is_the_digest_of_the_values() {
        let cols: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
        let values = [
            Value::Text("é\"\u{1}</>".into()),
            Value::Null,
            Value::Float(f64::NAN),
            Value::TextList(vec!["x".into()]),
            Value::Float(1.0),
        ];
        let json: Vec<Vec<u8>> = values
            .iter()
            .map(|v| serde_json::to_vec(v).unwrap())
            .collect();
        let extra = ["Extra".to_string()];
        assert_eq!(
            digest_json(&extra, &cols, json.iter().map(Vec::as_slice)),
            digest(&extra, &cols, &values)
        );
    }
}
