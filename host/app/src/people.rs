//! One person across providers: the accounts the config's `[people]` rules say belong to
//! the same human are linked to one `Person` node, so access questions can start from the
//! person instead of from each account.
//!
//! A rule names a label, the property of its nodes that identifies a person, and the key
//! that value counts as (`email` unless told): Azure's `user_principal_name` and
//! Scaleway's `email` are both e-mail addresses, so both rules use key `email`. Values
//! are compared ignoring case and surrounding spaces. Accounts sharing a value of a key
//! are one person, transitively. A person with two accounts of one label in one scope
//! (two users of one tenant claiming the same address) is ambiguous: it is named in the
//! run's warnings and none of those accounts is linked, rather than guessed.
//!
//! Linking is a run of its own (plugin `people`, scope `people`): it takes a lease,
//! writes through the engine like a plugin, and its cleanup removes the people and links
//! that no longer hold. `(:Person)-[:HAS_ACCOUNT]->(account)` reads for access as
//! acting-as: the person has whatever each of its accounts has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use infragraph_core::{
    Access, AccessKind, EdgeBatch, EdgeKind, EdgeRow, GraphReader, Manifest, NodeBatch, NodeKind,
    NodeRef, NodeRow, PropertyDef, Schema, SinkError, StateStore, Value, ValueType, is_pascal_case,
    is_snake_case,
};
use infragraph_engine::{Options, ProgressFn, RunReport, Source};
use infragraph_runtime::{Emission, RecordCounts, SyncOutcome};
use serde_json::Value as Json;
use tokio::sync::mpsc;

/// The name the linking run goes by in reports, the run history and `_source`.
pub const PLUGIN: &str = "people";
/// The label of a person.
pub const PERSON: &str = "Person";
/// The relationship from a person to each of its accounts.
pub const HAS_ACCOUNT: &str = "HAS_ACCOUNT";
/// The one scope people are kept under.
const SCOPE: &str = "people";
/// The key a rule's values count as when it names none.
const DEFAULT_KEY: &str = "email";

/// One `[[people.match]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRule {
    /// The label of the accounts (`User`, `ScalewayUser`).
    pub label: String,
    /// Their property that identifies the person (`user_principal_name`, `email`).
    pub property: String,
    /// What the value counts as, so two providers' properties compare (`email`).
    pub key: String,
}

/// The `[people]` table, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleRules {
    /// In the order written; the first rule's key names a person.
    pub rules: Vec<MatchRule>,
}

impl PeopleRules {
    /// Reads `[people]`: `match`, a list of `{ label, property, as }` tables.
    pub(crate) fn from_table(table: toml::Table) -> Result<PeopleRules, String> {
        let mut rules = Vec::new();
        for (k, v) in table {
            if k != "match" {
                return Err(format!(
                    "unknown key `{k}`: [people] takes `match`, a list of rules such as \
                     {{ label = \"ScalewayUser\", property = \"email\" }}"
                ));
            }
            let toml::Value::Array(items) = v else {
                return Err("`match` must be a list of rules".into());
            };
            for (i, item) in items.into_iter().enumerate() {
                let toml::Value::Table(t) = item else {
                    return Err(format!("match[{i}] must be a table"));
                };
                rules.push(rule(t).map_err(|e| format!("match[{i}]: {e}"))?);
            }
        }
        if rules.is_empty() {
            return Err(
                "`match` holds no rule: remove [people], or add one such as \
                 { label = \"ScalewayUser\", property = \"email\" }"
                    .into(),
            );
        }
        let mut seen = BTreeSet::new();
        for r in &rules {
            if !seen.insert((&r.label, &r.property)) {
                return Err(format!(
                    "{}.{} is matched twice: keep one rule",
                    r.label, r.property
                ));
            }
        }
        Ok(PeopleRules { rules })
    }

    /// The keys, in the order the rules first use them.
    fn keys(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rules {
            if !out.contains(&r.key.as_str()) {
                out.push(&r.key);
            }
        }
        out
    }

    /// The labels, sorted, each once.
    fn labels(&self) -> BTreeSet<&str> {
        self.rules.iter().map(|r| r.label.as_str()).collect()
    }

