//! [`RunMachine`]: the sans-IO state machine of one run.
//!
//! The machine is told what happened ([`MachineInput`]) and answers with what
//! to do ([`Action`]); it never waits, spawns, sleeps or touches the store, so
//! every rule below is testable without time or I/O. The async driver
//! ([`crate::driver::execute`]) performs the actions.
//!
//! Rules:
//! - A step starts once every step it needs has succeeded; at most
//!   [`ExecutorConfig::max_concurrency`] attempts are in flight; ready steps
//!   start in topological order (ties in declaration order).
//! - A step's input is rendered against the run scope
//!   (`{"inputs": …, "steps": {"<id>": {"output": …}}, "run": {"id": …}}`)
//!   when an attempt starts. A render failure fails the step with
//!   [`ErrorCode::BindingError`], without retry.
//! - A failed attempt is retried only when its error is retryable and the
//!   step's [`RetryPolicy`] (or the default) has attempts left. A
//!   [`ErrorCode::DeadlineExceeded`] failure passes through
//!   [`StepStatus::TimedOut`].
//! - A step that fails for good skips its transitive dependents; independent
//!   branches keep running. When no step can change any more, the run
//!   succeeds, or fails naming every failed step.
//! - Cancelling aborts in-flight attempts and retry timers, cancels every
//!   unfinished step and ends the run. Inputs that arrive after the end, or
//!   for an attempt that is not the current one, are ignored.
//!
//! Step states are [`StepStatus`]es:
//!
//! | from             | input / decision                  | to               |
//! |------------------|-----------------------------------|------------------|
//! | `Pending`        | needs succeeded, slot free, input renders | `Running` |
//! | `Pending`        | needs succeeded, input does not render | `Failed`    |
//! | `Pending`        | an upstream step failed           | `Skipped`        |
//! | `Running`        | attempt succeeded                 | `Succeeded`      |
//! | `Running`        | attempt failed, deadline exceeded | `TimedOut`       |
//! | `Running`/`TimedOut` | failed, retry allowed         | `RetryScheduled` |
//! | `Running`/`TimedOut` | failed, no retry left         | `Failed`         |
//! | `RetryScheduled` | retry due, slot free, input renders | `Running`      |
//! | any unfinished   | cancel                            | `Cancelled`      |
//!
//! With a workflow ([`RunMachine::with_workflow`]) the machine also runs:
//! - **`if`**: evaluated when the step is about to start (its needs
//!   succeeded). False: the step is `Skipped` with the reason, and so are its
//!   transitive dependents (they may read its output); the run still
//!   succeeds. An `if` that cannot be evaluated fails the step.
//! - **`for_each`** (`machine/fan_out.rs`): one attempt per item, the output is
//!   the list of item outputs in order; the step fails when any item fails
//!   for good, after every item has ended.
//! - **bindings** (`machine/bindings.rs`): delivered one at a time, in declaration
//!   order, once no step can change any more; a failed binding fails the run.
//!
//! The scope then also holds `env` and `run.workflow`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use petgraph::graph::NodeIndex;
use serde_json::{Map, Value};
use synod_planner::{Plan, PlanStep};
use synod_types::error::{ErrorCode, StepError};
use synod_types::event::PlannedStep;
use synod_types::redact::redacted;
use synod_types::{RetryPolicy, RunEventKind, RunId, RunStatus, StepId, StepStatus};
use synod_workflow::Workflow;
use synod_workflow::runtime::{env_scope, for_each_items, render_outputs, step_should_run};

use crate::binding::{BindingCall, BindingResult};

use crate::config::ExecutorConfig;
use crate::invoke::{Invocation, StepOutput};

