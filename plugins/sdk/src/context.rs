use serde::de::DeserializeOwned;

use crate::emit::{EdgeShape, Emitter};
use crate::host::Host;
use crate::wit::{log, types};
use crate::{FetchError, Prop, Request, Response, SyncError};

/// A node named by its label and the value of one of its properties, usually `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    /// The node's label.
    pub label: String,
    /// The property matched, usually `id`.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl NodeRef {
    /// The node of `label` whose `key` is `value`.
    pub fn new(
        label: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> NodeRef {
        NodeRef {
            label: label.into(),
            key: key.into(),
            value: value.into(),
        }
    }

    /// The node of `label` whose `id` is `id`.
    pub fn id(label: impl Into<String>, id: impl Into<String>) -> NodeRef {
        NodeRef::new(label, "id", id)
    }

    fn into_wit(self) -> types::NodeRef {
        types::NodeRef {
            label: self.label,
            key: self.key,
            value: self.value,
        }
    }
}

/// How much a log message matters to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Useful when something goes wrong.
    Debug,
    /// Normal progress.
    Info,
    /// Something was skipped or looks wrong, but the sync goes on.
    Warn,
    /// Something failed.
    Error,
}

impl From<Level> for log::Level {
    fn from(l: Level) -> Self {
        match l {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        }
    }
}

/// The plugin's handle on the host during `sync`: emitting records, fetching, logging and
/// the per-scope state store.
///
/// Records are buffered and sent in batches of [`set_batch_size`](Context::set_batch_size)
/// rows (1,000 by default); what is still buffered is sent when `sync` returns `Ok`, or
/// earlier with [`flush`](Context::flush). After `sync` returns an error, buffered records
/// are dropped.
pub struct Context {
    host: Box<dyn Host>,
    emitter: Emitter,
    /// Whether [`Context::scope`] was called: the host takes no record before it.
    scoped: bool,
}

impl Context {
    pub(crate) fn new(host: Box<dyn Host>) -> Context {
        Context {
            host,
            emitter: Emitter::new(),
            scoped: false,
        }
    }

    /// Stops the plugin at its first record before a scope: records are buffered, so the
    /// host would only find out when they are sent, often after every request was made.
    fn require_scope(&self, what: &str, label: &str) {
        assert!(
            self.scoped,
            "cx.{what}({label:?}, ..) before cx.scope(..): declare the scope (the node this \
             sync covers) first, then emit records"
        );
    }

    /// Declares the node this sync covers, e.g. `("ScalewayOrganization", org_id)`. Cleanup
    /// after a successful sync is limited to it. Call it once, before the first emit, and
    /// best before the first request: the host returns only once this run holds the
    /// scope (another run may hold it, and then this one is stopped here, or waits), so
    /// a run that may not sync the account sends it nothing.
    pub fn scope(&mut self, label: &str, id: &str) {
        self.scoped = true;
        self.host.declare_scope(&types::NodeRef {
            label: label.to_owned(),
            key: "id".to_owned(),
            value: id.to_owned(),
        });
    }

