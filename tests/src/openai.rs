//! A scripted OpenAI-compatible chat-completions server: real HTTP (axum)
//! on `127.0.0.1:0` answering `POST /v1/chat/completions` with canned
//! completions, in order, and recording every request, so that tests can
//! drive the `llm` expert (planner, critic) deterministically and check
//! what it sent.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use synod_integration_tests::openai::{ScriptedModel, completion};
//! let model = ScriptedModel::start(vec![completion(r#"{"steps": []}"#)]).await?;
//! let config = synod_expert_llm::Config::new(model.base_url(), "scripted");
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

/// The response body of a completion whose message content is `content`
/// (finish reason `stop`, a fixed token usage).
pub fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "scripted",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": 200, "completion_tokens": 50, "total_tokens": 250 }
    })
}

/// A completion whose content is `value` as JSON text.
pub fn json_completion(value: &Value) -> Value {
    completion(&value.to_string())
}

#[derive(Debug, Default)]
struct Script {
    completions: Mutex<VecDeque<Value>>,
    requests: Mutex<Vec<Value>>,
}

/// The running server. Dropping it leaves the server running until the
/// test's runtime ends.
#[derive(Debug, Clone)]
pub struct ScriptedModel {
    script: Arc<Script>,
    addr: SocketAddr,
}

impl ScriptedModel {
    /// Serves `completions` (response bodies, see [`completion`]) in
    /// order; a request after the last one gets HTTP 500 saying so.
    pub async fn start(completions: Vec<Value>) -> anyhow::Result<ScriptedModel> {
        let script = Arc::new(Script {
            completions: Mutex::new(completions.into()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the scripted model server")?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("scripted model server stopped: {error}");
            }
        });
        Ok(ScriptedModel { script, addr })
    }

    /// The base URL for `SYNOD_LLM_ENDPOINT`, `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.script.requests).clone()
    }

    /// Completions not served yet.
    pub fn remaining(&self) -> usize {
        lock(&self.script.completions).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn answer(
    State(script): State<Arc<Script>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    lock(&script.requests).push(body);
    match lock(&script.completions).pop_front() {
        Some(completion) => (StatusCode::OK, Json(completion)),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": { "message": "the scripted model has no completion left" } })),
        ),
    }
}