/// What happened, as told to [`RunMachine::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum MachineInput {
    /// Begin the run.
    Start,
    /// An attempt ended (the invoker returned, or the driver's deadline
    /// backstop fired).
    AttemptFinished {
        /// The step.
        step: StepId,
        /// The attempt, as given in its [`Invocation`].
        attempt: u32,
        /// Its output or why it failed.
        outcome: Result<StepOutput, StepError>,
    },
    /// The delay of an [`Action::ScheduleRetry`] has passed.
    RetryDue {
        /// The step.
        step: StepId,
        /// The attempt to run, as given in the [`Action::ScheduleRetry`].
        attempt: u32,
    },
    /// An attempt of one item of a `for_each` step ended.
    ItemFinished {
        /// The step.
        step: StepId,
        /// The item index, as given in [`Action::InvokeItem`].
        item: u32,
        /// The item's attempt, as given in its [`Invocation`].
        attempt: u32,
        /// Its output or why it failed.
        outcome: Result<StepOutput, StepError>,
    },
    /// The critic of a step with `reflect` answered (see
    /// [`Action::InvokeCritic`]).
    CriticFinished {
        /// The step judged.
        step: StepId,
        /// The round judged, as given in the critic's [`Invocation`].
        round: u32,
        /// The critique or why the critic failed.
        outcome: Result<StepOutput, StepError>,
    },
    /// The delay of an [`Action::ScheduleItemRetry`] has passed.
    ItemRetryDue {
        /// The step.
        step: StepId,
        /// The item index.
        item: u32,
        /// The item's attempt to run.
        attempt: u32,
    },
    /// A delivery asked by [`Action::Deliver`] ended.
    BindingFinished {
        /// The binding's name.
        binding: String,
        /// What happened (redacted).
        result: BindingResult,
    },
    /// A human approved or rejected a binding awaiting approval. Ignored
    /// (no actions) when that binding does not await a decision.
    ApprovalDecision {
        /// The binding's name.
        binding: String,
        /// True to approve.
        approved: bool,
        /// The decider's comment.
        comment: String,
    },
    /// The delay of an [`Action::ScheduleApprovalTimeout`] has passed.
    ApprovalTimeout {
        /// The binding's name.
        binding: String,
    },
    /// Stop the run.
    Cancel {
        /// Why, recorded in [`RunEventKind::RunCancelled`].
        reason: String,
    },
}

/// What the driver must do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Append this event to the run's log.
    Emit(RunEventKind),
    /// Start this attempt; report its end with [`MachineInput::AttemptFinished`].
    Invoke(Invocation),
    /// After `delay`, report [`MachineInput::RetryDue`] with this step and attempt.
    ScheduleRetry {
        /// The step.
        step: StepId,
        /// The attempt that will run.
        attempt: u32,
        /// How long to wait.
        delay: Duration,
    },
    /// Start this attempt of item `item` of a `for_each` step; report its
    /// end with [`MachineInput::ItemFinished`].
    InvokeItem {
        /// The item index, from 0.
        item: u32,
        /// The attempt (`call.attempt` counts this item's attempts).
        call: Invocation,
    },
    /// After `delay`, report [`MachineInput::ItemRetryDue`].
    ScheduleItemRetry {
        /// The step.
        step: StepId,
        /// The item index.
        item: u32,
        /// The item's attempt that will run.
        attempt: u32,
        /// How long to wait.
        delay: Duration,
    },
    /// Ask a step's critic skill to judge a round (`call.step` is the step
    /// judged, `call.round` the round); report its answer with
    /// [`MachineInput::CriticFinished`].
    InvokeCritic(Invocation),
    /// Deliver this binding; report its end with
    /// [`MachineInput::BindingFinished`].
    Deliver(BindingCall),
    /// After `delay`, report [`MachineInput::ApprovalTimeout`].
    ScheduleApprovalTimeout {
        /// The binding's name.
        binding: String,
        /// How long to wait for a decision.
        delay: Duration,
    },
    /// Abort every in-flight attempt, delivery and pending retry timer (on cancel).
    AbortInFlight,
    /// The run is over; no further action follows.
    Finish {
        /// How it ended.
        status: RunStatus,
        /// `{ "<step id>": <output>, … }` of every succeeded step (not redacted).
        result: Value,
    },
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Built, [`MachineInput::Start`] not yet applied.
    Created,
    /// Started, not finished.
    Running,
    /// [`Action::Finish`] was returned; every input is ignored.
    Finished,
}

/// One step's state, indexed by the step's topological position.
#[derive(Debug)]
struct StepState {
    status: StepStatus,
    /// Number of the last started attempt (0 = none yet).
    attempt: u32,
    /// Dependencies that have not succeeded yet.
    waiting_on: usize,
    /// For `RetryScheduled`: the retry delay has passed (the step is in the ready queue).
    retry_due: bool,
    /// For `Failed`: why.
    error: Option<StepError>,
    /// Reflection state (`reflect` steps; all zero/empty otherwise).
    reflection: reflect::Reflection,
}

