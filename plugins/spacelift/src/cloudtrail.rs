//! EC2 ownership from CloudTrail (schema: `AFFECTED`, source 2): the JSON objects of an
//! Athena export of CloudTrail rows in S3, listed with ListObjectsV2 and read with
//! GetObject. The host signs every request (credential `aws_secret_access_key`, use
//! `aws-sigv4`); the plugin never holds the secret key.

use std::collections::{BTreeMap, BTreeSet};

use infragraph_sdk::{Context, Request, Response, SyncError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, Event as Xml};
use quick_xml::reader::Reader;
use serde_json::Value;

/// One `(run, instance)` pair a CloudTrail row shows, with the row's details (absent
/// when the row lacks them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub run_id: String,
    pub instance_id: String,
    pub event_time: Option<String>,
    pub event_name: Option<String>,
    pub aws_account: Option<String>,
    pub aws_region: Option<String>,
}

/// What the rows of an export gave: how many were read, and why those that link nothing
/// do not. A row counts once, under the first reason that applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub rows: usize,
    /// Rows linking a run of this account to at least one instance.
    pub linked: usize,
    /// Rows whose caller is no assumed-role session (a user, a service).
    pub no_session: usize,
    /// Rows whose session names no run of this account.
    pub unknown_run: usize,
    /// The first few sessions of those, to show what the export holds.
    pub unknown_examples: Vec<String>,
    /// Rows of a run that name no instance (a call that touched none).
    pub no_instance: usize,
}

impl Tally {
    /// Rows that named no run of this account, for either reason.
    pub fn unmatched(&self) -> usize {
        self.no_session + self.unknown_run
    }

    /// What the rows that named no run of this account were, when there are any.
    pub fn describe_unmatched(&self) -> Option<String> {
        let n = self.unmatched();
        if n == 0 {
            return None;
        }
        let examples = match self.unknown_examples.as_slice() {
            [] => String::new(),
            e => format!(", sessions such as {}", e.join(", ")),
        };
        Some(format!(
            "{n} of {} CloudTrail rows named no run of this account: {} without an \
             assumed-role session, {} whose session names no run read this sync{examples}",
            self.rows, self.no_session, self.unknown_run
        ))
    }

    fn add(&mut self, other: Tally) {
        self.rows += other.rows;
        self.linked += other.linked;
        self.no_session += other.no_session;
        self.unknown_run += other.unknown_run;
        self.no_instance += other.no_instance;
        for e in other.unknown_examples {
            if self.unknown_examples.len() < EXAMPLES {
                self.unknown_examples.push(e);
            }
        }
    }
}

/// Unknown sessions quoted in the summary.
const EXAMPLES: usize = 3;

/// The session name of the first assumed-role ARN in a row's `useridentity`
/// (`arn:<partition>:sts::<account>:assumed-role/<role>/<session>`), wherever it stands:
/// in Athena's rendering of the struct (`{type=AssumedRole, principalid=…,
/// arn=arn:aws:sts::…:assumed-role/…/<session>, …, sessioncontext={…,
/// sessionissuer={…, arn=arn:aws:iam::…:role/…}}}`), as `arn=<ARN>` alone, as the bare
/// ARN, or in JSON. The session ends where the struct's or JSON's punctuation begins.
pub fn session_of(user_identity: &str) -> Option<&str> {
    user_identity.match_indices("arn:").find_map(|(at, _)| {
        let rest = &user_identity[at..];
        let end = rest
            .find(|c: char| matches!(c, ',' | '}' | ']' | '"') || c.is_whitespace())
            .unwrap_or(rest.len());
        let parts: Vec<&str> = rest[..end].splitn(6, ':').collect();
        let [_, _, "sts", "", _, resource] = parts.as_slice() else {
            return None;
        };
        let mut path = resource.splitn(3, '/');
        match (path.next(), path.next(), path.next()) {
            (Some("assumed-role"), Some(role), Some(session))
                if !role.is_empty() && !session.is_empty() =>
            {
                Some(session)
            }
            _ => None,
        }
    })
}

