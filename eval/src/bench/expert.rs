//! What a node does: the three expert kinds of the peer benchmark, as one
//! async body shared by the in-process invoker, the gRPC expert and the
//! `direct` baseline.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The 1 ms of the `sleep` expert.
pub const SLEEP: Duration = Duration::from_millis(1);
/// Keep-alive connections of the HTTP client (aiohttp's default, as measured).
pub const HTTP_POOL: usize = 100;

/// Names of the expert kinds, in report order.
pub const EXPERTS: [&str; 3] = ["noop", "sleep", "http"];

/// An expert kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpertKind {
    /// Returns `{"node", "ok", "n_inputs"}` at once.
    Noop,
    /// `tokio::time::sleep(1 ms)`, then the same map.
    Sleep,
    /// POSTs the map as JSON to the loopback echo server and returns the reply.
    Http,
}

impl ExpertKind {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExpertKind::Noop => "noop",
            ExpertKind::Sleep => "sleep",
            ExpertKind::Http => "http",
        }
    }
}

impl FromStr for ExpertKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "noop" => Ok(ExpertKind::Noop),
            "sleep" => Ok(ExpertKind::Sleep),
            "http" => Ok(ExpertKind::Http),
            other => Err(format!(
                "unknown expert `{other}`; known experts: {}",
                EXPERTS.join(", ")
            )),
        }
    }
}

/// The small map every node returns.
pub fn node_result(node: &str, n_inputs: u64) -> Value {
    json!({"node": node, "ok": true, "n_inputs": n_inputs})
}

/// One expert kind's body with the execution counters the peer benchmark
/// checks (`expert_calls == invocations x node_executions`).
#[derive(Debug)]
pub struct NodeBody {
    kind: ExpertKind,
    http: Option<HttpEcho>,
    calls: AtomicU64,
    requests: AtomicU64,
    max_requests: u64,
}

impl NodeBody {
    /// A body of `kind`; `http` is required for [`ExpertKind::Http`].
    /// At most `max_requests` loopback requests are sent; more fail the call.
    pub fn new(
        kind: ExpertKind,
        http: Option<HttpEcho>,
        max_requests: u64,
    ) -> anyhow::Result<Arc<NodeBody>> {
        if kind == ExpertKind::Http && http.is_none() {
            bail!("the `http` expert needs the echo server's URL");
        }
        Ok(Arc::new(NodeBody {
            kind,
            http,
            calls: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            max_requests,
        }))
    }

    /// The kind.
    pub fn kind(&self) -> ExpertKind {
        self.kind
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Loopback HTTP requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Performs one node execution.
    pub async fn call(&self, node: &str, n_inputs: u64) -> anyhow::Result<Value> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match self.kind {
            ExpertKind::Noop => Ok(node_result(node, n_inputs)),
            ExpertKind::Sleep => {
                tokio::time::sleep(SLEEP).await;
                Ok(node_result(node, n_inputs))
            }
            ExpertKind::Http => {
                let sent = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
                if sent > self.max_requests {
                    bail!(
                        "more than {} loopback requests in one combination; raise --http-max-requests",
                        self.max_requests
                    );
                }
                let http = self.http.as_ref().context("no echo server configured")?;
                http.post(&node_result(node, n_inputs)).await
            }
        }
    }
}

/// An HTTP/1.1 keep-alive client of the loopback echo server.
#[derive(Debug, Clone)]
pub struct HttpEcho {
    client: reqwest::Client,
    url: String,
}

impl HttpEcho {
    /// A client for `url` (e.g. `http://127.0.0.1:18080/echo`) keeping up to
    /// [`HTTP_POOL`] idle connections.
    pub fn new(url: &str) -> anyhow::Result<HttpEcho> {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(HTTP_POOL)
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(HttpEcho {
            client,
            url: url.to_owned(),
        })
    }

    /// The URL it posts to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `body` as JSON and parses the reply.
    pub async fn post(&self, body: &Value) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("POST {} failed; is the echo server running?", self.url))?;
        let status = response.status();
        let reply = response.bytes().await?;
        if !status.is_success() {
            bail!("POST {} answered {status}", self.url);
        }
        serde_json::from_slice(&reply)
            .with_context(|| format!("the reply of {} is not JSON", self.url))
    }
}
