//! The rows the queries of [`crate::queries`] return, as serde types. Only what the
//! queries select exists here: there is no field a secret could land in.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::perms::Stored;

/// `meta` of a resource.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub labels: Option<BTreeMap<String, Json>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, Json>>,
    pub created_at: Option<Json>,
    pub created_by: Option<String>,
    pub updated_at: Option<Json>,
    pub updated_by: Option<String>,
}

/// What every resource row carries, plus its kind's own fields `T`.
#[derive(Debug, Clone, Deserialize)]
pub struct Doc<T> {
    pub key: String,
    #[serde(default)]
    pub meta: Option<Meta>,
    pub hash_code: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    pub deleted_at: Option<Json>,
    pub deleted_by: Option<String>,
    #[serde(flatten)]
    pub fields: T,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Personal {
    pub name: Option<String>,
    pub gender: Option<String>,
    pub job_title: Option<String>,
    pub manager: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    #[serde(default)]
    pub personal: Option<Personal>,
    pub avatar_ulid: Option<String>,
}

/// A group, service account or pipeline account: a principal with an ACL.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Pipeline accounts only.
    pub scope: Option<String>,
    #[serde(default)]
    pub acl: Option<Vec<AclEntry>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub enabled_services: Option<Vec<String>>,
    #[serde(default)]
    pub acl: Option<Vec<AclEntry>>,
    #[serde(default)]
    pub repositories: Option<Vec<RepoLink>>,
}

/// One entry of an `acl.list`.
#[derive(Debug, Clone, Deserialize)]
pub struct AclEntry {
    pub permissions: Stored,
    #[serde(default)]
    pub principals: Vec<String>,
    /// A service kind; absent or `*` for all.
    pub scope: Option<String>,
}

/// A project's repository, without its `credential`.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoLink {
    pub url: Option<String>,
    pub provider: Option<String>,
    pub name: Option<String>,
    pub default_branch: Option<String>,
    pub auth_method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Permission {
    pub key: String,
    #[serde(default)]
    pub principals: Option<Vec<String>>,
}

/// `[kind, key, revision, changed_by, changed_at]`
pub type LastChange = (String, String, Option<i64>, Option<String>, Option<Json>);

/// `[key, timestamp]`
pub type LastSignIn = (String, Option<Json>);

/// `[_from, _to]`, e.g. `["users/u_alice", "groups/g_devs"]`.
pub type Membership = (String, String);

/// A timestamp or other scalar as text: Critical writes RFC 3339 strings, but a number
/// (epoch) is kept rather than dropped.
pub fn text(v: &Option<Json>) -> Option<String> {
    match v.as_ref()? {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// A map of labels or annotations as sorted `key=value` lines; none for an empty map.
pub fn pairs(map: &Option<BTreeMap<String, Json>>) -> Option<Vec<String>> {
    let map = map.as_ref().filter(|m| !m.is_empty())?;
    Some(
        map.iter()
            .map(|(k, v)| match v {
                Json::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect(),
    )
}
