use std::collections::{HashMap, HashSet};

use crate::schema::names::{
    is_pascal_case, is_plugin_name, is_screaming_snake_case, is_snake_case,
};
use crate::{
    AccessKind, EdgeBatch, Manifest, ManifestError, NodeBatch, PropertyDef, RESERVED_PROPERTIES,
    RecordError, Value, ValueType,
};

/// A plugin's declared schema, checked, and indexed for checking records fast.
#[derive(Debug, Clone)]
pub struct CheckedSchema {
    plugin: String,
    nodes: HashMap<String, HashMap<String, ValueType>>,
    edges: HashMap<(String, String, String), HashMap<String, ValueType>>,
}

impl CheckedSchema {
    /// Checks the manifest's names and schema: kebab-case plugin name, PascalCase labels,
    /// SCREAMING_SNAKE_CASE types, snake_case properties, no reserved or repeated names,
    /// and edges whose ends are declared labels or at least well-formed ones.
    pub fn new(m: &Manifest) -> Result<CheckedSchema, ManifestError> {
        let err = |what: String| ManifestError {
            plugin: m.name.clone(),
            what,
        };
        if !is_plugin_name(&m.name) {
            return Err(err(format!(
                "name {:?} must be kebab-case (a-z, 0-9, '-'), starting with a letter",
                m.name
            )));
        }
        let mut nodes = HashMap::new();
        for kind in &m.schema.nodes {
            if !is_pascal_case(&kind.label) {
                return Err(err(format!("label {:?} is not PascalCase", kind.label)));
            }
            for extra in &kind.extra_labels {
                if !is_pascal_case(extra) {
                    return Err(err(format!(
                        "extra label {extra:?} of {:?} is not PascalCase",
                        kind.label
                    )));
                }
            }
            let props = properties(&kind.properties, &kind.label).map_err(err)?;
            if nodes.insert(kind.label.clone(), props).is_some() {
                return Err(err(format!("label {:?} is declared twice", kind.label)));
            }
        }
        let mut edges = HashMap::new();
        for kind in &m.schema.edges {
            let name = format!("(:{})-[:{}]->(:{})", kind.from, kind.rel_type, kind.to);
            if !is_screaming_snake_case(&kind.rel_type) {
                return Err(err(format!(
                    "relationship type {:?} is not SCREAMING_SNAKE_CASE",
                    kind.rel_type
                )));
            }
            for end in [&kind.from, &kind.to] {
                if !is_pascal_case(end) {
                    return Err(err(format!("{name}: label {end:?} is not PascalCase")));
                }
            }
            let props = properties(&kind.properties, &name).map_err(err)?;
            if let Some(access) = &kind.access {
                if access.kind != AccessKind::Grant && !access.grants.is_empty() {
                    return Err(err(format!(
                        "{name}: only a grant names what it grants; a {} does not",
                        access.kind.name()
                    )));
                }
                for g in &access.grants {
                    if !props.contains_key(g) {
                        return Err(err(format!(
                            "{name}: its grant names property {g:?}, which it does not declare"
                        )));
                    }
                }
            }
            let key = (kind.rel_type.clone(), kind.from.clone(), kind.to.clone());
            if edges.insert(key, props).is_some() {
                return Err(err(format!("{name} is declared twice")));
            }
        }
        for (what, list) in [("host", &m.hosts)] {
            for h in list.iter() {
                if h.is_empty() || h.contains(['/', ' ', '@', '?', '#']) {
                    return Err(err(format!("{what} {h:?} must be a bare host name")));
                }
            }
        }
        let mut seen = HashSet::new();
        for c in &m.credentials {
            if !is_snake_case(&c.name) || !seen.insert(&c.name) {
                return Err(err(format!(
                    "credential {:?} must have a unique snake_case name",
                    c.name
                )));
            }
            if c.env.is_empty() {
                return Err(err(format!("credential {:?} names no env var", c.name)));
            }
            if let Some((key, value)) = &c.only_when {
                let text = m
                    .config
                    .iter()
                    .any(|k| &k.name == key && k.ty == crate::ConfigType::Text);
                if !text || value.is_empty() {
                    return Err(err(format!(
                        "credential {:?} applies only when {key:?} is {value:?}, but {key:?} \
                         is not a text config key of the plugin (or the value is empty)",
                        c.name
                    )));
                }
            }
        }
        let mut seen = HashSet::new();
        for k in &m.config {
            if !is_snake_case(&k.name) || !seen.insert(&k.name) {
                return Err(err(format!(
                    "config key {:?} must have a unique snake_case name",
                    k.name
                )));
            }
        }
        Ok(CheckedSchema {
            plugin: m.name.clone(),
            nodes,
            edges,
        })
    }

