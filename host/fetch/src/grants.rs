//! What one plugin may reach and send: the manifest's hosts, the operator's endpoints,
//! and the hosts each credential may go to.

use infragraph_core::{ConfigType, CredentialUse, Manifest};
use reqwest::Url;
use url_host::HostName;

use crate::SetupError;
use crate::address;

/// One entry of a manifest's or a credential's hosts: `api.example.com`,
/// `*.example.com` (one or more sub-domain labels) or either with `:port`.
#[derive(Debug, Clone)]
pub(crate) struct HostPattern {
    raw: String,
    wildcard: bool,
    /// For a wildcard, the suffix after `*.`.
    host: HostName,
    /// 443 unless the entry names another: these are HTTPS hosts.
    port: u16,
}

impl HostPattern {
    fn parse(raw: &str) -> Result<Self, String> {
        let (wildcard, rest) = match raw.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let bad = |why: &str| format!("host {raw:?} {why}");
        if rest.is_empty() || rest.contains(['/', '@', '?', '#', ' ', '*', '\\']) {
            return Err(bad(
                "must be a bare host name, optionally with `*.` in front and `:port` after",
            ));
        }
        // Parsing as a URL applies the same normalisation (IDNA, IP canonical forms, case)
        // that requests get, so the two compare equal.
        let url = Url::parse(&format!("https://{rest}/"))
            .map_err(|e| bad(&format!("is not a valid host ({e})")))?;
        let (host, port) = url_host::host_port(&url).ok_or_else(|| bad("has no host"))?;
        if wildcard && !matches!(host, HostName::Domain(_)) {
            return Err(bad("puts `*.` in front of an IP address"));
        }
        Ok(HostPattern {
            raw: raw.to_owned(),
            wildcard,
            host,
            port,
        })
    }

    fn matches_host(&self, host: &HostName) -> bool {
        match (&self.host, host) {
            (HostName::Domain(suffix), HostName::Domain(h)) if self.wildcard => {
                h.len() > suffix.len() + 1
                    && h.ends_with(suffix.as_str())
                    && h.as_bytes()[h.len() - suffix.len() - 1] == b'.'
            }
            (pattern, h) => !self.wildcard && pattern == h,
        }
    }

    fn matches(&self, host: &HostName, port: u16) -> bool {
        port == self.port && self.matches_host(host)
    }
}

/// An endpoint the operator configured: trusted as given, http and loopback included.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    key: String,
    scheme: String,
    host: HostName,
    port: u16,
}

impl Endpoint {
    fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Where a credential may go.
#[derive(Debug, Clone)]
enum CredentialHost {
    /// An HTTPS host pattern.
    Pattern(HostPattern),
    /// `{config:KEY}` with KEY set: that endpoint's scheme, host and port exactly.
    Endpoint {
        scheme: String,
        host: HostName,
        port: u16,
    },
    /// `{config:KEY}` with KEY unset: grants nothing.
    Unset,
}

/// A credential with its hosts resolved against the operator's endpoints.
#[derive(Debug, Clone)]
pub(crate) struct CredentialGrant {
    /// Its name, as in `{secret:NAME}`.
    pub name: String,
    /// How it is applied.
    pub use_: CredentialUse,
    hosts: Vec<CredentialHost>,
    /// The manifest's entries, for messages.
    hosts_text: Vec<String>,
}

impl CredentialGrant {
    /// Whether the value may be sent to `target`.
    pub fn granted(&self, target: &Target) -> bool {
        self.hosts.iter().any(|h| match h {
            // A pattern names an HTTPS API; plain http only ever gets a credential through
            // an endpoint the operator set.
            CredentialHost::Pattern(p) => {
                target.scheme == "https" && p.matches(&target.host, target.port)
            }
            CredentialHost::Endpoint { scheme, host, port } => {
                *scheme == target.scheme && *host == target.host && *port == target.port
            }
            CredentialHost::Unset => false,
        })
    }

