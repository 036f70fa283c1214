//! The look-ups behind `infragraph query`.

use infragraph_core::{GraphSink, Value};
use infragraph_sink_sqlite::{Direction, ErrorKind, Store};

use crate::*;

/// u1 -MEMBER_OF-> g1 -PART_OF-> org; u2 -MEMBER_OF-> g1; u2 -ADMIN_OF-> g2; u3 alone.
async fn graph() -> (tempfile::TempDir, Store) {
    let (dir, s) = store();
    let w = scope("demo", "org1", 1);
    let users = node_batch(
        "DemoUser",
        &["email", "age", "admin", "tags"],
        vec![
            (
                "u1",
                vec![
                    text("a@x"),
                    Value::Int(30),
                    Value::Bool(true),
                    Value::TextList(vec!["ops".into(), "dev".into()]),
                ],
            ),
            (
                "u2",
                vec![
                    text("b@x"),
                    Value::Int(41),
                    Value::Bool(false),
                    Value::TextList(vec!["dev".into()]),
                ],
            ),
            (
                "u3",
                vec![text("c@x"), Value::Int(30), Value::Null, Value::Null],
            ),
        ],
    );
    s.write_nodes(&w, &["UserAccount".into()], &users)
        .await
        .unwrap();
    put_nodes(&s, &w, "DemoGroup", &["g1", "g2"]).await;
    put_nodes(&s, &w, "DemoOrg", &["org"]).await;
    put_edges(
        &s,
        &w,
        "MEMBER_OF",
        "DemoUser",
        "DemoGroup",
        &[("u1", "g1"), ("u2", "g1")],
    )
    .await;
    put_edges(&s, &w, "ADMIN_OF", "DemoUser", "DemoGroup", &[("u2", "g2")]).await;
    put_edges(&s, &w, "PART_OF", "DemoGroup", "DemoOrg", &[("g1", "org")]).await;
    publish(&s, &w, None).await;
    (dir, s)
}

fn ids(nodes: Vec<infragraph_sink_sqlite::StoredNode>) -> Vec<String> {
    nodes.into_iter().map(|n| n.id).collect()
}

#[tokio::test]
async fn nodes_by_label_and_property() {
    let (_dir, s) = graph().await;
    let none: &[(&str, &str)] = &[];
    assert_eq!(
        ids(s.nodes("DemoUser", none, 0).unwrap()),
        ["u1", "u2", "u3"]
    );
    // An extra label finds the same nodes; the limit applies.
    assert_eq!(ids(s.nodes("UserAccount", none, 2).unwrap()), ["u1", "u2"]);
    assert_eq!(
        ids(s.nodes("DemoUser", &[("email", "b@x")], 0).unwrap()),
        ["u2"]
    );
    // Numbers and booleans as typed on a command line; a list matches an element.
    assert_eq!(
        ids(s.nodes("DemoUser", &[("age", "30")], 0).unwrap()),
        ["u1", "u3"]
    );
    assert_eq!(
        ids(s.nodes("DemoUser", &[("admin", "true")], 0).unwrap()),
        ["u1"]
    );
    assert_eq!(
        ids(s.nodes("DemoUser", &[("tags", "dev")], 0).unwrap()),
        ["u1", "u2"]
    );
    assert_eq!(
        ids(s
            .nodes("DemoUser", &[("tags", "dev"), ("age", "41")], 0)
            .unwrap()),
        ["u2"]
    );
    assert_eq!(
        ids(s.nodes("UserAccount", &[("id", "u3")], 0).unwrap()),
        ["u3"]
    );
    assert_eq!(
        ids(s
            .nodes("DemoUser", &[("_source", "demo"), ("email", "c@x")], 0)
            .unwrap()),
        ["u3"]
    );
    assert!(
        s.nodes("DemoUser", &[("email", "nobody")], 0)
            .unwrap()
            .is_empty()
    );
    assert!(s.nodes("NoSuchLabel", none, 0).unwrap().is_empty());
}