/// The run a session names: Spacelift assumes a stack's role with the run's id as the
/// session name, followed by `@` and more (`01K6DZ7S8Q1CN6YW2VW82JCYYX@<stack…>` in a
/// real export, cut at AWS's 64 characters; `run-1@spacelift.io` in Cartography's
/// sample). A role assumed again with the run id alone as the session (Spacelift's docs
/// suggest it) has no `@`. Whether it is a run is decided against the account's runs.
pub fn run_of(session: &str) -> &str {
    session.split('@').next().unwrap_or(session)
}

/// A field as text: a string as it is, anything else (an object, when the export kept
/// JSON) as JSON.
fn text_of(row: &Value, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Every instance id a row names: in `requestparameters` and `responseelements` (JSON,
/// as text or not, holding `instancesSet.items[].instanceId`), and in `resources` (text
/// holding ARNs `arn:aws:ec2:<region>:<account>:instance/<id>`).
fn instances_of(row: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for field in ["requestparameters", "responseelements"] {
        let v = match row.get(field) {
            Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
            Some(v @ Value::Object(_)) => Some(v.clone()),
            _ => None,
        };
        let Some(v) = v else { continue };
        for item in v["instancesSet"]["items"].as_array().into_iter().flatten() {
            if let Some(id) = item["instanceId"].as_str() {
                ids.push(id.to_owned());
            }
        }
    }
    if let Some(text) = text_of(row, "resources") {
        for part in text.split(":instance/").skip(1) {
            let id: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if id.starts_with("i-") {
                ids.push(id);
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// The events of one object's rows (a JSON array, or JSON lines) whose session names a
/// run in `runs`, and the tally of every row.
pub fn events(body: &[u8], runs: &BTreeSet<String>) -> Result<(Vec<Event>, Tally), String> {
    let text = String::from_utf8_lossy(body);
    let rows: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(rows)) => rows,
        Ok(row @ Value::Object(_)) => vec![row],
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("neither a JSON array nor JSON lines: {e}"))?,
    };
    let mut out = Vec::new();
    let mut tally = Tally {
        rows: rows.len(),
        ..Tally::default()
    };
    for row in &rows {
        let identity = text_of(row, "useridentity").unwrap_or_default();
        let Some(session) = session_of(&identity) else {
            tally.no_session += 1;
            continue;
        };
        let run_id = run_of(session);
        if !runs.contains(run_id) {
            tally.unknown_run += 1;
            if tally.unknown_examples.len() < EXAMPLES {
                tally.unknown_examples.push(session.to_owned());
            }
            continue;
        }
        let instances = instances_of(row);
        if instances.is_empty() {
            tally.no_instance += 1;
            continue;
        }
        tally.linked += 1;
        let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
        for instance_id in instances {
            out.push(Event {
                run_id: run_id.to_owned(),
                instance_id,
                event_time: text("eventtime"),
                event_name: text("eventname"),
                aws_account: text("account"),
                aws_region: text("awsregion"),
            });
        }
    }
    Ok((out, tally))
}

/// Keeps the latest event of each `(run, instance)`: the graph holds one `AFFECTED` per
/// pair, so it carries the most recent call.
pub fn latest(events: Vec<Event>) -> Vec<Event> {
    let mut by_pair: BTreeMap<(String, String), Event> = BTreeMap::new();
    for e in events {
        let key = (e.run_id.clone(), e.instance_id.clone());
        match by_pair.get(&key) {
            Some(old) if old.event_time >= e.event_time => {}
            _ => {
                by_pair.insert(key, e);
            }
        }
    }
    by_pair.into_values().collect()
}

/// A ListObjectsV2 page: its keys (`Contents/Key`), and the token of the next page if
/// the listing is truncated; or why it is not readable XML.
pub fn list_page(xml: &str) -> Result<(Vec<String>, Option<String>), String> {
    let mut reader = Reader::from_str(xml);
    // Local names from the root down to the open element; S3 puts its elements in a
    // default namespace.
    let mut path: Vec<String> = Vec::new();
    // The text of the open element, references resolved (the reader reports them apart).
    let mut text = String::new();
    let (mut keys, mut truncated, mut next) = (Vec::new(), false, None);
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        match event {
            Xml::Start(e) => {
                path.push(e.local_name().as_ref().to_owned());
                text.clear();
            }
            Xml::Text(t) => text.push_str(&t.xml10_content()),
            Xml::CData(t) => text.push_str(&t.xml10_content()),
            Xml::GeneralRef(r) => text.push_str(&reference(&r)?),
            Xml::End(_) => {
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match names.as_slice() {
                    [_, "Contents", "Key"] => keys.push(std::mem::take(&mut text)),
                    [_, "IsTruncated"] => truncated = text == "true",
                    [_, "NextContinuationToken"] => next = Some(std::mem::take(&mut text)),
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    Ok((keys, next.filter(|_| truncated)))
}

/// The text a `&...;` reference stands for: a character reference (S3 writes a carriage
/// return or line feed in a key as `&#13;` or `&#x0A;`) or one of XML's five entities.
fn reference(r: &BytesRef<'_>) -> Result<String, String> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| format!("character reference &{};: {e}", &**r))?
    {
        return Ok(c.to_string());
    }
    resolve_predefined_entity(r)
        .map(str::to_owned)
        .ok_or_else(|| format!("unknown entity &{};", &**r))
}

/// What RFC 3986 leaves unescaped in a query value: its unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same in an object key's path, where `/` separates segments as S3 expects.
const KEY_PATH: &AsciiSet = &UNRESERVED.remove(b'/');

fn encode(s: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(s, set).to_string()
}

/// Where the export is.
pub struct Bucket {
    /// Path-style endpoint, e.g. `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
}

/// Objects read per host call: CloudTrail exports hold many small files.
const GET_BATCH: usize = 32;

/// Lists every `.json` object under the prefix and returns the events of rows naming a
/// run in `runs`, the tally of all rows, and how many objects were read. A listing or
/// object that fails is an error naming it, and fails the sync (so nothing is cleaned up
/// on a run that could not read the trail).
pub fn read(
    cx: &mut Context,
    b: &Bucket,
    runs: &BTreeSet<String>,
) -> Result<(Vec<Event>, Tally, usize), SyncError> {
    let base = format!(
        "{}/{}",
        b.endpoint.trim_end_matches('/'),
        encode(&b.bucket, UNRESERVED)
    );
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!(
            "{base}?list-type=2&prefix={}",
            encode(&b.prefix, UNRESERVED)
        );
        if let Some(t) = &token {
            url.push_str(&format!("&continuation-token={}", encode(t, UNRESERVED)));
        }
        let resp = cx.fetch(Request::get(url))?;
        refused(&resp, &format!("list bucket {:?}", b.bucket))?;
        resp.error_for_status()?;
        let (page, next) = list_page(&resp.text()).map_err(|e| {
            SyncError::provider(format!(
                "S3 answered the listing of bucket {:?} with XML this plugin cannot read: {e}",
                b.bucket
            ))
        })?;
        keys.extend(page.into_iter().filter(|k| k.ends_with(".json")));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let (mut events, mut tally) = (Vec::new(), Tally::default());
    for chunk in keys.chunks(GET_BATCH) {
        let requests = chunk
            .iter()
            .map(|k| Request::get(format!("{base}/{}", encode(k, KEY_PATH))))
            .collect();
        for (key, resp) in chunk.iter().zip(cx.fetch_many(requests)) {
            let resp = resp?;
            refused(
                &resp,
                &format!("read object {key:?} of bucket {:?}", b.bucket),
            )?;
            resp.error_for_status()?;
            let (found, counted) = events_of(key, &resp.body, runs)?;
            events.extend(found);
            tally.add(counted);
        }
    }
    Ok((latest(events), tally, keys.len()))
}

/// An auth error when S3 refused the signed request, naming what to check.
fn refused(resp: &Response, what: &str) -> Result<(), SyncError> {
    if !matches!(resp.status, 401 | 403) {
        return Ok(());
    }
    Err(SyncError::auth(format!(
        "S3 refused to {what} (HTTP {}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
         AWS_SESSION_TOKEN and AWS_REGION, and that the key may read the bucket: {}",
        resp.status,
        resp.text().chars().take(300).collect::<String>()
    )))
}

fn events_of(
    key: &str,
    body: &[u8],
    runs: &BTreeSet<String>,
) -> Result<(Vec<Event>, Tally), SyncError> {
    events(body, runs).map_err(|e| SyncError::provider(format!("S3 object {key:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        include_str!("../../../tests/fixtures/spacelift/cloudtrail_ec2_ownership_records.json");
    /// Athena's rows as a real export has them (Cartography's parsing tests).
    const ATHENA: &str =
        include_str!("../../../tests/fixtures/spacelift/cloudtrail_athena_rows.json");

    fn runs(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sample_rows_give_runs_and_instances() {
        let (found, tally) = events(SAMPLE.as_bytes(), &runs(&["run-1", "run-2"])).unwrap();
        assert_eq!(
            tally,
            Tally {
                rows: 4,
                linked: 4,
                ..Tally::default()
            }
        );
        let got = latest(found);
        let pairs: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|e| {
                (
                    e.run_id.as_str(),
                    e.instance_id.as_str(),
                    e.event_name.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                // Three rows name i-01234567 for run-1; the latest (12:00) wins.
                ("run-1", "i-01234567", "DescribeInstances"),
                ("run-2", "i-02345678", "RunInstances"),
                ("run-2", "i-89abcdef", "RunInstances"),
            ]
        );
        assert_eq!(got[0].event_time.as_deref(), Some("2024-01-01T12:00:00Z"));
        assert_eq!(got[0].aws_account.as_deref(), Some("000000000000"));
        assert_eq!(got[0].aws_region.as_deref(), Some("us-east-1"));
    }

    /// The whole `useridentity` as Athena exports it: the run is the session of the
    /// assumed-role ARN (not what follows the struct's last `/`, which is the session
    /// issuer's role and its closing braces), up to its `@`.
    #[test]
    fn athena_rows_give_the_run_of_the_assumed_role_session() {
        let rows: Vec<Value> = serde_json::from_str(ATHENA).unwrap();
        let identity = rows[0]["useridentity"].as_str().unwrap();
        let session = session_of(identity).unwrap();
        assert_eq!(
            session,
            "01K6DZ7S8Q1CN6YW2VW82JCYYX@workload-prod-ai_us-west-2_infrastruc"
        );
        assert_eq!(run_of(session), "01K6DZ7S8Q1CN6YW2VW82JCYYX");
        let other = rows[1]["useridentity"].as_str().unwrap();
        assert_eq!(session_of(other), Some("session"));

        let run = run_of(session);
        let (found, tally) = events(ATHENA.as_bytes(), &runs(&[run])).unwrap();
        let instances: Vec<(&str, &str)> = found
            .iter()
            .map(|e| (e.run_id.as_str(), e.instance_id.as_str()))
            .collect();
        // The instance is in both `responseelements` and `resources`: one pair.
        assert_eq!(instances, [(run, "i-0f5139368648f4f62")]);
        assert_eq!(found[0].event_time, None, "the recording has no eventtime");
        assert_eq!(
            tally,
            Tally {
                rows: 2,
                linked: 1,
                unknown_run: 1,
                unknown_examples: vec!["session".into()],
                ..Tally::default()
            }
        );

        // Without that run in the account, nothing links and every row is counted.
        let (found, tally) = events(ATHENA.as_bytes(), &runs(&["run-1"])).unwrap();
        assert!(found.is_empty());
        assert_eq!((tally.rows, tally.linked, tally.unmatched()), (2, 0, 2));
        assert_eq!(tally.unknown_examples[0], session);
    }

    #[test]
    fn sessions_are_found_in_every_form() {
        let arn = "arn:aws:sts::1:assumed-role/r/run-9@stack";
        for identity in [
            arn.to_string(),
            format!("arn={arn}"),
            format!(r#"{{"type":"AssumedRole","arn":"{arn}","accountId":"1"}}"#),
            format!(
                "{{type=AssumedRole, arn={arn}, sessioncontext={{sessionissuer={{arn=arn:aws:iam::1:role/r}}}}}}"
            ),
            format!("{{arn={}}}", arn.replace("arn:aws:", "arn:aws-us-gov:")),
        ] {
            assert_eq!(session_of(&identity), Some("run-9@stack"), "{identity}");
        }
        for none in [
            "",
            "{type=IAMUser, arn=arn:aws:iam::1:user/alice}",
            "{type=Role, arn=arn:aws:iam::1:role/r}",
            "arn:aws:sts::1:assumed-role/r/",
            "arn:aws:sts::1:federated-user/bob",
        ] {
            assert_eq!(session_of(none), None, "{none}");
        }
        assert_eq!(
            run_of("01K6DZ7S8Q1CN6YW2VW82JCYYX"),
            "01K6DZ7S8Q1CN6YW2VW82JCYYX"
        );
    }

    #[test]
    fn list_pages_parse() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b.json</Key><Size>1</Size></Contents><Contents><Key>c</Key></Contents><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            list_page(xml).unwrap(),
            (
                vec!["a&b.json".to_string(), "c".to_string()],
                Some("tok".into())
            )
        );
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        assert_eq!(list_page(last).unwrap(), (vec![], None));
        // A key named `a&lt;b.json` is escaped once, and unescaped once.
        let literal =
            "<ListBucketResult><Contents><Key>a&amp;lt;b.json</Key></Contents></ListBucketResult>";
        assert_eq!(list_page(literal).unwrap().0, ["a&lt;b.json"]);
    }

    #[test]
    fn keys_with_character_references_are_resolved() {
        // As S3 sends them (with its namespace), hexadecimal and decimal, for characters
        // that need them (a line feed) and for some that do not.
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><Contents><Key>logs&#x2F;2024&#47;caf&#xE9;&#10;x.json</Key></Contents><Contents><Key>a&#13;&#x0A;b&apos;&quot;.json</Key></Contents><NextContinuationToken>t&#x2B;1</NextContinuationToken></ListBucketResult>"#;
        assert_eq!(
            list_page(xml).unwrap(),
            (
                vec![
                    "logs/2024/café\nx.json".to_string(),
                    "a\r\nb'\".json".to_string()
                ],
                Some("t+1".into())
            )
        );
    }

    #[test]
    fn unreadable_listings_are_errors() {
        for bad in [
            "<ListBucketResult><Contents><Key>a</Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&nbsp;b</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&#0;b</Key></Contents></ListBucketResult>",
        ] {
            assert!(list_page(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_encoded_by_rfc_3986() {
        assert_eq!(encode("a b*c~d/é", UNRESERVED), "a%20b%2Ac~d%2F%C3%A9");
        assert_eq!(encode("logs/a b.json", KEY_PATH), "logs/a%20b.json");
    }

    #[test]
    fn json_lines_are_read_too() {
        let line = r#"{"useridentity": "arn=arn:aws:sts::1:assumed-role/r/run-9@spacelift.io", "resources": [{"ARN": "arn:aws:ec2:eu-west-1:1:instance/i-0abc"}], "eventtime": "t", "eventname": "StopInstances", "account": "1", "awsregion": "eu-west-1"}"#;
        let (got, tally) =
            events(format!("{line}\n{line}\n").as_bytes(), &runs(&["run-9"])).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].instance_id, "i-0abc");
        assert_eq!((tally.rows, tally.linked), (2, 2));
        assert!(events(b"not json", &runs(&[])).is_err());
    }
}
