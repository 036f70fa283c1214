//! Where a plugin's credentials may go, decided per hop: the headers a plugin may set,
//! its `{secret:NAME}` placeholders replaced by values encoded for their place and only
//! on requests to the hosts the credential is granted to, the `Authorization` header of
//! bearer and basic credentials, and the AWS signing key of the hop, if any.

use std::collections::HashMap;

use infragraph_core::CredentialUse;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::grants::{CredentialGrant, Target};
use crate::secrets::{basic_token, form_encode, json_escape, mentions_placeholder, placeholders};
use crate::sigv4::{SIGNING_HEADERS, SigV4Key};
use crate::transport::Prepared;
use crate::{Grants, Method, Request, Secrets, SetupError};

/// Headers the host owns. `host` would let a plugin reach another virtual host behind a
/// granted address; the framing and hop-by-hop ones could desynchronise the connection.
const HOST_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Headers describing a body, dropped with it when a redirect turns the request into a GET.
const BODY_HEADERS: [&str; 3] = ["content-type", "content-encoding", "content-language"];

/// Where a placeholder sits, which decides the credential uses allowed there.
#[derive(Clone, Copy)]
enum Place {
    Header,
    Body,
}

/// A plugin's grants and credential values, with what the host derives from them once.
pub(crate) struct Credentials {
    pub(crate) grants: Grants,
    pub(crate) secrets: Secrets,
    /// Basic-auth user names, by credential name.
    basic_users: HashMap<String, String>,
    /// AWS signing keys of the `aws-sigv4` credentials that are set, by credential name.
    sigv4: HashMap<String, SigV4Key>,
}