    /// Starts a node of `label` keyed by `id`; add properties with
    /// [`prop`](NodeBuilder::prop) and buffer it with [`emit`](NodeBuilder::emit).
    ///
    /// # Panics
    ///
    /// Before [`scope`](Context::scope): the host takes no record before it.
    pub fn node(&mut self, label: &str, id: impl AsRef<str>) -> NodeBuilder<'_> {
        self.require_scope("node", label);
        let buffer = self.emitter.node_buffer(label);
        NodeBuilder {
            row: self.emitter.begin_node(buffer, id.as_ref()),
            cx: self,
            buffer,
            hint: 0,
        }
    }

    /// Starts an edge `(from)-[:rel_type]->(to)`. Each end is `(label, key, value)`: the
    /// node of `label` whose property `key` (usually `"id"`) is `value`. Buffer it with
    /// [`emit`](EdgeBuilder::emit).
    pub fn edge(
        &mut self,
        rel_type: &str,
        from: (&str, &str, impl AsRef<str>),
        to: (&str, &str, impl AsRef<str>),
    ) -> EdgeBuilder<'_> {
        self.require_scope("edge", rel_type);
        let buffer = self.emitter.edge_buffer(EdgeShape {
            rel_type,
            from_label: from.0,
            from_key: from.1,
            to_label: to.0,
            to_key: to.1,
        });
        EdgeBuilder {
            row: self
                .emitter
                .begin_edge(buffer, (from.2.as_ref(), to.2.as_ref())),
            cx: self,
            buffer,
            hint: 0,
        }
    }

    /// Says that not every node of `label` (under `parent`, when given) could be listed,
    /// e.g. a zone answered 403, so the host keeps stale nodes of that label.
    pub fn mark_incomplete(&mut self, label: &str, parent: Option<NodeRef>, reason: &str) {
        let parent = parent.map(NodeRef::into_wit);
        self.host.mark_incomplete(label, parent.as_ref(), reason);
    }

    /// Sends every buffered record now.
    pub fn flush(&mut self) {
        self.emitter.flush(self.host.as_mut());
    }

    /// Rows per batch from now on (at least 1). Larger batches mean fewer host calls and
    /// more guest memory.
    pub fn set_batch_size(&mut self, rows: usize) {
        self.emitter.set_batch_size(rows);
    }

    /// Logs `message` under the plugin's name.
    pub fn log(&mut self, level: Level, message: impl AsRef<str>) {
        self.host.log(level.into(), message.as_ref());
    }

    /// Logs at [`Level::Debug`].
    pub fn debug(&mut self, message: impl AsRef<str>) {
        self.log(Level::Debug, message);
    }

    /// Logs at [`Level::Info`].
    pub fn info(&mut self, message: impl AsRef<str>) {
        self.log(Level::Info, message);
    }

    /// Logs at [`Level::Warn`].
    pub fn warn(&mut self, message: impl AsRef<str>) {
        self.log(Level::Warn, message);
    }

    /// Reports progress: `phase` names the current step (e.g. `users`), `done` counts its
    /// units, `total` is known or not.
    pub fn progress(&mut self, phase: &str, done: u64, total: Option<u64>) {
        self.host.progress(phase, done, total);
    }

    /// Reads `key` from the plugin's state for the declared scope.
    pub fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.host.state_get(key)
    }

    /// Writes `key` (`None` deletes it). Kept only if the sync succeeds.
    pub fn state_set(&mut self, key: &str, value: Option<&[u8]>) {
        self.host.state_set(key, value);
    }

    /// Sends one request. The host retries transient failures; any status is a response.
    pub fn fetch(&mut self, request: Request) -> Result<Response, FetchError> {
        let request = request.into_wit();
        match self.host.fetch(&request) {
            Ok(r) => Ok(Response::from_wit(r, request.url)),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends all `requests` in one host call; the host runs them concurrently. The
    /// outcomes are in the order of the requests.
    pub fn fetch_many(&mut self, requests: Vec<Request>) -> Vec<Result<Response, FetchError>> {
        if requests.is_empty() {
            return Vec::new();
        }
        let requests: Vec<_> = requests.into_iter().map(Request::into_wit).collect();
        let mut outcomes = self.host.fetch_many(&requests).into_iter();
        requests
            .into_iter()
            .map(|req| match outcomes.next() {
                Some(Ok(r)) => Ok(Response::from_wit(r, req.url)),
                Some(Err(e)) => Err(e.into()),
                None => Err(FetchError::Network(format!(
                    "the host gave no outcome for {}",
                    req.url
                ))),
            })
            .collect()
    }

    /// GETs `url` with `headers` and parses a 2xx JSON body into `T`.
    pub fn get_json<T: DeserializeOwned>(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<T, SyncError> {
        let mut request = Request::get(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = self
            .fetch(request)
            .map_err(|e| SyncError::fetch(format!("{url}: {e}")))?;
        response.error_for_status()?.json()
    }
}

/// A node being built; nothing is sent unless [`emit`](NodeBuilder::emit) is called.
#[must_use = "a node is only buffered when `.emit()` is called"]
pub struct NodeBuilder<'c> {
    cx: &'c mut Context,
    buffer: usize,
    /// The row its properties are set at, in its buffer's columns.
    row: usize,
    hint: usize,
}

impl NodeBuilder<'_> {
    /// Sets property `name`; a later value for the same name replaces an earlier one.
    pub fn prop<'v>(mut self, name: &str, value: impl Into<Prop<'v>>) -> Self {
        self.set(name, value);
        self
    }

    /// [`prop`](Self::prop) through a reference, for properties set in a loop or a
    /// closure.
    pub fn set<'v>(&mut self, name: &str, value: impl Into<Prop<'v>>) {
        let reserve = self.cx.emitter.reserve();
        let columns = &mut self.cx.emitter.node(self.buffer).columns;
        let i = columns.index(name, &mut self.hint);
        columns.set(i, self.row, value.into(), reserve);
    }

    /// Buffers the node; a full batch is sent to the host.
    pub fn emit(self) {
        let Context { host, emitter, .. } = self.cx;
        emitter.push_node(self.buffer, host.as_mut());
    }
}

