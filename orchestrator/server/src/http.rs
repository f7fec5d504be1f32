//! The HTTP API (JSON), mirroring the gRPC one, plus the run-event stream as
//! Server-Sent Events with `Last-Event-ID` resume.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/healthz` | liveness and active run count |
//! | GET | `/experts` | registered experts, skills, instance health |
//! | GET | `/runs?limit=N` | newest runs first |
//! | POST | `/runs` | start a run: `{"workflow_yaml": "...", "inputs": {...}}` or `{"workflow": "<stored name>", ...}` |
//! | GET | `/runs/{id}` | a run with its steps |
//! | POST | `/runs/{id}/cancel` | cancel a run |
//! | GET | `/runs/{id}/events` | SSE; resume with `Last-Event-ID: <seq>` or `?after_seq=<seq>` |
//! | POST | `/workflows/validate` | body = workflow YAML; diagnostics as JSON |
//!
//! Also on this listener: the dashboard at `/` ([`crate::dashboard`]),
//! `GET /metrics` ([`crate::metrics`]), approvals ([`crate::approvals`]) and
//! webhooks ([`crate::hooks`]).

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use synod_proto::orchestrator as pb;
use synod_registry::Registry;
use synod_store::StoreError;
use synod_types::RunId;

use crate::grpc::load_view;
use crate::runs::{RunManager, StartError};

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// Runs.
    pub manager: RunManager,
    /// Experts.
    pub registry: Registry,
}

/// The HTTP API router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/experts", get(experts))
        .route("/runs", get(list_runs).post(start_run))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/runs/{id}/events", get(run_events))
        .route("/workflows/validate", post(validate_workflow))
        .with_state(state)
}

/// A JSON error body `{"error": "...", "code": "..."}` with a status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::RunNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, error.to_string()),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(error: StartError) -> Self {
        match error {
            StartError::InvalidWorkflow { .. }
            | StartError::InvalidInputs(_)
            | StartError::NoGoal { .. }
            | StartError::Planner(_) => ApiError::new(StatusCode::BAD_REQUEST, error.to_string()),
            StartError::Unplannable(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
            }
            StartError::UnknownWorkflow { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, error.to_string())
            }
            StartError::Store(error) => error.into(),
        }
    }
}

fn parse_run_id(text: &str) -> Result<RunId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{text}` is not a run id; run ids are UUIDs, see `GET /runs`"),
        )
    })
}

async fn healthz(State(state): State<HttpState>) -> Json<Value> {
    Json(json!({ "status": "ok", "active_runs": state.manager.active_runs() }))
}

/// JSON form of the registry listing.
pub fn experts_json(experts: &[pb::ExpertInfo]) -> Value {
    let mut out = Vec::new();
    for expert in experts {
        let card = expert.card.clone().unwrap_or_default();
        let skills: Vec<Value> = card
            .skills
            .iter()
            .map(|skill| {
                json!({
                    "name": skill.name,
                    "description": skill.description,
                    "consumes": skill.consumes,
                    "produces": skill.produces,
                    "cost_hint": skill.cost_hint,
                })
            })
            .collect();
        let instances: Vec<Value> = expert
            .instances
            .iter()
            .map(|instance| {
                json!({
                    "instance_id": instance.instance_id,
                    "endpoint": instance.endpoint,
                    "health": health_name(instance.health),
                    "outstanding": instance.outstanding,
                    "latency_ewma_ms": instance.latency_ewma_ms,
                    "calls": instance.calls,
                    "failures": instance.failures,
                    "static": instance.r#static,
                })
            })
            .collect();
        out.push(json!({
            "name": card.name,
            "version": card.version,
            "description": card.description,
            "external": card.external,
            "skills": skills,
            "instances": instances,
        }));
    }
    Value::Array(out)
}

/// Lowercase name of an instance health value.
pub fn health_name(health: i32) -> &'static str {
    match pb::InstanceHealth::try_from(health) {
        Ok(pb::InstanceHealth::Healthy) => "healthy",
        Ok(pb::InstanceHealth::Broken) => "broken",
        Ok(pb::InstanceHealth::Unhealthy) => "unhealthy",
        _ => "unknown",
    }
}

async fn experts(State(state): State<HttpState>) -> Json<Value> {
    Json(experts_json(&state.registry.list()))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_runs(
    State(state): State<HttpState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let records = state
        .manager
        .store()
        .list_runs(query.limit.unwrap_or(100))
        .await?;
    Ok(Json(serde_json::to_value(records).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow_yaml: Option<String>,
    workflow: Option<String>,
    /// A task for the planner instead of a workflow.
    goal: Option<String>,
    /// The artifact type the task must produce (else derived from `goal`).
    goal_type: Option<String>,
    /// `llm`, `typed` or absent (LLM planner when an expert offers `plan`).
    planner: Option<String>,
    #[serde(default)]
    inputs: Value,
    file_name: Option<String>,
}

async fn start_run(
    State(state): State<HttpState>,
    Json(body): Json<StartBody>,
) -> Result<impl IntoResponse, ApiError> {
    let inputs = if body.inputs.is_null() {
        json!({})
    } else {
        body.inputs
    };
    let run_id = match (body.workflow_yaml, body.workflow, body.goal) {
        (Some(yaml), None, None) => {
            let file = body.file_name.unwrap_or_else(|| "workflow.yaml".to_owned());
            state.manager.start(&yaml, &file, inputs).await?
        }
        (None, Some(name), None) => state.manager.start_stored(&name, inputs).await?,
        (None, None, Some(goal)) => {
            state
                .manager
                .start_task_with(
                    &goal,
                    body.goal_type.as_deref(),
                    body.planner.as_deref().unwrap_or_default(),
                    inputs,
                )
                .await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give exactly one of `workflow_yaml` (the YAML text), `workflow` (a stored workflow's name) or `goal` (a task for the planner, with optional `goal_type`)",
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "run_id": run_id.to_string(), "events": format!("/runs/{run_id}/events") })),
    ))
}

async fn get_run(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run_id = parse_run_id(&id)?;
    let view = load_view(&state.manager, run_id).await?;
    Ok(Json(serde_json::to_value(view).unwrap_or(Value::Null)))
}

async fn cancel_run(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run_id = parse_run_id(&id)?;
    if state.manager.store().get_run(run_id).await?.is_none() {
        return Err(StoreError::RunNotFound(run_id).into());
    }
    Ok(Json(json!({ "cancelled": state.manager.cancel(run_id) })))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after_seq: Option<u64>,
}

async fn run_events(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let run_id = parse_run_id(&id)?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => {
            let text = value.to_str().unwrap_or_default().trim();
            Some(text.parse::<u64>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("`Last-Event-ID: {text}` is not a sequence number; send the `id` of the last event received"),
                )
            })?)
        }
        None => None,
    };
    let after_seq = last_event_id.or(query.after_seq).unwrap_or(0);
    let events = state.manager.store().subscribe(run_id, after_seq).await?;
    let stream = events.map(|item| {
        let event = match item {
            Ok(event) => Event::default()
                .id(event.seq.to_string())
                .event(event.kind.cloud_event_type())
                .data(event.to_cloud_event_json()),
            Err(error) => Event::default().event("error").data(error.to_string()),
        };
        Ok::<Event, Infallible>(event)
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn validate_workflow(State(state): State<HttpState>, body: String) -> Json<Value> {
    let diagnostics = state.manager.validate(&body, "workflow.yaml");
    Json(json!({
        "valid": !diagnostics.has_errors(),
        "diagnostics": serde_json::to_value(&diagnostics).unwrap_or(Value::Null),
    }))
}
