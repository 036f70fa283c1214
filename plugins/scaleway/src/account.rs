//! The Account API: the Organization's projects (`GET /account/v3/projects`).

use serde::Deserialize;

use crate::api::{Api, Listings, Paging};
use crate::records::Records;
use crate::schema::{ORGANIZATION, PROJECT, RESOURCE};

/// A project as the Account API serves it; only what the schema keeps.
#[derive(Debug, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// Adds the listing of every project of the Organization.
pub fn list_projects(listings: &mut Listings, api: &Api, organization: &str) {
    let path = "/account/v3/projects".to_owned();
    let org = organization.to_owned();
    listings.add(
        api,
        (PROJECT, None),
        path,
        Paging::BodyTotal,
        move |items, out| to_records(&org, items, out),
    );
}

/// Each project, held by the Organization.
pub fn to_records(organization: &str, projects: Vec<Project>, out: &mut Records) {
    for p in projects {
        out.edge(RESOURCE, (ORGANIZATION, organization), (PROJECT, &p.id));
        let Some(n) = out.node(PROJECT, &p.id) else {
            continue;
        };
        n.prop("name", p.name)
            .prop("created_at", p.created_at)
            .prop("updated_at", p.updated_at)
            .prop("description", p.description);
    }
}

#[cfg(test)]
mod tests {
    use infragraph_sdk::Value;

    use super::*;
    use crate::records::tests::sample;

    const ORG: &str = "0681c477-fbb9-4820-b8d6-0eef10cfcd6d";

    #[test]
    fn projects_from_the_sample() {
        let body: serde_json::Value =
            serde_json::from_str(&sample("account_v3_projects.json")).unwrap();
        let projects: Vec<Project> = serde_json::from_value(body["projects"].clone()).unwrap();
        let mut r = Records::default();
        to_records(ORG, projects, &mut r);
        let p = r.get(PROJECT, ORG);
        assert_eq!(
            p.props,
            [
                ("name", Value::Text("default".into())),
                (
                    "created_at",
                    Value::Text("2025-03-20T07:39:54.220004Z".into())
                ),
                (
                    "updated_at",
                    Value::Text("2025-03-20T07:39:54.220004Z".into())
                ),
                ("description", Value::Text(String::new())),
            ]
        );
        assert_eq!(r.edge_ids(), [(RESOURCE, ORG, ORG)]);
    }
}
