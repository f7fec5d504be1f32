//! `POST /hooks/{name}`: starts a run of the stored workflow whose
//! `on.webhook.name` (or, failing that, whose workflow name) is `name`, once
//! the request's HMAC-SHA256 signature matches the workflow's webhook secret
//! (`synod_connectors::webhook`: constant-time compare, timestamp window
//! `on.webhook.tolerance` against replay).
//!
//! | answer | when |
//! |---|---|
//! | 202 `{"run_id": …}` | signature valid, run started |
//! | 401 `{"error": …}` | signature or timestamp header missing, malformed, stale or wrong; nothing starts |
//! | 404 | no stored workflow has a webhook of that name |
//! | 400 / 422 | the body is not a JSON object / does not match the workflow's inputs |
//! | 500 | the webhook secret cannot be resolved on this server |
//!
//! The body, a JSON object, becomes the run's inputs (checked against the
//! workflow's `inputs`); an empty body means no inputs.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use synod_connectors::Secrets;
use synod_connectors::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use synod_workflow::WebhookTrigger;

use crate::runs::{RunManager, StartError};

/// State of the webhook handler.
#[derive(Debug, Clone)]
pub struct HooksState {
    /// Starts the runs.
    pub manager: RunManager,
    /// Where webhook secrets are resolved.
    pub secrets: Arc<Secrets>,
}

/// The `/hooks/{name}` router.
pub fn router(state: HooksState) -> Router {
    Router::new()
        .route("/hooks/{name}", post(hook))
        .with_state(state)
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn hook(
    State(state): State<HooksState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((workflow, trigger)) = find_hook(&state.manager, &name) else {
        return answer(
            StatusCode::NOT_FOUND,
            format!(
                "no stored workflow has a webhook named `{name}`; declare `on.webhook` in the workflow and store it (--workflows)"
            ),
        );
    };
    let secret = match state.secrets.resolve(&trigger.secret) {
        Ok(secret) => secret,
        Err(error) => {
            tracing::error!(hook = %name, error = %error, "webhook secret cannot be resolved");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the secret of webhook `{name}` is not configured on this server"),
            );
        }
    };
    let standard = standard_headers(&headers, &trigger);
    if let Err(rejection) = verify(
        &standard,
        &body,
        &secret,
        SystemTime::now(),
        trigger.tolerance,
    ) {
        tracing::warn!(hook = %name, reason = %rejection, "webhook rejected");
        let status =
            StatusCode::from_u16(rejection.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        return answer(status, rejection.to_string());
    }
    let inputs = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) | Err(_) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    "the body must be a JSON object; its fields become the run's inputs",
                );
            }
        }
    };
    match state.manager.start_stored(&workflow, inputs).await {
        Ok(run_id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": run_id.to_string() })),
        )
            .into_response(),
        Err(error @ StartError::InvalidInputs(_)) => {
            answer(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
        }
        Err(error) => answer(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// The stored workflow (its name) and webhook trigger for hook `name`.
fn find_hook(manager: &RunManager, name: &str) -> Option<(String, WebhookTrigger)> {
    let stored = manager.workflows();
    let with_hook = |by_workflow_name: bool| {
        stored.iter().find_map(|stored| {
            let trigger = stored.workflow.triggers.webhook.as_ref()?;
            let matches = if by_workflow_name {
                stored.workflow.name == name
            } else {
                trigger.name == name
            };
            matches.then(|| (stored.workflow.name.clone(), trigger.clone()))
        })
    };
    with_hook(false).or_else(|| with_hook(true))
}

/// The workflow's signature and timestamp headers under the names
/// `synod_connectors::webhook` reads.
fn standard_headers(headers: &HeaderMap, trigger: &WebhookTrigger) -> HeaderMap {
    let mut standard = HeaderMap::new();
    for (configured, name) in [
        (&trigger.signature_header, SIGNATURE_HEADER),
        (&trigger.timestamp_header, TIMESTAMP_HEADER),
    ] {
        let Ok(configured) = HeaderName::try_from(configured.as_str()) else {
            continue;
        };
        if let Some(value) = headers.get(&configured) {
            standard.insert(HeaderName::from_static(name), value.clone());
        }
    }
    standard
}
