//! `POST /runs/{id}/approvals/{binding}`: approves or rejects a binding
//! waiting for approval. Body: `{"approve": true|false, "comment": "..."}`.
//! 200 `{"accepted": true}` when the decision was taken; 409 when that run
//! has no such binding waiting here; 400 for a malformed run id.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use synod_types::RunId;

use crate::auth::approval::{self, Decision};
use crate::auth::{Authenticator, Principal};
use crate::runs::RunManager;

/// A decision as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    approve: bool,
    #[serde(default)]
    comment: String,
}

/// The approvals router: decisions are checked against the binding's
/// approval roles and audited with `auth`.
pub fn router(manager: RunManager, auth: Authenticator) -> Router {
    Router::new()
        .route("/runs/{id}/approvals/{binding}", post(decide))
        .with_state((manager, auth))
}

async fn decide(
    State((manager, auth)): State<(RunManager, Authenticator)>,
    principal: Option<Extension<Principal>>,
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
    let principal = principal.map_or_else(Principal::anonymous, |Extension(p)| p);
    let decision = Decision {
        run_id,
        binding: &binding,
        approve: body.approve,
        comment: &body.comment,
    };
    let accepted = match approval::decide(&auth, &manager, &principal, decision).await {
        Ok(accepted) => accepted,
        Err(denial) => return denial.into_response(),
    };
    if accepted {
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

/// `synod runs approve|reject <run> <binding>`: sends the decision over gRPC
/// `Decide` and prints the answer. Fails when nothing was waiting.
pub async fn decide_from_cli(
    server: &str,
    run_id: &str,
    binding: &str,
    approve: bool,
    comment: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let channel = crate::cli::connect(server).await?;
    let mut client = crate::cli::runs_client(channel);
    let accepted = client
        .decide(synod_proto::orchestrator::DecideRequest {
            run_id: run_id.to_owned(),
            binding: binding.to_owned(),
            approve,
            comment: comment.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner()
        .accepted;
    let verb = if approve { "approved" } else { "rejected" };
    if as_json {
        println!(
            "{}",
            json!({ "run_id": run_id, "binding": binding, "approve": approve, "accepted": accepted })
        );
    } else if accepted {
        println!("{verb} binding `{binding}` of run {run_id}");
    }
    if !accepted {
        anyhow::bail!(
            "run {run_id} has no binding `{binding}` waiting for approval (it was already decided, timed out, or the run is not running on {server})"
        );
    }
    Ok(())
}
