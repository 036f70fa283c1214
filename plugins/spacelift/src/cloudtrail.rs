//! EC2 ownership from CloudTrail (schema: `AFFECTED`, source 2): the JSON objects of an
//! Athena export of CloudTrail rows in S3, listed with ListObjectsV2 and read with
//! GetObject. The host signs every request (credential `aws_secret_access_key`, use
//! `aws-sigv4`); the plugin never holds the secret key.

use std::collections::BTreeMap;

use infragraph_sdk::{Context, Request, Response, SyncError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, Event as Xml};
use quick_xml::reader::Reader;
use serde_json::Value;

/// One `(run, instance)` pair a CloudTrail row shows, with the row's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub run_id: String,
    pub instance_id: String,
    pub event_time: String,
    pub event_name: String,
    pub aws_account: String,
    pub aws_region: String,
}

/// The run a row's caller is: Spacelift assumes roles with the session name
/// `<run id>@spacelift.io`, so the identity ends in `/<run id>@spacelift.io`.
fn run_of(user_identity: &str) -> Option<String> {
    let session = user_identity.rsplit('/').next()?;
    let run = session.strip_suffix("@spacelift.io")?;
    (!run.is_empty()).then(|| run.to_owned())
}

/// Every instance id a row names: in `requestparameters` and `responseelements` (JSON
/// text holding `instancesSet.items[].instanceId`), and in `resources` (text holding ARNs
/// `arn:aws:ec2:<region>:<account>:instance/<id>`).
fn instances_of(row: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for field in ["requestparameters", "responseelements"] {
        let Some(text) = row.get(field).and_then(Value::as_str) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        for item in v["instancesSet"]["items"].as_array().into_iter().flatten() {
            if let Some(id) = item["instanceId"].as_str() {
                ids.push(id.to_owned());
            }
        }
    }
    if let Some(text) = row.get("resources").and_then(Value::as_str) {
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

/// The events of one object's rows (a JSON array, or JSON lines). Rows without a
/// Spacelift run or an instance are skipped.
pub fn events(body: &[u8]) -> Result<Vec<Event>, String> {
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
    for row in &rows {
        let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let Some(run_id) = run_of(&text("useridentity")) else {
            continue;
        };
        for instance_id in instances_of(row) {
            out.push(Event {
                run_id: run_id.clone(),
                instance_id,
                event_time: text("eventtime"),
                event_name: text("eventname"),
                aws_account: text("account"),
                aws_region: text("awsregion"),
            });
        }
    }
    Ok(out)
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

/// Lists every `.json` object under the prefix and returns their events. A listing or
/// object that fails is an error naming it, and fails the sync (so nothing is cleaned up
/// on a run that could not read the trail).
pub fn read(cx: &mut Context, b: &Bucket) -> Result<(Vec<Event>, usize), SyncError> {
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
    let mut events = Vec::new();
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
            events.extend(events_of(key, &resp.body)?);
        }
    }
    Ok((latest(events), keys.len()))
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

fn events_of(key: &str, body: &[u8]) -> Result<Vec<Event>, SyncError> {
    events(body).map_err(|e| SyncError::provider(format!("S3 object {key:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        include_str!("../../../tests/fixtures/spacelift/cloudtrail_ec2_ownership_records.json");

    #[test]
    fn sample_rows_give_runs_and_instances() {
        let got = latest(events(SAMPLE.as_bytes()).unwrap());
        let pairs: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|e| {
                (
                    e.run_id.as_str(),
                    e.instance_id.as_str(),
                    e.event_name.as_str(),
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
        assert_eq!(got[0].event_time, "2024-01-01T12:00:00Z");
        assert_eq!(got[0].aws_account, "000000000000");
        assert_eq!(got[0].aws_region, "us-east-1");
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
        let line = r#"{"useridentity": "arn=x/run-9@spacelift.io", "resources": "[{arn=arn:aws:ec2:eu-west-1:1:instance/i-0abc}]", "eventtime": "t", "eventname": "StopInstances", "account": "1", "awsregion": "eu-west-1"}"#;
        let got = events(format!("{line}\n{line}\n").as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].instance_id, "i-0abc");
        assert!(events(b"not json").is_err());
    }
}