    /// Checks a node batch: declared label, declared and distinct columns, non-empty ids,
    /// one value per column, each of its declared type, and no id or value longer than
    /// `max_value_bytes` (see [`value_bytes`]).
    ///
    /// A `map` property arrives as text holding a JSON object; it is parsed here and
    /// becomes a [`Value::Map`], or the batch is refused naming the record and property.
    pub fn check_nodes(
        &self,
        b: &mut NodeBatch,
        max_value_bytes: usize,
    ) -> Result<(), RecordError> {
        let first = b.rows.first().map(|r| r.id.as_str()).unwrap_or("");
        let fail = |id: &str, what: String| RecordError {
            plugin: self.plugin.clone(),
            kind: "node",
            record: format!("{} {:?}", b.label, shown(id)),
            what,
        };
        let Some(props) = self.nodes.get(&b.label) else {
            return Err(fail(
                first,
                format!("label {:?} is not in the plugin's schema", b.label),
            ));
        };
        let types = columns(&b.columns, props, &b.label).map_err(|w| fail(first, w))?;
        for row in &mut b.rows {
            if row.id.is_empty() {
                return Err(fail("", "its id is empty".into()));
            }
            if row.id.len() > max_value_bytes {
                return Err(fail(
                    &row.id,
                    too_long("its id", row.id.len(), max_value_bytes),
                ));
            }
            values(&mut row.values, &b.columns, &types, max_value_bytes)
                .map_err(|w| fail(&row.id, w))?;
        }
        Ok(())
    }

    /// Checks an edge batch: declared (type, from, to), well-formed keys (`id` or a
    /// property the end's label declares, when the label is this plugin's), non-empty ends,
    /// typed values, and no end or value longer than `max_value_bytes`.
    /// Map properties are parsed as in [`CheckedSchema::check_nodes`].
    pub fn check_edges(
        &self,
        b: &mut EdgeBatch,
        max_value_bytes: usize,
    ) -> Result<(), RecordError> {
        let name = format!("(:{})-[:{}]->(:{})", b.from_label, b.rel_type, b.to_label);
        let fail = |what: String| RecordError {
            plugin: self.plugin.clone(),
            kind: "edge",
            record: name.clone(),
            what,
        };
        let key = (b.rel_type.clone(), b.from_label.clone(), b.to_label.clone());
        let Some(props) = self.edges.get(&key) else {
            return Err(fail(
                "this relationship is not in the plugin's schema".into(),
            ));
        };
        for (label, key) in [(&b.from_label, &b.from_key), (&b.to_label, &b.to_key)] {
            let declared = self.nodes.get(label).map(|p| p.get(key));
            if key != "id" && declared.is_some_and(|t| t == Some(&ValueType::Map)) {
                return Err(fail(format!(
                    "key {key:?} of {label:?} is a map, which cannot find a node: match on \
                     `id` or a text property"
                )));
            }
            let known = key == "id"
                || match declared {
                    Some(t) => t.is_some(),
                    None => is_snake_case(key),
                };
            if !known {
                return Err(fail(format!("key {key:?} is not a property of {label:?}")));
            }
        }
        let types = columns(&b.columns, props, &name).map_err(&fail)?;
        for row in &mut b.rows {
            let ends = || format!("from {:?} to {:?}", shown(&row.from), shown(&row.to));
            if row.from.is_empty() || row.to.is_empty() {
                return Err(fail(format!("an end is empty ({})", ends())));
            }
            let longest = row.from.len().max(row.to.len());
            if longest > max_value_bytes {
                let what = too_long("an end", longest, max_value_bytes);
                return Err(fail(format!("{}: {what}", ends())));
            }
            values(&mut row.values, &b.columns, &types, max_value_bytes)
                .map_err(|w| fail(format!("{}: {w}", ends())))?;
        }
        Ok(())
    }

    /// Whether `label` is one of this plugin's node labels.
    pub fn has_label(&self, label: &str) -> bool {
        self.nodes.contains_key(label)
    }
}

