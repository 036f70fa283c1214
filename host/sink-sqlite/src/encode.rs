//! Property maps as JSON text, built straight from a batch's columns: the clean map a new
//! record gets and, when a row sets nulls, the merge-patch that removes them.

use infragraph_core::Value;

/// Builds property maps as JSON text, reusing its buffers across the rows of a batch.
pub(crate) struct PropsWriter {
    /// `"name":` per column, encoded once per batch.
    keys: Vec<Vec<u8>>,
    clean: Vec<u8>,
    patch: Vec<u8>,
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
        }
    }

    /// Encodes one row. Returns the map without nulls (what a new record stores) and, if
    /// the row has nulls, the map with them (the patch that removes those properties).
    pub(crate) fn encode(&mut self, values: &[Value]) -> (&str, Option<&str>) {
        let has_null = values.iter().any(|v| matches!(v, Value::Null));
        write_map(&mut self.clean, &self.keys, values, false);
        let clean = std::str::from_utf8(&self.clean).expect("serde_json writes UTF-8");
        if !has_null {
            return (clean, None);
        }
        write_map(&mut self.patch, &self.keys, values, true);
        let patch = std::str::from_utf8(&self.patch).expect("serde_json writes UTF-8");
        (clean, Some(patch))
    }
}

fn write_map(buf: &mut Vec<u8>, keys: &[Vec<u8>], values: &[Value], nulls: bool) {
    buf.clear();
    buf.push(b'{');
    let mut first = true;
    for (k, v) in keys.iter().zip(values) {
        if !nulls && matches!(v, Value::Null) {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        buf.extend_from_slice(k);
        // Writing to a Vec cannot fail. A NaN or infinite float becomes null (JSON has no
        // such numbers), which `SET +=` semantics then treat as "no value".
        serde_json::to_writer(&mut *buf, v).expect("a Value serialises");
    }
    buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_writer_keeps_nulls_only_in_the_patch() {
        let mut w = PropsWriter::new(&["a".into(), "b".into(), "c".into()]);
        let (clean, patch) = w.encode(&[
            Value::Int(1),
            Value::Null,
            Value::TextList(vec!["x\"y".into()]),
        ]);
        assert_eq!(clean, r#"{"a":1,"c":["x\"y"]}"#);
        assert_eq!(patch, Some(r#"{"a":1,"b":null,"c":["x\"y"]}"#));
        let (clean, patch) = w.encode(&[
            Value::Bool(true),
            Value::Float(0.5),
            Value::Text("é".into()),
        ]);
        assert_eq!(clean, r#"{"a":true,"b":0.5,"c":"é"}"#);
        assert_eq!(patch, None);
        assert_eq!(w.encode(&[Value::Null, Value::Null, Value::Null]).0, "{}");
    }
}
