//! Checks GraphQL query documents against a schema written in SDL, the way a GraphQL
//! server refuses a query before running it: every selected field must exist on its
//! type, every argument on its field, every fragment's type must fit where it is used,
//! object fields need a selection and leaves may not have one, and every variable used
//! must be declared. The errors read like a server's (`Cannot query field "type" on type
//! "WorkerPool".`), so a simulator can answer with them.
//!
//! It is not a full validator (no argument value types, no directive or uniqueness
//! rules): it answers the question a client gets wrong when it guesses at a schema,
//! whether the fields and arguments it asks for exist.

use std::collections::{BTreeMap, BTreeSet};

use graphql_parser::query::{
    Definition as QueryDefinition, Document as QueryDocument, FragmentDefinition,
    OperationDefinition, Selection, SelectionSet, TypeCondition, Value,
};
use graphql_parser::schema::{Definition, Type, TypeDefinition};

/// Why a schema or query could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The SDL does not parse, or names a type it does not define.
    #[error("the schema is not usable: {0}")]
    Schema(String),
    /// The query does not parse.
    #[error("Syntax Error: {0}")]
    Syntax(String),
    /// The query parses but asks for what the schema does not have; one message each.
    #[error("{}", .0.join(" "))]
    Invalid(Vec<String>),
}

/// A field of an object type: its arguments, and the named type it returns.
#[derive(Debug, Clone)]
struct FieldDef {
    arguments: BTreeSet<String>,
    returns: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Object(BTreeMap<String, FieldDef>),
    Union(BTreeSet<String>),
    /// Scalars and enums: selected without a selection set.
    Leaf,
}

/// A schema, read from SDL.
#[derive(Debug, Clone)]
pub struct Schema {
    types: BTreeMap<String, Kind>,
    query: String,
    mutation: Option<String>,
}

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

fn named(t: &Type<'_, String>) -> String {
    match t {
        Type::NamedType(n) => n.clone(),
        Type::ListType(t) | Type::NonNullType(t) => named(t),
    }
}

impl Schema {
    /// Reads `sdl`. Object types, unions, scalars and enums are understood; the root
    /// types are those of the `schema` block, else `Query` and `Mutation`.
    pub fn parse(sdl: &str) -> Result<Schema, Error> {
        let doc = graphql_parser::parse_schema::<String>(sdl)
            .map_err(|e| Error::Schema(e.to_string()))?;
        let mut types: BTreeMap<String, Kind> = BUILT_IN_SCALARS
            .iter()
            .map(|s| (s.to_string(), Kind::Leaf))
            .collect();
        let (mut query, mut mutation) = ("Query".to_owned(), None);
        for def in doc.definitions {
            match def {
                Definition::SchemaDefinition(s) => {
                    query = s.query.unwrap_or(query);
                    mutation = s.mutation;
                }
                Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                    let fields = o
                        .fields
                        .iter()
                        .map(|f| {
                            let def = FieldDef {
                                arguments: f.arguments.iter().map(|a| a.name.clone()).collect(),
                                returns: named(&f.field_type),
                            };
                            (f.name.clone(), def)
                        })
                        .collect();
                    types.insert(o.name, Kind::Object(fields));
                }
                Definition::TypeDefinition(TypeDefinition::Union(u)) => {
                    types.insert(u.name, Kind::Union(u.types.into_iter().collect()));
                }
                Definition::TypeDefinition(TypeDefinition::Scalar(s)) => {
                    types.insert(s.name, Kind::Leaf);
                }
                Definition::TypeDefinition(TypeDefinition::Enum(e)) => {
                    types.insert(e.name, Kind::Leaf);
                }
                other => {
                    return Err(Error::Schema(format!(
                        "only object types, unions, scalars and enums are supported: {other:?}"
                    )));
                }
            }
        }
        if mutation.is_none() && types.contains_key("Mutation") {
            mutation = Some("Mutation".to_owned());
        }
        let schema = Schema {
            types,
            query,
            mutation,
        };
        schema.check_references()?;
        Ok(schema)
    }

    /// Every type a field returns or a union lists is defined, so a query's check never
    /// meets an unknown type.
    fn check_references(&self) -> Result<(), Error> {
        let mut missing = BTreeSet::new();
        for (name, kind) in &self.types {
            let refs: Vec<&String> = match kind {
                Kind::Object(fields) => fields.values().map(|f| &f.returns).collect(),
                Kind::Union(members) => members.iter().collect(),
                Kind::Leaf => Vec::new(),
            };
            for r in refs {
                if !self.types.contains_key(r) {
                    missing.insert(format!("{name} refers to undefined type {r}"));
                }
            }
        }
        for root in std::iter::once(&self.query).chain(&self.mutation) {
            if !matches!(self.types.get(root), Some(Kind::Object(_))) {
                missing.insert(format!("root type {root} is not an object type"));
            }
        }
        match missing.is_empty() {
            true => Ok(()),
            false => Err(Error::Schema(
                missing.into_iter().collect::<Vec<_>>().join("; "),
            )),
        }
    }

    /// Whether `object` has a field `field`.
    pub fn has_field(&self, object: &str, field: &str) -> bool {
        matches!(self.types.get(object), Some(Kind::Object(f)) if f.contains_key(field))
    }

    /// Checks every operation of `query`.
    pub fn check(&self, query: &str) -> Result<(), Error> {
        let doc: QueryDocument<'_, String> =
            graphql_parser::parse_query(query).map_err(|e| Error::Syntax(e.to_string()))?;
        let fragments: BTreeMap<&str, &FragmentDefinition<'_, String>> = doc
            .definitions
            .iter()
            .filter_map(|d| match d {
                QueryDefinition::Fragment(f) => Some((f.name.as_str(), f)),
                QueryDefinition::Operation(_) => None,
            })
            .collect();
        let mut errors = Vec::new();
        for def in &doc.definitions {
            let QueryDefinition::Operation(op) = def else {
                continue;
            };
            let (root, declared, set) = match op {
                OperationDefinition::SelectionSet(s) => (Some(&self.query), Vec::new(), s),
                OperationDefinition::Query(q) => (
                    Some(&self.query),
                    q.variable_definitions.iter().map(|v| &v.name).collect(),
                    &q.selection_set,
                ),
                OperationDefinition::Mutation(m) => (
                    self.mutation.as_ref(),
                    m.variable_definitions.iter().map(|v| &v.name).collect(),
                    &m.selection_set,
                ),
                OperationDefinition::Subscription(s) => (None, Vec::new(), &s.selection_set),
            };
            let Some(root) = root else {
                errors.push("Schema is not configured for this operation.".to_owned());
                continue;
            };
            let mut walk = Walk {
                schema: self,
                fragments: &fragments,
                declared: declared.into_iter().map(String::as_str).collect(),
                errors: Vec::new(),
                depth: 0,
            };
            walk.selection_set(root, set);
            errors.append(&mut walk.errors);
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(Error::Invalid(errors)),
        }
    }
}