fn properties(defs: &[PropertyDef], owner: &str) -> Result<HashMap<String, ValueType>, String> {
    let mut out = HashMap::new();
    for p in defs {
        if RESERVED_PROPERTIES.contains(&p.name.as_str()) {
            return Err(format!(
                "{owner} declares {:?}, which the host writes itself",
                p.name
            ));
        }
        if !is_snake_case(&p.name) {
            return Err(format!("{owner} property {:?} is not snake_case", p.name));
        }
        if p.ty == ValueType::Map && p.indexed {
            return Err(format!(
                "{owner} property {:?} is a map and cannot be indexed: index a text \
                 property that holds the value to look up instead",
                p.name
            ));
        }
        if out.insert(p.name.clone(), p.ty).is_some() {
            return Err(format!("{owner} declares property {:?} twice", p.name));
        }
    }
    Ok(out)
}

fn columns(
    cols: &[String],
    props: &HashMap<String, ValueType>,
    owner: &str,
) -> Result<Vec<ValueType>, String> {
    let mut seen = HashSet::with_capacity(cols.len());
    cols.iter()
        .map(|c| {
            if !seen.insert(c) {
                return Err(format!("property {c:?} appears twice"));
            }
            match props.get(c) {
                Some(t) => Ok(*t),
                None if !is_snake_case(c) => Err(format!("property name {c:?} is not snake_case")),
                None => Err(format!("property {c:?} is not declared for {owner}")),
            }
        })
        .collect()
}

fn values(
    vals: &mut [Value],
    cols: &[String],
    types: &[ValueType],
    max_value_bytes: usize,
) -> Result<(), String> {
    if vals.len() != types.len() {
        return Err(format!("{} values for {} columns", vals.len(), types.len()));
    }
    for ((v, ty), col) in vals.iter_mut().zip(types).zip(cols) {
        if *ty == ValueType::Map
            && let Value::Text(text) = v
        {
            // Bounded by its text before it is parsed; serde_json limits nesting depth.
            if text.len() > max_value_bytes {
                return Err(too_long(
                    &format!("property {col:?}"),
                    text.len(),
                    max_value_bytes,
                ));
            }
            *v = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => Value::Map(map),
                Ok(other) => {
                    return Err(format!(
                        "property {col:?} is declared map but holds JSON {}, not an object",
                        json_kind(&other)
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "property {col:?} is declared map but its text is not JSON ({e})"
                    ));
                }
            };
            continue;
        }
        if !v.fits(*ty) {
            let got = v.value_type().map_or("null", |t| t.name());
            return Err(format!(
                "property {col:?} is declared {ty} but holds a {got}"
            ));
        }
        let bytes = value_bytes(v);
        if bytes > max_value_bytes {
            return Err(too_long(
                &format!("property {col:?}"),
                bytes,
                max_value_bytes,
            ));
        }
    }
    Ok(())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The size of a value as the per-value limit counts it: a text's UTF-8 bytes, the sum of
/// a text list's, 8 bytes per number of an integer list, 8 for a scalar, a map's JSON
/// text (checked before parsing; a map built in the host is counted the same way).
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Map(m) => serde_json::to_string(m).map_or(usize::MAX, |t| t.len()),
        Value::Null => 0,
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => 8,
        Value::Text(s) => s.len(),
        Value::TextList(l) => l.iter().map(String::len).sum(),
        Value::IntList(l) => l.len() * 8,
    }
}

fn too_long(what: &str, bytes: usize, max: usize) -> String {
    format!(
        "{what} holds {bytes} bytes, over the limit of {max} bytes per value; a value that \
         large is a plugin fault, or set `property_value_kib` under [limits] to allow it"
    )
}

