//! [`RunManager`]: starts runs (workflow → plan → executor task), tracks the
//! active ones for cancellation, and answers questions about runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use serde_json::Value;
use synod_executor::{ExecutorConfig, Invoker};
use synod_planner::{Plan, SkillCatalog};
use synod_store::{RunRecord, RunStore};
use synod_types::{RunId, RunStatus, redact};
use synod_workflow::{Diagnostics, Workflow};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The workflow text has problems (rendered diagnostics).
    #[error("the workflow is invalid:\n{rendered}")]
    InvalidWorkflow {
        /// Diagnostics, rendered with source snippets.
        rendered: String,
        /// The diagnostics themselves.
        diagnostics: Diagnostics,
    },
    /// The inputs do not match the workflow's `inputs`.
    #[error("the inputs do not match the workflow: {}", .0.join("; "))]
    InvalidInputs(Vec<String>),
    /// No stored workflow has this name.
    #[error("no workflow named `{name}`; stored workflows: {known}")]
    UnknownWorkflow {
        /// The name asked for.
        name: String,
        /// Stored names, comma-separated.
        known: String,
    },
    /// The goal text matches no intent rule and no goal type was given.
    #[error(
        "cannot tell what to produce from `{text}`; name the artifact type with --goal (HTTP/gRPC: `goal_type`), one of: {known}"
    )]
    NoGoal {
        /// The task's text.
        text: String,
        /// Goal types of the intent rules, comma-separated.
        known: String,
    },
    /// The planner found no plan.
    #[error(transparent)]
    Unplannable(#[from] synod_planner::TypedPlanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] synod_store::StoreError),
}

/// A stored workflow definition.
#[derive(Debug, Clone)]
pub struct StoredWorkflow {
    /// YAML source.
    pub source: String,
    /// File name used in diagnostics.
    pub file: String,
    /// The parsed workflow.
    pub workflow: Arc<Workflow>,
}

