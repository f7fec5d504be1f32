//! [`execute`]: the async driver that performs a [`RunMachine`]'s actions.
//!
//! The driver owns the I/O: it appends events to the [`RunStore`] (in order,
//! before anything later happens), runs attempts through the [`Invoker`] in a
//! [`JoinSet`], keeps retry timers in the same set, and turns the cancellation
//! token into [`MachineInput::Cancel`]. Every decision is the machine's.
//! Time comes from `tokio::time`, so tests run on a paused clock.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use serde_json::Value;
use synod_planner::Plan;
use synod_store::{RunStore, StoreError};
use synod_types::error::{ErrorCode, StepError};
use synod_types::telemetry::{attr, span};
use synod_types::{RunId, RunStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::binding::{BindingResult, Deliverer};
use crate::config::ExecutorConfig;
use crate::invoke::{Invocation, Invoker};
use crate::machine::{Action, MachineInput, ResumeError, RunMachine};
use crate::telemetry::{Tracer, end_run, end_with_result};

/// Extra time an attempt gets past its deadline before the driver gives up
/// on an invoker that does not honour the deadline itself.
pub const DEADLINE_BACKSTOP_GRACE: Duration = Duration::from_millis(500);

/// The reason recorded in `RunCancelled` when the cancellation token fires.
pub const CANCEL_REASON: &str = "cancellation requested";

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Succeeded, failed or cancelled.
    pub status: RunStatus,
    /// `{ "<step id>": <output>, … }` of every succeeded step (not redacted).
    pub result: Value,
}

/// Why [`execute`] could not drive a run to a recorded end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// An event could not be appended; the run was abandoned where it stood
    /// (in-flight attempts aborted) and its record was not closed.
    #[error(
        "run `{run_id}` was aborted: its events cannot be recorded; check the store and that the run record was created before `execute`"
    )]
    Store {
        /// The run.
        run_id: RunId,
        /// The store's failure.
        #[source]
        source: StoreError,
    },
    /// The run's recorded events could not be read, for [`resume`].
    #[error("run `{run_id}` cannot be resumed: its events cannot be read from the store")]
    ReadEvents {
        /// The run.
        run_id: RunId,
        /// The store's failure.
        #[source]
        source: StoreError,
    },
    /// The run's recorded events do not allow resuming it.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// The machine neither finished nor had work in flight; a bug in synod.
    #[error(
        "run `{run_id}` stalled with no attempt in flight and no step ready; this is a bug in synod, please report it"
    )]
    Stalled {
        /// The run.
        run_id: RunId,
    },
}

/// What the driver performs a run's actions with.
pub struct Services {
    /// Runs step attempts.
    pub invoker: Arc<dyn Invoker>,
    /// Records the run's events.
    pub store: Arc<dyn RunStore>,
    /// Delivers workflow bindings; without one, every binding fails with a
    /// message saying bindings are not configured.
    pub deliverer: Option<Arc<dyn Deliverer>>,
    /// Approval decisions for this run's bindings; without them, a binding
    /// awaiting approval waits for its timeout or a cancel.
    pub decisions: Option<mpsc::UnboundedReceiver<ApprovalDecision>>,
    /// Starts the run's OpenTelemetry spans (see [`crate::telemetry`]);
    /// without one no span is created.
    pub tracer: Option<Tracer>,
}

/// A human decision on a binding awaiting approval, sent to a running
/// driver (see [`Services::decisions`]).
#[derive(Debug)]
pub struct ApprovalDecision {
    /// The binding's name.
    pub binding: String,
    /// True to approve.
    pub approved: bool,
    /// The decider's comment.
    pub comment: String,
    /// Told whether the decision was taken (false: the binding was not
    /// awaiting one).
    pub reply: oneshot::Sender<bool>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("deliverer", &self.deliverer.is_some())
            .field("tracer", &self.tracer.is_some())
            .finish_non_exhaustive()
    }
}

/// Starts `machine` (built with [`RunMachine::new`], and
/// [`RunMachine::with_workflow`] for a workflow run) and executes it to its
/// end, as [`execute`] does.
pub async fn execute_machine(
    mut machine: RunMachine,
    services: Services,
    cancel: CancellationToken,
) -> Result<RunOutcome, ExecutorError> {
    let span = tracing::info_span!("run", synod.run.id = %machine.run_id());
    let actions = machine.apply(MachineInput::Start);
    drive(machine, actions, services, cancel, false)
        .instrument(span)
        .await
}

