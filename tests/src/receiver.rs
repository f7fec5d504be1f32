//! A local HTTP receiver for bindings: records every request on a free
//! loopback port and answers with a scripted status.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The HTTP method.
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body as JSON (`null` when it is not JSON).
    pub body: Value,
}

/// A local HTTP receiver: records every request and answers with the next
/// status of its script (then 201).
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

async fn record(
    State(state): State<ReceiverState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .received
        .lock()
        .expect("receiver lock")
        .push(Received {
            method,
            uri: uri.to_string(),
            headers,
            body,
        });
    let mut script = state.script.lock().expect("receiver lock");
    let status = if script.is_empty() {
        201
    } else {
        script.remove(0)
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED)
}

impl Receiver {
    /// Starts a receiver on a free loopback port answering `script` first.
    pub async fn start(script: &[u16]) -> anyhow::Result<Receiver> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            received: Arc::clone(&received),
            script: Arc::new(Mutex::new(script.to_vec())),
        };
        let app = axum::Router::new().fallback(record).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, received })
    }

    /// `http://127.0.0.1:<port>`, for allowlists and URLs.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("receiver lock").clone()
    }
}