/// The state machine of one run. See the [module docs](self) for its rules.
#[derive(Debug)]
pub struct RunMachine {
    run_id: RunId,
    plan: Arc<Plan>,
    config: ExecutorConfig,
    /// The render scope; succeeded outputs are moved into `steps`.
    scope: Value,
    /// Per-step state by topological position.
    steps: Vec<StepState>,
    /// Graph node index -> topological position.
    position_of: Vec<usize>,
    /// Topological positions of steps that may start now.
    ready: BTreeSet<usize>,
    /// Attempts in flight.
    in_flight: usize,
    /// Steps not in a terminal status.
    open_steps: usize,
    phase: Phase,
    rng: fastrand::Rng,
    /// Actions of the input being applied.
    actions: Vec<Action>,
    /// The workflow, when the run executes one (`if`, `for_each`, bindings).
    workflow: Option<Arc<Workflow>>,
    /// State of the `for_each` steps that have fanned out and not ended,
    /// by topological position.
    fan_outs: BTreeMap<usize, fan_out::FanOut>,
    /// State of each binding of the workflow, in declaration order.
    bindings: Vec<bindings::BindingStatus>,
    /// The `reflect:` of the workflow's steps that have one, by topological
    /// position (looked up on every success, so not searched for by id).
    reflect_specs: BTreeMap<usize, Arc<synod_workflow::ReflectSpec>>,
    /// Bindings are rendered, not sent ([`RunMachine::with_dry_run`]).
    dry_run: bool,
    /// String values of the inputs under secret-looking keys (e.g.
    /// `api_token`): masked wherever they appear in events.
    known_secrets: Vec<String>,
    /// Masks secrets found by content in event payloads
    /// ([`RunMachine::with_content_redactor`]).
    content_redactor: Option<Arc<dyn ContentRedactor>>,
}

/// Masks secrets recognised by their content (keys, tokens, passwords in
/// text) in the payloads of run events; the run itself keeps the values.
pub trait ContentRedactor: Send + Sync + std::fmt::Debug + 'static {
    /// `value` with every secret found in its strings masked.
    fn redact(&self, value: &Value) -> Value;
}

// === impl RunMachine ===

impl RunMachine {
    /// A machine for one run of `plan` with `inputs` (an object; the scope's
    /// `inputs`). Nothing happens before [`MachineInput::Start`].
    pub fn new(run_id: RunId, plan: Arc<Plan>, inputs: Value, config: ExecutorConfig) -> Self {
        let order = plan.topological_order();
        let mut position_of = vec![0; order.len()];
        for (position, node) in order.iter().enumerate() {
            position_of[node.index()] = position;
        }
        let mut steps = Vec::with_capacity(order.len());
        for node in order {
            steps.push(StepState {
                status: StepStatus::Pending,
                attempt: 0,
                waiting_on: plan.dependencies(*node).count(),
                retry_due: false,
                error: None,
                reflection: reflect::Reflection::default(),
            });
        }
        let mut scope = Map::with_capacity(3);
        scope.insert("inputs".to_owned(), inputs);
        scope.insert(
            "steps".to_owned(),
            Value::Object(Map::with_capacity(order.len())),
        );
        let mut run = Map::with_capacity(1);
        run.insert("id".to_owned(), Value::String(run_id.to_string()));
        scope.insert("run".to_owned(), Value::Object(run));
        let rng = match config.rng_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let open_steps = steps.len();
        RunMachine {
            run_id,
            plan,
            config,
            scope: Value::Object(scope),
            steps,
            position_of,
            ready: BTreeSet::new(),
            in_flight: 0,
            open_steps,
            phase: Phase::Created,
            rng,
            actions: Vec::new(),
            workflow: None,
            fan_outs: BTreeMap::new(),
            bindings: Vec::new(),
            reflect_specs: BTreeMap::new(),
            dry_run: false,
            known_secrets: Vec::new(),
            content_redactor: None,
        }
        .with_input_secrets()
    }

    /// Collects the secret-named inputs' values into `known_secrets`.
    fn with_input_secrets(mut self) -> Self {
        let mut found = Vec::new();
        secret_values(&self.scope["inputs"], false, &mut found);
        found.sort();
        found.dedup();
        self.known_secrets = found;
        self
    }

    /// `value` with secret-looking keys and known secret values masked, for events.
    fn redact(&self, value: &Value) -> Value {
        let known: Vec<&str> = self.known_secrets.iter().map(String::as_str).collect();
        let value = redacted(value, &known);
        match &self.content_redactor {
            Some(redactor) => redactor.redact(&value),
            None => value,
        }
    }

    /// Also masks secrets found by content in every event payload (inputs,
    /// outputs, results). Step inputs and outputs inside the run are not
    /// changed; a run resumed from its events reads the masked values.
    #[must_use]
    pub fn with_content_redactor(mut self, redactor: Arc<dyn ContentRedactor>) -> Self {
        self.content_redactor = Some(redactor);
        self
    }

    /// Makes the bindings a dry run: approvals are not asked for, the
    /// [`Deliverer`](crate::Deliverer) is expected to render without sending,
    /// and each binding it rendered is recorded as `BindingSkipped`
    /// (`dry run: …, not sent`) instead of `BindingDelivered`.
    #[must_use]
    pub fn with_dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Runs the plan as `workflow` (the one it was planned from): steps'
    /// `if` and `for_each`, and the workflow's bindings after the steps. Adds
    /// `env` and `run.workflow` to the scope.
    #[must_use]
    pub fn with_workflow(mut self, workflow: Arc<Workflow>) -> Self {
        if let Value::Object(scope) = &mut self.scope {
            scope.insert("env".to_owned(), env_scope(&workflow));
            if let Some(Value::Object(run)) = scope.get_mut("run") {
                run.insert("workflow".to_owned(), Value::String(workflow.name.clone()));
            }
        }
        self.bindings = vec![bindings::BindingStatus::Pending; workflow.bindings.len()];
        self.reflect_specs = workflow
            .steps
            .iter()
            .filter_map(|step| {
                let reflect = step.reflect.clone()?;
                Some((self.position(&step.id)?, Arc::new(reflect)))
            })
            .collect();
        self.workflow = Some(workflow);
        self
    }

