//! Export and import.

use infragraph_core::{GraphSink, Value};
use infragraph_sink_sqlite::{ErrorKind, Store};

use crate::*;

/// A graph with the awkward cases: unicode and quotes, lists, floats, removed
/// properties, extra labels, and holes in the node and edge numbering left by cleanup.
async fn awkward(s: &Store) {
    let w = scope("demo", "org \"1\"", 1);
    let users = node_batch(
        "DemoUser",
        &["name", "score", "tags", "admin", "gone"],
        vec![
            (
                "u1",
                vec![
                    text("Zoë \"the\" <admin> & co\n"),
                    Value::Float(0.1),
                    Value::TextList(vec!["a'b".into()]),
                    Value::Bool(true),
                    text("x"),
                ],
            ),
            (
                "u2",
                vec![
                    text("ünïcödé ✓"),
                    Value::Float(1e300),
                    Value::IntList(vec![1, -2]),
                    Value::Bool(false),
                    Value::Null,
                ],
            ),
            (
                "u3",
                vec![
                    text("doomed"),
                    Value::Int(7),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            ),
        ],
    );
    s.write_nodes(&w, &["UserAccount".into(), "Person".into()], &users)
        .await
        .unwrap();
    put_nodes(s, &w, "DemoGroup", &["g`1", "g2"]).await;
    put_edges(
        s,
        &w,
        "MEMBER_OF",
        "DemoUser",
        "DemoGroup",
        &[("u1", "g`1"), ("u3", "g2"), ("u2", "g2")],
    )
    .await;
    publish(s, &w, None).await;
    // A second run drops u3 (leaving holes) and a property of u1.
    let w2 = scope("demo", "org \"1\"", 2);
    let again = node_batch(
        "DemoUser",
        &["gone"],
        vec![("u1", vec![Value::Null]), ("u2", vec![Value::Null])],
    );
    s.write_nodes(&w2, &["UserAccount".into(), "Person".into()], &again)
        .await
        .unwrap();
    put_nodes(s, &w2, "DemoGroup", &["g`1", "g2"]).await;
    put_edges(
        s,
        &w2,
        "MEMBER_OF",
        "DemoUser",
        "DemoGroup",
        &[("u1", "g`1"), ("u2", "g2")],
    )
    .await;
    publish(s, &w2, Some(&[])).await;
    // Something from another plugin, so bookkeeping differs between records.
    put_nodes(s, &scope("other", "", 3), "OtherThing", &["t1"]).await;
    put_edges(
        s,
        &scope("other", "", 3),
        "SEES",
        "OtherThing",
        "DemoUser",
        &[("t1", "u1")],
    )
    .await;
    publish(s, &scope("other", "", 3), None).await;
}

fn export(s: &Store) -> String {
    let mut out = Vec::new();
    s.export_jsonl(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn jsonl_round_trip_is_byte_identical() {
    let (_dir, s) = store();
    awkward(&s).await;
    let first = export(&s);
    let (_dir2, fresh) = store();
    let stats = fresh.import_jsonl(&mut first.as_bytes()).unwrap();
    assert_eq!((stats.nodes, stats.relationships), (5, 3));
    let second = export(&fresh);
    assert_eq!(first, second);

    // The line format, APOC's: one node and one relationship spelled out.
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(
        lines[0],
        r#"{"type":"node","id":"n1","labels":["DemoUser","UserAccount","Person"],"properties":{"id":"u1","admin":true,"name":"Zoë \"the\" <admin> & co\n","score":0.1,"tags":["a'b"],"firstseen":1,"lastupdated":2,"_source":"demo","_scope":"org \"1\""}}"#
    );
    let sees = lines.iter().find(|l| l.contains("SEES")).unwrap();
    assert_eq!(
        *sees,
        r#"{"type":"relationship","id":"r4","label":"SEES","properties":{"firstseen":3,"lastupdated":3,"_source":"other","_scope":""},"start":{"id":"n6","labels":["OtherThing"],"properties":{"id":"t1"}},"end":{"id":"n1","labels":["DemoUser","UserAccount","Person"],"properties":{"id":"u1"}}}"#
    );

    // The other formats are deterministic too: same graph, same bytes.
    for f in [Store::export_graphml, Store::export_cypher] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        f(&s, &mut a).unwrap();
        f(&fresh, &mut b).unwrap();
        assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
    }
    // And later syncs into the restored store take newer tags than anything imported.
    assert!(fresh.next_update_tag().await.unwrap() > 3);
}

#[tokio::test]
async fn import_merges_into_a_store_that_has_records() {
    let (_dir, s) = store();
    awkward(&s).await;
    let file = export(&s);
    let (_dir2, other) = store();
    put_nodes(&other, &scope("seed", "", 5), "DemoUser", &["u9", "u1"]).await;
    publish(&other, &scope("seed", "", 5), None).await;
    let stats = other.import_jsonl(&mut file.as_bytes()).unwrap();
    assert_eq!(stats.nodes, 5);
    assert_eq!(other.stats().unwrap().nodes["DemoUser"], 3);
    let u1 = &other.nodes("DemoUser", &[("id", "u1")], 0).unwrap()[0];
    assert_eq!((u1.firstseen, u1.source.as_str()), (1, "demo"));
}

#[tokio::test]
async fn a_malformed_line_names_its_number_and_nothing_is_imported() {
    let (_dir, s) = store();
    let cases = [
        ("not json", "expected"),
        (
            r#"{"type":"node","id":"n3","labels":[],"properties":{"id":"x"}}"#,
            "has no labels",
        ),
        (
            r#"{"type":"node","id":"n3","labels":["A"],"properties":{}}"#,
            "properties.id (the node's key) is missing",
        ),
        (
            r#"{"type":"node","id":"n3","labels":["A"],"properties":{"id":"x","firstseen":"soon"}}"#,
            r#""firstseen" must be an integer"#,
        ),
        (
            r#"{"type":"node","id":"n3","labels":["A"],"properties":{"id":"x","m":{"a":1}}}"#,
            r#""m" is a map"#,
        ),
        (r#"{"type":"edge","id":"r1"}"#, "unknown variant `edge`"),
        (
            r#"{"type":"relationship","id":"r1","label":"R","properties":{},"start":{"id":"n1","labels":["A"],"properties":{"id":"a"}},"end":{"id":"n9","labels":["A"],"properties":{"id":"zz"}}}"#,
            r#"the relationship's end (A "zz") is neither in the store nor on an earlier line"#,
        ),
    ];
    for (bad, expected) in cases {
        let file = format!(
            "{}\n\n{}\n{bad}\n",
            r#"{"type":"node","id":"n1","labels":["A"],"properties":{"id":"a"}}"#,
            r#"{"type":"node","id":"n2","labels":["A"],"properties":{"id":"b"}}"#
        );
        let err = s.import_jsonl(&mut file.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Import, "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("line 4: "), "{msg}");
        assert!(msg.contains(expected), "{msg}");
        assert!(msg.ends_with("nothing was imported"), "{msg}");
        assert!(
            s.stats().unwrap().nodes.is_empty(),
            "the good lines were not kept"
        );
    }
}

#[tokio::test]
async fn cypher_script_and_graphml_spell_the_graph_out() {
    let (_dir, s) = store();
    let w = scope("demo", "o", 1);
    let b = node_batch(
        "DemoUser",
        &["name", "n"],
        vec![("it's", vec![text("a\\b"), Value::IntList(vec![1, 2])])],
    );
    s.write_nodes(&w, &["Person".into()], &b).await.unwrap();
    put_nodes(&s, &w, "DemoGroup", &["g"]).await;
    put_edges(
        &s,
        &w,
        "MEMBER_OF",
        "DemoUser",
        "DemoGroup",
        &[("it's", "g")],
    )
    .await;
    publish(&s, &w, None).await;

    let mut out = Vec::new();
    s.export_cypher(&mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "// infragraph export; load with: cypher-shell -f <this file>\n\
         CREATE INDEX IF NOT EXISTS FOR (n:`DemoGroup`) ON (n.id);\n\
         CREATE INDEX IF NOT EXISTS FOR (n:`DemoUser`) ON (n.id);\n\
         MERGE (n:`DemoUser` {id: 'it\\'s'}) SET n:`Person` SET n += {`n`: [1, 2], `name`: 'a\\\\b', \
         firstseen: 1, lastupdated: 1, `_source`: 'demo', `_scope`: 'o'};\n\
         MERGE (n:`DemoGroup` {id: 'g'}) SET n += {firstseen: 1, lastupdated: 1, `_source`: 'demo', `_scope`: 'o'};\n\
         MATCH (a:`DemoUser` {id: 'it\\'s'}), (b:`DemoGroup` {id: 'g'}) MERGE (a)-[r:`MEMBER_OF`]->(b) \
         SET r += {firstseen: 1, lastupdated: 1, `_source`: 'demo', `_scope`: 'o'};\n"
    );

    let mut out = Vec::new();
    s.export_graphml(&mut out).unwrap();
    let xml = String::from_utf8(out).unwrap();
    for expected in [
        r#"<key id="n.n" for="node" attr.name="n" attr.type="string"/>"#,
        r#"<key id="n.name" for="node" attr.name="name" attr.type="string"/>"#,
        r#"<key id="e.firstseen" for="edge" attr.name="firstseen" attr.type="long"/>"#,
        r#"<node id="n1" labels=":DemoUser:Person"><data key="labels">:DemoUser:Person</data><data key="n.id">it&apos;s</data><data key="n.n">[1,2]</data><data key="n.name">a\b</data>"#,
        r#"<edge id="r1" source="n1" target="n2" label="MEMBER_OF"><data key="label">MEMBER_OF</data>"#,
    ] {
        assert!(xml.contains(expected), "{expected}\nnot in\n{xml}");
    }
    assert!(xml.ends_with("</graph>\n</graphml>\n"));
}
