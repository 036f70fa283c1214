use infragraph_fetch as fetch;

use crate::emission::{Emission, Stopped};
use crate::limits::LimitExceeded;
use crate::run_state::PluginState;
use crate::wit::since_v0_1_0::http;

/// Counts `n` more requests against the fetch limit and hands out the run's fetcher.
/// Stops the run instead once nothing it fetches could be written (the engine stopped
/// taking its records: its scope's lease was refused, a write failed): a plugin that
/// emits only after listing everything would otherwise send every request for nothing,
/// spending the account's rate limit.
///
/// The future returned with the fetcher resolves when that happens during the fetch,
/// which then gives up its requests.
fn take_fetches(
    state: &mut PluginState,
    n: usize,
) -> wasmtime::Result<(fetch::Fetcher, impl Future<Output = ()> + use<>)> {
    let run = state.run("http.fetch")?;
    if run.out.is_closed() {
        return Err(Stopped.into());
    }
    run.counts.fetches += n as u64;
    if run.counts.fetches > run.limits.fetches {
        return Err(LimitExceeded::new("fetches", run.limits.fetches).into());
    }
    run.out.advise(Emission::Fetched {
        requests: run.counts.fetches,
    });
    Ok((run.fetcher.clone(), run.out.closed()))
}

impl http::Host for PluginState {
    async fn fetch(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::FetchError>> {
        let (fetcher, stopped) = take_fetches(self, 1)?;
        tokio::select! {
            response = fetcher.fetch(to_host(request)) => Ok(response.map(to_guest).map_err(error)),
            () = stopped => Err(Stopped.into()),
        }
    }

    async fn fetch_many(
        &mut self,
        requests: Vec<http::Request>,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::FetchError>>> {
        let (fetcher, stopped) = take_fetches(self, requests.len())?;
        let requests = requests.into_iter().map(to_host).collect();
        let results = tokio::select! {
            results = fetcher.fetch_many(requests) => results,
            () = stopped => return Err(Stopped.into()),
        };
        Ok(results
            .into_iter()
            .map(|r| r.map(to_guest).map_err(error))
            .collect())
    }
}

fn to_host(r: http::Request) -> fetch::Request {
    fetch::Request {
        method: match r.method {
            http::Method::Get => fetch::Method::Get,
            http::Method::Post => fetch::Method::Post,
            http::Method::Put => fetch::Method::Put,
            http::Method::Patch => fetch::Method::Patch,
            http::Method::Delete => fetch::Method::Delete,
            http::Method::Head => fetch::Method::Head,
        },
        url: r.url,
        headers: r.headers,
        body: r.body,
    }
}

fn to_guest(r: fetch::Response) -> http::Response {
    http::Response {
        status: r.status,
        headers: r.headers,
        body: r.body,
    }
}

fn error(e: fetch::FetchError) -> http::FetchError {
    match e {
        fetch::FetchError::Denied(m) => http::FetchError::Denied(m),
        fetch::FetchError::Timeout(m) => http::FetchError::Timeout(m),
        fetch::FetchError::TooLarge(n) => http::FetchError::TooLarge(n),
        fetch::FetchError::Network(m) => http::FetchError::Network(m),
    }
}
