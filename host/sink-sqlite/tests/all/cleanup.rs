//! Cleanup: stale records of one plugin and scope go; everything else stays.

use infragraph_core::{Incomplete, NodeRef};

use crate::*;

#[tokio::test]
async fn removes_stale_records_of_this_plugin_and_scope_only() {
    let (dir, s) = store();
    let old = scope("demo", "org1", 1);
    put_nodes(&s, &old, "DemoUser", &["u1", "u2"]).await;
    put_nodes(&s, &old, "DemoGroup", &["g1"]).await;
    put_edges(
        &s,
        &old,
        "MEMBER_OF",
        "DemoUser",
        "DemoGroup",
        &[("u1", "g1"), ("u2", "g1")],
    )
    .await;
    // The same plugin in another scope, and another plugin linking to u2.
    let org2 = scope("demo", "org2", 1);
    put_nodes(&s, &org2, "DemoUser", &["u9"]).await;
    let other = scope("other", "org1", 1);
    put_nodes(&s, &other, "OtherThing", &["t1"]).await;
    put_edges(
        &s,
        &other,
        "SEES",
        "OtherThing",
        "DemoUser",
        &[("t1", "u2"), ("t1", "u1")],
    )
    .await;
    publish_all(&s, &[&old, &org2, &other]).await;

    // The next run sees u1 and g1 again but not u2, nor u1's membership.
    let new = scope("demo", "org1", 2);
    put_nodes(&s, &new, "DemoUser", &["u1"]).await;
    put_nodes(&s, &new, "DemoGroup", &["g1"]).await;
    let deleted = publish(&s, &new, Some(&[])).await;

    assert_eq!(
        node_ids(&s),
        set([
            pair("DemoGroup", "g1"),
            pair("DemoUser", "u1"),
            pair("DemoUser", "u9"),
            pair("OtherThing", "t1")
        ])
    );
    // u2 took its edges with it, including the other plugin's; the stale membership of
    // the fresh u1 went on its own; the other plugin's edge to u1 is not this run's.
    assert_eq!(edge_ids(&s), set([triple("t1", "SEES", "u1")]));
    assert_eq!(deleted.nodes["DemoUser"].deleted, 1);
    assert_eq!(deleted.edges["MEMBER_OF"].deleted, 2);
    assert_eq!(deleted.edges["SEES"].deleted, 1);
    assert_eq!(deleted.nodes["DemoGroup"].deleted, 0);
    assert_no_dangling_edges(&dir);
}

#[tokio::test]
async fn keeps_incomplete_labels_and_the_edges_touching_them() {
    let (dir, s) = store();
    let old = scope("demo", "org1", 1);
    put_nodes(&s, &old, "DemoUser", &["u1", "u2"]).await;
    put_nodes(&s, &old, "DemoGroup", &["g1", "g2"]).await;
    put_edges(
        &s,
        &old,
        "MEMBER_OF",
        "DemoUser",
        "DemoGroup",
        &[("u1", "g1"), ("u2", "g2")],
    )
    .await;
    put_edges(&s, &old, "KNOWS", "DemoUser", "DemoUser", &[("u1", "u2")]).await;
    publish(&s, &old, Some(&[])).await;

    // Listing groups failed this time: nothing was re-emitted but u1.
    let new = scope("demo", "org1", 2);
    put_nodes(&s, &new, "DemoUser", &["u1"]).await;
    let keep = [Incomplete {
        label: "DemoGroup".into(),
        parent: None,
        reason: "page 2 failed".into(),
    }];
    publish(&s, &new, Some(&keep)).await;

    assert_eq!(
        node_ids(&s),
        set([
            pair("DemoGroup", "g1"),
            pair("DemoGroup", "g2"),
            pair("DemoUser", "u1")
        ])
    );
    // u1's membership touches a kept group; u2's went with u2; KNOWS touched no kept node.
    assert_eq!(edge_ids(&s), set([triple("u1", "MEMBER_OF", "g1")]));
    assert_no_dangling_edges(&dir);
}

#[tokio::test]
async fn keeps_incomplete_labels_only_under_their_parent() {
    let (dir, s) = store();
    let old = scope("demo", "org1", 1);
    put_nodes(&s, &old, "DemoProject", &["p1", "p2"]).await;
    put_nodes(&s, &old, "DemoBucket", &["b1", "b2", "b3"]).await;
    put_edges(
        &s,
        &old,
        "HAS",
        "DemoProject",
        "DemoBucket",
        &[("p1", "b1"), ("p2", "b2")],
    )
    .await;
    publish(&s, &old, Some(&[])).await;

    // Buckets of p1 could not be listed; those of p2 could, and b2 is gone.
    let new = scope("demo", "org1", 2);
    put_nodes(&s, &new, "DemoProject", &["p1", "p2"]).await;
    let parent = NodeRef {
        label: "DemoProject".into(),
        key: "id".into(),
        value: "p1".into(),
    };
    let keep = [Incomplete {
        label: "DemoBucket".into(),
        parent: Some(parent),
        reason: "403".into(),
    }];
    let deleted = publish(&s, &new, Some(&keep)).await;

    assert_eq!(
        node_ids(&s),
        set([
            pair("DemoBucket", "b1"),
            pair("DemoProject", "p1"),
            pair("DemoProject", "p2")
        ])
    );
    assert_eq!(edge_ids(&s), set([triple("p1", "HAS", "b1")]));
    assert_eq!(deleted.nodes["DemoBucket"].deleted, 2);
    assert_eq!(deleted.edges["HAS"].deleted, 1);
    assert_no_dangling_edges(&dir);
}

#[tokio::test]
async fn deletes_a_stale_hub_after_every_edge_others_wrote_to_it() {
    let (dir, s) = store();
    let old = scope("demo", "org1", 1);
    let ids: Vec<String> = (0..40).map(|i| format!("n{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    put_nodes(&s, &old, "DemoNode", &ids).await;
    put_nodes(&s, &old, "DemoHub", &["hub"]).await;
    // A hub with more edges than a batch holds, written by another plugin: the hub's
    // node is deleted only after all its edges.
    let spokes: Vec<(&str, &str)> = ids.iter().map(|id| ("hub", *id)).collect();
    let other = scope("other", "org1", 1);
    put_edges(&s, &other, "SPOKE", "DemoHub", "DemoNode", &spokes).await;
    put_edges(
        &s,
        &old,
        "NEXT",
        "DemoNode",
        "DemoNode",
        &ids.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>(),
    )
    .await;
    publish_all(&s, &[&old, &other]).await;

    let new = scope("demo", "org1", 2);
    let deleted = publish(&s, &new, Some(&[])).await;
    assert!(node_ids(&s).is_empty());
    assert_eq!(deleted.nodes["DemoNode"].deleted, 40);
    assert_eq!(deleted.nodes["DemoHub"].deleted, 1);
    assert_eq!(deleted.edges["NEXT"].deleted, 39);
    assert_eq!(deleted.edges["SPOKE"].deleted, 40);
    // A second cleanup finds nothing left.
    let again = publish(&s, &new, Some(&[])).await;
    assert!(again.nodes.is_empty() && again.edges.is_empty());
    assert_no_dangling_edges(&dir);
}