    /// What the linking run writes: `Person` (a list property per key, its number of
    /// accounts and their plugins) and `HAS_ACCOUNT` to each label a rule names.
    pub fn manifest(&self) -> Manifest {
        let prop = |name: &str, ty, description: String| PropertyDef {
            name: name.into(),
            ty,
            description,
            indexed: false,
        };
        let mut properties: Vec<PropertyDef> = self
            .keys()
            .into_iter()
            .map(|k| PropertyDef {
                indexed: true,
                ..prop(
                    k,
                    ValueType::TextList,
                    format!("Every {k} of the person's accounts, lower-cased"),
                )
            })
            .collect();
        properties.push(prop(
            "accounts",
            ValueType::Int,
            "How many accounts are linked to the person".into(),
        ));
        properties.push(prop(
            "plugins",
            ValueType::TextList,
            "The plugins that wrote the person's accounts".into(),
        ));
        let edges = self
            .labels()
            .into_iter()
            .map(|label| EdgeKind {
                rel_type: HAS_ACCOUNT.into(),
                description: "Has the account: the person acts as it".into(),
                from: PERSON.into(),
                to: label.into(),
                properties: vec![prop(
                    "matched_on",
                    ValueType::TextList,
                    "The account's properties that matched, e.g. email".into(),
                )],
                access: Some(Access {
                    kind: AccessKind::ActingAs,
                    reversed: false,
                    grants: Vec::new(),
                }),
            })
            .collect();
        Manifest {
            name: PLUGIN.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "People: the accounts of one person across providers, linked by \
                          the [people] rules of the config (built into the host)"
                .into(),
            schema: Schema {
                nodes: vec![NodeKind {
                    label: PERSON.into(),
                    description: "A person: the accounts the [people] rules say are theirs".into(),
                    extra_labels: Vec::new(),
                    properties,
                }],
                edges,
            },
            hosts: Vec::new(),
            credentials: Vec::new(),
            config: Vec::new(),
        }
    }
}

fn rule(mut t: toml::Table) -> Result<MatchRule, String> {
    let mut text = |k: &str, required: bool| -> Result<Option<String>, String> {
        match t.remove(k) {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().into())),
            Some(_) => Err(format!("`{k}` must be a non-empty string")),
            None if required => Err(format!("`{k}` is missing")),
            None => Ok(None),
        }
    };
    let label = text("label", true)?.expect("required");
    let property = text("property", true)?.expect("required");
    let key = text("as", false)?.unwrap_or_else(|| DEFAULT_KEY.into());
    if let Some(k) = t.keys().next() {
        return Err(format!(
            "unknown key `{k}`: a rule takes `label`, `property` and `as`"
        ));
    }
    if !is_pascal_case(&label) {
        return Err(format!("label {label:?} is not a PascalCase label"));
    }
    for (what, v) in [("property", &property), ("as", &key)] {
        if !is_snake_case(v) {
            return Err(format!("`{what}` {v:?} is not a snake_case name"));
        }
    }
    if ["id", "accounts", "plugins"].contains(&key.as_str()) {
        return Err(format!(
            "`as` {key:?} is a property of every person already: name the key another way"
        ));
    }
    Ok(MatchRule {
        label,
        property,
        key,
    })
}

/// An account a rule matched.
#[derive(Debug, Clone)]
struct Account {
    label: String,
    id: String,
    plugin: String,
    scope: String,
    /// (key, normalized value, property it came from).
    values: Vec<(String, String, String)>,
}

/// What linking found: the people to write, and the matches it would not guess.
#[derive(Debug, Default)]
struct Linking {
    /// Each person: its id, then its accounts.
    people: Vec<(String, Vec<Account>)>,
    /// One line per ambiguous person, for the report.
    ambiguous: Vec<String>,
    /// Rules whose label the graph does not hold, for the report.
    unmatched: Vec<String>,
    /// Accounts the rules matched, linked or not.
    accounts: usize,
}