    /// The run this machine executes.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The name of the plan (the workflow's name) this machine executes.
    pub fn plan_name(&self) -> &str {
        &self.plan.name
    }

    /// The current status of a step, or `None` for a step not in the plan.
    pub fn step_status(&self, step: &StepId) -> Option<StepStatus> {
        let position = self.position(step)?;
        Some(self.steps[position].status)
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// True once [`Action::Finish`] was returned.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Applies one input and returns what to do, in order.
    pub fn apply(&mut self, input: MachineInput) -> Vec<Action> {
        match (self.phase, input) {
            (Phase::Created, MachineInput::Start) => self.start(),
            (Phase::Created, MachineInput::Cancel { reason }) => {
                // Nothing ran: no RunStarted, no step events.
                self.phase = Phase::Finished;
                self.actions
                    .push(Action::Emit(RunEventKind::RunCancelled { reason }));
                self.actions.push(Action::Finish {
                    status: RunStatus::Cancelled,
                    result: Value::Object(Map::new()),
                });
            }
            (Phase::Created, MachineInput::AttemptFinished { .. })
            | (Phase::Created, MachineInput::RetryDue { .. })
            | (Phase::Created, MachineInput::ItemFinished { .. })
            | (Phase::Created, MachineInput::ItemRetryDue { .. })
            | (Phase::Created, MachineInput::CriticFinished { .. })
            | (Phase::Created, MachineInput::BindingFinished { .. })
            | (Phase::Created, MachineInput::ApprovalDecision { .. })
            | (Phase::Created, MachineInput::ApprovalTimeout { .. }) => {
                // Nothing was started or scheduled: not ours.
            }
            (Phase::Running, MachineInput::Start) => {
                // Already started.
            }
            (
                Phase::Running,
                MachineInput::AttemptFinished {
                    step,
                    attempt,
                    outcome,
                },
            ) => self.attempt_finished(&step, attempt, outcome),
            (Phase::Running, MachineInput::RetryDue { step, attempt }) => {
                self.retry_due(&step, attempt);
            }
            (
                Phase::Running,
                MachineInput::ItemFinished {
                    step,
                    item,
                    attempt,
                    outcome,
                },
            ) => self.item_finished(&step, item, attempt, outcome),
            (
                Phase::Running,
                MachineInput::ItemRetryDue {
                    step,
                    item,
                    attempt,
                },
            ) => self.item_retry_due(&step, item, attempt),
            (
                Phase::Running,
                MachineInput::CriticFinished {
                    step,
                    round,
                    outcome,
                },
            ) => self.critic_finished(&step, round, outcome),
            (Phase::Running, MachineInput::BindingFinished { binding, result }) => {
                self.binding_finished(&binding, result);
            }
            (
                Phase::Running,
                MachineInput::ApprovalDecision {
                    binding,
                    approved,
                    comment,
                },
            ) => self.approval_decided(&binding, approved, comment),
            (Phase::Running, MachineInput::ApprovalTimeout { binding }) => {
                self.approval_timed_out(&binding);
            }
            (Phase::Running, MachineInput::Cancel { reason }) => self.cancel(reason),
            (Phase::Finished, _) => {
                // The run is over: late results, timers and cancels are ignored.
            }
        }
        std::mem::take(&mut self.actions)
    }

    // --- inputs ---

    fn start(&mut self) {
        self.phase = Phase::Running;
        let mut planned = Vec::with_capacity(self.steps.len());
        for step in self.plan.steps_in_order() {
            planned.push(PlannedStep {
                id: step.id.clone(),
                uses: step.uses.clone(),
                needs: step.needs.clone(),
            });
        }
        self.actions.push(Action::Emit(RunEventKind::RunStarted {
            workflow: self.plan.name.clone(),
            inputs: self.redact(&self.scope["inputs"]),
            steps: planned,
        }));
        if let Some(note) = &self.plan.note {
            self.actions.push(Action::Emit(RunEventKind::RunPlanned {
                planner: note.planner.clone(),
                goal: note.goal.clone(),
                task: note.task.clone(),
                choices: note.choices.clone(),
                attempts: (!note.attempts.is_null()).then(|| Box::new(note.attempts.clone())),
            }));
        }
        for (position, state) in self.steps.iter().enumerate() {
            if state.waiting_on == 0 {
                self.ready.insert(position);
            }
        }
        self.start_ready_steps();
        self.finish_if_done();
    }

    fn attempt_finished(
        &mut self,
        step: &StepId,
        attempt: u32,
        outcome: Result<StepOutput, StepError>,
    ) {
        let Some(position) = self.position(step) else {
            return; // not a step of this plan
        };
        if self.steps[position].attempt != attempt {
            return; // a stale attempt
        }
        match (self.steps[position].status, outcome) {
            (StepStatus::Running, Ok(output)) => {
                self.in_flight -= 1;
                if let Some(output) = self.judge(position, output) {
                    self.succeed(position, output);
                }
            }
            (StepStatus::Running, Err(error)) if error.code == ErrorCode::DeadlineExceeded => {
                self.in_flight -= 1;
                self.steps[position].status = StepStatus::TimedOut;
                self.attempt_failed(position, error);
            }
            (StepStatus::Running, Err(error)) => {
                self.in_flight -= 1;
                self.attempt_failed(position, error);
            }
            (
                StepStatus::Pending
                | StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::RetryScheduled
                | StepStatus::TimedOut
                | StepStatus::Cancelled
                | StepStatus::Skipped,
                _,
            ) => {
                // No attempt of this step is in flight: ignored.
                return;
            }
        }
        self.start_ready_steps();
        self.finish_if_done();
    }

    fn retry_due(&mut self, step: &StepId, attempt: u32) {
        let Some(position) = self.position(step) else {
            return;
        };
        let state = &mut self.steps[position];
        match state.status {
            StepStatus::RetryScheduled if !state.retry_due && attempt == state.attempt + 1 => {
                state.retry_due = true;
                self.ready.insert(position);
            }
            StepStatus::RetryScheduled
            | StepStatus::Pending
            | StepStatus::Running
            | StepStatus::Succeeded
            | StepStatus::Failed
            | StepStatus::TimedOut
            | StepStatus::Cancelled
            | StepStatus::Skipped => {
                // A stale or duplicate timer: ignored.
                return;
            }
        }
        self.start_ready_steps();
    }

    fn cancel(&mut self, reason: String) {
        self.phase = Phase::Finished;
        let mut anything_to_abort = self.in_flight > 0
            || !self.fan_outs.is_empty()
            || self.binding_in_flight()
            || self.awaiting_approval();
        for state in &self.steps {
            if state.status == StepStatus::RetryScheduled {
                anything_to_abort = true;
            }
        }
        if anything_to_abort {
            self.actions.push(Action::AbortInFlight);
        }
        for position in 0..self.steps.len() {
            match self.steps[position].status {
                StepStatus::Pending
                | StepStatus::Running
                | StepStatus::RetryScheduled
                | StepStatus::TimedOut => {
                    self.steps[position].status = StepStatus::Cancelled;
                    self.open_steps -= 1;
                    let step = self.step_at(position).id.clone();
                    self.actions
                        .push(Action::Emit(RunEventKind::StepCancelled { step }));
                }
                StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::Cancelled
                | StepStatus::Skipped => {}
            }
        }
        self.in_flight = 0;
        self.ready.clear();
        self.fan_outs.clear();
        self.actions
            .push(Action::Emit(RunEventKind::RunCancelled { reason }));
        let result = self.take_result();
        self.actions.push(Action::Finish {
            status: RunStatus::Cancelled,
            result,
        });
    }

    // --- step transitions ---

    /// Starts ready steps in topological order while slots are free.
    fn start_ready_steps(&mut self) {
        let limit = self.config.max_concurrency.max(1);
        while self.in_flight < limit {
            if let Some((position, item)) = self.next_item() {
                self.start_item(position, item);
                continue;
            }
            let Some(position) = self.ready.pop_first() else {
                return;
            };
            self.start_attempt(position);
        }
    }

    /// `Pending | RetryScheduled -> Running`, or `-> Failed` when the input
    /// does not render.
    fn start_attempt(&mut self, position: usize) {
        let plan = Arc::clone(&self.plan);
        let step = &plan.graph()[plan.topological_order()[position]];
        let state = &mut self.steps[position];
        let attempt = match state.status {
            StepStatus::Pending => 1,
            StepStatus::RetryScheduled => state.attempt + 1,
            StepStatus::Running
            | StepStatus::Succeeded
            | StepStatus::Failed
            | StepStatus::TimedOut
            | StepStatus::Cancelled
            | StepStatus::Skipped => return, // never queued in these states
        };
        if attempt == 1 && self.workflow_rules(position) {
            return; // skipped, failed or fanned out
        }
        let state = &mut self.steps[position];
        state.attempt = attempt;
        state.retry_due = false;
        match step.input.render(&self.scope) {
            Ok(input) => {
                state.status = StepStatus::Running;
                self.in_flight += 1;
                self.actions.push(Action::Emit(RunEventKind::StepStarted {
                    step: step.id.clone(),
                    attempt,
                    uses: step.uses.clone(),
                    input: self.redact(&input),
                }));
                let call = self.invocation(position, attempt, input);
                self.actions.push(Action::Invoke(call));
            }
            Err(render_error) => {
                let error = expression_error(format!(
                    "the input of step `{}` cannot be rendered: {render_error}; fix the reference or add the missing input",
                    step.id
                ));
                self.fail_for_good(position, error);
            }
        }
    }

    /// `Running -> Succeeded`: records the output and readies dependents.
    fn succeed(&mut self, position: usize, output: StepOutput) {
        let plan = Arc::clone(&self.plan);
        let node = plan.topological_order()[position];
        if let Some(guard) = output.guard {
            self.actions
                .push(Action::Emit(RunEventKind::StepInputRedacted {
                    step: plan.graph()[node].id.clone(),
                    attempt: self.steps[position].attempt,
                    expert: guard.expert,
                    redacted: guard.redacted,
                }));
        }
        self.actions.push(Action::Emit(RunEventKind::StepSucceeded {
            step: plan.graph()[node].id.clone(),
            attempt: self.steps[position].attempt,
            output: self.redact(&output.output),
            confidence: output.confidence,
            duration_ms: output.duration_ms,
            instance: output.instance,
        }));
        self.record_success(position, output.output);
        for dependent in plan.dependents(node) {
            let dependent_position = self.position_of[dependent.index()];
            let dependent_state = &self.steps[dependent_position];
            if dependent_state.waiting_on == 0 && dependent_state.status == StepStatus::Pending {
                self.ready.insert(dependent_position);
            }
        }
    }

    /// Marks the step at `position` succeeded with `output` (the caller
    /// records the event) and counts it off its dependents.
    fn record_success(&mut self, position: usize, output: Value) {
        let plan = Arc::clone(&self.plan);
        let node = plan.topological_order()[position];
        let id = plan.graph()[node].id.0.clone();
        self.steps[position].status = StepStatus::Succeeded;
        self.open_steps -= 1;
        let mut entry = Map::with_capacity(1);
        entry.insert("output".to_owned(), output);
        self.step_outputs().insert(id, Value::Object(entry));
        for dependent in plan.dependents(node) {
            self.steps[self.position_of[dependent.index()]].waiting_on -= 1;
        }
    }

    /// `Running | TimedOut -> RetryScheduled | Failed`.
    fn attempt_failed(&mut self, position: usize, error: StepError) {
        let attempt = self.steps[position].attempt;
        let plan = Arc::clone(&self.plan);
        let step = &plan.graph()[plan.topological_order()[position]];
        // Attempts count from the start of the current reflection round.
        let attempt_in_round =
            attempt.saturating_sub(self.steps[position].reflection.first_attempt) + 1;
        let delay = retry_delay(
            step,
            &self.config.default_retry,
            &mut self.rng,
            attempt_in_round,
            &error,
        );
        match (self.steps[position].status, delay) {
            (StepStatus::Running | StepStatus::TimedOut, Some(delay)) => {
                let step = step.id.clone();
                self.steps[position].status = StepStatus::RetryScheduled;
                self.actions.push(Action::Emit(RunEventKind::StepFailed {
                    step: step.clone(),
                    attempt,
                    error,
                    will_retry: true,
                }));
                self.actions
                    .push(Action::Emit(RunEventKind::StepRetryScheduled {
                        step: step.clone(),
                        next_attempt: attempt + 1,
                        delay_ms: millis(delay),
                    }));
                self.actions.push(Action::ScheduleRetry {
                    step,
                    attempt: attempt + 1,
                    delay,
                });
            }
            (StepStatus::Running | StepStatus::TimedOut, None) => {
                self.fail_for_good(position, error);
            }
            (
                StepStatus::Pending
                | StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::RetryScheduled
                | StepStatus::Cancelled
                | StepStatus::Skipped,
                _,
            ) => {
                // Only called for a step whose attempt just ended.
            }
        }
    }

    /// `-> Failed`, then every pending transitive dependent `-> Skipped`.
    fn fail_for_good(&mut self, position: usize, error: StepError) {
        let plan = Arc::clone(&self.plan);
        let failed = &plan.graph()[plan.topological_order()[position]].id;
        self.mark_failed(position, error.clone());
        self.actions.push(Action::Emit(RunEventKind::StepFailed {
            step: failed.clone(),
            attempt: self.steps[position].attempt,
            error,
            will_retry: false,
        }));
        self.skip_dependents(position);
    }

    /// Marks the step at `position` failed for good with `error` (the caller
    /// records the event).
    fn mark_failed(&mut self, position: usize, error: StepError) {
        let state = &mut self.steps[position];
        state.status = StepStatus::Failed;
        state.error = Some(error);
        self.open_steps -= 1;
    }

    /// Every pending transitive dependent of the failed or skipped step at
    /// `position` `-> Skipped`, naming it as the reason; nothing for a step
    /// in any other state.
    fn skip_dependents(&mut self, position: usize) {
        let plan = Arc::clone(&self.plan);
        let node = plan.topological_order()[position];
        let id = &plan.graph()[node].id;
        let reason = match self.steps[position].status {
            StepStatus::Failed => format!("upstream step `{id}` failed"),
            StepStatus::Skipped => format!("upstream step `{id}` was skipped"),
            StepStatus::Pending
            | StepStatus::Running
            | StepStatus::RetryScheduled
            | StepStatus::TimedOut
            | StepStatus::Succeeded
            | StepStatus::Cancelled => return,
        };
        let mut to_skip = BTreeSet::new();
        // Already skipped dependents are walked through too: after a resume,
        // their own dependents may still be pending.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeIndex> = vec![node];
        while let Some(upstream) = stack.pop() {
            for dependent in plan.dependents(upstream) {
                let dependent_position = self.position_of[dependent.index()];
                let status = self.steps[dependent_position].status;
                if matches!(status, StepStatus::Pending | StepStatus::Skipped)
                    && seen.insert(dependent_position)
                {
                    if status == StepStatus::Pending {
                        to_skip.insert(dependent_position);
                    }
                    stack.push(dependent);
                }
            }
        }
        for skipped in to_skip {
            self.steps[skipped].status = StepStatus::Skipped;
            self.open_steps -= 1;
            self.ready.remove(&skipped);
            self.actions.push(Action::Emit(RunEventKind::StepSkipped {
                step: self.step_at(skipped).id.clone(),
                reason: reason.clone(),
            }));
        }
    }

    // --- run end ---

    fn finish_if_done(&mut self) {
        if self.phase != Phase::Running || self.open_steps > 0 {
            return;
        }
        if !self.deliver_next_binding() {
            return; // a delivery is in flight
        }
        self.phase = Phase::Finished;
        let mut failed_steps = Vec::new();
        let mut summaries = Vec::new();
        for (position, state) in self.steps.iter().enumerate() {
            if state.status != StepStatus::Failed {
                continue;
            }
            let id = self.step_at(position).id.clone();
            match &state.error {
                Some(error) => summaries.push(format!("step `{id}` failed: {error}")),
                None => summaries.push(format!("step `{id}` failed")),
            }
            failed_steps.push(id);
        }
        summaries.extend(self.binding_failures());
        let outputs = if summaries.is_empty() {
            self.workflow_outputs()
        } else {
            None
        };
        let mut result = self.take_result();
        match outputs {
            Some(Ok(outputs)) => result = outputs,
            Some(Err(error)) => summaries.push(error),
            None => {}
        }
        if summaries.is_empty() {
            self.actions.push(Action::Emit(RunEventKind::RunSucceeded {
                result: self.redact(&result),
            }));
            self.actions.push(Action::Finish {
                status: RunStatus::Succeeded,
                result,
            });
        } else {
            self.actions.push(Action::Emit(RunEventKind::RunFailed {
                error: summaries.join("; "),
                failed_steps,
            }));
            self.actions.push(Action::Finish {
                status: RunStatus::Failed,
                result,
            });
        }
    }

    /// The workflow's `outputs:` rendered against the final scope, when it
    /// declares any (then they are the run's result); an output that cannot
    /// be computed fails the run, naming the output.
    fn workflow_outputs(&self) -> Option<Result<Value, String>> {
        let workflow = self.workflow.as_ref()?;
        if workflow.outputs.is_empty() {
            return None;
        }
        Some(
            render_outputs(workflow, &self.scope)
                .map_err(|error| format!("the workflow's outputs cannot be computed: {error}")),
        )
    }

    /// Moves the outputs of succeeded steps out of the scope into the result
    /// object (topological order). Only called when the run ends.
    fn take_result(&mut self) -> Value {
        let mut outputs = std::mem::take(self.step_outputs());
        let mut result = Map::with_capacity(outputs.len());
        for step in self.plan.steps_in_order() {
            let Some(Value::Object(mut entry)) = outputs.remove(step.id.as_str()) else {
                continue;
            };
            if let Some(output) = entry.remove("output") {
                result.insert(step.id.0.clone(), output);
            }
        }
        Value::Object(result)
    }

    /// Applies the workflow's `if` and `for_each` to the step at `position`
    /// about to start its first attempt. True when they took the step over
    /// (skipped, failed or fanned out), false when it runs as usual.
    fn workflow_rules(&mut self, position: usize) -> bool {
        let Some(workflow) = self.workflow.clone() else {
            return false;
        };
        let id = self.step_at(position).id.clone();
        let Some(spec) = workflow.step(id.as_str()) else {
            return false;
        };
        match step_should_run(spec, &self.scope) {
            Ok(true) => {}
            Ok(false) => {
                let condition = condition_text(spec.condition.as_ref());
                self.steps[position].status = StepStatus::Skipped;
                self.open_steps -= 1;
                self.actions.push(Action::Emit(RunEventKind::StepSkipped {
                    step: id.clone(),
                    reason: format!("its condition `if: ${{{{ {condition} }}}}` is false"),
                }));
                self.skip_dependents(position);
                return true;
            }
            Err(error) => {
                self.steps[position].attempt = 1;
                self.fail_for_good(
                    position,
                    expression_error(format!(
                        "the `if` of step `{id}` cannot be evaluated: {error}; fix the condition or what it reads"
                    )),
                );
                return true;
            }
        }
        match for_each_items(spec, &self.scope) {
            None => false,
            Some(Ok(items)) => {
                let max_parallel = spec.for_each.as_ref().and_then(|each| each.max_parallel);
                self.fan_out(position, items, max_parallel);
                true
            }
            Some(Err(error)) => {
                self.steps[position].attempt = 1;
                self.fail_for_good(
                    position,
                    expression_error(format!(
                        "the `for_each` of step `{id}` cannot be evaluated: {error}; it must give a list"
                    )),
                );
                true
            }
        }
    }

    /// Attempt `attempt` of the step at `position` with the rendered `input`
    /// (in the step's current reflection round, with the feedback so far).
    fn invocation(&self, position: usize, attempt: u32, input: Value) -> Invocation {
        let step = self.step_at(position);
        let reflection = &self.steps[position].reflection;
        Invocation {
            run_id: self.run_id,
            step: step.id.clone(),
            attempt,
            round: reflection.round,
            feedback: reflection.feedback.clone(),
            uses: step.uses.clone(),
            input,
            deadline: step.timeout.unwrap_or(self.config.default_timeout),
        }
    }

    // --- lookups ---

    fn position(&self, step: &StepId) -> Option<usize> {
        let node = self.plan.node(step)?;
        Some(self.position_of[node.index()])
    }

    fn step_at(&self, position: usize) -> &PlanStep {
        &self.plan.graph()[self.plan.topological_order()[position]]
    }

    /// The scope's `steps` object.
    ///
    /// # Panics
    /// Never: `new` builds the scope with an object under `steps` and nothing
    /// replaces it.
    fn step_outputs(&mut self) -> &mut Map<String, Value> {
        match self.scope.get_mut("steps") {
            Some(Value::Object(outputs)) => outputs,
            _ => unreachable!("the run scope always holds a `steps` object"),
        }
    }
}

mod bindings;
mod fan_out;
mod reflect;
/// Pushes every string under a secret-looking key of `value` (anywhere
/// below one when `inside` is true) onto `found`. Strings shorter than 4
/// characters are left out: masking them would mask ordinary text.
fn secret_values(value: &Value, inside: bool, found: &mut Vec<String>) {
    match value {
        Value::String(text) if inside && text.chars().count() >= 4 => found.push(text.clone()),
        Value::Array(items) => {
            for item in items {
                secret_values(item, inside, found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                secret_values(
                    item,
                    inside || synod_types::redact::is_secret_key(key),
                    found,
                );
            }
        }
        Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The delay before attempt `attempt + 1` of `step` (or of one of its
/// items) after `error` under the step's retry policy (or `default`), or
/// `None` when it is not retried.
fn retry_delay(
    step: &PlanStep,
    default: &RetryPolicy,
    rng: &mut fastrand::Rng,
    attempt: u32,
    error: &StepError,
) -> Option<Duration> {
    if !error.retryable {
        return None;
    }
    let policy = step.retry.as_ref().unwrap_or(default);
    policy.delay_after(attempt, rng.f64())
}

/// `duration` in whole milliseconds, as events record it.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The source of an `if`, for skip reasons.
fn condition_text(site: Option<&synod_workflow::ExpressionSite>) -> &str {
    site.map(|site| site.expression.source.as_str())
        .unwrap_or_default()
}

/// A non-retryable [`ErrorCode::BindingError`] about an expression or a
/// template that does not evaluate.
fn expression_error(message: String) -> StepError {
    let mut error = StepError::new(ErrorCode::BindingError, message);
    error.retryable = false;
    error
}

mod resume;
pub use resume::ResumeError;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workflow_tests;
