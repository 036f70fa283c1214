//! Property maps as JSON text, built straight from a batch's columns: the clean map a new
//! record gets and, when a row sets nulls, the merge-patch that removes them.

use infragraph_core::{Digest, Value};

/// Builds property maps as JSON text, reusing its buffers across the rows of a batch.
pub(crate) struct PropsWriter {
    /// `"name":` per column, encoded once per batch.
    keys: Vec<Vec<u8>>,
    clean: Vec<u8>,
    patch: Vec<u8>,
    /// Where each value of the last row is in `clean`; `None` for a null.
    spans: Vec<Option<(usize, usize)>>,
}

impl PropsWriter {
    pub(crate) fn new(columns: &[String]) -> PropsWriter {
        let keys = columns
            .iter()
            .map(|c| {
                let mut k = serde_json::to_vec(c).expect("a string serialises");
                k.push(b':');
                k
            })
            .collect();
        PropsWriter {
            keys,
            clean: Vec::with_capacity(512),
            patch: Vec::with_capacity(512),
            spans: Vec::with_capacity(columns.len()),
        }
    }

    /// Encodes one row. Returns its digest ([`infragraph_core::digest`]), the map without
    /// nulls (what a new record stores) and, if the row has nulls, the map with them (the
    /// patch that removes those properties). The digest is taken from the values' JSON
    /// as written for the map: each value serialised once, not once more for the digest
    /// (issue 18).
    pub(crate) fn encode_digest(
        &mut self,
        extra_labels: &[String],
        columns: &[String],
        values: &[Value],
    ) -> (Digest, (&str, Option<&str>)) {
        self.write(values);
        let clean = &self.clean;
        let json = self.spans.iter().map(|span| match *span {
            Some((start, end)) => &clean[start..end],
            None => b"null".as_slice(),
        });
        let digest = infragraph_core::digest_json(extra_labels, columns, json);
        (digest, self.last())
    }

    /// Writes the maps of one row (see [`encode_digest`](PropsWriter::encode_digest)).
    fn write(&mut self, values: &[Value]) {
        let has_null = values.iter().any(|v| matches!(v, Value::Null));
        self.spans.clear();
        write_map(&mut self.clean, &self.keys, values, Some(&mut self.spans));
        self.patch.clear();
        if has_null {
            write_map(&mut self.patch, &self.keys, values, None);
        }
    }

    /// The maps of the row encoded last.
    fn last(&self) -> (&str, Option<&str>) {
        let text = |b| std::str::from_utf8(b).expect("serde_json writes UTF-8");
        let patch = (!self.patch.is_empty()).then(|| text(&self.patch));
        (text(&self.clean), patch)
    }
}

/// Writes the map of `values`: without nulls when `spans` is given (where each value
/// lands is pushed there, `None` for a null), with them otherwise.
fn write_map(
    buf: &mut Vec<u8>,
    keys: &[Vec<u8>],
    values: &[Value],
    mut spans: Option<&mut Vec<Option<(usize, usize)>>>,
) {
    let nulls = spans.is_none();
    buf.clear();
    buf.push(b'{');
    let mut first = true;
    for (k, v) in keys.iter().zip(values) {
        if !nulls && matches!(v, Value::Null) {
            if let Some(spans) = spans.as_deref_mut() {
                spans.push(None);
            }
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        buf.extend_from_slice(k);
        // Writing to a Vec cannot fail. A NaN or infinite float becomes null (JSON has no
        // such numbers), which `SET +=` semantics then treat as "no value".
        let start = buf.len();
        serde_json::to_writer(&mut *buf, v).expect("a Value serialises");
        if let Some(spans) = spans.as_deref_mut() {
            spans.push(Some((start, buf.len())));
        }
    }
    buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_writer_keeps_nulls_only_in_the_patch() {
        let cols: Vec<String> = ["a", "b", "c"].map(String::from).into();
        let mut w = PropsWriter::new(&cols);
        let (_, (clean, patch)) = w.encode_digest(
            &[],
            &cols,
            &[
                Value::Int(1),
                Value::Null,
                Value::TextList(vec!["x\"y".into()]),
            ],
        );
        assert_eq!(clean, r#"{"a":1,"c":["x\"y"]}"#);
        assert_eq!(patch, Some(r#"{"a":1,"b":null,"c":["x\"y"]}"#));
        let (_, (clean, patch)) = w.encode_digest(
            &[],
            &cols,
            &[
                Value::Bool(true),
                Value::Float(0.5),
                Value::Text("é".into()),
            ],
        );
        assert_eq!(clean, r#"{"a":true,"b":0.5,"c":"é"}"#);
        assert_eq!(patch, None);
        let nulls = [Value::Null, Value::Null, Value::Null];
        assert_eq!(
            w.encode_digest(&[], &cols, &nulls).1,
            ("{}", Some(r#"{"a":null,"b":null,"c":null}"#))
        );
    }

    #[test]
    fn the_digest_of_the_encoded_row_is_the_rows_digest() {
        let cols: Vec<String> = ["a", "b", "c", "d"].map(String::from).into();
        let mut w = PropsWriter::new(&cols);
        let extra = ["Extra".to_string()];
        for row in [
            vec![
                Value::Text("é\"\u{1}".into()),
                Value::Null,
                Value::Float(f64::NAN),
                Value::IntList(vec![1, 2]),
            ],
            vec![Value::Null, Value::Int(3), Value::Bool(false), Value::Null],
            vec![Value::Null; 4],
        ] {
            let (digest, _) = w.encode_digest(&extra, &cols, &row);
            assert_eq!(digest, infragraph_core::digest(&extra, &cols, &row));
        }
    }
}