/// An edge being built; nothing is sent unless [`emit`](EdgeBuilder::emit) is called.
#[must_use = "an edge is only buffered when `.emit()` is called"]
pub struct EdgeBuilder<'c> {
    cx: &'c mut Context,
    buffer: usize,
    /// The row its properties are set at, in its buffer's columns.
    row: usize,
    hint: usize,
}

impl EdgeBuilder<'_> {
    /// Sets property `name` of the relationship.
    pub fn prop<'v>(mut self, name: &str, value: impl Into<Prop<'v>>) -> Self {
        let reserve = self.cx.emitter.reserve();
        let columns = &mut self.cx.emitter.edge(self.buffer).columns;
        let i = columns.index(name, &mut self.hint);
        columns.set(i, self.row, value.into(), reserve);
        self
    }

    /// Buffers the edge; a full batch is sent to the host.
    pub fn emit(self) {
        let Context { host, emitter, .. } = self.cx;
        emitter.push_edge(self.buffer, host.as_mut());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::Value;
    use crate::host::fake::{FakeHost, Record, Responder};
    use crate::wit::http;

    /// A context whose scope is declared, as a sync's is before it emits.
    pub(crate) fn context(respond: Responder) -> (Context, Rc<RefCell<Record>>) {
        let (host, record) = FakeHost::new(respond);
        let mut cx = Context::new(Box::new(host));
        cx.scoped = true;
        (cx, record)
    }

    fn no_network() -> Responder {
        Box::new(|r| Err(http::FetchError::Denied(r.url.clone())))
    }

    fn text(v: &types::Value) -> Option<&str> {
        match v {
            types::Value::Text(s) => Some(s),
            _ => None,
        }
    }

    #[test]
    #[should_panic(expected = "cx.node(\"A\", ..) before cx.scope(..)")]
    fn a_record_before_the_scope_stops_the_plugin_naming_cx_scope() {
        let (host, _) = FakeHost::new(no_network());
        let mut cx = Context::new(Box::new(host));
        cx.node("A", "a1").emit();
    }

    #[test]
    fn batches_by_label_with_the_union_of_columns() {
        let (mut cx, record) = context(no_network());
        cx.set_batch_size(3);
        cx.node("A", "a1").prop("name", "one").emit();
        cx.node("B", "b1").prop("x", 1).emit();
        cx.node("A", "a2")
            .prop("count", 2)
            .prop("name", "two")
            .emit();
        assert!(
            record.borrow().nodes.is_empty(),
            "nothing is sent before a batch fills"
        );
        cx.node("A", "a3").emit();
        {
            let r = record.borrow();
            assert_eq!(r.nodes.len(), 1);
            let batch = &r.nodes[0];
            assert_eq!(batch.label, "A");
            assert_eq!(batch.columns, ["name", "count"]);
            let ids: Vec<_> = batch.rows.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, ["a1", "a2", "a3"]);
            assert!(batch.rows.iter().all(|r| r.values.len() == 2));
            assert_eq!(text(&batch.rows[0].values[0]), Some("one"));
            assert!(matches!(batch.rows[0].values[1], types::Value::Null));
            assert!(matches!(batch.rows[1].values[1], types::Value::Int(2)));
            assert_eq!(text(&batch.rows[1].values[0]), Some("two"));
            assert!(matches!(
                batch.rows[2].values[..],
                [types::Value::Null, types::Value::Null]
            ));
        }
        cx.node("A", "a4").prop("count", 4).emit();
        cx.flush();
        let r = record.borrow();
        assert_eq!(r.nodes.len(), 3);
        assert_eq!(r.nodes[1].label, "A");
        assert_eq!(
            r.nodes[1].columns,
            ["count"],
            "a new batch starts with no columns"
        );
        assert_eq!(r.nodes[2].label, "B");
    }

    #[test]
    fn a_node_dropped_unsent_leaves_nothing_and_a_property_set_twice_keeps_the_last() {
        let (mut cx, record) = context(no_network());
        cx.node("A", "a1").prop("n", 1).emit();
        drop(
            cx.node("A", "dropped")
                .prop("n", 99)
                .prop("only_dropped", "x"),
        );
        cx.node("A", "a2").prop("n", 2).prop("n", 3).emit();
        drop(cx.node("A", "dropped-before-flush").prop("n", 100));
        cx.flush();
        let r = record.borrow();
        let batch = &r.nodes[0];
        let rows: Vec<_> = batch
            .rows
            .iter()
            .map(|r| (r.id.as_str(), format!("{:?}", r.values)))
            .collect();
        assert_eq!(batch.columns, ["n", "only_dropped"]);
        assert_eq!(
            rows,
            [
                ("a1", "[Value::Int(1), Value::Null]".to_string()),
                ("a2", "[Value::Int(3), Value::Null]".to_string()),
            ]
        );
    }

    #[test]
    fn borrowed_and_owned_values_are_written_alike() {
        let (mut cx, record) = context(no_network());
        let name = String::from("web");
        let tags = vec!["a".to_string(), "b".to_string()];
        let ports = vec![80i64, 443];
        let id = String::from("n1");
        cx.node("N", &id)
            .prop("s", name.as_str())
            .prop("t", &tags)
            .prop("p", &ports[..])
            .prop("o", Some(&name))
            .prop("none", None::<&str>)
            .emit();
        cx.node("N", id.replace('1', "2"))
            .prop("s", name.clone())
            .prop("t", tags.clone())
            .prop("p", Value::IntList(ports.clone()))
            .prop("o", Some(name.clone()))
            .prop("none", Value::Null)
            .emit();
        drop(cx.edge("E", ("N", "id", "dropped"), ("N", "id", "x")));
        cx.edge("E", ("N", "id", &id), ("N", "id", String::from("n2")))
            .prop("w", &name)
            .emit();
        cx.flush();
        let r = record.borrow();
        let rows = &r.nodes[0].rows;
        assert_eq!((rows[0].id.as_str(), rows[1].id.as_str()), ("n1", "n2"));
        assert_eq!(
            format!("{:?}", rows[0].values),
            format!("{:?}", rows[1].values)
        );
        assert_eq!(
            format!("{:?}", rows[0].values),
            r#"[Value::Text("web"), Value::TextList(["a", "b"]), Value::IntList([80, 443]), Value::Text("web"), Value::Null]"#
        );
        let edges = &r.edges[0].rows;
        assert_eq!(edges.len(), 1, "the dropped edge is not sent");
        assert_eq!((edges[0].from.as_str(), edges[0].to.as_str()), ("n1", "n2"));
    }

    #[test]
    fn each_batch_sends_the_columns_its_rows_set_typed_afresh() {
        let (mut cx, record) = context(no_network());
        cx.set_batch_size(2);
        cx.node("N", "a").prop("x", "text").emit();
        cx.node("N", "b").prop("y", 1).emit();
        // The next batch reuses the columns' memory; "x" changes type, "y" is unset.
        cx.node("N", "c").prop("x", 7).emit();
        cx.node("N", "d").prop("x", None::<i64>).emit();
        cx.node("N", "e").emit();
        cx.flush();
        let r = record.borrow();
        let batches: Vec<_> = r
            .nodes
            .iter()
            .map(|b| {
                (
                    b.columns.clone(),
                    format!("{:?}", b.rows.iter().map(|r| &r.values).collect::<Vec<_>>()),
                )
            })
            .collect();
        assert_eq!(
            batches,
            [
                (
                    vec!["x".to_string(), "y".to_string()],
                    r#"[[Value::Text("text"), Value::Null], [Value::Null, Value::Int(1)]]"#
                        .to_string()
                ),
                (
                    vec!["x".to_string()],
                    "[[Value::Int(7)], [Value::Null]]".to_string()
                ),
                (vec![], "[[]]".to_string()),
            ]
        );
    }

    #[test]
    fn edges_batch_by_shape() {
        let (mut cx, record) = context(no_network());
        cx.edge("MEMBER_OF", ("U", "id", "u1"), ("G", "id", "g1"))
            .emit();
        cx.edge("MEMBER_OF", ("U", "email", "a@x"), ("G", "id", "g1"))
            .prop("since", "2024")
            .emit();
        cx.edge("MEMBER_OF", ("U", "id", "u2"), ("G", "id", "g2"))
            .prop("since", "2023")
            .emit();
        cx.flush();
        let r = record.borrow();
        assert_eq!(r.edges.len(), 2);
        let by_id = &r.edges[0];
        assert_eq!(
            (by_id.from_key.as_str(), by_id.to_label.as_str()),
            ("id", "G")
        );
        assert_eq!(by_id.columns, ["since"]);
        assert_eq!(by_id.rows.len(), 2);
        assert!(matches!(by_id.rows[0].values[..], [types::Value::Null]));
        assert_eq!(
            (by_id.rows[1].from.as_str(), by_id.rows[1].to.as_str()),
            ("u2", "g2")
        );
        assert_eq!(r.edges[1].from_key, "email");
    }

    #[test]
    fn many_rows_keep_their_values() {
        let (mut cx, record) = context(no_network());
        for i in 0..2_500i64 {
            let mut n = cx.node("N", format!("n{i}")).prop("i", i);
            if i % 2 == 0 {
                n = n.prop("even", true);
            }
            n.prop("name", format!("node {i}")).emit();
        }
        cx.flush();
        let r = record.borrow();
        let sizes: Vec<_> = r.nodes.iter().map(|b| b.rows.len()).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        for batch in &r.nodes {
            assert_eq!(batch.columns, ["i", "even", "name"]);
            for row in &batch.rows {
                let i: i64 = row.id[1..].parse().unwrap();
                assert!(matches!(row.values[0], types::Value::Int(v) if v == i));
                assert_eq!(
                    matches!(row.values[1], types::Value::Boolean(true)),
                    i % 2 == 0
                );
                assert_eq!(text(&row.values[2]), Some(format!("node {i}").as_str()));
            }
        }
    }

    #[test]
    fn scope_state_logs_and_incomplete() {
        let (mut cx, record) = context(no_network());
        cx.scope("AcmeTenant", "t1");
        cx.state_set("k", Some(b"v"));
        assert_eq!(cx.state_get("k").as_deref(), Some(&b"v"[..]));
        cx.state_set("k", None);
        assert_eq!(cx.state_get("k"), None);
        cx.warn(format!("zone {} skipped", 3));
        cx.mark_incomplete("Server", Some(NodeRef::id("Zone", "z1")), "403");
        let r = record.borrow();
        assert_eq!(
            (r.scopes[0].label.as_str(), r.scopes[0].value.as_str()),
            ("AcmeTenant", "t1")
        );
        assert!(matches!(&r.logs[..], [(log::Level::Warn, m)] if m == "zone 3 skipped"));
        assert_eq!(r.incomplete[0].0, "Server");
        assert_eq!(r.incomplete[0].1.as_ref().unwrap().key, "id");
    }

    #[test]
    fn fetch_keeps_the_url_and_get_json_checks_status() {
        let (mut cx, _) = context(Box::new(|r| {
            let status = if r.url.ends_with("/ok") { 200 } else { 401 };
            Ok(http::Response {
                status,
                headers: vec![],
                body: br#"{"a":1}"#.to_vec(),
            })
        }));
        let r = cx.fetch(Request::get("https://x/ok")).unwrap();
        assert_eq!((r.url.as_str(), r.status), ("https://x/ok", 200));
        let v: serde_json::Value = cx.get_json("https://x/ok", &[("accept", "json")]).unwrap();
        assert_eq!(v["a"], 1);
        let e = cx
            .get_json::<serde_json::Value>("https://x/no", &[])
            .unwrap_err();
        assert!(matches!(e, SyncError::Auth(m) if m.contains("https://x/no answered HTTP 401")));
        let all = cx.fetch_many(vec![
            Request::get("https://x/ok"),
            Request::get("https://x/no"),
        ]);
        assert_eq!(
            all.iter()
                .map(|r| r.as_ref().unwrap().status)
                .collect::<Vec<_>>(),
            [200, 401]
        );
    }
}