    /// The manifest's host entries, for messages.
    pub fn hosts_text(&self) -> String {
        format!("[{}]", self.hosts_text.join(", "))
    }
}

/// Where one request (or redirect hop) goes, once the allow-list passed it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `http` or `https`.
    pub scheme: String,
    /// Normalised host.
    pub host: HostName,
    /// Explicit or default port.
    pub port: u16,
}

impl Target {
    /// `host:port`, the key for per-host limits and counts.
    pub fn host_key(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What one plugin may reach and send.
///
/// Built from the plugin's manifest (its HTTPS hosts and credentials) and the endpoints
/// the operator configured (values of the manifest's `endpoint`-type config keys). A
/// request passes if its scheme, host and port equal an operator endpoint's, or if it is
/// HTTPS to a manifest host whose address is not loopback, private, link-local or
/// otherwise special.
#[derive(Debug, Clone)]
pub struct Grants {
    plugin: String,
    hosts: Vec<HostPattern>,
    endpoints: Vec<Endpoint>,
    /// Declared endpoint keys with their environment variables, for messages.
    endpoint_keys: Vec<(String, Option<String>)>,
    /// Every config key with an environment variable, for messages.
    config_envs: Vec<(String, String)>,
    credentials: Vec<CredentialGrant>,
}

impl Grants {
    /// The grants of `manifest`'s plugin.
    ///
    /// `endpoints` are `(config key, url)` pairs: the values the operator gave the
    /// manifest's `endpoint`-type config keys. They are trusted as given: http and
    /// loopback or private addresses are allowed, for exactly that scheme, host and port.
    /// A key the manifest does not declare as an endpoint, or a value that is not an
    /// absolute http(s) URL without user info, is an error naming the key and the value.
    pub fn new(manifest: &Manifest, endpoints: &[(String, String)]) -> Result<Grants, SetupError> {
        let plugin = manifest.name.clone();
        let manifest_err = |what: String| SetupError::Manifest {
            plugin: plugin.clone(),
            what,
        };
        let hosts = manifest
            .hosts
            .iter()
            .map(|h| HostPattern::parse(h).map_err(|e| manifest_err(format!("manifest {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoint_keys: Vec<(String, Option<String>)> = manifest
            .config
            .iter()
            .filter(|k| k.ty == ConfigType::Endpoint)
            .map(|k| (k.name.clone(), k.env.clone()))
            .collect();
        let mut parsed = Vec::new();
        for (key, value) in endpoints {
            parsed.push(parse_endpoint(&plugin, &endpoint_keys, key, value)?);
        }
        let mut credentials = Vec::new();
        for c in &manifest.credentials {
            let mut chosts = Vec::new();
            for entry in &c.hosts {
                let host = if let Some(key) = entry
                    .strip_prefix("{config:")
                    .and_then(|k| k.strip_suffix('}'))
                {
                    if !endpoint_keys.iter().any(|(k, _)| k == key) {
                        return Err(manifest_err(format!(
                            "credential {:?} names host {entry:?}, but {key:?} is not a config key of type endpoint",
                            c.name
                        )));
                    }
                    match parsed.iter().find(|e: &&Endpoint| e.key == key) {
                        Some(e) => CredentialHost::Endpoint {
                            scheme: e.scheme.clone(),
                            host: e.host.clone(),
                            port: e.port,
                        },
                        None => CredentialHost::Unset,
                    }
                } else {
                    CredentialHost::Pattern(
                        HostPattern::parse(entry)
                            .map_err(|e| manifest_err(format!("credential {:?}: {e}", c.name)))?,
                    )
                };
                chosts.push(host);
            }
            if let CredentialUse::AwsSigv4(a) = &c.use_ {
                for (what, key) in [("access key id", &a.access_key_id), ("region", &a.region)] {
                    if manifest.config_key(key).is_none() {
                        return Err(manifest_err(format!(
                            "credential {:?} takes its AWS {what} from config key {key:?}, which is not declared",
                            c.name
                        )));
                    }
                }
                if a.service.is_empty()
                    || !a
                        .service
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(manifest_err(format!(
                        "credential {:?} signs for AWS service {:?}, which is not a service name like `s3`",
                        c.name, a.service
                    )));
                }
                if let Some(t) = &a.session_token
                    && !manifest
                        .credentials
                        .iter()
                        .any(|o| &o.name == t && o.name != c.name)
                {
                    return Err(manifest_err(format!(
                        "credential {:?} takes its AWS session token from credential {t:?}, which is not declared",
                        c.name
                    )));
                }
            }
            if let CredentialUse::Basic(key) = &c.use_
                && manifest.config_key(key).is_none()
            {
                return Err(manifest_err(format!(
                    "credential {:?} takes its basic-auth user from config key {key:?}, which is not declared",
                    c.name
                )));
            }
            credentials.push(CredentialGrant {
                name: c.name.clone(),
                use_: c.use_.clone(),
                hosts: chosts,
                hosts_text: c.hosts.clone(),
            });
        }
        let config_envs = manifest
            .config
            .iter()
            .filter_map(|k| Some((k.name.clone(), k.env.clone()?)))
            .collect();
        Ok(Grants {
            plugin,
            hosts,
            endpoints: parsed,
            endpoint_keys,
            config_envs,
            credentials,
        })
    }

    /// The plugin these grants are for.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    pub(crate) fn credentials(&self) -> &[CredentialGrant] {
        &self.credentials
    }

    /// The environment variable of config key `key`, if it has one, for messages.
    pub(crate) fn config_env(&self, key: &str) -> Option<&str> {
        self.config_envs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, e)| e.as_str())
    }

    /// Domain names of operator endpoints: the resolver does not filter their addresses.
    pub(crate) fn trusted_names(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .filter_map(|e| match &e.host {
                HostName::Domain(d) => Some(d.clone()),
                HostName::Ip(_) => None,
            })
            .collect()
    }

    /// Where `url` goes if it is granted, or why not (without the plugin and URL, which
    /// the caller adds).
    pub(crate) fn check(&self, url: &Url) -> Result<Target, String> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs carrying user info (`user:password@`) are refused; the host adds credentials the manifest declares".into());
        }
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(format!(
                "scheme {scheme:?} is not allowed: only https, or http to an operator endpoint"
            ));
        }
        let Some((host, port)) = url_host::host_port(url) else {
            return Err("the URL has no host".into());
        };
        if let Some(e) = self
            .endpoints
            .iter()
            .find(|e| e.scheme == scheme && e.host == host && e.port == port)
        {
            tracing::trace!(key = %e.key, "operator endpoint");
            return Ok(Target {
                scheme: scheme.into(),
                host,
                port,
            });
        }
        if scheme == "https" && self.hosts.iter().any(|p| p.matches(&host, port)) {
            if let HostName::Ip(ip) = host
                && let Some(why) = address::forbidden(ip)
            {
                return Err(format!(
                    "{ip} is {why}, which a manifest host may not reach{}",
                    self.endpoint_hint("https", &host, port)
                ));
            }
            return Ok(Target {
                scheme: scheme.into(),
                host,
                port,
            });
        }
        let mut why = if scheme == "http" && self.hosts.iter().any(|p| p.matches_host(&host)) {
            format!(
                "plain http to {host}:{port} is allowed only to an operator endpoint; manifest hosts are reached over https"
            )
        } else {
            let list: Vec<&str> = self.hosts.iter().map(|p| p.raw.as_str()).collect();
            format!(
                "{host}:{port} is not in the manifest's hosts [{}]",
                list.join(", ")
            )
        };
        if !self.endpoints.is_empty() {
            let origins: Vec<String> = self
                .endpoints
                .iter()
                .map(|e| format!("{} ({})", e.origin(), e.key))
                .collect();
            why.push_str(&format!(
                " nor an operator endpoint [{}]",
                origins.join(", ")
            ));
        }
        why.push_str(&self.endpoint_hint(scheme, &host, port));
        Err(why)
    }

    /// How an operator would grant `scheme://host:port`, as a `; ...` clause.
    pub(crate) fn endpoint_hint(&self, scheme: &str, host: &HostName, port: u16) -> String {
        match self.endpoint_keys.first() {
            None => "; the manifest declares no config key of type endpoint, so only a plugin version that lists the host in its manifest (`Manifest::host` in the SDK) can reach it".into(),
            Some((key, env)) => {
                // Not the host the plugin asked for as the value to set: a plugin reaching
                // for a host it does not declare is what the allow-list is there to stop.
                let keys: Vec<&str> = self.endpoint_keys.iter().map(|(k, _)| k.as_str()).collect();
                let env = env.as_ref().map(|v| format!(" (or env {v}=<base URL>)")).unwrap_or_default();
                format!(
                    "; if {scheme}://{host}:{port} is an API you mean this plugin to reach, set a config key of type endpoint ({}) to its base URL, e.g. {key}=<base URL>{env}; if not, the plugin asked for a host it does not declare: do not grant it (its author lists hosts with `Manifest::host` in the SDK)",
                    keys.join(", ")
                )
            }
        }
    }
}

