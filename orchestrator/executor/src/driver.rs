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
use serde_json::Value;
use synod_planner::Plan;
use synod_store::{RunStore, StoreError};
use synod_types::error::{ErrorCode, StepError};
use synod_types::{RunId, RunStatus};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::ExecutorConfig;
use crate::invoke::{Invocation, Invoker};
use crate::machine::{Action, MachineInput, ResumeError, RunMachine};

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
    drive(machine, actions, invoker, store, cancel)
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
        drive(machine, actions, invoker, store, cancel).await
    }
    .instrument(span)
    .await
}

async fn drive(
    mut machine: RunMachine,
    mut actions: Vec<Action>,
    invoker: Arc<dyn Invoker>,
    store: Arc<dyn RunStore>,
    cancel: CancellationToken,
) -> Result<RunOutcome, ExecutorError> {
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
                    let span = tracing::debug_span!(
                        "step attempt",
                        synod.step.id = %call.step,
                        synod.attempt = call.attempt,
                    );
                    tasks.spawn(run_attempt(Arc::clone(&invoker), call).instrument(span));
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
                Action::AbortInFlight => tasks.abort_all(),
                Action::Finish { status, result } => {
                    // Normally empty; after a cancel, waits until every
                    // aborted attempt has been dropped.
                    tasks.shutdown().await;
                    return Ok(RunOutcome { status, result });
                }
            }
        }
        if tasks.is_empty() {
            // The machine finishes a run as soon as nothing is in flight and
            // nothing is ready; getting here means it did not.
            return Err(ExecutorError::Stalled { run_id });
        }
        let input = tokio::select! {
            biased;
            () = cancel.cancelled() => MachineInput::Cancel { reason: CANCEL_REASON.to_owned() },
            joined = tasks.join_next() => match joined {
                Some(Ok(input)) => input,
                // Aborted tasks (only after AbortInFlight) report nothing.
                Some(Err(_aborted)) => continue,
                None => return Err(ExecutorError::Stalled { run_id }),
            },
        };
        actions = machine.apply(input);
    }
}

/// Runs one attempt with a deadline backstop, turning a backstop expiry or a
/// panicking invoker into a step error.
async fn run_attempt(invoker: Arc<dyn Invoker>, call: Invocation) -> MachineInput {
    let step = call.step.clone();
    let attempt = call.attempt;
    let deadline = call.deadline;
    let invocation = AssertUnwindSafe(invoker.invoke(call)).catch_unwind();
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
    MachineInput::AttemptFinished {
        step,
        attempt,
        outcome,
    }
}

#[cfg(test)]
mod tests;
