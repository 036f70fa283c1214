//! The host's imports behind a trait, so that buffering and pagination run natively in unit
//! tests against a fake: natively the generated imports are unreachable.

use crate::wit::{emit, http, log, state, types};

pub(crate) trait Host {
    fn declare_scope(&mut self, scope: &types::NodeRef);
    fn emit_nodes(&mut self, batch: &emit::NodeBatch);
    fn emit_edges(&mut self, batch: &emit::EdgeBatch);
    fn mark_incomplete(&mut self, label: &str, parent: Option<&types::NodeRef>, reason: &str);
    fn log(&mut self, level: log::Level, message: &str);
    fn progress(&mut self, phase: &str, done: u64, total: Option<u64>);
    fn state_get(&mut self, key: &str) -> Option<Vec<u8>>;
    fn state_set(&mut self, key: &str, value: Option<&[u8]>);
    fn fetch(&mut self, request: &http::Request) -> Result<http::Response, http::FetchError>;
    fn fetch_many(
        &mut self,
        requests: &[http::Request],
    ) -> Vec<Result<http::Response, http::FetchError>>;
}

/// The real host, through the component's imports.
pub(crate) struct WitHost;

impl Host for WitHost {
    fn declare_scope(&mut self, scope: &types::NodeRef) {
        emit::declare_scope(scope);
    }

    fn emit_nodes(&mut self, batch: &emit::NodeBatch) {
        emit::emit_nodes(batch);
    }

    fn emit_edges(&mut self, batch: &emit::EdgeBatch) {
        emit::emit_edges(batch);
    }

    fn mark_incomplete(&mut self, label: &str, parent: Option<&types::NodeRef>, reason: &str) {
        emit::mark_incomplete(label, parent, reason);
    }

    fn log(&mut self, level: log::Level, message: &str) {
        log::log(level, message);
    }

    fn progress(&mut self, phase: &str, done: u64, total: Option<u64>) {
        log::progress(phase, done, total);
    }

    fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
        state::get(key)
    }

    fn state_set(&mut self, key: &str, value: Option<&[u8]>) {
        state::set(key, value);
    }

    fn fetch(&mut self, request: &http::Request) -> Result<http::Response, http::FetchError> {
        http::fetch(request)
    }

    fn fetch_many(
        &mut self,
        requests: &[http::Request],
    ) -> Vec<Result<http::Response, http::FetchError>> {
        http::fetch_many(requests)
    }
}

pub(crate) mod fake {
    //! A host that records what the plugin sends and answers fetches from a closure.

    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    pub(crate) type Responder =
        Box<dyn FnMut(&http::Request) -> Result<http::Response, http::FetchError>>;

    /// A node batch as the host reads it: rows of values.
    #[derive(Debug)]
    pub(crate) struct Nodes {
        pub(crate) label: String,
        pub(crate) columns: Vec<String>,
        pub(crate) rows: Vec<NodeRow>,
    }

    #[derive(Debug)]
    pub(crate) struct NodeRow {
        pub(crate) id: String,
        pub(crate) values: Vec<types::Value>,
    }

    /// An edge batch as the host reads it.
    #[derive(Debug)]
    pub(crate) struct Edges {
        pub(crate) rel_type: String,
        pub(crate) from_label: String,
        pub(crate) from_key: String,
        pub(crate) to_label: String,
        pub(crate) to_key: String,
        pub(crate) columns: Vec<String>,
        pub(crate) rows: Vec<EdgeRow>,
    }

    #[derive(Debug)]
    pub(crate) struct EdgeRow {
        pub(crate) from: String,
        pub(crate) to: String,
        pub(crate) values: Vec<types::Value>,
    }

    fn strings(t: &emit::Texts) -> Vec<String> {
        let mut start = 0;
        t.ends
            .iter()
            .map(|&end| {
                let s = t.data[start..end as usize].to_string();
                start = end as usize;
                s
            })
            .collect()
    }