fn parse_endpoint(
    plugin: &str,
    keys: &[(String, Option<String>)],
    key: &str,
    value: &str,
) -> Result<Endpoint, SetupError> {
    let fail = |why: String| SetupError::BadEndpoint {
        plugin: plugin.to_owned(),
        key: key.to_owned(),
        value: mask_password(value),
        why,
    };
    if !keys.iter().any(|(k, _)| k == key) {
        return Err(fail(
            "the manifest declares no config key of type endpoint with this name".into(),
        ));
    }
    let url = Url::parse(value).map_err(|e| fail(format!("not an absolute URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(fail(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail(
            "user info (`user:password@`) is not allowed; credentials come from the environment"
                .into(),
        ));
    }
    let (host, port) = url_host::host_port(&url).ok_or_else(|| fail("it has no host".into()))?;
    Ok(Endpoint {
        key: key.to_owned(),
        scheme: url.scheme().to_owned(),
        host,
        port,
    })
}

/// `value` with the password of any `user:password@` masked, for error messages.
fn mask_password(value: &str) -> String {
    match Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => value.to_owned(),
        // Unparsable: mask whatever stands between the scheme and the last `@`.
        Err(_) => match (value.find("://"), value.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &value[..s + 3], &value[at..]),
            _ => value.to_owned(),
        },
    }
}

