//! The tutorial plugin: users and groups of Acme Directory, a provider that exists only as
//! the simulator in `infragraph-tests`. `plugins/sdk/README.md` walks through this file.

use infragraph_sdk::{
    Access, Config, ConfigKey, Context, Credential, CredentialUse, EdgeKind, Ingestor, Manifest,
    NodeKind, Request, Response, Summary, SyncError, ValueType, Walker, export_ingestor,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEFAULT_API: &str = "https://api.acme-directory.example";

/// The most the Acme API serves per page.
const PER_PAGE: u64 = 100;

struct Acme;

impl Ingestor for Acme {
    fn manifest() -> Manifest {
        use {CredentialUse::Header, ValueType::Boolean, ValueType::Text};
        let token = Credential::new("api_token", "ACME_API_TOKEN", "API token", Header)
            .host("api.acme-directory.example")
            .host("{config:api_url}");
        let api_url = ConfigKey::endpoint("api_url", "Base URL of the Acme API")
            .env("ACME_API_URL")
            .default_text(DEFAULT_API);
        let tenant = ConfigKey::text("tenant", "The tenant to list").env("ACME_TENANT");
        let user = NodeKind::new("AcmeUser", "A user of the tenant")
            .extra_label("UserAccount")
            .indexed_prop("email", Text, "Login e-mail address")
            .prop("name", Text, "Display name")
            .prop("admin", Boolean, "Whether the user administers the tenant")
            .prop("created_at", Text, "Creation time, RFC 3339");
        let group = NodeKind::new("AcmeGroup", "A group of users")
            .prop("name", Text, "Group name")
            .prop("description", Text, "What the group is for");
        Manifest::new("example", VERSION, "Users and groups of Acme Directory")
            .host("api.acme-directory.example")
            .credential(token)
            .config(api_url)
            .config(tenant.required())
            .node(NodeKind::new("AcmeTenant", "A tenant"))
            .node(user)
            .node(group)
            // (:AcmeTenant)-[:RESOURCE]->(:AcmeUser)
            .edge(EdgeKind::new("RESOURCE", "AcmeTenant", "AcmeUser", "Holds"))
            // (:AcmeTenant)-[:RESOURCE]->(:AcmeGroup)
            .edge(EdgeKind::new(
                "RESOURCE",
                "AcmeTenant",
                "AcmeGroup",
                "Holds",
            ))
            // (:AcmeUser)-[:MEMBER_OF]->(:AcmeGroup)
            .edge(
                EdgeKind::new("MEMBER_OF", "AcmeUser", "AcmeGroup", "Is in")
                    .access(Access::membership()),
            )
    }

    fn sync(cx: &mut Context, config: &Config) -> Result<Summary, SyncError> {
        let tenant = config.require_text("tenant")?;
        let api = config.text("api_url").unwrap_or(DEFAULT_API);
        cx.scope("AcmeTenant", tenant);
        cx.node("AcmeTenant", tenant).emit();

        // Both listings walk together: page 1 of each in one host call, the remaining pages
        // of both in the next.
        let listing = |what: &str| {
            let url = format!("{}/v1/tenants/{tenant}/{what}", api.trim_end_matches('/'));
            move |page: u64| {
                Request::get(&url)
                    .query("page", page)
                    .query("per_page", PER_PAGE)
                    .header("Authorization", "Bearer {secret:api_token}")
            }
        };
        let (mut users, mut groups) = (Vec::<User>::new(), Vec::<Group>::new());
        Walker::new()
            .pages_with_total(&mut users, listing("users"), parse_page, PER_PAGE)
            .pages_with_total(&mut groups, listing("groups"), parse_page, PER_PAGE)
            .run(cx)?;
        let summary = format!("{} users, {} groups", users.len(), groups.len());

        let holder = ("AcmeTenant", "id", tenant);
        for g in groups {
            cx.edge("RESOURCE", holder, ("AcmeGroup", "id", g.id.as_str()))
                .emit();
            cx.node("AcmeGroup", g.id)
                .prop("name", g.name)
                .prop("description", g.description)
                .emit();
        }
        for u in users {
            let user = ("AcmeUser", "id", u.id.as_str());
            cx.edge("RESOURCE", holder, user).emit();
            for g in &u.group_ids {
                cx.edge("MEMBER_OF", user, ("AcmeGroup", "id", g.as_str()))
                    .emit();
            }
            cx.node("AcmeUser", u.id)
                .prop("email", u.email)
                .prop("name", u.name)
                .prop("admin", u.admin)
                .prop("created_at", u.created_at)
                .emit();
        }
        Ok(Summary::new(summary))
    }
}

export_ingestor!(Acme);

#[derive(Deserialize)]
struct User {
    id: String,
    email: String,
    name: String,
    admin: bool,
    created_at: String,
    #[serde(default)]
    group_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Group {
    id: String,
    name: String,
    description: Option<String>,
}

/// One page of a listing: `{"users": [...], "total_count": N}`, or `"groups"`.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(alias = "users", alias = "groups")]
    items: Vec<T>,
    total_count: u64,
}

fn parse_page<T: DeserializeOwned>(response: &Response) -> Result<(Vec<T>, u64), SyncError> {
    if response.status == 401 {
        return Err(SyncError::auth(
            "Acme refused the token: check ACME_API_TOKEN",
        ));
    }
    let page: Page<T> = response.error_for_status()?.json()?;
    Ok((page.items, page.total_count))
}