#[tokio::test]
async fn neighbours_follow_direction_and_type_filters() {
    let (_dir, s) = graph().await;
    let none: &[&str] = &[];
    let edges =
        |label: &str, id: &str, d: Direction, types: &[&str]| -> Vec<(String, String, String)> {
            s.neighbours(label, id, d, types)
                .unwrap()
                .into_iter()
                .map(|(e, n)| (e.rel_type, format!("{}->{}", e.from.1, e.to.1), n.id))
                .collect()
        };
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        edges("DemoUser", "u2", Direction::Out, none),
        [
            t("MEMBER_OF", "u2->g1", "g1"),
            t("ADMIN_OF", "u2->g2", "g2")
        ]
    );
    assert_eq!(
        edges("DemoUser", "u2", Direction::Out, &["ADMIN_OF"]),
        [t("ADMIN_OF", "u2->g2", "g2")]
    );
    assert!(edges("DemoUser", "u2", Direction::In, none).is_empty());
    assert_eq!(
        edges("DemoGroup", "g1", Direction::In, none),
        [
            t("MEMBER_OF", "u1->g1", "u1"),
            t("MEMBER_OF", "u2->g1", "u2")
        ]
    );
    assert_eq!(
        edges(
            "DemoGroup",
            "g1",
            Direction::Both,
            &["PART_OF", "MEMBER_OF"]
        ),
        [
            t("PART_OF", "g1->org", "org"),
            t("MEMBER_OF", "u1->g1", "u1"),
            t("MEMBER_OF", "u2->g1", "u2")
        ]
    );
    // By extra label too.
    assert_eq!(
        edges("UserAccount", "u1", Direction::Out, none),
        [t("MEMBER_OF", "u1->g1", "g1")]
    );
    let err = s
        .neighbours("DemoUser", "nobody", Direction::Out, none)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains(r#"no DemoUser node with id "nobody""#),
        "{err}"
    );
}

#[tokio::test]
async fn shortest_path_is_bounded_and_follows_direction() {
    let (_dir, s) = graph().await;
    let path = |from: (&str, &str), to: (&str, &str), depth, d| -> Option<Vec<String>> {
        s.shortest_path(from, to, depth, d, &[])
            .unwrap()
            .map(|steps| {
                steps
                    .into_iter()
                    .map(|st| match st.via {
                        None => st.node.id,
                        Some(e) => format!("-{}-{}", e.rel_type, st.node.id),
                    })
                    .collect()
            })
    };
    let (u1, u2, org, u3) = (
        ("DemoUser", "u1"),
        ("DemoUser", "u2"),
        ("DemoOrg", "org"),
        ("DemoUser", "u3"),
    );
    assert_eq!(
        path(u1, org, 5, Direction::Out).unwrap(),
        ["u1", "-MEMBER_OF-g1", "-PART_OF-org"]
    );
    assert_eq!(path(u1, org, 1, Direction::Out), None, "too deep");
    assert_eq!(path(u1, org, 5, Direction::In), None, "against the edges");
    assert_eq!(
        path(org, u1, 5, Direction::In).unwrap(),
        ["org", "-PART_OF-g1", "-MEMBER_OF-u1"]
    );
    // Both ways: u1 and u2 meet at g1; the edge keeps its stored direction.
    let steps = s
        .shortest_path(u1, u2, 5, Direction::Both, &[])
        .unwrap()
        .unwrap();
    assert_eq!(steps.len(), 3);
    let last = steps[2].via.as_ref().unwrap();
    assert_eq!((last.from.1.as_str(), last.to.1.as_str()), ("u2", "g1"));
    assert_eq!(path(u1, u3, 10, Direction::Both), None, "u3 is alone");
    assert_eq!(path(u1, u1, 0, Direction::Both).unwrap(), ["u1"]);
    let err = s
        .shortest_path(u1, ("DemoUser", "nobody"), 3, Direction::Both, &[])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn stats_count_per_label_and_type() {
    let (_dir, s) = graph().await;
    let st = s.stats().unwrap();
    assert_eq!(st.nodes["DemoUser"], 3);
    assert_eq!(st.nodes["DemoGroup"], 2);
    assert_eq!(st.edges["MEMBER_OF"], 2);
    assert_eq!(st.edges.values().sum::<u64>(), 4);
}
