//! Property values to Bolt values.

use infragraph_core::Value;
use neo4rs::{
    BoltBoolean, BoltFloat, BoltInteger, BoltList, BoltMap, BoltNull, BoltString, BoltType,
};

use crate::error::{Error, ErrorKind};

/// A property value as a Bolt value. A NaN or infinite float becomes null, as in the
/// embedded store (JSON has no such numbers), so both sinks hold the same graph. A map
/// becomes its JSON text: Neo4j stores no map in a property (`apoc.convert.fromJsonMap`
/// reads it back in Cypher).
pub(crate) fn bolt(v: &Value) -> BoltType {
    match v {
        Value::Null => BoltType::Null(BoltNull),
        Value::Bool(b) => BoltType::Boolean(BoltBoolean::new(*b)),
        Value::Int(i) => BoltType::Integer(BoltInteger::new(*i)),
        Value::Float(f) if f.is_finite() => BoltType::Float(BoltFloat::new(*f)),
        Value::Float(_) => BoltType::Null(BoltNull),
        Value::Text(s) => text(s),
        Value::TextList(l) => BoltType::List(BoltList {
            value: l.iter().map(|s| text(s)).collect(),
        }),
        Value::IntList(l) => BoltType::List(BoltList {
            value: l
                .iter()
                .map(|i| BoltType::Integer(BoltInteger::new(*i)))
                .collect(),
        }),
        Value::Map(m) => text(&serde_json::to_string(m).expect("a JSON map serialises")),
    }
}

pub(crate) fn text(s: &str) -> BoltType {
    BoltType::String(BoltString::new(s))
}

pub(crate) fn int(i: i64) -> BoltType {
    BoltType::Integer(BoltInteger::new(i))
}

/// `{column: value, ...}` for one row.
pub(crate) fn props(columns: &[String], values: &[Value]) -> BoltType {
    let mut m = BoltMap::with_capacity(columns.len());
    for (c, v) in columns.iter().zip(values) {
        m.put(BoltString::new(c), bolt(v));
    }
    BoltType::Map(m)
}

/// A map of `(key, value)` pairs.
pub(crate) fn map<'a>(entries: impl IntoIterator<Item = (&'a str, BoltType)>) -> BoltType {
    let mut m = BoltMap::new();
    for (k, v) in entries {
        m.put(BoltString::new(k), v);
    }
    BoltType::Map(m)
}

/// A JSON property value (from an export) as a Bolt value: scalars and lists of them, as
/// a property can hold.
pub(crate) fn from_json(v: &serde_json::Value) -> Result<BoltType, Error> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => BoltType::Null(BoltNull),
        J::Bool(b) => BoltType::Boolean(BoltBoolean::new(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => int(i),
            None => BoltType::Float(BoltFloat::new(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::String(s) => text(s),
        J::Array(items) => BoltType::List(BoltList {
            value: items.iter().map(from_json).collect::<Result<_, _>>()?,
        }),
        J::Object(_) => {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a property holds a map, which a graph property cannot",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_become_null_like_in_the_embedded_store() {
        assert!(matches!(bolt(&Value::Float(f64::NAN)), BoltType::Null(_)));
        assert!(matches!(bolt(&Value::Float(0.5)), BoltType::Float(_)));
        assert!(matches!(
            from_json(&serde_json::json!(3)).unwrap(),
            BoltType::Integer(_)
        ));
        assert!(matches!(
            from_json(&serde_json::json!(3.0)).unwrap(),
            BoltType::Float(_)
        ));
        assert!(from_json(&serde_json::json!({"a": 1})).is_err());
    }
}