impl Credentials {
    /// Takes a basic credential's user name and an AWS credential's key id and region
    /// from `config`; a set credential without them is an error naming the config key.
    pub(crate) fn new(
        grants: Grants,
        mut secrets: Secrets,
        config: &[(String, String)],
    ) -> Result<Credentials, SetupError> {
        let mut basic_users = HashMap::new();
        for c in grants.credentials() {
            let CredentialUse::Basic(key) = &c.use_ else {
                continue;
            };
            // An unset optional credential needs no user: it is never sent.
            let Some(password) = secrets.get(&c.name).map(str::to_owned) else {
                continue;
            };
            let Some((_, user)) = config.iter().find(|(k, _)| k == key) else {
                return Err(SetupError::MissingBasicUser {
                    plugin: grants.plugin().to_owned(),
                    credential: c.name.clone(),
                    key: key.clone(),
                });
            };
            secrets.add_encoding(&c.name, basic_token(user, &password));
            basic_users.insert(c.name.clone(), user.clone());
        }
        let mut sigv4 = HashMap::new();
        for c in grants.credentials() {
            let CredentialUse::AwsSigv4(a) = &c.use_ else {
                continue;
            };
            // An unset optional credential signs nothing.
            let Some(secret) = secrets.get(&c.name).map(str::to_owned) else {
                continue;
            };
            let value = |key: &str, what: &'static str| {
                config
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| SetupError::MissingSigningConfig {
                        plugin: grants.plugin().to_owned(),
                        credential: c.name.clone(),
                        what,
                        key: key.to_owned(),
                        hint: grants
                            .config_env(key)
                            .map(|env| format!("; set {env}"))
                            .unwrap_or_default(),
                    })
            };
            let key = SigV4Key {
                credential: c.name.clone(),
                access_key_id: value(&a.access_key_id, "access key id")?,
                secret_access_key: secret,
                session_token: a
                    .session_token
                    .as_ref()
                    .and_then(|t| secrets.get(t))
                    .map(str::to_owned),
                region: value(&a.region, "region")?,
                service: a.service.clone(),
            };
            sigv4.insert(c.name.clone(), key);
        }
        Ok(Credentials {
            grants,
            secrets,
            basic_users,
            sigv4,
        })
    }

    /// Builds one hop from the plugin's original request: its placeholders are resolved
    /// against this hop's host, so a credential only goes where it is granted.
    pub(crate) fn prepare(
        &self,
        req: &Request,
        method: Method,
        keep_body: bool,
        url: &Url,
        target: &Target,
    ) -> Result<Prepared, String> {
        let auth = self.auth_header(target)?;
        let signer = self.signer(target);
        let mut credentialed = auth.is_some() || signer.is_some();
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            if mentions_placeholder(name) {
                return Err(format!(
                    "header name {name:?} holds a placeholder; placeholders go in header values"
                ));
            }
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            if HOST_HEADERS.contains(&hname.as_str()) {
                return Err(format!(
                    "header {:?} is set by the host, not by the plugin",
                    hname.as_str()
                ));
            }
            if !keep_body && BODY_HEADERS.contains(&hname.as_str()) {
                continue;
            }
            if auth.is_some() && hname == AUTHORIZATION {
                // The manifest says the host authenticates to this host; its credential wins.
                continue;
            }
            if signer.is_some() && SIGNING_HEADERS.contains(&hname.as_str()) {
                // The signature covers exactly what the host sends; these are its own.
                continue;
            }
            let (value, secret) = self.substitute(value.as_bytes(), Place::Header, target)?;
            let mut hvalue = HeaderValue::from_bytes(&value).map_err(|_| {
                let after = if secret {
                    " once its credential is substituted"
                } else {
                    ""
                };
                format!("header {name:?} has a value that is not a valid header value{after}")
            })?;
            hvalue.set_sensitive(secret);
            credentialed |= secret;
            headers.append(hname, hvalue);
        }
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth);
        }
        let body = if keep_body {
            let (body, secret) = self.substitute(&req.body, Place::Body, target)?;
            credentialed |= secret;
            body
        } else {
            Vec::new()
        };
        Ok(Prepared {
            method: method.into(),
            url: url.clone(),
            headers,
            body,
            sigv4: signer,
            credentialed,
        })
    }

    /// The signing key of the first `aws-sigv4` credential granted to `target` and set.
    /// Checked per hop: a redirect to another host is not signed.
    fn signer(&self, target: &Target) -> Option<SigV4Key> {
        self.grants
            .credentials()
            .iter()
            .filter(|c| matches!(c.use_, CredentialUse::AwsSigv4(_)) && c.granted(target))
            .find_map(|c| self.sigv4.get(&c.name).cloned())
    }

    /// The `Authorization` header of the first bearer or basic credential granted to
    /// `target` and set.
    fn auth_header(&self, target: &Target) -> Result<Option<HeaderValue>, String> {
        for c in self.grants.credentials() {
            if !matches!(c.use_, CredentialUse::Bearer | CredentialUse::Basic(_))
                || !c.granted(target)
            {
                continue;
            }
            let Some(value) = self.secrets.get(&c.name) else {
                continue;
            };
            let text = match self.basic_users.get(&c.name) {
                Some(user) => format!("Basic {}", basic_token(user, value)),
                None => format!("Bearer {value}"),
            };
            let mut header = HeaderValue::from_str(&text).map_err(|_| {
                format!(
                    "credential {:?} holds characters an HTTP header cannot carry",
                    c.name
                )
            })?;
            header.set_sensitive(true);
            return Ok(Some(header));
        }
        Ok(None)
    }

    /// `bytes` with each placeholder replaced by its credential's value, encoded for
    /// `place`, and whether any was.
    fn substitute(
        &self,
        bytes: &[u8],
        place: Place,
        target: &Target,
    ) -> Result<(Vec<u8>, bool), String> {
        let found = placeholders(bytes)?;
        if found.is_empty() {
            return Ok((bytes.to_vec(), false));
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut last = 0;
        for p in &found {
            let (cred, value) = self.credential(&p.name, place, target)?;
            out.extend_from_slice(&bytes[last..p.start]);
            match cred.use_ {
                CredentialUse::JsonBody => out.extend_from_slice(json_escape(value).as_bytes()),
                CredentialUse::FormBody => {
                    out.extend_from_slice(form_encode(value.as_bytes()).as_bytes())
                }
                _ => out.extend_from_slice(value.as_bytes()),
            }
            last = p.end;
        }
        out.extend_from_slice(&bytes[last..]);
        Ok((out, true))
    }

    /// The credential a placeholder names and its value, if it may be used at `place` in a
    /// request to `target`.
    fn credential(
        &self,
        name: &str,
        place: Place,
        target: &Target,
    ) -> Result<(&CredentialGrant, &str), String> {
        let creds = self.grants.credentials();
        let Some(cred) = creds.iter().find(|c| c.name == name) else {
            let names: Vec<&str> = creds.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "`{{secret:{name}}}` names no credential of the manifest (it declares [{}])",
                names.join(", ")
            ));
        };
        let fits = matches!(
            (&cred.use_, place),
            (CredentialUse::Header, Place::Header)
                | (
                    CredentialUse::JsonBody | CredentialUse::FormBody,
                    Place::Body
                )
        );
        if !fits {
            let rule = match cred.use_ {
                CredentialUse::Header => "only in header values",
                CredentialUse::JsonBody => "only inside a JSON string in the body",
                CredentialUse::FormBody => "only in a form-encoded body",
                CredentialUse::Bearer | CredentialUse::Basic(_) => {
                    "nowhere: the host adds it as the Authorization header on requests to its hosts"
                }
                CredentialUse::AwsSigv4(_) => {
                    "nowhere: the host signs requests to its hosts with it (AWS Signature Version 4)"
                }
            };
            let here = match place {
                Place::Header => "a header",
                Place::Body => "the body",
            };
            return Err(format!(
                "`{{secret:{name}}}` is in {here}, but the manifest lets that credential appear {rule}"
            ));
        }
        if !cred.granted(target) {
            return Err(format!(
                "credential {name:?} may be sent only to {}, not to {}://{}",
                cred.hosts_text(),
                target.scheme,
                target.host_key()
            ));
        }
        let Some(value) = self.secrets.get(name) else {
            // The manifest's variable is not necessarily where it would have come from
            // (a plugin that is not built in gets only what the config names), so the
            // message says what the host recorded, or where to look.
            let why = match self.secrets.why_absent(name) {
                Some(why) => why.to_owned(),
                None => format!(
                    "the operator did not provide one (`infragraph plugins inspect {}` \
                     shows where it would come from)",
                    self.grants.plugin()
                ),
            };
            return Err(format!("credential {name:?} has no value: {why}"));
        };
        Ok((cred, value))
    }
}
