//! The IAM API: users, groups, applications, API keys and policies of the Organization
//! (`GET /iam/v1alpha1/{users,groups,applications,api-keys,policies}`), and each policy's
//! rules (`GET /iam/v1alpha1/rules?policy_id=`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use infragraph_sdk::Value;
use serde::Deserialize;

use crate::api::{Api, Listings, Paging};
use crate::records::Records;
use crate::schema::{
    API_KEY, APPLICATION, APPLIES_TO, GRANTS, GROUP, HAS, MEMBER_OF, ORGANIZATION, POLICY, PROJECT,
    RESOURCE, USER,
};

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub locale: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub deletable: Option<bool>,
    pub last_login_at: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<String>,
    pub mfa: Option<bool>,
    pub account_root_user_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub locked: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub tags: Option<Vec<String>>,
    pub editable: Option<bool>,
    pub deletable: Option<bool>,
    pub managed: Option<bool>,
    #[serde(default)]
    pub user_ids: Vec<String>,
    #[serde(default)]
    pub application_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Application {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub editable: Option<bool>,
    pub deletable: Option<bool>,
    pub managed: Option<bool>,
    pub tags: Option<Vec<String>>,
}

/// An API key. Its `secret_key` (served only when the key is created, `null` in lists)
/// is deliberately not a field: nothing could ever copy it into the graph.
#[derive(Debug, Deserialize)]
pub struct ApiKey {
    pub access_key: String,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub expires_at: Option<String>,
    pub default_project_id: Option<String>,
    pub editable: Option<bool>,
    pub deletable: Option<bool>,
    pub managed: Option<bool>,
    pub creation_ip: Option<String>,
    pub user_id: Option<String>,
    pub application_id: Option<String>,
}

/// An IAM policy: attached to at most one principal, its rules listed apart.
#[derive(Debug, Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub editable: Option<bool>,
    pub deletable: Option<bool>,
    pub managed: Option<bool>,
    pub nb_rules: Option<u32>,
    pub nb_scopes: Option<u32>,
    pub nb_permission_sets: Option<u32>,
    pub tags: Option<Vec<String>>,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub application_id: Option<String>,
    pub no_principal: Option<bool>,
}

/// A rule of a policy: permission sets on one scope, which is exactly one of
/// `project_ids`, `organization_id` or `account_root_user_id`.
#[derive(Debug, Deserialize)]
pub struct Rule {
    pub id: String,
    pub permission_set_names: Option<Vec<String>>,
    pub condition: Option<String>,
    pub project_ids: Option<Vec<String>>,
    pub organization_id: Option<String>,
    pub account_root_user_id: Option<String>,
}

/// What one policy grants on one scope, merged over its rules on that scope.
#[derive(Debug, Default, PartialEq)]
pub struct Grant {
    pub permission_sets: BTreeSet<String>,
    pub rule_ids: BTreeSet<String>,
    pub conditions: BTreeSet<String>,
}

