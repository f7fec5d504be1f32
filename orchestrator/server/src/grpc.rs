//! gRPC services of the orchestrator: `synod.orchestrator.v1.Runs` and
//! `synod.orchestrator.v1.Workflows` (the registry service lives in
//! synod-registry).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use serde_json::Value;
use synod_proto::json;
use synod_proto::orchestrator as pb;
use synod_store::StoreError;
use synod_types::{RunEvent, RunId, RunStatus};
use synod_workflow::Diagnostics;
use tonic::{Request, Response, Status};

use crate::runs::{RunManager, StartError};
use crate::view::RunView;

/// Most runs `ListRuns` returns when no limit is given.
const DEFAULT_LIST_LIMIT: usize = 100;

/// `synod.orchestrator.v1.Runs` on a [`RunManager`].
#[derive(Debug, Clone)]
pub struct RunsService {
    manager: RunManager,
    auth: Option<crate::auth::Authenticator>,
}

impl RunsService {
    /// Serves runs of `manager`.
    pub fn new(manager: RunManager) -> Self {
        RunsService {
            manager,
            auth: None,
        }
    }

    /// Checks approval decisions against the binding's roles and audits
    /// them with `auth` (see [`crate::auth::approval`]).
    pub fn with_auth(mut self, auth: crate::auth::Authenticator) -> Self {
        self.auth = Some(auth);
        self
    }
}

/// `synod.orchestrator.v1.Workflows` on a [`RunManager`].
#[derive(Debug, Clone)]
pub struct WorkflowsService {
    manager: RunManager,
}

impl WorkflowsService {
    /// Serves workflows of `manager`.
    pub fn new(manager: RunManager) -> Self {
        WorkflowsService { manager }
    }
}

fn parse_run_id(text: &str) -> Result<RunId, Status> {
    text.parse().map_err(|_| {
        Status::invalid_argument(format!(
            "`{text}` is not a run id; run ids are UUIDs, see `synod runs list`"
        ))
    })
}

fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::RunNotFound(id) => {
            Status::not_found(format!("run `{id}` not found; see `synod runs list`"))
        }
        other => Status::internal(other.to_string()),
    }
}