/// Resumes `machine`'s run (a machine built as for [`execute_machine`],
/// not started) from the events recorded in the store, as [`resume`] does.
pub async fn resume_machine(
    machine: RunMachine,
    services: Services,
    cancel: CancellationToken,
) -> Result<RunOutcome, ExecutorError> {
    let run_id = machine.run_id();
    let span = tracing::info_span!("run", synod.run.id = %run_id, resumed = true);
    async move {
        let events = services
            .store
            .events(run_id, 0)
            .await
            .map_err(|source| ExecutorError::ReadEvents { run_id, source })?;
        let (machine, actions) = machine.replay(&events, &std::collections::HashMap::new())?;
        drive(machine, actions, services, cancel, true).await
    }
    .instrument(span)
    .await
}

/// Executes `plan` as run `run_id` to its end and returns how it ended.
///
/// The run record must already exist in `store` (the caller creates it);
/// every event is appended before the next action is performed. Cancelling
/// `cancel` cancels the run: in-flight attempts are aborted and the run ends
/// `Cancelled`. A store failure aborts the run with [`ExecutorError::Store`].
pub async fn execute(
    run_id: RunId,
    plan: Arc<Plan>,
    inputs: Value,
    config: ExecutorConfig,
    invoker: Arc<dyn Invoker>,
    store: Arc<dyn RunStore>,
    cancel: CancellationToken,
) -> Result<RunOutcome, ExecutorError> {
    let span = tracing::info_span!("run", synod.run.id = %run_id, workflow = %plan.name);
    let mut machine = RunMachine::new(run_id, plan, inputs, config);
    let actions = machine.apply(MachineInput::Start);
    let services = Services {
        invoker,
        store,
        deliverer: None,
        decisions: None,
        tracer: None,
    };
    drive(machine, actions, services, cancel, false)
        .instrument(span)
        .await
}

/// Resumes run `run_id` from the events already recorded in `store` and
/// executes it to its end, as [`execute`] would have.
///
/// Steps that finished are not invoked again; attempts that were in flight
/// are invoked again with the next attempt number (see
/// [`RunMachine::resume`]). `plan` and `inputs` must be those the run started
/// with. A run with no events yet starts from the beginning.
pub async fn resume(
    run_id: RunId,
    plan: Arc<Plan>,
    inputs: Value,
    config: ExecutorConfig,
    invoker: Arc<dyn Invoker>,
    store: Arc<dyn RunStore>,
    cancel: CancellationToken,
) -> Result<RunOutcome, ExecutorError> {
    let span =
        tracing::info_span!("run", synod.run.id = %run_id, workflow = %plan.name, resumed = true);
    async move {
        let events = store
            .events(run_id, 0)
            .await
            .map_err(|source| ExecutorError::ReadEvents { run_id, source })?;
        let (machine, actions) = RunMachine::resume(
            run_id,
            plan,
            inputs,
            config,
            &events,
            &std::collections::HashMap::new(),
        )?;
        let services = Services {
            invoker,
            store,
            deliverer: None,
            decisions: None,
            tracer: None,
        };
        drive(machine, actions, services, cancel, true).await
    }
    .instrument(span)
    .await
}

/// The run's span context and the tracer for its children; without a
/// tracer every context is empty and nothing is recorded.
struct RunSpans {
    tracer: Option<Tracer>,
    run: Context,
}

impl RunSpans {
    /// Starts the run's root span (a new trace: a resumed run's earlier
    /// spans are in another trace, found by `synod.run.id`).
    fn start(tracer: Option<Tracer>, machine: &RunMachine, resumed: bool) -> Self {
        let run = match &tracer {
            Some(tracer) => tracer.start(
                span::RUN,
                SpanKind::Internal,
                vec![
                    KeyValue::new(attr::RUN_ID, machine.run_id().to_string()),
                    KeyValue::new(attr::WORKFLOW, machine.plan_name().to_owned()),
                    KeyValue::new(attr::RUN_RESUMED, resumed),
                ],
                &Context::new(),
            ),
            None => Context::new(),
        };
        RunSpans { tracer, run }
    }

    /// A child span of the run for one call of `call.uses`, with `extra`
    /// attributes.
    fn child(&self, name: &'static str, call: &Invocation, extra: &[KeyValue]) -> Context {
        let Some(tracer) = &self.tracer else {
            return Context::new();
        };
        let mut attributes = vec![
            KeyValue::new(attr::RUN_ID, call.run_id.to_string()),
            KeyValue::new(attr::STEP_ID, call.step.to_string()),
            KeyValue::new(attr::EXPERT_NAME, call.uses.expert.clone()),
            KeyValue::new(attr::SKILL, call.uses.skill.clone()),
        ];
        attributes.extend_from_slice(extra);
        tracer.start(name, SpanKind::Internal, attributes, &self.run)
    }

