/// An HTTP method a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD: the response has no body.
    Head,
}

impl From<Method> for reqwest::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        }
    }
}

/// A request as the plugin wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Absolute URL, query included. It may not hold placeholders or user info.
    pub url: String,
    /// Headers in order; values may hold `{secret:NAME}` for credentials used in headers.
    pub headers: Vec<(String, String)>,
    /// Empty for none; may hold `{secret:NAME}` for JSON-body and form-body credentials.
    pub body: Vec<u8>,
}

impl Request {
    /// A GET of `url` with no headers.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A response as the plugin receives it: after redirects, with every secret value in its
/// headers and body replaced by `{secret:NAME}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code; 4xx and 5xx are responses too.
    pub status: u16,
    /// Headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`FetchLimits::max_body_bytes`](crate::FetchLimits) long.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
