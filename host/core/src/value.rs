use serde::{Deserialize, Serialize};

use crate::Text;

/// A property value, as a plugin emits it and a sink stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// Absent.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text, often a slice of the batch it came in.
    Text(Text),
    /// A list of text values.
    TextList(Vec<String>),
    /// A list of integers.
    IntList(Vec<i64>),
    /// A JSON object (contract 0.3.0's `map`), e.g. a resource's tags. Last, so that
    /// reading a stored graph back gives every other JSON shape its own variant.
    Map(serde_json::Map<String, serde_json::Value>),
}

/// The declared type of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// [`Value::Bool`].
    Boolean,
    /// [`Value::Int`].
    Int,
    /// [`Value::Float`]; an integer is accepted too.
    Float,
    /// [`Value::Text`].
    Text,
    /// [`Value::TextList`].
    TextList,
    /// [`Value::IntList`].
    IntList,
    /// [`Value::Map`]; a plugin emits it as text holding a JSON object.
    Map,
}

impl Value {
    /// The type of this value, `None` for null.
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => ValueType::Boolean,
            Value::Int(_) => ValueType::Int,
            Value::Float(_) => ValueType::Float,
            Value::Text(_) => ValueType::Text,
            Value::TextList(_) => ValueType::TextList,
            Value::IntList(_) => ValueType::IntList,
            Value::Map(_) => ValueType::Map,
        })
    }

    /// Whether this value may be stored in a property declared as `ty`.
    pub fn fits(&self, ty: ValueType) -> bool {
        match self.value_type() {
            None => true,
            Some(actual) => actual == ty || (ty == ValueType::Float && actual == ValueType::Int),
        }
    }
}

impl ValueType {
    /// The name used in the WIT contract and in generated docs.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Boolean => "boolean",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Text => "text",
            ValueType::TextList => "text-list",
            ValueType::IntList => "int-list",
            ValueType::Map => "map",
        }
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_fits_every_type_and_int_widens_to_float() {
        assert!(Value::Null.fits(ValueType::TextList));
        assert!(Value::Int(3).fits(ValueType::Float));
        assert!(!Value::Float(3.0).fits(ValueType::Int));
        assert!(!Value::Text("3".into()).fits(ValueType::Int));
    }

    #[test]
    fn a_map_reads_back_as_a_map_and_other_shapes_as_their_own() {
        let text = r#"[{"env":"prod","n":{"a":[1]}},["a"],[1],"x",null]"#;
        let v: Vec<Value> = serde_json::from_str(text).unwrap();
        assert!(matches!(&v[0], Value::Map(m) if m["env"] == "prod"));
        assert!(matches!(&v[1], Value::TextList(_)));
        assert!(matches!(&v[2], Value::IntList(_)));
        assert!(matches!(&v[3], Value::Text(_)));
        assert_eq!(v[4], Value::Null);
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }

    #[test]
    fn serializes_as_plain_json() {
        let v = vec![
            Value::Null,
            Value::Int(1),
            Value::Text("a".into()),
            Value::IntList(vec![2]),
        ];
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"[null,1,"a",[2]]"#);
    }
}
