use crate::wit::types;

/// A property value of a node or edge.
///
/// Usually written through `From`: `.prop("admin", true)`, `.prop("name", &user.name)`,
/// `.prop("deleted_at", None::<String>)`. Each variant matches one [`ValueType`]; the host
/// refuses a value whose type differs from the declared one.
///
/// [`ValueType`]: crate::ValueType
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent. Writing it removes the property from the stored record.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string.
    Text(String),
    /// A list of strings.
    TextList(Vec<String>),
    /// A list of integers.
    IntList(Vec<i64>),
    /// A JSON object, for a property declared [`ValueType::Map`]: tags, labels, settings.
    /// Build it from a `BTreeMap<String, String>` or a `serde_json::Map`; it travels to the
    /// host as its JSON text.
    ///
    /// [`ValueType::Map`]: crate::ValueType::Map
    Map(serde_json::Map<String, serde_json::Value>),
}

impl From<Value> for types::Value {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => types::Value::Null,
            Value::Bool(b) => types::Value::Boolean(b),
            Value::Int(i) => types::Value::Int(i),
            Value::Float(f) => types::Value::Float(f),
            Value::Text(s) => types::Value::Text(s),
            Value::TextList(l) => types::Value::TextList(l),
            Value::IntList(l) => types::Value::IntList(l),
            Value::Map(m) => types::Value::Text(map_text(&m)),
        }
    }
}

/// A map's JSON text, as the contract carries it.
pub(crate) fn map_text(m: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(m).expect("a JSON map serialises")
}

impl From<serde_json::Map<String, serde_json::Value>> for Value {
    fn from(v: serde_json::Map<String, serde_json::Value>) -> Self {
        Value::Map(v)
    }
}

impl From<std::collections::BTreeMap<String, String>> for Value {
    fn from(v: std::collections::BTreeMap<String, String>) -> Self {
        Value::Map(
            v.into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::TextList(v)
    }
}

impl From<Vec<i64>> for Value {
    fn from(v: Vec<i64>) -> Self {
        Value::IntList(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// What a property can be set to: a [`Value`], or anything that converts into one,
/// borrowed where it can be.
///
/// [`NodeBuilder::prop`](crate::NodeBuilder::prop) and its kin take `impl Into<Prop>`, so
/// `.prop("name", &user.name)` copies the text once, straight into the batch being built,
/// without a `String` made and dropped on the way; owned values (`String`, [`Value`],
/// numbers) are taken as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Prop<'a>(pub(crate) Repr<'a>);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Repr<'a> {
    Owned(Value),
    Text(&'a str),
    TextList(&'a [String]),
    IntList(&'a [i64]),
}

impl Prop<'_> {
    /// Whether this is [`Value::Null`].
    pub(crate) fn is_null(&self) -> bool {
        matches!(self.0, Repr::Owned(Value::Null))
    }

    /// The value, owned.
    pub(crate) fn into_value(self) -> Value {
        match self.0 {
            Repr::Owned(v) => v,
            Repr::Text(s) => Value::Text(s.to_owned()),
            Repr::TextList(l) => Value::TextList(l.to_vec()),
            Repr::IntList(l) => Value::IntList(l.to_vec()),
        }
    }
}

/// Owned values are taken as they are.
macro_rules! owned_props {
    ($($t:ty),*) => {$(
        impl From<$t> for Prop<'_> {
            fn from(v: $t) -> Self {
                Prop(Repr::Owned(v.into()))
            }
        }
    )*};
}

owned_props!(
    Value,
    bool,
    i64,
    i32,
    u32,
    f64,
    String,
    Vec<String>,
    Vec<i64>,
    serde_json::Map<String, serde_json::Value>,
    std::collections::BTreeMap<String, String>
);

impl<'a, T: Into<Prop<'a>>> From<Option<T>> for Prop<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Prop(Repr::Owned(Value::Null)), Into::into)
    }
}

impl<'a> From<&'a str> for Prop<'a> {
    fn from(v: &'a str) -> Self {
        Prop(Repr::Text(v))
    }
}

impl<'a> From<&'a String> for Prop<'a> {
    fn from(v: &'a String) -> Self {
        Prop(Repr::Text(v))
    }
}

impl<'a> From<&'a [String]> for Prop<'a> {
    fn from(v: &'a [String]) -> Self {
        Prop(Repr::TextList(v))
    }
}

impl<'a> From<&'a Vec<String>> for Prop<'a> {
    fn from(v: &'a Vec<String>) -> Self {
        Prop(Repr::TextList(v))
    }
}

impl<'a> From<&'a [i64]> for Prop<'a> {
    fn from(v: &'a [i64]) -> Self {
        Prop(Repr::IntList(v))
    }
}

impl<'a> From<&'a Vec<i64>> for Prop<'a> {
    fn from(v: &'a Vec<i64>) -> Self {
        Prop(Repr::IntList(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Value::from(true), Value::Bool(true));
        assert_eq!(Value::from(-3i32), Value::Int(-3));
        assert_eq!(Value::from(u32::MAX), Value::Int(4_294_967_295));
        assert_eq!(Value::from(7i64), Value::Int(7));
        assert_eq!(Value::from(0.5), Value::Float(0.5));
        assert_eq!(Value::from("a"), Value::Text("a".into()));
        assert_eq!(Value::from(&"b".to_string()), Value::Text("b".into()));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("c")), Value::Text("c".into()));
        assert_eq!(Value::from(vec![1i64, 2]), Value::IntList(vec![1, 2]));
        assert_eq!(
            Value::from(vec!["x".to_string()]),
            Value::TextList(vec!["x".into()])
        );
    }
}
