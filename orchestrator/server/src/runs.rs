//! [`RunManager`]: starts runs (workflow → plan → executor task), tracks the
//! active ones for cancellation, and answers questions about runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use synod_executor::{ApprovalDecision, Deliverer, ExecutorConfig, Invoker, RunMachine, Services};
use synod_planner::{Plan, SkillCatalog};
use synod_store::{RunRecord, RunStore};
use synod_types::{RunEventKind, RunId, redact};
use synod_workflow::{Diagnostics, Workflow};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lease::{self, LeasedStore};
use crate::recovery;

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
    /// The planner asked for cannot be used (unknown name, or `llm` with no
    /// expert offering a `plan` skill).
    #[error("{0}")]
    Planner(String),
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
    /// Delivers workflow bindings (none: bindings fail saying so).
    deliverer: Mutex<Option<Arc<dyn Deliverer>>>,
    /// Starts the OpenTelemetry spans of runs (none: no spans).
    tracer: Mutex<Option<synod_executor::Tracer>>,
    /// Bindings are rendered, not sent (`synod run --dry-run`).
    dry_run: std::sync::atomic::AtomicBool,
    /// Where approval decisions for each run executing here go.
    deciders: Mutex<HashMap<RunId, mpsc::UnboundedSender<ApprovalDecision>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// This replica's id: the owner of the leases it holds.
    owner: Arc<str>,
    /// How long a run lease lasts unless renewed.
    lease: Duration,
    /// Limits and repair rounds of the LLM planner.
    llm_planner: Mutex<synod_planner::LlmPlannerConfig>,
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

/// The workflow features this orchestrator executes.
pub const EXECUTABLE: synod_planner::Executable = synod_planner::Executable {
    conditions: true,
    for_each: true,
    reflect: true,
    bindings: true,
};