fn start_status(error: StartError) -> Status {
    match error {
        StartError::InvalidWorkflow { .. } | StartError::InvalidInputs(_) => {
            Status::invalid_argument(error.to_string())
        }
        StartError::UnknownWorkflow { .. } => Status::not_found(error.to_string()),
        StartError::NoGoal { .. } | StartError::Planner(_) => {
            Status::invalid_argument(error.to_string())
        }
        StartError::Unplannable(_) => Status::failed_precondition(error.to_string()),
        StartError::Store(error) => store_status(error),
    }
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn to_struct(value: &Value) -> Option<prost_types::Struct> {
    match value {
        Value::Object(map) => json::map_to_struct(map).ok(),
        Value::Null => None,
        other => {
            let mut wrapper = serde_json::Map::new();
            wrapper.insert("value".to_owned(), other.clone());
            json::map_to_struct(&wrapper).ok()
        }
    }
}

/// The proto status of a run status.
pub fn run_status_to_proto(status: RunStatus) -> pb::RunStatus {
    match status {
        RunStatus::Pending => pb::RunStatus::Pending,
        RunStatus::Running => pb::RunStatus::Running,
        RunStatus::Succeeded => pb::RunStatus::Succeeded,
        RunStatus::Failed => pb::RunStatus::Failed,
        RunStatus::Cancelled => pb::RunStatus::Cancelled,
    }
}

/// The proto form of a run view.
pub fn run_info(view: &RunView) -> pb::RunInfo {
    let record = &view.record;
    pb::RunInfo {
        run_id: record.run_id.to_string(),
        workflow: record.workflow.clone(),
        status: run_status_to_proto(record.status) as i32,
        started_at: Some(timestamp(record.created_at)),
        ended_at: record.ended_at.map(timestamp),
        steps: view
            .steps
            .iter()
            .map(|step| pb::StepInfo {
                step_id: step.id.clone(),
                uses: step.uses.clone(),
                status: step.status.as_str().to_owned(),
                attempts: step.attempts,
                output: step.output.as_ref().and_then(to_struct),
                error: step.error.clone().unwrap_or_default(),
                needs: step.needs.clone(),
            })
            .collect(),
        result: record.result.as_ref().and_then(to_struct),
        error: record.error.clone().unwrap_or_default(),
        last_seq: record.last_seq,
    }
}

/// The proto form of a run event.
pub fn event_message(event: &RunEvent) -> pb::RunEventMessage {
    pb::RunEventMessage {
        run_id: event.run_id.to_string(),
        seq: event.seq,
        r#type: event.kind.cloud_event_type().to_owned(),
        subject: event.kind.step().map(|s| s.0.clone()).unwrap_or_default(),
        time: Some(timestamp(event.time)),
        cloud_event_json: event.to_cloud_event_json(),
    }
}

/// The proto form of diagnostics.
pub fn diagnostics_to_proto(diagnostics: &Diagnostics) -> Vec<pb::Diagnostic> {
    diagnostics
        .iter()
        .map(|d| pb::Diagnostic {
            severity: d.severity.to_string(),
            code: d.code.to_owned(),
            message: d.message.clone(),
            file: d.file.clone(),
            line: d.line as u32,
            column: d.column as u32,
            help: d.help.clone().unwrap_or_default(),
        })
        .collect()
}

/// Loads a run's view from the store.
pub async fn load_view(manager: &RunManager, run_id: RunId) -> Result<RunView, StoreError> {
    let store = manager.store();
    let record = store
        .get_run(run_id)
        .await?
        .ok_or(StoreError::RunNotFound(run_id))?;
    let events = store.events(run_id, 0).await?;
    Ok(RunView::build(record, &events))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RunEventMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pb::runs_server::Runs for RunsService {
    async fn start_run(
        &self,
        request: Request<pb::StartRunRequest>,
    ) -> Result<Response<pb::StartRunResponse>, Status> {
        let request = request.into_inner();
        let inputs = json::opt_struct_to_json(request.inputs.as_ref())
            .map_err(|e| Status::invalid_argument(format!("inputs: {e}")))?;
        let file = if request.file_name.is_empty() {
            "workflow.yaml".to_owned()
        } else {
            request.file_name
        };
        let run_id = match request.source {
            Some(pb::start_run_request::Source::WorkflowYaml(yaml)) => {
                self.manager.start(&yaml, &file, inputs).await
            }
            Some(pb::start_run_request::Source::WorkflowName(name)) => {
                self.manager.start_stored(&name, inputs).await
            }
            Some(pb::start_run_request::Source::Goal(text)) => {
                self.manager
                    .start_task_with(&text, Some(&request.goal_type), &request.planner, inputs)
                    .await
            }
            None => {
                return Err(Status::invalid_argument(
                    "set one of `workflow_yaml`, `workflow_name` or `goal`",
                ));
            }
        }
        .map_err(start_status)?;
        Ok(Response::new(pb::StartRunResponse {
            run_id: run_id.to_string(),
        }))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::RunInfo>, Status> {
        let run_id = parse_run_id(&request.get_ref().run_id)?;
        let view = load_view(&self.manager, run_id)
            .await
            .map_err(store_status)?;
        Ok(Response::new(run_info(&view)))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let limit = match request.get_ref().limit {
            0 => DEFAULT_LIST_LIMIT,
            n => n as usize,
        };
        let records = self
            .manager
            .store()
            .list_runs(limit)
            .await
            .map_err(store_status)?;
        let runs = records
            .into_iter()
            .map(|record| {
                run_info(&RunView {
                    record,
                    steps: Vec::new(),
                })
            })
            .collect();
        Ok(Response::new(pb::ListRunsResponse { runs }))
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::CancelRunResponse>, Status> {
        let run_id = parse_run_id(&request.get_ref().run_id)?;
        if self
            .manager
            .store()
            .get_run(run_id)
            .await
            .map_err(store_status)?
            .is_none()
        {
            return Err(store_status(StoreError::RunNotFound(run_id)));
        }
        Ok(Response::new(pb::CancelRunResponse {
            cancelled: self.manager.cancel(run_id),
        }))
    }

    type WatchRunStream = EventStream;

    async fn watch_run(
        &self,
        request: Request<pb::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        let request = request.into_inner();
        let run_id = parse_run_id(&request.run_id)?;
        if request.recorded_only {
            let store = self.manager.store();
            let recorded = store
                .events(run_id, request.after_seq)
                .await
                .map_err(store_status)?;
            // Only an empty answer needs telling an unknown run apart.
            if recorded.is_empty() && store.get_run(run_id).await.map_err(store_status)?.is_none() {
                return Err(Status::not_found(format!("no run `{run_id}`")));
            }
            let messages: Vec<Result<pb::RunEventMessage, Status>> = recorded
                .iter()
                .map(|event| Ok(event_message(event)))
                .collect();
            return Ok(Response::new(Box::pin(futures::stream::iter(messages))));
        }
        let events = self
            .manager
            .store()
            .subscribe(run_id, request.after_seq)
            .await
            .map_err(store_status)?;
        let stream = events.map(|item| {
            item.map(|event| event_message(&event))
                .map_err(store_status)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn decide(
        &self,
        request: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::DecideResponse>, Status> {
        let principal = crate::auth::guard::grpc_principal(&request);
        let request = request.into_inner();
        let run_id: RunId = request.run_id.parse().map_err(|_| {
            Status::invalid_argument(format!("`{}` is not a run id", request.run_id))
        })?;
        let accepted = match &self.auth {
            Some(auth) => {
                let decision = crate::auth::approval::Decision {
                    run_id,
                    binding: &request.binding,
                    approve: request.approve,
                    comment: &request.comment,
                };
                crate::auth::approval::decide(auth, &self.manager, &principal, decision)
                    .await
                    .map_err(|denial| denial.grpc_status())?
            }
            None => {
                self.manager
                    .decide(run_id, &request.binding, request.approve, &request.comment)
                    .await
            }
        };
        Ok(Response::new(pb::DecideResponse { accepted }))
    }
}

#[tonic::async_trait]
impl pb::workflows_server::Workflows for WorkflowsService {
    async fn validate(
        &self,
        request: Request<pb::ValidateWorkflowRequest>,
    ) -> Result<Response<pb::ValidateWorkflowResponse>, Status> {
        let request = request.into_inner();
        let file = if request.file_name.is_empty() {
            "workflow.yaml".to_owned()
        } else {
            request.file_name
        };
        let diagnostics = self.manager.validate(&request.workflow_yaml, &file);
        Ok(Response::new(pb::ValidateWorkflowResponse {
            valid: !diagnostics.has_errors(),
            diagnostics: diagnostics_to_proto(&diagnostics),
        }))
    }

    async fn put(
        &self,
        request: Request<pb::PutWorkflowRequest>,
    ) -> Result<Response<pb::PutWorkflowResponse>, Status> {
        let request = request.into_inner();
        let file = if request.file_name.is_empty() {
            "workflow.yaml".to_owned()
        } else {
            request.file_name
        };
        match self.manager.put_workflow(&request.workflow_yaml, &file) {
            Ok(name) => Ok(Response::new(pb::PutWorkflowResponse {
                name,
                diagnostics: Vec::new(),
            })),
            Err(StartError::InvalidWorkflow { diagnostics, .. }) => {
                Ok(Response::new(pb::PutWorkflowResponse {
                    name: String::new(),
                    diagnostics: diagnostics_to_proto(&diagnostics),
                }))
            }
            Err(other) => Err(start_status(other)),
        }
    }

    async fn list(
        &self,
        _request: Request<pb::ListWorkflowsRequest>,
    ) -> Result<Response<pb::ListWorkflowsResponse>, Status> {
        let workflows = self
            .manager
            .workflows()
            .into_iter()
            .map(|stored| pb::WorkflowSummary {
                name: stored.workflow.name.clone(),
                description: stored.workflow.description.clone().unwrap_or_default(),
                steps: stored
                    .workflow
                    .steps
                    .iter()
                    .map(|s| s.id.to_string())
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListWorkflowsResponse { workflows }))
    }
}
