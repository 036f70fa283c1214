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

#[cfg(test)]
pub(crate) mod fake {
    //! A host that records what the plugin sends and answers fetches from a closure.

    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    pub(crate) type Responder =
        Box<dyn FnMut(&http::Request) -> Result<http::Response, http::FetchError>>;

    #[derive(Default)]
    pub(crate) struct Record {
        pub(crate) scopes: Vec<types::NodeRef>,
        pub(crate) nodes: Vec<emit::NodeBatch>,
        pub(crate) edges: Vec<emit::EdgeBatch>,
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
            self.record.borrow_mut().nodes.push(batch.clone());
        }

        fn emit_edges(&mut self, batch: &emit::EdgeBatch) {
            self.record.borrow_mut().edges.push(batch.clone());
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