/// Starts and tracks runs.
#[derive(Clone)]
pub struct RunManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn RunStore>,
    invoker: Arc<dyn Invoker>,
    catalog: Arc<dyn SkillCatalog + Send + Sync>,
    config: ExecutorConfig,
    active: Mutex<HashMap<RunId, CancellationToken>>,
    workflows: Mutex<BTreeMap<String, StoredWorkflow>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for RunManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunManager").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RunManager {
    /// A manager running plans with `invoker`, recording into `store`, and
    /// checking workflows against the skills `catalog()` returns.
    pub fn new(
        store: Arc<dyn RunStore>,
        invoker: Arc<dyn Invoker>,
        catalog: Arc<dyn SkillCatalog + Send + Sync>,
        config: ExecutorConfig,
        shutdown: CancellationToken,
    ) -> Self {
        RunManager {
            inner: Arc::new(Inner {
                store,
                invoker,
                catalog,
                config,
                active: Mutex::new(HashMap::new()),
                workflows: Mutex::new(BTreeMap::new()),
                tasks: TaskTracker::new(),
                shutdown,
            }),
        }
    }

    /// The run store.
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.inner.store
    }

    /// Loads and plans a workflow against the current catalog.
    pub fn compile(&self, source: &str, file: &str) -> Result<(Arc<Workflow>, Plan), StartError> {
        let invalid = |diagnostics: Diagnostics| StartError::InvalidWorkflow {
            rendered: diagnostics.render(source),
            diagnostics,
        };
        let workflow = synod_workflow::load(source, file).map_err(invalid)?;
        let catalog: &dyn SkillCatalog = self.inner.catalog.as_ref();
        let plan = synod_planner::plan_workflow(&workflow, Some(catalog)).map_err(invalid)?;
        Ok((Arc::new(workflow), plan))
    }

    /// Validates a workflow: diagnostics (empty when valid).
    pub fn validate(&self, source: &str, file: &str) -> Diagnostics {
        match self.compile(source, file) {
            Ok(_) => Diagnostics::default(),
            Err(StartError::InvalidWorkflow { diagnostics, .. }) => diagnostics,
            Err(_) => Diagnostics::default(),
        }
    }

    /// Validates and stores a workflow under its name.
    pub fn put_workflow(&self, source: &str, file: &str) -> Result<String, StartError> {
        let (workflow, _) = self.compile(source, file)?;
        let name = workflow.name.clone();
        lock(&self.inner.workflows).insert(
            name.clone(),
            StoredWorkflow {
                source: source.to_owned(),
                file: file.to_owned(),
                workflow,
            },
        );
        Ok(name)
    }

    /// Stored workflows, by name.
    pub fn workflows(&self) -> Vec<StoredWorkflow> {
        lock(&self.inner.workflows).values().cloned().collect()
    }

    /// Starts a run of a stored workflow.
    pub async fn start_stored(&self, name: &str, inputs: Value) -> Result<RunId, StartError> {
        let stored = lock(&self.inner.workflows).get(name).cloned();
        let Some(stored) = stored else {
            let known = lock(&self.inner.workflows)
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>();
            return Err(StartError::UnknownWorkflow {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "(none)".into()
                } else {
                    known.join(", ")
                },
            });
        };
        self.start(&stored.source, &stored.file, inputs).await
    }

    /// Plans a task with the typed planner over the registered skills: the
    /// goal type is `goal_type` or derived from `text` by intent rules; every
    /// input named after an artifact type gives that type.
    pub fn plan_task(
        &self,
        text: &str,
        goal_type: Option<&str>,
        inputs: &Value,
    ) -> Result<synod_planner::TypedPlan, StartError> {
        let goal = match goal_type.filter(|goal| !goal.trim().is_empty()) {
            Some(goal) => goal.trim().to_owned(),
            None => match synod_planner::goal_from_text(text) {
                Some((goal, _keyword)) => goal.to_owned(),
                None => {
                    return Err(StartError::NoGoal {
                        text: text.to_owned(),
                        known: synod_planner::GOAL_RULES
                            .iter()
                            .map(|(goal, _)| *goal)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            },
        };
        let given = inputs
            .as_object()
            .map(|map| {
                map.keys()
                    .map(|name| (name.clone(), name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let task = synod_planner::TypedTask {
            given,
            goal,
            text: text.to_owned(),
        };
        let catalog: &dyn SkillCatalog = self.inner.catalog.as_ref();
        Ok(synod_planner::plan_typed(&task, catalog)?)
    }

    /// Plans a task ([`RunManager::plan_task`]), records the run and starts
    /// executing it; the plan and its reasons are the run's `RunPlanned` event.
    pub async fn start_task(
        &self,
        text: &str,
        goal_type: Option<&str>,
        inputs: Value,
    ) -> Result<RunId, StartError> {
        let planned = self.plan_task(text, goal_type, &inputs)?;
        self.launch(planned.plan, inputs).await
    }

    /// Validates the workflow and inputs, records the run and starts executing
    /// it in the background. Returns once the run is recorded.
    pub async fn start(
        &self,
        source: &str,
        file: &str,
        inputs: Value,
    ) -> Result<RunId, StartError> {
        let (workflow, plan) = self.compile(source, file)?;
        let inputs = workflow
            .check_inputs(&inputs)
            .map_err(StartError::InvalidInputs)?;
        self.launch(plan, inputs).await
    }

    /// Records a run of `plan` and executes it in the background.
    async fn launch(&self, plan: Plan, inputs: Value) -> Result<RunId, StartError> {
        let run_id = RunId::new();
        let record = RunRecord {
            run_id,
            workflow: plan.name.clone(),
            status: RunStatus::Pending,
            created_at: Utc::now(),
            ended_at: None,
            inputs: redact::redacted(&inputs, &[]),
            result: None,
            error: None,
            last_seq: 0,
        };
        self.inner.store.create_run(record).await?;
        let cancel = self.inner.shutdown.child_token();
        lock(&self.inner.active).insert(run_id, cancel.clone());
        let manager = self.clone();
        let plan = Arc::new(plan);
        self.inner.tasks.spawn(async move {
            let outcome = synod_executor::execute(
                run_id,
                plan,
                inputs,
                manager.inner.config.clone(),
                manager.inner.invoker.clone(),
                manager.inner.store.clone(),
                cancel,
            )
            .await;
            if let Err(error) = outcome {
                tracing::error!(run_id = %run_id, error = %error, "run aborted");
            }
            lock(&manager.inner.active).remove(&run_id);
        });
        Ok(run_id)
    }

    /// Cancels a running run. False when it is not running here.
    pub fn cancel(&self, run_id: RunId) -> bool {
        match lock(&self.inner.active).get(&run_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Number of runs executing now.
    pub fn active_runs(&self) -> usize {
        lock(&self.inner.active).len()
    }

    /// Cancels every active run and waits for their tasks to finish.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}