/// Fragment spreads nested deeper than this are a cycle.
const MAX_DEPTH: usize = 64;

struct Walk<'s, 'q> {
    schema: &'s Schema,
    fragments: &'s BTreeMap<&'q str, &'q FragmentDefinition<'q, String>>,
    declared: BTreeSet<&'q str>,
    errors: Vec<String>,
    depth: usize,
}

impl<'q> Walk<'_, 'q> {
    fn selection_set(&mut self, on: &str, set: &'q SelectionSet<'q, String>) {
        if self.depth == MAX_DEPTH {
            self.errors
                .push("Selections nest too deep (a fragment cycle?).".to_owned());
            return;
        }
        self.depth += 1;
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if f.name == "__typename" {
                        continue;
                    }
                    let field = match self.schema.types.get(on) {
                        Some(Kind::Object(fields)) => fields.get(&f.name),
                        _ => None,
                    };
                    let Some(field) = field else {
                        self.errors.push(format!(
                            "Cannot query field \"{}\" on type \"{on}\".",
                            f.name
                        ));
                        continue;
                    };
                    for (arg, value) in &f.arguments {
                        if !field.arguments.contains(arg) {
                            self.errors.push(format!(
                                "Unknown argument \"{arg}\" on field \"{on}.{}\".",
                                f.name
                            ));
                        }
                        self.variables(value);
                    }
                    let leaf = matches!(self.schema.types.get(&field.returns), Some(Kind::Leaf));
                    match (leaf, f.selection_set.items.is_empty()) {
                        (true, false) => self.errors.push(format!(
                            "Field \"{}\" must not have a selection since type \"{}\" has no subfields.",
                            f.name, field.returns
                        )),
                        (false, true) => self.errors.push(format!(
                            "Field \"{}\" of type \"{}\" must have a selection of subfields.",
                            f.name, field.returns
                        )),
                        (true, true) => {}
                        (false, false) => self.selection_set(&field.returns, &f.selection_set),
                    }
                }
                Selection::InlineFragment(i) => {
                    let target = match &i.type_condition {
                        Some(TypeCondition::On(t)) => t.as_str(),
                        None => on,
                    };
                    if self.fits(on, target) {
                        self.selection_set(target, &i.selection_set);
                    }
                }
                Selection::FragmentSpread(s) => {
                    let Some(frag) = self.fragments.get(s.fragment_name.as_str()) else {
                        self.errors
                            .push(format!("Unknown fragment \"{}\".", s.fragment_name));
                        continue;
                    };
                    let TypeCondition::On(target) = &frag.type_condition;
                    if self.fits(on, target) {
                        self.selection_set(target, &frag.selection_set);
                    }
                }
            }
        }
        self.depth -= 1;
    }

    /// Whether a fragment on `target` may be spread where `on` is selected: the same
    /// type, or a member of the union `on` (or `on` a member of the union `target`).
    fn fits(&mut self, on: &str, target: &str) -> bool {
        let types = &self.schema.types;
        let ok = match (types.get(on), types.get(target)) {
            (_, None) => {
                self.errors.push(format!("Unknown type \"{target}\"."));
                return false;
            }
            _ if on == target => true,
            (Some(Kind::Union(members)), _) => members.contains(target),
            (_, Some(Kind::Union(members))) => members.contains(on),
            _ => false,
        };
        if !ok {
            self.errors.push(format!(
                "Fragment cannot be spread here as objects of type \"{on}\" can never be of type \"{target}\"."
            ));
        }
        ok
    }

    fn variables(&mut self, value: &Value<'q, String>) {
        match value {
            Value::Variable(v) if !self.declared.contains(v.as_str()) => {
                self.errors
                    .push(format!("Variable \"${v}\" is not defined."));
            }
            Value::List(items) => items.iter().for_each(|v| self.variables(v)),
            Value::Object(o) => o.values().for_each(|v| self.variables(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        type Query { pools: [Pool!]! pool(id: ID!): Pool vendor: Vendor }
        type Mutation { login(id: ID!): Token }
        type Token { jwt: String! }
        type Pool { id: ID! name: String! workers: [Worker!]! }
        type Worker { id: ID! }
        union Vendor = A | B
        type A { a: String }
        type B { b: Int }
    "#;

    fn schema() -> Schema {
        Schema::parse(SDL).unwrap()
    }

    fn errors(q: &str) -> Vec<String> {
        match schema().check(q) {
            Ok(()) => Vec::new(),
            Err(Error::Invalid(e)) => e,
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn known_fields_arguments_and_fragments_pass() {
        for q in [
            "{ pools { id name workers { id } } }",
            "query P($id: ID!) { pool(id: $id) { id __typename } }",
            "mutation M($id: ID!) { login(id: $id) { jwt } }",
            "{ vendor { __typename ... on A { a } ... on B { b } } }",
            "query { vendor { ...F } } fragment F on A { a }",
        ] {
            assert_eq!(errors(q), Vec::<String>::new(), "{q}");
        }
    }

    #[test]
    fn unknown_fields_arguments_types_and_variables_are_named() {
        assert_eq!(
            errors("{ pools { id type } }"),
            ["Cannot query field \"type\" on type \"Pool\"."]
        );
        assert_eq!(
            errors("query P($id: ID!) { pool(id: $id, kind: 1) { id } }"),
            ["Unknown argument \"kind\" on field \"Query.pool\"."]
        );
        assert_eq!(
            errors("{ pool(id: $x) { id } }"),
            ["Variable \"$x\" is not defined."]
        );
        assert_eq!(
            errors("{ vendor { ... on Pool { id } } }"),
            [
                "Fragment cannot be spread here as objects of type \"Vendor\" can never be of type \"Pool\"."
            ]
        );
        assert_eq!(
            errors("{ pools }"),
            ["Field \"pools\" of type \"Pool\" must have a selection of subfields."]
        );
        assert_eq!(
            errors("{ pools { id { x } } }"),
            ["Field \"id\" must not have a selection since type \"ID\" has no subfields."]
        );
        assert_eq!(errors("{ ...Nope }"), ["Unknown fragment \"Nope\"."]);
        assert!(matches!(schema().check("{ pools {"), Err(Error::Syntax(_))));
    }

    #[test]
    fn fragment_cycles_end() {
        let e = errors("{ pools { ...F } } fragment F on Pool { ...F }");
        assert!(e.iter().any(|m| m.contains("too deep")), "{e:?}");
    }

    #[test]
    fn schemas_with_dangling_types_are_refused() {
        let e = Schema::parse("type Query { a: Missing }").unwrap_err();
        assert!(e.to_string().contains("undefined type Missing"), "{e}");
    }
}