/// Loads and plans a workflow, checking it against `catalog` when given.
fn compile_against(
    source: &str,
    file: &str,
    catalog: Option<&dyn SkillCatalog>,
) -> Result<(Arc<Workflow>, Plan), StartError> {
    let invalid = |diagnostics: Diagnostics| StartError::InvalidWorkflow {
        rendered: diagnostics.render(source),
        diagnostics,
    };
    // Loader, type and catalog problems are reported together.
    let (workflow, plan) =
        synod_planner::compile_workflow(source, file, catalog, EXECUTABLE).map_err(invalid)?;
    Ok((Arc::new(workflow), plan))
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
        owner: String,
        lease: Duration,
    ) -> Self {
        RunManager {
            inner: Arc::new(Inner {
                store,
                invoker,
                catalog,
                config,
                active: Mutex::new(HashMap::new()),
                workflows: Mutex::new(BTreeMap::new()),
                deliverer: Mutex::new(None),
                tracer: Mutex::new(None),
                deciders: Mutex::new(HashMap::new()),
                dry_run: std::sync::atomic::AtomicBool::new(false),
                tasks: TaskTracker::new(),
                shutdown,
                owner: owner.into(),
                lease,
                llm_planner: Mutex::new(synod_planner::LlmPlannerConfig::default()),
            }),
        }
    }

    /// Sets the LLM planner's limits and repair rounds for tasks started
    /// from now on (default: [`synod_planner::LlmPlannerConfig::default`]).
    pub fn set_llm_planner(&self, config: synod_planner::LlmPlannerConfig) {
        *lock(&self.inner.llm_planner) = config;
    }

    /// Delivers the bindings of runs started from now on with `deliverer`.
    pub fn set_deliverer(&self, deliverer: Arc<dyn Deliverer>) {
        *lock(&self.inner.deliverer) = Some(deliverer);
    }

    /// Traces the runs executed from now on with `tracer` (one trace per
    /// run execution; `None`: no spans).
    pub fn set_tracer(&self, tracer: Option<synod_executor::Tracer>) {
        *lock(&self.inner.tracer) = tracer;
    }

    /// Makes the bindings of runs started from now on dry runs (rendered
    /// by a dry-run deliverer, never sent, no approvals asked).
    pub fn set_dry_run(&self, dry_run: bool) {
        self.inner
            .dry_run
            .store(dry_run, std::sync::atomic::Ordering::SeqCst);
    }

    /// The run store.
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.inner.store
    }

    /// Loads and plans a workflow against the current catalog.
    pub fn compile(&self, source: &str, file: &str) -> Result<(Arc<Workflow>, Plan), StartError> {
        let catalog: &dyn SkillCatalog = self.inner.catalog.as_ref();
        compile_against(source, file, Some(catalog))
    }

    /// Validates a workflow: diagnostics (empty when valid).
    pub fn validate(&self, source: &str, file: &str) -> Diagnostics {
        match self.compile(source, file) {
            Ok(_) => Diagnostics::default(),
            Err(StartError::InvalidWorkflow { diagnostics, .. }) => diagnostics,
            Err(_) => Diagnostics::default(),
        }
    }

    /// Validates a workflow on its own (syntax, fields, expressions,
    /// references, cycles) and stores it under its name. Its experts and
    /// skills are checked against the registry when a run of it starts:
    /// experts register at any time, so a stored workflow may name one that
    /// is not registered yet (e.g. `synod up` loading `workflows/`).
    pub fn put_workflow(&self, source: &str, file: &str) -> Result<String, StartError> {
        let (workflow, _) = compile_against(source, file, None)?;
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
        let goal = goal_of(text, goal_type)?;
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

    /// Plans a task with the planner named `planner` (`llm`, `typed`, or
    /// empty: `llm` when a registered expert offers a `plan` skill, else
    /// `typed`). The LLM planner's plan is validated and repaired up to
    /// `max_repairs` times; when none is accepted the typed planner's plan
    /// is used. Every LLM request and its problems end up in the plan's
    /// note (the `RunPlanned` event).
    pub async fn plan_task_with(
        &self,
        run_id: RunId,
        text: &str,
        goal_type: Option<&str>,
        planner: &str,
        inputs: &Value,
    ) -> Result<(Plan, BTreeMap<synod_types::StepId, Value>), StartError> {
        let plan_skill = match planner.trim() {
            "" | "auto" => self.plan_skill(),
            "typed" => None,
            "llm" => Some(self.plan_skill().ok_or_else(|| {
                StartError::Planner(
                    "the llm planner needs a registered expert with a `plan` skill (e.g. `synod expert serve llm` with SYNOD_LLM_ENDPOINT set); none is registered and healthy, use `--planner typed`".to_owned(),
                )
            })?),
            other => {
                return Err(StartError::Planner(format!(
                    "unknown planner `{other}`; use `llm` or `typed`"
                )));
            }
        };
        let Some(plan_skill) = plan_skill else {
            let typed = self.plan_task(text, goal_type, inputs)?;
            return Ok((typed.plan, typed.step_inputs));
        };
        let goal = goal_of(text, goal_type)?;
        let task = synod_planner::LlmTask::new(text, goal, inputs);
        let config = lock(&self.inner.llm_planner).clone();
        let call = synod_executor::PlannerCall {
            planner: &plan_skill,
            run_id,
            deadline: self.inner.config.default_timeout,
            config: &config,
        };
        let catalog: &(dyn SkillCatalog + Send + Sync) = self.inner.catalog.as_ref();
        let planning =
            synod_executor::plan_with_llm(self.inner.invoker.as_ref(), call, &task, catalog).await;
        let (mut plan, step_inputs) = match planning.plan {
            Some(llm) => (llm.plan, llm.step_inputs),
            None => {
                tracing::warn!(
                    run_id = %run_id,
                    attempts = planning.attempts.len(),
                    "no llm plan was valid; using the typed planner"
                );
                let typed = self.plan_task(text, goal_type, inputs)?;
                (typed.plan, typed.step_inputs)
            }
        };
        synod_planner::record_attempts(&mut plan, &planning.attempts);
        Ok((plan, step_inputs))
    }

    /// The `plan` skill of a registered, healthy expert (the `llm` expert's
    /// first, else the first by name).
    fn plan_skill(&self) -> Option<synod_types::SkillRef> {
        let catalog = self.inner.catalog.as_ref();
        let mut offers: Vec<synod_types::SkillRef> = catalog
            .all_skills()
            .into_iter()
            .map(|skill| skill.uses)
            .filter(|uses| uses.skill == "plan" && catalog.skill_stats(uses).healthy)
            .collect();
        offers.sort_by_key(|uses| (uses.expert != "llm", uses.to_string()));
        offers.into_iter().next()
    }

    /// Plans a task with the default planner choice and starts it; see
    /// [`RunManager::start_task_with`].
    pub async fn start_task(
        &self,
        text: &str,
        goal_type: Option<&str>,
        inputs: Value,
    ) -> Result<RunId, StartError> {
        self.start_task_with(text, goal_type, "", inputs).await
    }

    /// Plans a task ([`RunManager::plan_task_with`]), records the run and
    /// starts executing it; the plan, its reasons and the LLM planner's
    /// attempts are the run's `RunPlanned` event.
    pub async fn start_task_with(
        &self,
        text: &str,
        goal_type: Option<&str>,
        planner: &str,
        inputs: Value,
    ) -> Result<RunId, StartError> {
        let run_id = RunId::new();
        let (plan, step_inputs) = self
            .plan_task_with(run_id, text, goal_type, planner, &inputs)
            .await?;
        let spec = recovery::plan_spec(&plan, &step_inputs, &inputs);
        self.launch_as(run_id, plan, None, inputs, spec).await
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
        let spec = recovery::workflow_spec(source, file, &inputs);
        self.launch_as(RunId::new(), plan, Some(workflow), inputs, spec)
            .await
    }

    /// Records run `run_id` of `plan` and executes it in the background.
    async fn launch_as(
        &self,
        run_id: RunId,
        plan: Plan,
        workflow: Option<Arc<Workflow>>,
        inputs: Value,
        spec: Value,
    ) -> Result<RunId, StartError> {
        let record = RunRecord::pending(run_id, plan.name.clone(), redact::redacted(&inputs, &[]));
        let store = &self.inner.store;
        // Marked active before it exists, so this replica's takeover loop,
        // which may claim the fresh run first, leaves it to this call.
        lock(&self.inner.active).insert(run_id, CancellationToken::new());
        let claimed = async {
            store.create_run_with_spec(record, spec).await?;
            store
                .claim_run(run_id, &self.inner.owner, self.inner.lease)
                .await
        }
        .await;
        match claimed {
            Ok(Some(_)) => {
                self.spawn_execution(run_id, Arc::new(plan), workflow, inputs, None);
                Ok(run_id)
            }
            // Another replica claimed the fresh run first: it runs it.
            Ok(None) => {
                lock(&self.inner.active).remove(&run_id);
                Ok(run_id)
            }
            Err(error) => {
                lock(&self.inner.active).remove(&run_id);
                Err(error.into())
            }
        }
    }

    /// Executes a recorded run in the background: from the start, or resumed
    /// from its events once the experts it uses are registered (waiting at
    /// most `resume_after` for them).
    fn spawn_execution(
        &self,
        run_id: RunId,
        plan: Arc<Plan>,
        workflow: Option<Arc<Workflow>>,
        inputs: Value,
        resume_after: Option<Duration>,
    ) {
        let cancel = self.inner.shutdown.child_token();
        lock(&self.inner.active).insert(run_id, cancel.clone());
        let (decider, decisions) = mpsc::unbounded_channel();
        lock(&self.inner.deciders).insert(run_id, decider);
        let manager = self.clone();
        self.inner.tasks.spawn(async move {
            let inner = &manager.inner;
            let owner = Arc::clone(&inner.owner);
            // Every event of the run is written under this replica's lease.
            let services = Services {
                invoker: inner.invoker.clone(),
                store: Arc::new(LeasedStore {
                    inner: inner.store.clone(),
                    owner: Arc::clone(&owner),
                }),
                deliverer: lock(&inner.deliverer).clone(),
                decisions: Some(decisions),
                tracer: lock(&inner.tracer).clone(),
            };
            let (done, lost) = (CancellationToken::new(), CancellationToken::new());
            inner.tasks.spawn(lease::keep_lease(
                inner.store.clone(),
                run_id,
                Arc::clone(&owner),
                inner.lease,
                done.clone(),
                lost.clone(),
            ));
            let mut machine =
                RunMachine::new(run_id, Arc::clone(&plan), inputs, inner.config.clone())
                    .with_content_redactor(crate::guard::event_secrets());
            if let Some(workflow) = workflow {
                machine = machine.with_workflow(workflow);
            }
            if inner.dry_run.load(std::sync::atomic::Ordering::SeqCst) {
                machine = machine.with_dry_run();
            }
            let execution = async {
                match resume_after {
                    None => synod_executor::execute_machine(machine, services, cancel).await,
                    Some(wait) => {
                        manager.wait_for_experts(&plan, wait).await;
                        synod_executor::resume_machine(machine, services, cancel).await
                    }
                }
            };
            tokio::select! {
                outcome = execution => {
                    if let Err(error) = outcome {
                        tracing::error!(run_id = %run_id, error = %error, "run aborted");
                    }
                }
                // Dropping the execution aborts its attempts; the replica
                // that took the lease continues the run.
                () = lost.cancelled() => {
                    tracing::warn!(run_id = %run_id, "stopped driving the run: its lease was lost");
                }
            }
            done.cancel();
            if let Err(error) = inner.store.release_lease(run_id, &owner).await {
                tracing::warn!(run_id = %run_id, error = %error, "cannot release the run's lease");
            }
            lock(&manager.inner.active).remove(&run_id);
            lock(&manager.inner.deciders).remove(&run_id);
        });
    }

    /// Waits until every expert the plan uses is registered, for at most
    /// `wait` (after a restart, experts register again within their
    /// heartbeat interval); a step whose expert is still missing then fails
    /// as it would in a new run.
    async fn wait_for_experts(&self, plan: &Plan, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let known = self.inner.catalog.expert_names();
            let missing: Vec<String> = plan
                .steps_in_order()
                .map(|step| step.uses.expert.clone())
                .filter(|expert| !known.contains(expert))
                .collect();
            if missing.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(plan = %plan.name, missing = ?missing, "resuming although experts are not registered");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resumes every unfinished run in the store that no other replica
    /// holds (after a restart): each is rebuilt from its spec and continued
    /// from its events, without invoking again the steps that finished. Runs
    /// that cannot be rebuilt are failed with the reason. Returns how many
    /// runs were resumed.
    pub async fn resume_unfinished(&self, expert_wait: Duration) -> Result<usize, StartError> {
        let mut resumed = 0;
        for record in self.inner.store.list_unfinished(usize::MAX).await? {
            let claimed = self
                .inner
                .store
                .claim_run(record.run_id, &self.inner.owner, self.inner.lease)
                .await?;
            if claimed.is_some() && self.resume_run(record.run_id, expert_wait).await? {
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Takes over, every half lease, the runs whose lease expired (their
    /// replica died) until shutdown.
    pub fn spawn_takeover(&self, expert_wait: Duration) {
        let manager = self.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(manager.inner.lease / 2) => {}
                }
                let claimed = manager
                    .inner
                    .store
                    .claim_runs(&manager.inner.owner, manager.inner.lease, 64)
                    .await;
                match claimed {
                    Ok(leases) => {
                        for lease in leases {
                            tracing::info!(run_id = %lease.run_id, "taking over a run whose lease expired");
                            if let Err(error) = manager.resume_run(lease.run_id, expert_wait).await {
                                tracing::error!(run_id = %lease.run_id, error = %error, "cannot take the run over");
                            }
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "cannot claim runs"),
                }
            }
        });
    }

    /// Resumes one run this replica holds the lease of; false when it is
    /// already running here or cannot be rebuilt (it is then failed).
    async fn resume_run(&self, run_id: RunId, expert_wait: Duration) -> Result<bool, StartError> {
        if lock(&self.inner.active).contains_key(&run_id) {
            return Ok(false);
        }
        let store = &self.inner.store;
        let rebuilt = match store.run_spec(run_id).await? {
            None => Err(
                "no run spec was recorded (the run was started by a synod without crash recovery)"
                    .to_owned(),
            ),
            Some(spec) => recovery::rebuild(&spec),
        };
        let plan = rebuilt.and_then(|rebuilt| match rebuilt {
            recovery::Rebuilt::Plan { plan, inputs } => Ok((*plan, None, inputs)),
            recovery::Rebuilt::Workflow {
                source,
                file,
                inputs,
            } => compile_against(&source, &file, None)
                .map(|(workflow, plan)| (plan, Some(workflow), inputs))
                .map_err(|error| error.to_string()),
        });
        match plan {
            Ok((plan, workflow, inputs)) => {
                tracing::info!(run_id = %run_id, workflow = %plan.name, "resuming run");
                self.spawn_execution(run_id, Arc::new(plan), workflow, inputs, Some(expert_wait));
                Ok(true)
            }
            Err(reason) => {
                tracing::error!(run_id = %run_id, reason = %reason, "cannot resume run");
                store
                    .append_leased(
                        run_id,
                        &self.inner.owner,
                        RunEventKind::RunFailed {
                            error: format!("the run cannot be resumed after a restart: {reason}"),
                            failed_steps: Vec::new(),
                        },
                    )
                    .await?;
                store.release_lease(run_id, &self.inner.owner).await?;
                Ok(false)
            }
        }
    }

    /// Approves or rejects binding `binding` of run `run_id`. False when the
    /// run does not execute here or that binding does not await a decision.
    pub async fn decide(&self, run_id: RunId, binding: &str, approve: bool, comment: &str) -> bool {
        let Some(decider) = lock(&self.inner.deciders).get(&run_id).cloned() else {
            return false;
        };
        let (reply, taken) = oneshot::channel();
        let decision = ApprovalDecision {
            binding: binding.to_owned(),
            approved: approve,
            comment: comment.to_owned(),
            reply,
        };
        if decider.send(decision).is_err() {
            return false;
        }
        taken.await.unwrap_or(false)
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

    /// Ids of the runs this replica is driving now (marked before a run's
    /// first event is written, unmarked after its last).
    pub fn active_run_ids(&self) -> Vec<RunId> {
        lock(&self.inner.active).keys().copied().collect()
    }

    /// Cancels every active run and waits for their tasks to finish.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// The goal type: `goal_type`, else derived from `text` by intent rules.
fn goal_of(text: &str, goal_type: Option<&str>) -> Result<String, StartError> {
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
    Ok(goal)
}