/// Host-name helpers shared by grants and the resolver.
pub(crate) mod url_host {
    use std::net::IpAddr;

    use reqwest::Url;

    /// A URL's host, normalised: domains lower-case without a trailing dot.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum HostName {
        /// A DNS name.
        Domain(String),
        /// An IP literal.
        Ip(IpAddr),
    }

    impl std::fmt::Display for HostName {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                HostName::Domain(d) => f.write_str(d),
                HostName::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
                HostName::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            }
        }
    }

    /// Lower-case without the trailing dot that makes a name absolute: `API.example.com.`
    /// and `api.example.com` are the same host.
    pub(crate) fn normalise(domain: &str) -> String {
        domain.trim_end_matches('.').to_ascii_lowercase()
    }

    /// The host and port (explicit or the scheme's default) of `url`.
    pub(crate) fn host_port(url: &Url) -> Option<(HostName, u16)> {
        // The URL parser has already canonicalised IP literals (`0x7f.1` is `127.0.0.1`,
        // IPv6 sits in brackets), so reading its text back is exact.
        let text = url.host_str()?;
        let host = if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            HostName::Ip(v6.parse().ok()?)
        } else if let Ok(v4) = text.parse::<std::net::Ipv4Addr>() {
            HostName::Ip(IpAddr::V4(v4))
        } else {
            HostName::Domain(normalise(text))
        };
        Some((host, url.port_or_known_default()?))
    }
}

#[cfg(test)]
mod tests {
    use infragraph_core::{ConfigKey, Credential, Schema};

    use super::*;

