//! A fake OpenAI-compatible endpoint: a real axum server on 127.0.0.1:0
//! answering `POST /v1/chat/completions` with scripted replies and
//! recording every request it receives.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The key the tests configure.
pub(crate) const KEY: &str = "sk-test-9f8e7d6c5b4a";

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// An HTTP status with a JSON body.
    Status(u16, Value),
    /// No answer for this long (to trigger timeouts).
    Stall(Duration),
}

/// A chat completion whose message content is `content`.
pub(crate) fn chat(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Reply {
    chat_finished(content, prompt_tokens, completion_tokens, "stop")
}

/// A chat completion that stopped for `finish_reason`.
pub(crate) fn chat_finished(
    content: &str,
    prompt_tokens: u64,
    completion_tokens: u64,
    finish_reason: &str,
) -> Reply {
    Reply::Status(
        200,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "test-model",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": finish_reason
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens
            }
        }),
    )
}

/// A chat completion carrying `output` as JSON text.
pub(crate) fn chat_json(output: &Value) -> Reply {
    chat(&output.to_string(), 100, 20)
}

/// A request the endpoint received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Value,
}

impl Received {
    /// The content of message `index`.
    pub(crate) fn message(&self, index: usize) -> &str {
        self.body["messages"][index]["content"].as_str().unwrap()
    }
}

#[derive(Debug, Default)]
struct FakeState {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// The running fake endpoint.
#[derive(Debug, Clone)]
pub(crate) struct FakeModel {
    state: Arc<FakeState>,
    addr: SocketAddr,
}

impl FakeModel {
    /// Serves `replies`, in order; once they run out it answers 500.
    pub(crate) async fn start(replies: Vec<Reply>) -> FakeModel {
        let state = Arc::new(FakeState {
            replies: Mutex::new(replies.into()),
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeModel { state, addr }
    }

    /// The base URL to configure, `http://127.0.0.1:<port>/v1`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn completions(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned()),
        body,
    });
    let reply = state.replies.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Status(status, body)) => {
            (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
        }
        Some(Reply::Stall(duration)) => {
            tokio::time::sleep(duration).await;
            (StatusCode::OK, Json(json!({}))).into_response()
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": { "message": "no scripted reply left" } })),
        )
            .into_response(),
    }
}
