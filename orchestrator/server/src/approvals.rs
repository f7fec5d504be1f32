//! `POST /runs/{id}/approvals/{binding}`: approves or rejects a binding
//! waiting for approval. Body: `{"approve": true|false, "comment": "..."}`.
//! 200 `{"accepted": true}` when the decision was taken; 409 when that run
//! has no such binding waiting here; 400 for a malformed run id.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use synod_types::RunId;

use crate::runs::RunManager;

/// A decision as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    approve: bool,
    #[serde(default)]
    comment: String,
}

/// The approvals router.
pub fn router(manager: RunManager) -> Router {
    Router::new()
        .route("/runs/{id}/approvals/{binding}", post(decide))
        .with_state(manager)
}

async fn decide(
    State(manager): State<RunManager>,
    Path((id, binding)): Path<(String, String)>,
    Json(body): Json<DecisionBody>,
) -> Response {
    let Ok(run_id) = id.parse::<RunId>() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("`{id}` is not a run id") })),
        )
            .into_response();
    };
    if manager
        .decide(run_id, &binding, body.approve, &body.comment)
        .await
    {
        (StatusCode::OK, Json(json!({ "accepted": true }))).into_response()
    } else {
        (
            StatusCode::CONFLICT,
            Json(json!({
                "accepted": false,
                "error": format!("run `{run_id}` has no binding `{binding}` waiting for approval on this orchestrator"),
            })),
        )
            .into_response()
    }
}
