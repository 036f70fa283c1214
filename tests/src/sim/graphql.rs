//! What a GraphQL server does with a query, for simulators that hold their data as JSON:
//! refuse it whole when it asks for what the schema lacks, and otherwise answer exactly
//! the fields it selects (under their aliases, through inline fragments and named
//! fragments), so a client that reads a field it did not ask for finds nothing, as it
//! would against the real API.

use std::collections::BTreeMap;

use graphql_parser::query::{
    Definition, Document, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
    TypeCondition, Value as GqlValue,
};
use infragraph_graphql_check::{Error, Schema};
use serde_json::{Map, Value, json};

/// A parsed operation: whether it is a mutation, its root fields, and its fragments.
pub struct Operation<'q> {
    pub mutation: bool,
    pub fields: Vec<&'q Field<'q, String>>,
    fragments: BTreeMap<&'q str, &'q FragmentDefinition<'q, String>>,
}

/// The body a GraphQL server sends for a query it refuses: HTTP 200, one error per
/// problem, and no `data` at all (the query never ran).
pub fn refusal(e: &Error) -> Value {
    let messages = match e {
        Error::Invalid(messages) => messages.clone(),
        other => vec![other.to_string()],
    };
    json!({"errors": messages.iter().map(|m| json!({"message": m})).collect::<Vec<_>>()})
}

/// Checks `query` against `schema` and parses it; `Err` is the refusal body.
pub fn prepare<'q>(
    schema: &Schema,
    query: &str,
    doc: &'q Document<'q, String>,
) -> Result<Operation<'q>, Value> {
    schema.check(query).map_err(|e| refusal(&e))?;
    let fragments = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some((f.name.as_str(), f)),
            Definition::Operation(_) => None,
        })
        .collect();
    let op = doc.definitions.iter().find_map(|d| match d {
        Definition::Operation(op) => Some(op),
        Definition::Fragment(_) => None,
    });
    let (mutation, set) = match op {
        Some(OperationDefinition::SelectionSet(s)) => (false, s),
        Some(OperationDefinition::Query(q)) => (false, &q.selection_set),
        Some(OperationDefinition::Mutation(m)) => (true, &m.selection_set),
        _ => {
            return Err(json!({"errors": [{"message": "simulator: no query or mutation"}]}));
        }
    };
    let fields = set
        .items
        .iter()
        .filter_map(|s| match s {
            Selection::Field(f) => Some(f),
            _ => None,
        })
        .collect();
    Ok(Operation {
        mutation,
        fields,
        fragments,
    })
}

impl<'q> Operation<'q> {
    /// `value` cut down to what `field` selects.
    pub fn project(&self, field: &Field<'q, String>, value: &Value) -> Value {
        if field.selection_set.items.is_empty() {
            return value.clone();
        }
        self.project_set(&field.selection_set, value)
    }

    fn project_set(&self, set: &SelectionSet<'q, String>, value: &Value) -> Value {
        match value {
            Value::Array(items) => items.iter().map(|v| self.project_set(set, v)).collect(),
            Value::Object(o) => {
                let mut out = Map::new();
                self.select_into(set, o, &mut out);
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    fn select_into(
        &self,
        set: &SelectionSet<'q, String>,
        o: &Map<String, Value>,
        out: &mut Map<String, Value>,
    ) {
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    let key = f.alias.as_ref().unwrap_or(&f.name);
                    let v = o.get(&f.name).cloned().unwrap_or(Value::Null);
                    out.insert(key.clone(), self.project(f, &v));
                }
                Selection::InlineFragment(i) => {
                    if applies(o, i.type_condition.as_ref()) {
                        self.select_into(&i.selection_set, o, out);
                    }
                }
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.fragments.get(s.fragment_name.as_str())
                        && applies(o, Some(&frag.type_condition))
                    {
                        self.select_into(&frag.selection_set, o, out);
                    }
                }
            }
        }
    }
}

/// Whether a fragment on a type applies to an object: the object's `__typename` (kept in
/// the data of union members) is that type, or the data does not say.
fn applies(o: &Map<String, Value>, on: Option<&TypeCondition<'_, String>>) -> bool {
    match on {
        None => true,
        Some(TypeCondition::On(t)) => o
            .get("__typename")
            .and_then(Value::as_str)
            .is_none_or(|n| n == t),
    }
}

/// The value of argument `name` of `field`, variables resolved (`Null` when absent).
pub fn argument(field: &Field<'_, String>, name: &str, variables: &Value) -> Value {
    let Some((_, v)) = field.arguments.iter().find(|(n, _)| n == name) else {
        return Value::Null;
    };
    match v {
        GqlValue::Variable(var) => variables.get(var).cloned().unwrap_or(Value::Null),
        GqlValue::String(s) => json!(s),
        GqlValue::Int(i) => json!(i.as_i64()),
        GqlValue::Boolean(b) => json!(b),
        _ => Value::Null,
    }
}

/// The sub-field `name` of `field`'s selection, if selected.
pub fn sub_field<'a, 'q>(
    field: &'a Field<'q, String>,
    name: &str,
) -> Option<&'a Field<'q, String>> {
    field.selection_set.items.iter().find_map(|s| match s {
        Selection::Field(f) if f.name == name => Some(f),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "type Query { pools: [Pool!]! v: V } type Pool { id: ID! name: String! } \
                       union V = A | B type A { a: String } type B { b: String }";

    #[test]
    fn answers_only_what_is_selected_and_refuses_the_unknown() {
        let schema = Schema::parse(SDL).unwrap();
        let q = "{ ps: pools { id } v { __typename ... on A { a } ...F } } fragment F on B { b }";
        let doc = graphql_parser::parse_query::<String>(q).unwrap();
        let op = prepare(&schema, q, &doc).unwrap();
        let pools = json!([{"id": "p1", "name": "one", "type": "PRIVATE"}]);
        assert_eq!(op.project(op.fields[0], &pools), json!([{"id": "p1"}]));
        let b = json!({"__typename": "B", "b": "x", "a": "y"});
        assert_eq!(
            op.project(op.fields[1], &b),
            json!({"__typename": "B", "b": "x"})
        );

        let bad = "{ pools { id type } }";
        let doc = graphql_parser::parse_query::<String>(bad).unwrap();
        let refused = prepare(&schema, bad, &doc).err().unwrap();
        assert_eq!(
            refused,
            json!({"errors": [{"message": "Cannot query field \"type\" on type \"Pool\"."}]})
        );
    }
}