/// An id or end as an error shows it: the first 64 characters of a longer one (the rest
/// may be megabytes).
fn shown(s: &str) -> String {
    const SHOWN: usize = 64;
    match s.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EdgeKind, EdgeRow, NodeKind, NodeRow, Schema};

    fn manifest() -> Manifest {
        let prop = |name: &str, ty| PropertyDef {
            name: name.into(),
            ty,
            description: String::new(),
            indexed: false,
        };
        Manifest {
            name: "demo".into(),
            version: "1.0.0".into(),
            description: String::new(),
            schema: Schema {
                nodes: vec![NodeKind {
                    label: "DemoUser".into(),
                    description: String::new(),
                    extra_labels: vec!["UserAccount".into()],
                    properties: vec![prop("email", ValueType::Text), prop("age", ValueType::Int)],
                }],
                edges: vec![EdgeKind {
                    rel_type: "MEMBER_OF".into(),
                    description: String::new(),
                    from: "DemoUser".into(),
                    to: "DemoGroup".into(),
                    properties: vec![prop("since", ValueType::Float)],
                    access: None,
                }],
            },
            hosts: vec!["api.demo.test".into()],
            credentials: vec![],
            config: vec![],
        }
    }

    fn nodes(cols: &[&str], id: &str, values: Vec<Value>) -> NodeBatch {
        NodeBatch {
            label: "DemoUser".into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            rows: vec![NodeRow {
                id: id.into(),
                values,
            }],
        }
    }

    /// Contract 0.2.0: a grant may name the properties holding what it grants, which must
    /// be declared; other kinds name none.
    #[test]
    fn access_grants_must_name_declared_properties() {
        use crate::{Access, AccessKind};
        let with = |kind, grants: &[&str]| {
            let mut m = manifest();
            m.schema.edges[0].access = Some(Access {
                kind,
                reversed: false,
                grants: grants.iter().map(|g| g.to_string()).collect(),
            });
            CheckedSchema::new(&m).map(drop).map_err(|e| e.to_string())
        };
        with(AccessKind::Grant, &["since"]).unwrap();
        with(AccessKind::Membership, &[]).unwrap();
        let e = with(AccessKind::Grant, &["role"]).unwrap_err();
        assert!(
            e.contains("(:DemoUser)-[:MEMBER_OF]->(:DemoGroup)")
                && e.contains(r#"names property "role", which it does not declare"#),
            "{e}"
        );
        let e = with(AccessKind::Membership, &["since"]).unwrap_err();
        assert!(e.contains("only a grant names what it grants"), "{e}");
    }

    #[test]
    fn a_map_property_is_parsed_from_its_text_or_refused_naming_why() {
        let mut m = manifest();
        m.schema.nodes[0].properties.push(PropertyDef {
            name: "tags".into(),
            ty: ValueType::Map,
            description: String::new(),
            indexed: false,
        });
        let s = CheckedSchema::new(&m).unwrap();
        let mut b = nodes(
            &["tags"],
            "u1",
            vec![Value::Text(r#"{"env":"prod"}"#.into())],
        );
        s.check_nodes(&mut b, usize::MAX).unwrap();
        assert!(
            matches!(&b.rows[0].values[0], Value::Map(m) if m["env"] == "prod"),
            "{:?}",
            b.rows[0].values
        );
        for (text, why) in [
            (r#"["a"]"#, "holds JSON a list, not an object"),
            ("env=prod", "its text is not JSON"),
            (r#"{"a":1"#, "its text is not JSON"),
        ] {
            let e = s
                .check_nodes(
                    &mut nodes(&["tags"], "u1", vec![Value::Text(text.into())]),
                    1000,
                )
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && e.contains("\"tags\""), "{text}: {e}");
        }
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(200));
        let e = s
            .check_nodes(
                &mut nodes(&["tags"], "u1", vec![Value::Text(long.into())]),
                100,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("tags"), "{e}");
        // A value of another type is refused as any mistyped value is.
        let e = s
            .check_nodes(&mut nodes(&["tags"], "u1", vec![Value::Int(1)]), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("declared map but holds a int"), "{e}");

        // Nothing can be indexed on a map, nor can an edge find its end by one.
        let mut by_tags = EdgeBatch {
            rel_type: "MEMBER_OF".into(),
            from_label: "DemoUser".into(),
            from_key: "tags".into(),
            to_label: "DemoGroup".into(),
            to_key: "id".into(),
            columns: vec![],
            rows: vec![EdgeRow {
                from: "{}".into(),
                to: "g1".into(),
                values: vec![],
            }],
        };
        let e = s.check_edges(&mut by_tags, 100).unwrap_err().to_string();
        assert!(e.contains("is a map, which cannot find a node"), "{e}");
        m.schema.nodes[0].properties.last_mut().unwrap().indexed = true;
        let e = CheckedSchema::new(&m).unwrap_err().to_string();
        assert!(e.contains("is a map and cannot be indexed"), "{e}");
    }

    #[test]
    fn accepts_a_good_batch() {
        let s = CheckedSchema::new(&manifest()).unwrap();
        let mut b = nodes(
            &["email", "age"],
            "u1",
            vec![Value::Text("a@b".into()), Value::Null],
        );
        s.check_nodes(&mut b, usize::MAX).unwrap();
    }

    /// Issue 20, point 4: a 100 MB string property was accepted and stored.
    #[test]
    fn a_value_or_id_over_the_limit_is_refused_naming_label_id_property_and_limit() {
        let s = CheckedSchema::new(&manifest()).unwrap();
        let text = |n: usize| Value::Text("é".repeat(n / 2).into());
        s.check_nodes(&mut nodes(&["email"], "u1", vec![text(100)]), 100)
            .unwrap();
        let e = s
            .check_nodes(&mut nodes(&["email"], "u1", vec![text(102)]), 100)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"DemoUser "u1": property "email" holds 102 bytes, over the limit of 100 bytes per value"#)
                && e.contains("property_value_kib"),
            "{e}"
        );
        let long_id = "x".repeat(1000);
        let e = s
            .check_nodes(&mut nodes(&[], &long_id, vec![]), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("its id holds 1000 bytes"), "{e}");
        assert!(e.len() < 400, "the id is not quoted whole: {e}");
        let list = Value::TextList(vec!["a".repeat(60), "b".repeat(60)]);
        assert_eq!(value_bytes(&list), 120);
        assert_eq!(value_bytes(&Value::IntList(vec![1, 2, 3])), 24);
    }

    #[test]
    fn names_the_record_and_the_fault() {
        let s = CheckedSchema::new(&manifest()).unwrap();
        let e = s
            .check_nodes(&mut nodes(&[], "", vec![]), usize::MAX)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"plugin "demo" emitted an invalid node DemoUser "": its id is empty"#
        );
        let e = s
            .check_nodes(&mut nodes(&["Email"], "u1", vec![Value::Null]), usize::MAX)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"DemoUser "u1": property name "Email" is not snake_case"#),
            "{e}"
        );
        let e = s
            .check_nodes(
                &mut nodes(&["age"], "u1", vec![Value::Text("x".into())]),
                usize::MAX,
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(r#""age" is declared int but holds a text"#),
            "{e}"
        );
        let mut b = nodes(&[], "u1", vec![]);
        b.label = "Other".into();
        let e = s.check_nodes(&mut b, usize::MAX).unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"label "Other" is not in the plugin's schema"#),
            "{e}"
        );
    }

    #[test]
    fn edges_to_foreign_labels_are_allowed_but_checked() {
        let s = CheckedSchema::new(&manifest()).unwrap();
        let mut b = EdgeBatch {
            rel_type: "MEMBER_OF".into(),
            from_label: "DemoUser".into(),
            from_key: "email".into(),
            to_label: "DemoGroup".into(),
            to_key: "name".into(),
            columns: vec!["since".into()],
            rows: vec![EdgeRow {
                from: "a@b".into(),
                to: "admins".into(),
                values: vec![Value::Int(3)],
            }],
        };
        s.check_edges(&mut b, usize::MAX).unwrap();
        b.from_key = "nickname".into();
        assert!(
            s.check_edges(&mut b, usize::MAX)
                .unwrap_err()
                .to_string()
                .contains("\"nickname\" is not a property of \"DemoUser\"")
        );
        b.from_key = "id".into();
        b.rel_type = "OWNS".into();
        assert!(s.check_edges(&mut b, usize::MAX).is_err());
    }

    #[test]
    fn a_credentials_condition_names_a_text_config_key() {
        let mut m = manifest();
        m.credentials = vec![crate::Credential {
            name: "password".into(),
            env: "DEMO_PASSWORD".into(),
            description: String::new(),
            hosts: Vec::new(),
            use_: crate::CredentialUse::Bearer,
            required: true,
            only_when: Some(("auth".into(), "basic".into())),
        }];
        let e = CheckedSchema::new(&m).unwrap_err().to_string();
        assert!(e.contains("\"auth\" is not a text config key"), "{e}");
        m.config = vec![crate::ConfigKey {
            name: "auth".into(),
            description: String::new(),
            ty: crate::ConfigType::Text,
            env: None,
            required: false,
            default: None,
        }];
        CheckedSchema::new(&m).unwrap();
    }

    #[test]
    fn refuses_reserved_and_badly_shaped_declarations() {
        let mut m = manifest();
        m.schema.nodes[0].properties[0].name = "lastupdated".into();
        let e = CheckedSchema::new(&m).unwrap_err().to_string();
        assert!(
            e.contains("\"lastupdated\", which the host writes itself"),
            "{e}"
        );
        let mut m = manifest();
        m.schema.nodes[0].label = "demo_user".into();
        assert!(CheckedSchema::new(&m).is_err());
        let mut m = manifest();
        m.name = "Demo Plugin".into();
        assert!(
            CheckedSchema::new(&m)
                .unwrap_err()
                .to_string()
                .contains("kebab-case")
        );
    }
}