    fn manifest(hosts: &[&str]) -> Manifest {
        Manifest {
            name: "demo".into(),
            version: "0.1.0".into(),
            description: String::new(),
            schema: Schema::default(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            credentials: Vec::new(),
            config: vec![
                ConfigKey {
                    name: "api_url".into(),
                    description: String::new(),
                    ty: ConfigType::Endpoint,
                    env: Some("DEMO_API_URL".into()),
                    required: false,
                    default: None,
                },
                ConfigKey {
                    name: "user".into(),
                    description: String::new(),
                    ty: ConfigType::Text,
                    env: None,
                    required: false,
                    default: None,
                },
            ],
        }
    }

    fn cred(name: &str, hosts: &[&str]) -> Credential {
        Credential {
            name: name.into(),
            env: name.to_uppercase(),
            description: String::new(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            use_: CredentialUse::Header,
            required: false,
            only_when: None,
        }
    }

    fn check(g: &Grants, url: &str) -> Result<Target, String> {
        g.check(&Url::parse(url).unwrap())
    }

    #[test]
    fn exact_hosts_match_any_case_and_trailing_dot() {
        let g = Grants::new(&manifest(&["API.example.com."]), &[]).unwrap();
        for ok in [
            "https://api.example.com/x",
            "https://Api.Example.COM/",
            "https://api.example.com./",
            "https://api.example.com:443/",
        ] {
            assert!(check(&g, ok).is_ok(), "{ok}");
        }
        for no in [
            "https://example.com/",
            "https://x.api.example.com/",
            "https://api.example.com.evil.net/",
            "https://api.example.com:8443/",
        ] {
            assert!(check(&g, no).is_err(), "{no}");
        }
    }

    #[test]
    fn wildcards_match_one_or_more_labels_only() {
        let g = Grants::new(&manifest(&["*.example.com"]), &[]).unwrap();
        for ok in [
            "https://a.example.com/",
            "https://a.b.example.com/",
            "https://A.EXAMPLE.com./",
        ] {
            assert!(check(&g, ok).is_ok(), "{ok}");
        }
        for no in [
            "https://example.com/",
            "https://evilexample.com/",
            "https://a.example.com.evil.net/",
        ] {
            assert!(check(&g, no).is_err(), "{no}");
        }
    }

    #[test]
    fn a_port_in_a_host_entry_is_required() {
        let g = Grants::new(&manifest(&["api.example.com:8443"]), &[]).unwrap();
        assert!(check(&g, "https://api.example.com:8443/").is_ok());
        assert!(check(&g, "https://api.example.com/").is_err());
    }

    #[test]
    fn manifest_hosts_need_https() {
        let g = Grants::new(&manifest(&["api.example.com"]), &[]).unwrap();
        let why = check(&g, "http://api.example.com/").unwrap_err();
        assert!(why.contains("plain http"), "{why}");
        let why = check(&g, "ftp://api.example.com/").unwrap_err();
        assert!(why.contains("\"ftp\""), "{why}");
    }

    #[test]
    fn user_info_is_refused_even_for_granted_hosts() {
        let g = Grants::new(&manifest(&["api.example.com"]), &[]).unwrap();
        for url in [
            "https://user@api.example.com/",
            "https://user:pw@api.example.com/",
            "https://:pw@api.example.com/",
        ] {
            let why = check(&g, url).unwrap_err();
            assert!(why.contains("user info"), "{why}");
        }
    }

    #[test]
    fn special_ip_literals_are_refused_even_when_listed() {
        let g = Grants::new(
            &manifest(&[
                "169.254.169.254",
                "10.1.2.3",
                "[::ffff:a9fe:a9fe]",
                "8.8.8.8",
            ]),
            &[],
        )
        .unwrap();
        let why = check(&g, "https://169.254.169.254/latest/meta-data/").unwrap_err();
        assert!(why.contains("cloud metadata"), "{why}");
        assert!(
            why.contains("api_url"),
            "the hint names the endpoint key: {why}"
        );
        assert!(
            check(&g, "https://10.1.2.3/")
                .unwrap_err()
                .contains("private")
        );
        assert!(
            check(&g, "https://[::ffff:169.254.169.254]/")
                .unwrap_err()
                .contains("cloud metadata")
        );
        // Other spellings of the same address are canonicalised by the URL parser.
        assert!(check(&g, "https://0xa9.254.169.254/").is_err());
        assert!(check(&g, "https://8.8.8.8/").is_ok());
    }

    #[test]
    fn operator_endpoints_allow_exactly_their_origin() {
        let eps = [(
            "api_url".to_string(),
            "http://127.0.0.1:8080/api/v1".to_string(),
        )];
        let g = Grants::new(&manifest(&["api.example.com"]), &eps).unwrap();
        assert!(check(&g, "http://127.0.0.1:8080/other?q=1").is_ok());
        for no in [
            "http://127.0.0.1:8081/",
            "https://127.0.0.1:8080/",
            "http://127.0.0.2:8080/",
            "http://localhost:8080/",
        ] {
            let why = check(&g, no).unwrap_err();
            assert!(why.contains("http://127.0.0.1:8080 (api_url)"), "{why}");
        }
    }

    #[test]
    fn denial_says_what_would_grant_it() {
        let g = Grants::new(&manifest(&["api.example.com"]), &[]).unwrap();
        let why = check(&g, "https://other.example.org/x").unwrap_err();
        assert!(
            why.contains("other.example.org:443 is not in the manifest's hosts [api.example.com]"),
            "{why}"
        );
        // The value to set is the operator's to choose: never the host the plugin tried.
        assert!(why.contains("api_url=<base URL>"), "{why}");
        assert!(!why.contains("api_url=https://other.example.org"), "{why}");
        assert!(why.contains("DEMO_API_URL=<base URL>"), "{why}");
        assert!(why.contains("do not grant it"), "{why}");
        let mut m = manifest(&["api.example.com"]);
        m.config.clear();
        let why = check(&Grants::new(&m, &[]).unwrap(), "https://other.example.org/").unwrap_err();
        assert!(
            why.contains("declares no config key of type endpoint"),
            "{why}"
        );
    }

    #[test]
    fn bad_endpoints_name_the_key_and_value() {
        let m = manifest(&[]);
        let bad = |key: &str, value: &str| {
            Grants::new(&m, &[(key.to_string(), value.to_string())])
                .unwrap_err()
                .to_string()
        };
        let e = bad("api_url", "not a url");
        assert!(
            e.contains("\"api_url\"") && e.contains("\"not a url\""),
            "{e}"
        );
        assert!(bad("api_url", "ftp://files.example.com/").contains("scheme"));
        assert!(bad("user", "http://127.0.0.1/").contains("no config key of type endpoint"));
        let e = bad("api_url", "http://admin:hunter2@127.0.0.1:9/");
        assert!(e.contains("user info") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn credential_hosts_resolve_config_entries() {
        let mut m = manifest(&["api.example.com"]);
        m.credentials = vec![cred("token", &["api.example.com", "{config:api_url}"])];
        let eps = [("api_url".to_string(), "http://127.0.0.1:8080".to_string())];
        let g = Grants::new(&m, &eps).unwrap();
        let c = &g.credentials()[0];
        let target = |u: &str| check(&g, u).unwrap();
        assert!(c.granted(&target("https://api.example.com/")));
        assert!(c.granted(&target("http://127.0.0.1:8080/x")));
        // Without the endpoint configured, the entry grants nothing.
        let g = Grants::new(&m, &[]).unwrap();
        assert!(g.credentials()[0].granted(&check(&g, "https://api.example.com/").unwrap()));
        m.credentials = vec![cred("token", &["{config:user}"])];
        let e = Grants::new(&m, &[]).unwrap_err().to_string();
        assert!(e.contains("not a config key of type endpoint"), "{e}");
    }

    #[test]
    fn credential_patterns_only_grant_https() {
        let mut m = manifest(&["api.example.com"]);
        m.credentials = vec![cred("token", &["127.0.0.1:8080"])];
        let eps = [("api_url".to_string(), "http://127.0.0.1:8080".to_string())];
        let g = Grants::new(&m, &eps).unwrap();
        let t = check(&g, "http://127.0.0.1:8080/").unwrap();
        assert!(!g.credentials()[0].granted(&t));
    }

    #[test]
    fn malformed_manifest_hosts_are_refused() {
        for bad in ["*.", "https://api.example.com", "*.10.0.0.1", "a b"] {
            assert!(Grants::new(&manifest(&[bad]), &[]).is_err(), "{bad}");
        }
    }
}
