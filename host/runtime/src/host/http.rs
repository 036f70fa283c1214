use infragraph_fetch as fetch;

use crate::emission::Emission;
use crate::limits::LimitExceeded;
use crate::run_state::PluginState;
use crate::wit::since_v0_1_0::http;

/// Counts `n` more requests against the fetch limit and hands out the run's fetcher.
fn take_fetches(state: &mut PluginState, n: usize) -> wasmtime::Result<fetch::Fetcher> {
    let run = state.run("http.fetch")?;
    run.counts.fetches += n as u64;
    if run.counts.fetches > run.limits.fetches {
        return Err(LimitExceeded::new("fetches", run.limits.fetches).into());
    }
    run.out.advise(Emission::Fetched {
        requests: run.counts.fetches,
    });
    Ok(run.fetcher.clone())
}

impl http::Host for PluginState {
    async fn fetch(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::FetchError>> {
        let fetcher = take_fetches(self, 1)?;
        Ok(fetcher
            .fetch(to_host(request))
            .await
            .map(to_guest)
            .map_err(error))
    }

    async fn fetch_many(
        &mut self,
        requests: Vec<http::Request>,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::FetchError>>> {
        let fetcher = take_fetches(self, requests.len())?;
        let requests = requests.into_iter().map(to_host).collect();
        let results = fetcher.fetch_many(requests).await;
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
