//! The HTTP client of REST peers: round-robin over a peer's addresses with failover. The
//! typed clients `contracts::peers` generates from each service's `openapi.yaml` call
//! through it, so a route or a field the service does not declare does not compile.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Serialize, de::DeserializeOwned};

/// Why a call to a REST peer failed.
#[derive(Debug)]
pub enum ClientError {
    /// No address answered; `tried` lists them in the order they were tried.
    Unreachable {
        tried: Vec<String>,
        source: reqwest::Error,
    },
    /// The peer answered with a non-success status; `error` is its `{"error": ...}`.
    Status { status: u16, error: Option<String> },
    /// The peer answered 2xx with a body that does not match its openapi.yaml.
    Decode(reqwest::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { tried, source } => {
                write!(f, "no address answered ({}): {source}", tried.join(", "))
            }
            Self::Status { status, error } => match error {
                Some(e) => write!(f, "status {status}: {e}"),
                None => write!(f, "status {status}"),
            },
            Self::Decode(e) => write!(f, "unexpected response body: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// One peer behind one or more addresses: requests go round-robin, and an address that
/// does not accept the connection is skipped for the next one (failover). Clones share
/// the connection pool and the round-robin position.
#[derive(Clone, Debug)]
pub struct HttpPeer {
    http: reqwest::Client,
    urls: Arc<[String]>,
    next: Arc<AtomicUsize>,
}

impl HttpPeer {
    /// A peer at `urls` (e.g. `http://127.0.0.1:5000`), tried in turn.
    pub fn new(urls: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            urls: urls.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sends a request and decodes a JSON answer.
    pub async fn send<B, R>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let response = self.exchange(method, path, body).await?;
        response.json().await.map_err(ClientError::Decode)
    }

    /// Sends a request whose success answer carries nothing to decode.
    pub async fn send_no_content<B>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError>
    where
        B: Serialize + ?Sized,
    {
        self.exchange(method, path, body).await.map(drop)
    }

    async fn exchange<B>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError>
    where
        B: Serialize + ?Sized,
    {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut tried = Vec::new();
        let mut last = None;
        for i in 0..self.urls.len() {
            let base = &self.urls[(start + i) % self.urls.len()];
            let mut request = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let error = response
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from));
                    return Err(ClientError::Status { status, error });
                }
                // Only a refused or timed-out connection moves on: the request never ran.
                Err(e) if e.is_connect() => {
                    tried.push(base.clone());
                    last = Some(e);
                }
                Err(e) => {
                    tried.push(base.clone());
                    return Err(ClientError::Unreachable { tried, source: e });
                }
            }
        }
        Err(ClientError::Unreachable {
            tried,
            source: last.expect("a peer has at least one address"),
        })
    }
}