    fn lists<T: Clone>(items: &[T], ends: &[u32]) -> Vec<Vec<T>> {
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let l = items[start..end as usize].to_vec();
                start = end as usize;
                l
            })
            .collect()
    }

    /// Row `i`'s values, column by column, as the host decodes them.
    fn rows(columns: &[emit::Column], n: usize) -> Vec<Vec<types::Value>> {
        use types::Value as V;
        let mut rows = vec![Vec::new(); n];
        for c in columns {
            let values: Vec<V> = match &c.values {
                emit::Values::Boolean(l) => l.iter().map(|&b| V::Boolean(b)).collect(),
                emit::Values::Int(l) => l.iter().map(|&i| V::Int(i)).collect(),
                emit::Values::Float(l) => l.iter().map(|&f| V::Float(f)).collect(),
                emit::Values::Text(t) => strings(t).into_iter().map(V::Text).collect(),
                emit::Values::TextList(l) => lists(&strings(&l.items), &l.ends)
                    .into_iter()
                    .map(V::TextList)
                    .collect(),
                emit::Values::IntList(l) => lists(&l.items, &l.ends)
                    .into_iter()
                    .map(V::IntList)
                    .collect(),
                emit::Values::Mixed(l) => l.clone(),
            };
            assert_eq!(values.len(), n, "column {} has a value per row", c.name);
            for (i, v) in values.into_iter().enumerate() {
                let v = if c.absent.contains(&(i as u32)) {
                    V::Null
                } else {
                    v
                };
                rows[i].push(v);
            }
        }
        rows
    }

    #[derive(Default)]
    pub(crate) struct Record {
        pub(crate) scopes: Vec<types::NodeRef>,
        pub(crate) nodes: Vec<Nodes>,
        pub(crate) edges: Vec<Edges>,
        pub(crate) incomplete: Vec<(String, Option<types::NodeRef>, String)>,
        pub(crate) logs: Vec<(log::Level, String)>,
        pub(crate) state: Vec<(String, Vec<u8>)>,
        /// URLs of each call to `fetch` (one) or `fetch-many` (several).
        pub(crate) calls: Vec<Vec<String>>,
    }

    pub(crate) struct FakeHost {
        pub(crate) record: Rc<RefCell<Record>>,
        pub(crate) respond: Responder,
    }

    impl FakeHost {
        pub(crate) fn new(respond: Responder) -> (FakeHost, Rc<RefCell<Record>>) {
            let record = Rc::new(RefCell::new(Record::default()));
            (
                FakeHost {
                    record: record.clone(),
                    respond,
                },
                record,
            )
        }
    }

    impl Host for FakeHost {
        fn declare_scope(&mut self, scope: &types::NodeRef) {
            self.record.borrow_mut().scopes.push(scope.clone());
        }

        fn emit_nodes(&mut self, batch: &emit::NodeBatch) {
            let ids = strings(&batch.ids);
            let values = rows(&batch.columns, ids.len());
            self.record.borrow_mut().nodes.push(Nodes {
                label: batch.label.clone(),
                columns: batch.columns.iter().map(|c| c.name.clone()).collect(),
                rows: ids
                    .into_iter()
                    .zip(values)
                    .map(|(id, values)| NodeRow { id, values })
                    .collect(),
            });
        }

        fn emit_edges(&mut self, batch: &emit::EdgeBatch) {
            let from = strings(&batch.from);
            let to = strings(&batch.to);
            assert_eq!(from.len(), to.len(), "an end per start");
            let values = rows(&batch.columns, from.len());
            self.record.borrow_mut().edges.push(Edges {
                rel_type: batch.rel_type.clone(),
                from_label: batch.from_label.clone(),
                from_key: batch.from_key.clone(),
                to_label: batch.to_label.clone(),
                to_key: batch.to_key.clone(),
                columns: batch.columns.iter().map(|c| c.name.clone()).collect(),
                rows: from
                    .into_iter()
                    .zip(to)
                    .zip(values)
                    .map(|((from, to), values)| EdgeRow { from, to, values })
                    .collect(),
            });
        }

        fn mark_incomplete(&mut self, label: &str, parent: Option<&types::NodeRef>, reason: &str) {
            let entry = (label.to_owned(), parent.cloned(), reason.to_owned());
            self.record.borrow_mut().incomplete.push(entry);
        }

        fn log(&mut self, level: log::Level, message: &str) {
            self.record
                .borrow_mut()
                .logs
                .push((level, message.to_owned()));
        }

        fn progress(&mut self, _phase: &str, _done: u64, _total: Option<u64>) {}

        fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
            let record = self.record.borrow();
            record
                .state
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        }

        fn state_set(&mut self, key: &str, value: Option<&[u8]>) {
            let mut record = self.record.borrow_mut();
            record.state.retain(|(k, _)| k != key);
            if let Some(v) = value {
                record.state.push((key.to_owned(), v.to_vec()));
            }
        }

        fn fetch(&mut self, request: &http::Request) -> Result<http::Response, http::FetchError> {
            self.record
                .borrow_mut()
                .calls
                .push(vec![request.url.clone()]);
            (self.respond)(request)
        }

        fn fetch_many(
            &mut self,
            requests: &[http::Request],
        ) -> Vec<Result<http::Response, http::FetchError>> {
            let urls = requests.iter().map(|r| r.url.clone()).collect();
            self.record.borrow_mut().calls.push(urls);
            requests.iter().map(|r| (self.respond)(r)).collect()
        }
    }
}