    /// A child span of the run for delivering `binding`.
    fn binding(&self, binding: &str) -> Context {
        match &self.tracer {
            Some(tracer) => tracer.start(
                span::BINDING,
                SpanKind::Internal,
                vec![KeyValue::new(attr::BINDING, binding.to_owned())],
                &self.run,
            ),
            None => Context::new(),
        }
    }
}

async fn drive(
    machine: RunMachine,
    actions: Vec<Action>,
    mut services: Services,
    cancel: CancellationToken,
    resumed: bool,
) -> Result<RunOutcome, ExecutorError> {
    let spans = RunSpans::start(services.tracer.take(), &machine, resumed);
    let result = perform(machine, actions, services, cancel, &spans).await;
    if spans.tracer.is_some() {
        end_run(
            &spans.run,
            result.as_ref().ok().map(|outcome| outcome.status),
        );
    }
    result
}

async fn perform(
    mut machine: RunMachine,
    mut actions: Vec<Action>,
    services: Services,
    cancel: CancellationToken,
    spans: &RunSpans,
) -> Result<RunOutcome, ExecutorError> {
    let Services {
        invoker,
        store,
        deliverer,
        mut decisions,
        tracer: _,
    } = services;
    let run_id = machine.run_id();
    // Attempts and retry timers; each task ends with the input it reports.
    let mut tasks: JoinSet<MachineInput> = JoinSet::new();
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Emit(kind) => {
                    if let Err(source) = store.append(run_id, kind).await {
                        tasks.shutdown().await;
                        return Err(ExecutorError::Store { run_id, source });
                    }
                }
                Action::Invoke(call) => {
                    spawn_call(&mut tasks, &invoker, spans, CallKind::Attempt, call);
                }
                Action::InvokeCritic(call) => {
                    spawn_call(&mut tasks, &invoker, spans, CallKind::Critic, call);
                }
                Action::InvokeItem { item, call } => {
                    spawn_call(&mut tasks, &invoker, spans, CallKind::Item(item), call);
                }
                Action::ScheduleItemRetry {
                    step,
                    item,
                    attempt,
                    delay,
                } => {
                    tasks.spawn(async move {
                        tokio::time::sleep(delay).await;
                        MachineInput::ItemRetryDue {
                            step,
                            item,
                            attempt,
                        }
                    });
                }
                Action::Deliver(call) => {
                    let deliverer = deliverer.clone();
                    let span = tracing::debug_span!("binding", synod.binding = %call.binding);
                    let trace = spans.binding(&call.binding);
                    tasks.spawn(
                        async move {
                            let binding = call.binding.clone();
                            let result = match deliverer {
                                Some(deliverer) => deliverer.deliver(call).await,
                                None => BindingResult::not_sent(
                                    "",
                                    format!(
                                        "binding `{binding}` cannot be delivered: this orchestrator has no binding sender configured"
                                    ),
                                ),
                            };
                            // Ends the binding's span (dropping the last reference).
                            drop(trace);
                            MachineInput::BindingFinished { binding, result }
                        }
                        .instrument(span),
                    );
                }
                Action::ScheduleRetry {
                    step,
                    attempt,
                    delay,
                } => {
                    tasks.spawn(async move {
                        tokio::time::sleep(delay).await;
                        MachineInput::RetryDue { step, attempt }
                    });
                }
                Action::ScheduleApprovalTimeout { binding, delay } => {
                    tasks.spawn(async move {
                        tokio::time::sleep(delay).await;
                        MachineInput::ApprovalTimeout { binding }
                    });
                }
                Action::AbortInFlight => tasks.abort_all(),
                Action::Finish { status, result } => {
                    // Normally empty; after a cancel, waits until every
                    // aborted attempt has been dropped.
                    tasks.shutdown().await;
                    return Ok(RunOutcome { status, result });
                }
            }
        }
        if tasks.is_empty() && !machine.awaiting_approval() {
            // The machine finishes a run as soon as nothing is in flight and
            // nothing is ready; getting here means it did not.
            return Err(ExecutorError::Stalled { run_id });
        }
        let decision = async {
            match decisions.as_mut() {
                Some(receiver) => receiver.recv().await,
                None => std::future::pending().await,
            }
        };
        let joined = async {
            if tasks.is_empty() {
                std::future::pending().await
            } else {
                tasks.join_next().await
            }
        };
        let input = tokio::select! {
            biased;
            () = cancel.cancelled() => MachineInput::Cancel { reason: CANCEL_REASON.to_owned() },
            Some(decision) = decision => {
                actions = machine.apply(MachineInput::ApprovalDecision {
                    binding: decision.binding,
                    approved: decision.approved,
                    comment: decision.comment,
                });
                let _ = decision.reply.send(!actions.is_empty());
                continue;
            }
            joined = joined => match joined {
                Some(Ok(input)) => input,
                // Aborted tasks (only after AbortInFlight) report nothing.
                Some(Err(_aborted)) => continue,
                None => return Err(ExecutorError::Stalled { run_id }),
            },
        };
        actions = machine.apply(input);
    }
}