/// Reads every account the rules name from `r` and groups them into people.
async fn plan<R: GraphReader>(r: &R, rules: &PeopleRules) -> Result<Linking, SinkError> {
    let mut accounts: Vec<Account> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let stored = r.labels().await?;
    let mut unmatched = Vec::new();
    for rule in &rules.rules {
        if !stored.contains(&rule.label) {
            let hint = infragraph_runtime::closest(&rule.label, &stored)
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            unmatched.push(format!(
                "the [people] rule for {}.{} matched nothing: the graph holds no {} node{hint}",
                rule.label, rule.property, rule.label
            ));
            continue;
        }
        for n in r.nodes(&rule.label, &[], 0).await? {
            // Only nodes keyed under the label: one carrying it as an extra label is
            // another kind of node.
            if n.label != rule.label {
                continue;
            }
            let values = normalized(n.props.get(&rule.property));
            if values.is_empty() {
                continue;
            }
            let at = *index
                .entry((n.label.clone(), n.id.clone()))
                .or_insert_with(|| {
                    accounts.push(Account {
                        label: n.label.clone(),
                        id: n.id.clone(),
                        plugin: n.source.clone(),
                        scope: n.scope.clone(),
                        values: Vec::new(),
                    });
                    accounts.len() - 1
                });
            for v in values {
                accounts[at]
                    .values
                    .push((rule.key.clone(), v, rule.property.clone()));
            }
        }
    }
    // Accounts sharing a (key, value) are one person: union-find over the accounts.
    let mut parent: Vec<usize> = (0..accounts.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, a) in accounts.iter().enumerate() {
        for (k, v, _) in &a.values {
            match first.get(&(k.as_str(), v.as_str())) {
                Some(&j) => {
                    let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                    parent[ri] = rj;
                }
                None => {
                    first.insert((k, v), i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..accounts.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let keys = rules.keys();
    let mut linking = Linking {
        accounts: accounts.len(),
        unmatched,
        ..Linking::default()
    };
    for members in groups.into_values() {
        let group: Vec<Account> = members.iter().map(|&i| accounts[i].clone()).collect();
        let id = person_id(&group, &keys);
        let mut per_place: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for a in &group {
            per_place
                .entry((a.label.as_str(), a.scope.as_str()))
                .or_default()
                .push(&a.id);
        }
        let clashes: Vec<String> = per_place
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((label, scope), ids)| {
                format!(
                    "{} {label} accounts in scope {scope} ({})",
                    ids.len(),
                    ids.join(", ")
                )
            })
            .collect();
        if clashes.is_empty() {
            linking.people.push((id, group));
        } else {
            linking.ambiguous.push(format!(
                "{id} matches {}: not linked, since one person has one account per label \
                 and scope; make the values differ, or narrow the [people] rules",
                clashes.join(" and ")
            ));
        }
    }
    linking.people.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(linking)
}

/// A person's id: the smallest value of the first key (in rule order) its accounts have.
fn person_id(group: &[Account], keys: &[&str]) -> String {
    for k in keys {
        let smallest = group
            .iter()
            .flat_map(|a| a.values.iter())
            .filter(|(key, _, _)| key == k)
            .map(|(_, v, _)| v)
            .min();
        if let Some(v) = smallest {
            return v.clone();
        }
    }
    unreachable!("every account has a value")
}

/// A property's text values, trimmed and lower-cased; a list gives each of its texts.
fn normalized(v: Option<&Json>) -> Vec<String> {
    let one = |s: &str| Some(s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let mut out: Vec<String> = match v {
        Some(Json::String(s)) => one(s).into_iter().collect(),
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().and_then(one))
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// The linking run as the engine drives it.
struct PeopleSource {
    manifest: Manifest,
    linking: Linking,
}

impl Source for PeopleSource {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn sha256(&self) -> &str {
        // Not a file: the host's own code, whose version the manifest carries.
        "built-in"
    }

    // It sends no request: nothing to hold back until the scope is accepted.
    async fn run(
        self,
        _state: Arc<dyn StateStore>,
        out: mpsc::Sender<Emission>,
        _accepted: infragraph_runtime::ScopeAccepted,
    ) -> SyncOutcome {
        let started = Instant::now();
        let keys: Vec<String> = self
            .manifest
            .schema
            .nodes
            .first()
            .map(|n| n.properties.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        let scope = NodeRef {
            label: PERSON.into(),
            key: "id".into(),
            value: SCOPE.into(),
        };
        let mut nodes = NodeBatch {
            label: PERSON.into(),
            columns: keys.clone(),
            rows: Vec::new(),
        };
        let mut edges: BTreeMap<&str, EdgeBatch> = BTreeMap::new();
        for (id, accounts) in &self.linking.people {
            let values = keys
                .iter()
                .map(|k| match k.as_str() {
                    "accounts" => Value::Int(accounts.len() as i64),
                    "plugins" => Value::TextList(
                        accounts
                            .iter()
                            .map(|a| a.plugin.clone())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect(),
                    ),
                    key => Value::TextList(
                        accounts
                            .iter()
                            .flat_map(|a| &a.values)
                            .filter(|(k, _, _)| k == key)
                            .map(|(_, v, _)| v.clone())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect(),
                    ),
                })
                .collect();
            nodes.rows.push(NodeRow {
                id: id.clone().into(),
                values,
            });
            for a in accounts {
                let matched: BTreeSet<String> =
                    a.values.iter().map(|(_, _, p)| p.clone()).collect();
                edges
                    .entry(a.label.as_str())
                    .or_insert_with(|| EdgeBatch {
                        rel_type: HAS_ACCOUNT.into(),
                        from_label: PERSON.into(),
                        from_key: "id".into(),
                        to_label: a.label.clone(),
                        to_key: "id".into(),
                        columns: vec!["matched_on".into()],
                        rows: Vec::new(),
                    })
                    .rows
                    .push(EdgeRow {
                        from: id.clone().into(),
                        to: a.id.clone().into(),
                        values: vec![Value::TextList(matched.into_iter().collect())],
                    });
            }
        }
        let counts = RecordCounts {
            nodes: nodes.rows.len() as u64,
            edges: edges.values().map(|b| b.rows.len() as u64).sum(),
            node_batches: 1,
            edge_batches: edges.len() as u64,
            ..RecordCounts::default()
        };
        let linked: usize = self.linking.people.iter().map(|(_, a)| a.len()).sum();
        let summary = format!(
            "linked {linked} of {} matched accounts to {} people; {} ambiguous",
            self.linking.accounts,
            self.linking.people.len(),
            self.linking.ambiguous.len()
        );
        let mut emissions = vec![Emission::Scope(scope.clone())];
        let warnings = self
            .linking
            .unmatched
            .into_iter()
            .chain(self.linking.ambiguous);
        emissions.extend(warnings.map(Emission::Warning));
        emissions.push(Emission::Nodes(nodes));
        emissions.extend(edges.into_values().map(Emission::Edges));
        let mut result = Ok(summary);
        for e in emissions {
            if out.send(e).await.is_err() {
                result = Err(infragraph_runtime::Failure::Stopped);
                break;
            }
        }
        SyncOutcome {
            plugin: PLUGIN.into(),
            scope: Some(scope),
            result,
            counts,
            fetch: Default::default(),
            state_writes: BTreeMap::new(),
            duration: started.elapsed(),
        }
    }
}

/// Links the accounts of `graph` into people by `rules`, as a run of its own; `None`
/// when the rules match no account at all (nothing to write, and no reason to clean up
/// a graph that may simply not hold those providers yet).
pub async fn link<G>(
    graph: &Arc<G>,
    rules: &PeopleRules,
    options: &Options,
    progress: &ProgressFn,
) -> Result<Option<RunReport>, SinkError>
where
    G: GraphReader + infragraph_core::GraphSink + 'static,
{
    let linking = plan(graph.as_ref(), rules).await?;
    if linking.accounts == 0 {
        return Ok(None);
    }
    let source = PeopleSource {
        manifest: rules.manifest(),
        linking,
    };
    Ok(Some(
        infragraph_engine::sync_source(graph, source, options, progress).await,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<PeopleRules, String> {
        let t: toml::Table = toml::from_str(text).unwrap();
        PeopleRules::from_table(t["people"].as_table().unwrap().clone())
    }

    #[test]
    fn rules_are_read_and_checked() {
        let r = rules(
            r#"[people]
            match = [
              { label = "User", property = "user_principal_name" },
              { label = "CriticalUser", property = "name", as = "full_name" },
            ]"#,
        )
        .unwrap();
        assert_eq!(r.rules[0].key, "email");
        assert_eq!(r.rules[1].key, "full_name");
        assert_eq!(r.keys(), ["email", "full_name"]);
        let bad = |t: &str| rules(t).unwrap_err();
        assert!(bad("[people]\nmatch = []").contains("holds no rule"));
        assert!(
            bad("[people]\nmatch = [{ label = \"user\", property = \"email\" }]")
                .contains("\"user\" is not a PascalCase label")
        );
        assert!(
            bad("[people]\nmatch = [{ label = \"User\" }]")
                .contains("match[0]: `property` is missing")
        );
        assert!(
            bad("[people]\nmatch = [{ label = \"User\", property = \"mail\", key = \"x\" }]")
                .contains("unknown key `key`")
        );
        assert!(bad("[people]\nrules = []").contains("unknown key `rules`"));
        assert!(
            bad("[people]\nmatch = [{ label = \"U\", property = \"mail\", as = \"id\" }]")
                .contains("every person already")
        );
    }

    #[test]
    fn no_plugin_can_take_the_name() {
        assert!(infragraph_core::HOST_SOURCES.contains(&PLUGIN));
    }

    #[test]
    fn values_are_compared_without_case_or_spaces() {
        assert_eq!(
            normalized(Some(&Json::String(" Alice@Contoso.COM ".into()))),
            ["alice@contoso.com"]
        );
        assert_eq!(
            normalized(Some(&serde_json::json!(["B", "a", "", "b"]))),
            ["a", "b"]
        );
        assert!(normalized(Some(&Json::Bool(true))).is_empty());
        assert!(normalized(None).is_empty());
    }

    #[test]
    fn the_manifest_passes_the_hosts_own_schema_checks() {
        let r = rules(
            r#"[people]
            match = [
              { label = "User", property = "mail" },
              { label = "User", property = "user_principal_name" },
              { label = "ScalewayUser", property = "email" },
            ]"#,
        )
        .unwrap();
        let m = r.manifest();
        infragraph_core::CheckedSchema::new(&m).unwrap();
        let to: Vec<&str> = m.schema.edges.iter().map(|e| e.to.as_str()).collect();
        assert_eq!(to, ["ScalewayUser", "User"]);
        assert!(
            m.schema
                .edges
                .iter()
                .all(|e| e.access.as_ref().unwrap().kind == AccessKind::ActingAs)
        );
    }
}
