//! The IAM API: users, groups, applications and API keys of the Organization
//! (`GET /iam/v1alpha1/{users,groups,applications,api-keys}`).

use serde::Deserialize;

use crate::api::{Api, Listings, Paging};
use crate::records::Records;
use crate::schema::{API_KEY, APPLICATION, GROUP, HAS, MEMBER_OF, ORGANIZATION, RESOURCE, USER};

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

/// Adds the listings of every user, group, application and API key of the Organization.
pub fn list_iam(listings: &mut Listings, api: &Api, organization: &str) {
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

#[cfg(test)]
mod tests {
    use infragraph_sdk::Value;

    use super::*;
    use crate::records::tests::sample;

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
}