/// A policy's grants by scope, (label, id).
pub type Grants = BTreeMap<(&'static str, String), Grant>;

/// The policies seen so far, in the order listed: whose rules to list next.
pub type PolicyIds = Rc<RefCell<Vec<String>>>;

/// Adds the listings of every user, group, application, API key and policy of the
/// Organization; the ids of the policies listed are collected in what it returns.
pub fn list_iam(listings: &mut Listings, api: &Api, organization: &str) -> PolicyIds {
    let path = |what: &str| format!("/iam/v1alpha1/{what}");
    let p = Paging::BodyTotal;
    let org = organization.to_owned();
    listings.add(api, (USER, None), path("users"), p, move |items, out| {
        users(&org, items, out)
    });
    let org = organization.to_owned();
    listings.add(api, (GROUP, None), path("groups"), p, move |items, out| {
        groups(&org, items, out)
    });
    let org = organization.to_owned();
    let apps = path("applications");
    listings.add(api, (APPLICATION, None), apps, p, move |items, out| {
        applications(&org, items, out)
    });
    let org = organization.to_owned();
    listings.add(
        api,
        (API_KEY, None),
        path("api-keys"),
        p,
        move |items, out| api_keys(&org, items, out),
    );
    let org = organization.to_owned();
    let ids = PolicyIds::default();
    let seen = ids.clone();
    let path = path("policies");
    listings.add(api, (POLICY, None), path, p, move |items, out| {
        seen.borrow_mut().extend(policies(&org, items, out));
    });
    ids
}

/// Adds one listing of rules per policy (the API lists rules of one policy at a time);
/// each policy's rules merge into its grants as their pages come, so that a policy
/// whose listing fails can be left out whole. Same order as `policies`.
pub fn list_rules(
    listings: &mut Listings,
    api: &Api,
    organization: &str,
    policies: &[String],
) -> Vec<(String, Rc<RefCell<Grants>>)> {
    policies
        .iter()
        .map(|policy| {
            let grants = Rc::new(RefCell::new(Grants::new()));
            let (org, into) = (organization.to_owned(), grants.clone());
            let path = "/iam/v1alpha1/rules".to_owned();
            let filter = ("policy_id", policy.clone());
            listings.add_by(api, (POLICY, None), path, filter, move |rules, _| {
                merge_rules(&org, rules, &mut into.borrow_mut())
            });
            (policy.clone(), grants)
        })
        .collect()
}

/// Users, held by the Organization.
pub fn users(organization: &str, users: Vec<User>, out: &mut Records) {
    let org = (ORGANIZATION, organization);
    for u in users {
        out.edge(RESOURCE, org, (USER, &u.id));
        let Some(n) = out.node(USER, &u.id) else {
            continue;
        };
        n.prop("email", u.email)
            .prop("username", u.username)
            .prop("first_name", u.first_name)
            .prop("last_name", u.last_name)
            .prop("phone_number", u.phone_number)
            .prop("locale", u.locale)
            .prop("created_at", u.created_at)
            .prop("updated_at", u.updated_at)
            .prop("deletable", u.deletable)
            .prop("last_login_at", u.last_login_at)
            .prop("type", u.kind)
            .prop("status", u.status)
            .prop("mfa", u.mfa)
            .prop("account_root_user_id", u.account_root_user_id)
            .prop("tags", u.tags)
            .prop("locked", u.locked);
    }
}

/// Groups, held by the Organization; memberships from each group's member lists.
pub fn groups(organization: &str, groups: Vec<Group>, out: &mut Records) {
    let org = (ORGANIZATION, organization);
    for g in groups {
        out.edge(RESOURCE, org, (GROUP, &g.id));
        for user in &g.user_ids {
            out.edge(MEMBER_OF, (USER, user), (GROUP, &g.id));
        }
        for app in &g.application_ids {
            out.edge(MEMBER_OF, (APPLICATION, app), (GROUP, &g.id));
        }
        let Some(n) = out.node(GROUP, &g.id) else {
            continue;
        };
        n.prop("created_at", g.created_at)
            .prop("updated_at", g.updated_at)
            .prop("name", g.name)
            .prop("description", g.description)
            .prop("tags", g.tags)
            .prop("editable", g.editable)
            .prop("deletable", g.deletable)
            .prop("managed", g.managed);
    }
}

/// Applications, held by the Organization.
pub fn applications(organization: &str, applications: Vec<Application>, out: &mut Records) {
    let org = (ORGANIZATION, organization);
    for a in applications {
        out.edge(RESOURCE, org, (APPLICATION, &a.id));
        let Some(n) = out.node(APPLICATION, &a.id) else {
            continue;
        };
        n.prop("name", a.name)
            .prop("description", a.description)
            .prop("created_at", a.created_at)
            .prop("updated_at", a.updated_at)
            .prop("editable", a.editable)
            .prop("deletable", a.deletable)
            .prop("managed", a.managed)
            .prop("tags", a.tags);
    }
}

/// API keys, held by the Organization and by their bearer.
pub fn api_keys(organization: &str, api_keys: Vec<ApiKey>, out: &mut Records) {
    let org = (ORGANIZATION, organization);
    for k in api_keys {
        let key = (API_KEY, k.access_key.as_str());
        out.edge(RESOURCE, org, key);
        if let Some(user) = &k.user_id {
            out.edge(HAS, (USER, user), key);
        }
        if let Some(app) = &k.application_id {
            out.edge(HAS, (APPLICATION, app), key);
        }
        let Some(n) = out.node(API_KEY, &k.access_key) else {
            continue;
        };
        n.prop("description", k.description)
            .prop("created_at", k.created_at)
            .prop("updated_at", k.updated_at)
            .prop("expires_at", k.expires_at)
            .prop("default_project_id", k.default_project_id)
            .prop("editable", k.editable)
            .prop("deletable", k.deletable)
            .prop("managed", k.managed)
            .prop("creation_ip", k.creation_ip);
    }
}

/// Policies, held by the Organization, each attached to its principal; the ids of the
/// policies not seen before.
pub fn policies(organization: &str, policies: Vec<Policy>, out: &mut Records) -> Vec<String> {
    let org = (ORGANIZATION, organization);
    let mut new = Vec::new();
    for p in policies {
        out.edge(RESOURCE, org, (POLICY, &p.id));
        let principal = [
            (USER, &p.user_id),
            (GROUP, &p.group_id),
            (APPLICATION, &p.application_id),
        ]
        .into_iter()
        .find_map(|(label, id)| Some((label, id.as_deref().filter(|id| !id.is_empty())?)));
        if let Some(principal) = principal {
            out.edge(APPLIES_TO, (POLICY, &p.id), principal);
        }
        let Some(n) = out.node(POLICY, &p.id) else {
            continue;
        };
        // The API names the principal or says `no_principal`, never both; false is
        // written rather than nothing when a principal is named.
        let no_principal = p.no_principal.unwrap_or(false) || principal.is_none();
        n.prop("name", p.name)
            .prop("description", p.description)
            .prop("created_at", p.created_at)
            .prop("updated_at", p.updated_at)
            .prop("editable", p.editable)
            .prop("deletable", p.deletable)
            .prop("managed", p.managed)
            .prop("nb_rules", p.nb_rules)
            .prop("nb_scopes", p.nb_scopes)
            .prop("nb_permission_sets", p.nb_permission_sets)
            .prop("tags", p.tags)
            .prop("no_principal", no_principal);
        new.push(p.id);
    }
    new
}

/// Merges rules into their policy's grants by scope: each project of `project_ids`, or
/// the Organization for a rule on the whole Organization or on its account root user.
/// A rule granting no permission set grants nothing.
pub fn merge_rules(organization: &str, rules: Vec<Rule>, grants: &mut Grants) {
    for r in rules {
        let sets = r.permission_set_names.unwrap_or_default();
        if sets.iter().all(|s| s.is_empty()) {
            continue;
        }
        let scopes: Vec<(&'static str, String)> = match (r.project_ids, r.organization_id) {
            (Some(projects), _) if !projects.is_empty() => {
                projects.into_iter().map(|p| (PROJECT, p)).collect()
            }
            (_, Some(org)) if !org.is_empty() => vec![(ORGANIZATION, org)],
            _ if r.account_root_user_id.is_some() => {
                vec![(ORGANIZATION, organization.to_owned())]
            }
            _ => Vec::new(),
        };
        for scope in scopes {
            let g = grants.entry(scope).or_default();
            g.permission_sets
                .extend(sets.iter().filter(|s| !s.is_empty()).cloned());
            g.rule_ids.insert(r.id.clone());
            if let Some(c) = r.condition.as_ref().filter(|c| !c.is_empty()) {
                g.conditions.insert(c.clone());
            }
        }
    }
}

/// One `GRANTS` edge per scope of the policy's grants.
pub fn grant_records(policy: &str, grants: Grants, out: &mut Records) {
    let list = |set: BTreeSet<String>| Value::TextList(set.into_iter().collect());
    for ((label, scope), g) in grants {
        if let Some(e) = out.edge(GRANTS, (POLICY, policy), (label, &scope)) {
            e.prop("permission_set_names", list(g.permission_sets))
                .prop("rule_ids", list(g.rule_ids))
                .prop("conditions", list(g.conditions));
        }
    }
}

#[cfg(test)]
mod tests {
    use infragraph_sdk::Value;

    use super::*;
    use crate::records::tests::{recorded, sample};

    const ORG: &str = "0681c477-fbb9-4820-b8d6-0eef10cfcd6d";
    const MARGE: &str = "998cbe72-913f-4f55-8620-4b0f7655d343";
    const HOMER: &str = "b49932b2-2faa-4c56-905e-ffac52f063dc";
    const MAIL: &str = "98300a5a-438e-45dc-8b34-07b1adc7c409";
    const TERRAFORM: &str = "c92d472f-f916-4071-b076-c8907c83e016";
    const ADMINS: &str = "1f767996-f6f6-4b0e-a7b1-6a255e809ed6";

    fn items<T: serde::de::DeserializeOwned>(file: &str, key: &str) -> Vec<T> {
        let body: serde_json::Value = serde_json::from_str(&sample(file)).unwrap();
        serde_json::from_value(body[key].clone()).unwrap()
    }

    fn records() -> Records {
        let mut r = Records::default();
        users(ORG, items("iam_users.json", "users"), &mut r);
        groups(ORG, items("iam_groups.json", "groups"), &mut r);
        applications(ORG, items("iam_applications.json", "applications"), &mut r);
        api_keys(ORG, items("iam_api_keys.json", "api_keys"), &mut r);
        r
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn users_keep_every_schema_property() {
        let r = records();
        let homer = r.get(USER, HOMER);
        let names: Vec<&str> = homer.props.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "email",
                "username",
                "first_name",
                "last_name",
                "phone_number",
                "locale",
                "created_at",
                "updated_at",
                "deletable",
                "last_login_at",
                "type",
                "status",
                "mfa",
                "account_root_user_id",
                "tags",
                "locked"
            ]
        );
        assert_eq!(homer.value("email"), text("hjsimpson@simpson.corp"));
        assert_eq!(homer.value("type"), text("member"));
        assert_eq!(homer.value("mfa"), Value::Bool(true));
        assert_eq!(homer.value("tags"), Value::TextList(vec![]));
        assert_eq!(r.get(USER, MARGE).value("type"), text("owner"));
    }

    #[test]
    fn keys_are_keyed_by_access_key_and_never_carry_a_secret() {
        let r = records();
        let xxx = r.get(API_KEY, "SCWXXX");
        assert_eq!(xxx.value("expires_at"), Value::Null);
        assert_eq!(xxx.value("creation_ip"), text("8.9.10.11"));
        assert!(xxx.props.iter().all(|(k, _)| !k.contains("secret")));
        assert_eq!(
            r.get(API_KEY, "SCWYYY").value("expires_at"),
            text("2026-03-23T20:52:20Z")
        );
        assert_eq!(r.get(GROUP, ADMINS).value("name"), text("Administrators"));
        assert_eq!(
            r.get(APPLICATION, MAIL).value("managed"),
            Value::Bool(false)
        );
    }

    #[test]
    fn every_relationship_of_the_sample() {
        let mut expected = vec![
            (RESOURCE, ORG, MARGE),
            (RESOURCE, ORG, HOMER),
            (RESOURCE, ORG, ADMINS),
            (RESOURCE, ORG, MAIL),
            (RESOURCE, ORG, TERRAFORM),
            (RESOURCE, ORG, "SCWXXX"),
            (RESOURCE, ORG, "SCWYYY"),
            (MEMBER_OF, MARGE, ADMINS),
            (MEMBER_OF, TERRAFORM, ADMINS),
            (HAS, TERRAFORM, "SCWXXX"),
            (HAS, HOMER, "SCWYYY"),
        ];
        expected.sort();
        assert_eq!(records().edge_ids(), expected);
    }

    /// The Organization of the policy recordings (`tests/fixtures/scaleway/recorded/`).
    const RECORDED_ORG: &str = "105bdce1-64c0-48ab-899d-868455867ecf";

    /// The items under `key` of every interaction of a recording whose URL has `path`.
    fn recorded_items<T: serde::de::DeserializeOwned>(file: &str, path: &str, key: &str) -> Vec<T> {
        recorded(file)
            .into_iter()
            .filter(|(url, _)| url.contains(path))
            .flat_map(|(_, body)| serde_json::from_value::<Vec<T>>(body[key].clone()).unwrap())
            .collect()
    }

    #[test]
    fn recorded_policies_apply_to_their_principal_and_hang_from_the_organization() {
        let listed: Vec<Policy> = recorded_items("iam_policies.json", "/policies?", "policies");
        assert_eq!(listed.len(), 25, "both recorded pages");
        let mut r = Records::default();
        let new = policies(RECORDED_ORG, listed, &mut r);
        assert_eq!((new.len(), r.count(POLICY)), (25, 25));
        let applies: Vec<_> = r.edges.iter().filter(|e| e.rel == APPLIES_TO).collect();
        // Seven to groups (five groups), thirteen to applications (twelve of them the
        // managed policies of VPN gateways), none for the five with no principal.
        let to = |label: &str| applies.iter().filter(|e| e.to.0 == label).count();
        assert_eq!((to(GROUP), to(APPLICATION), to(USER)), (7, 13, 0));
        let audit = "c1214ec3-4d8e-4f04-96b7-07158a0ea805";
        assert!(applies.iter().any(|e| e.from.1 == audit
            && e.to == (GROUP, "db32fc9e-e4f6-4c65-baa1-c6ceaa7a04a9".to_owned())));
        let guest = r.get(POLICY, "5bfe38ec-b3fb-4437-9fa3-ed16b0dfacc0");
        assert_eq!(guest.value("no_principal"), Value::Bool(true));
        assert!(!applies.iter().any(|e| e.from.1 == guest.id));
        let vpn = r.get(POLICY, "f16f6bff-4eea-48b1-b9f3-9373f5902e60");
        assert_eq!(vpn.value("managed"), Value::Bool(true));
        assert_eq!(vpn.value("no_principal"), Value::Bool(false));
        assert_eq!(vpn.value("nb_permission_sets"), Value::Int(4));
        assert_eq!(r.get(POLICY, audit).value("tags"), Value::TextList(vec![]));
        let held = r.edges.iter().filter(|e| e.rel == RESOURCE).count();
        assert_eq!(held, 25);
        // A policy served again (a listing shifting between pages) is not listed twice.
        let again: Vec<Policy> = recorded_items("iam_policies.json", "page=2", "policies");
        assert!(policies(RECORDED_ORG, again, &mut r).is_empty());
    }

    fn grants_of(file: &str) -> Grants {
        let rules: Vec<Rule> = recorded_items(file, "/rules?", "rules");
        let mut g = Grants::new();
        merge_rules(RECORDED_ORG, rules, &mut g);
        g
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recorded_rules_grant_on_their_projects_or_the_organization_merged_per_scope() {
        // Two rules on the whole Organization: one grant, both permission sets.
        let basic = grants_of("iam_policy_basic.json");
        assert_eq!(
            basic,
            Grants::from([(
                (ORGANIZATION, RECORDED_ORG.to_owned()),
                Grant {
                    permission_sets: set(&["AllProductsFullAccess", "ContainerRegistryReadOnly"]),
                    rule_ids: set(&[
                        "6a09b15b-c0d6-411f-911e-48ec9718dc19",
                        "f1bba337-bfb4-4c59-8621-d6825629ab76"
                    ]),
                    conditions: BTreeSet::new(),
                }
            )])
        );
        // A rule on a list of projects (here the default project, which has the
        // Organization's id) grants on the project, not the Organization.
        let on_project = grants_of("iam_policy_project_id.json");
        let keys: Vec<_> = on_project.keys().cloned().collect();
        assert_eq!(keys, [(PROJECT, RECORDED_ORG.to_owned())]);
        let conditional = grants_of("iam_policy_condition.json");
        assert_eq!(
            conditional[&(PROJECT, RECORDED_ORG.to_owned())].conditions,
            set(&["request.user_agent == 'terraform-test'"])
        );
    }

    #[test]
    fn rules_without_permission_sets_grant_nothing_and_root_user_rules_the_organization() {
        let rules: Vec<Rule> = serde_json::from_value(serde_json::json!([
            {"id": "r1", "permission_set_names": ["InstancesReadOnly"], "condition": "",
             "permission_sets_scope_type": "projects", "project_ids": ["p1", "p2"]},
            {"id": "r2", "permission_set_names": ["InstancesFullAccess", "InstancesReadOnly"],
             "condition": "", "permission_sets_scope_type": "projects", "project_ids": ["p2"]},
            {"id": "r3", "permission_set_names": [], "condition": "",
             "permission_sets_scope_type": "projects", "project_ids": ["p3"]},
            {"id": "r4", "permission_set_names": null, "organization_id": "org"},
            {"id": "r5", "permission_set_names": ["BillingManager"], "condition": "",
             "permission_sets_scope_type": "account_root_user", "account_root_user_id": "root"}
        ]))
        .unwrap();
        let mut g = Grants::new();
        merge_rules("org", rules, &mut g);
        let mut r = Records::default();
        grant_records("pol", g, &mut r);
        assert_eq!(
            r.edge_ids(),
            [
                (GRANTS, "pol", "org"),
                (GRANTS, "pol", "p1"),
                (GRANTS, "pol", "p2")
            ]
        );
        let p2 = r.edges.iter().find(|e| e.to.1 == "p2").unwrap();
        assert_eq!(
            p2.props,
            [
                (
                    "permission_set_names",
                    Value::TextList(vec![
                        "InstancesFullAccess".into(),
                        "InstancesReadOnly".into()
                    ])
                ),
                ("rule_ids", Value::TextList(vec!["r1".into(), "r2".into()])),
                ("conditions", Value::TextList(vec![])),
            ]
        );
        let org = r.edges.iter().find(|e| e.to.1 == "org").unwrap();
        assert_eq!(org.to.0, ORGANIZATION);
    }
}