/// What an expert call spawned by [`spawn_call`] is for.
#[derive(Clone, Copy)]
enum CallKind {
    /// An attempt of a step ([`Action::Invoke`]).
    Attempt,
    /// An attempt of one item of a fanned-out step ([`Action::InvokeItem`]).
    Item(u32),
    /// A critic judging a reflection round ([`Action::InvokeCritic`]).
    Critic,
}

/// Spawns `call` on `tasks` in its tracing span and OpenTelemetry span (a
/// child of the run's); the task reports the outcome as the machine input
/// for `kind`.
fn spawn_call(
    tasks: &mut JoinSet<MachineInput>,
    invoker: &Arc<dyn Invoker>,
    spans: &RunSpans,
    kind: CallKind,
    call: Invocation,
) {
    let (span, trace) = match kind {
        CallKind::Attempt => (
            tracing::debug_span!(
                "step attempt",
                synod.step.id = %call.step,
                synod.attempt = call.attempt,
            ),
            spans.child(
                span::STEP_ATTEMPT,
                &call,
                &[
                    KeyValue::new(attr::STEP_ATTEMPT, i64::from(call.attempt)),
                    KeyValue::new(attr::REFLECT_ROUND, i64::from(call.round)),
                ],
            ),
        ),
        CallKind::Item(item) => (
            tracing::debug_span!(
                "item attempt",
                synod.step.id = %call.step,
                synod.item = item,
                synod.attempt = call.attempt,
            ),
            spans.child(
                span::ITEM_ATTEMPT,
                &call,
                &[
                    KeyValue::new(attr::ITEM_INDEX, i64::from(item)),
                    KeyValue::new(attr::STEP_ATTEMPT, i64::from(call.attempt)),
                ],
            ),
        ),
        CallKind::Critic => (
            tracing::debug_span!(
                "critic",
                synod.step.id = %call.step,
                synod.round = call.round,
            ),
            spans.child(
                span::CRITIC,
                &call,
                &[KeyValue::new(attr::REFLECT_ROUND, i64::from(call.round))],
            ),
        ),
    };
    let invoker = Arc::clone(invoker);
    let round = call.round;
    tasks.spawn(
        async move {
            let (step, attempt, outcome) = run_attempt(invoker, call, trace).await;
            match kind {
                CallKind::Attempt => MachineInput::AttemptFinished {
                    step,
                    attempt,
                    outcome,
                },
                CallKind::Item(item) => MachineInput::ItemFinished {
                    step,
                    item,
                    attempt,
                    outcome,
                },
                CallKind::Critic => MachineInput::CriticFinished {
                    step,
                    round,
                    outcome,
                },
            }
        }
        .instrument(span),
    );
}

/// Runs one attempt with a deadline backstop, turning a backstop expiry or a
/// panicking invoker into a step error; ends the attempt's span in `trace`
/// (if any) with the outcome.
async fn run_attempt(
    invoker: Arc<dyn Invoker>,
    call: Invocation,
    trace: Context,
) -> (
    synod_types::StepId,
    u32,
    Result<crate::invoke::StepOutput, StepError>,
) {
    let step = call.step.clone();
    let attempt = call.attempt;
    let deadline = call.deadline;
    let invocation = AssertUnwindSafe(invoker.invoke_traced(call, &trace)).catch_unwind();
    let outcome = match tokio::time::timeout(
        deadline.saturating_add(DEADLINE_BACKSTOP_GRACE),
        invocation,
    )
    .await
    {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_panic)) => {
            tracing::error!(synod.step.id = %step, attempt, "invoker panicked");
            let mut error = StepError::new(
                ErrorCode::Internal,
                format!(
                    "the invoker panicked during attempt {attempt} of step `{step}`; this is a bug in the invoker"
                ),
            );
            error.retryable = false;
            Err(error)
        }
        Err(_elapsed) => Err(StepError::new(
            ErrorCode::DeadlineExceeded,
            format!(
                "attempt {attempt} of step `{step}` did not finish within its deadline of {deadline:?}; raise the step's `timeout` or make the expert faster"
            ),
        )),
    };
    if trace.has_active_span() {
        end_with_result(&trace, &outcome);
    }
    (step, attempt, outcome)
}

#[cfg(test)]
mod tests;
