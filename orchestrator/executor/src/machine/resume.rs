//! [`RunMachine::resume`]: rebuilding a run's state from its recorded events.
//!
//! The event log is the run's source of truth. After the process driving a
//! run stops (crash, restart, lease takeover), folding the log back gives
//! every step's status, attempt and output; the machine then continues as if
//! it had never stopped:
//! - succeeded, failed, skipped and cancelled steps stay as recorded and are
//!   never invoked again;
//! - a step whose attempt was in flight (`StepStarted` without an outcome) is
//!   invoked again with the next attempt number; a crash is not the step's
//!   fault, so this does not consume its retry budget;
//! - a step waiting for a retry timer retries at once (the timer was lost);
//! - events the crash cut off (the skips after a failure, the run's terminal
//!   event) are emitted now.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use synod_planner::Plan;
use synod_types::{RunEvent, RunEventKind, RunId, StepId, StepStatus};

use super::{Phase, RunMachine};
use crate::config::ExecutorConfig;

/// Why a run cannot be resumed from its events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The log already holds the run's terminal event.
    #[error("run `{run_id}` already ended (event #{seq}); there is nothing to resume")]
    AlreadyEnded {
        /// The run.
        run_id: RunId,
        /// Sequence number of its terminal event.
        seq: u64,
    },
    /// The log names a step the plan does not have: the plan given is not
    /// the one the run started with.
    #[error(
        "event #{seq} of run `{run_id}` is about step `{step}`, which the plan does not have; resume the run with the plan it started with"
    )]
    UnknownStep {
        /// The run.
        run_id: RunId,
        /// The event.
        seq: u64,
        /// The step it names.
        step: StepId,
    },
    /// The log is not a log this executor writes (e.g. step events before
    /// `RunStarted`, or sequence numbers with a gap).
    #[error("the event log of run `{run_id}` is inconsistent at event #{seq}: {problem}")]
    Inconsistent {
        /// The run.
        run_id: RunId,
        /// The event.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
}

impl RunMachine {
    /// Rebuilds the machine of run `run_id` from its recorded `events` (in
    /// sequence order, from #1) and returns it with the actions that continue
    /// the run; see the [module docs](self) for the rules.
    ///
    /// `inputs` and `plan` must be those the run started with. Step outputs
    /// are taken from `outputs` when given (a store that keeps unredacted
    /// outputs) and otherwise from the `StepSucceeded` events, which are
    /// redacted: values under secret-looking keys read `[REDACTED]`.
    ///
    /// With no events the run starts from the beginning, as
    /// [`MachineInput::Start`](super::MachineInput::Start) would.
    pub fn resume(
        run_id: RunId,
        plan: Arc<Plan>,
        inputs: Value,
        config: ExecutorConfig,
        events: &[RunEvent],
        outputs: &HashMap<StepId, Value>,
    ) -> Result<(RunMachine, Vec<super::Action>), ResumeError> {
        let mut machine = RunMachine::new(run_id, plan, inputs, config);
        if events.is_empty() {
            let actions = machine.apply(super::MachineInput::Start);
            return Ok((machine, actions));
        }
        let mut completed = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let expected_seq = index as u64 + 1;
            let inconsistent = |problem: String| ResumeError::Inconsistent {
                run_id,
                seq: event.seq,
                problem,
            };
            if event.seq != expected_seq {
                return Err(inconsistent(format!(
                    "expected sequence number {expected_seq}; events must be given in order from #1 without gaps"
                )));
            }
            if event.kind.is_terminal() {
                return Err(ResumeError::AlreadyEnded {
                    run_id,
                    seq: event.seq,
                });
            }
            match &event.kind {
                RunEventKind::RunStarted { .. } if index == 0 => continue,
                RunEventKind::RunStarted { .. } => {
                    return Err(inconsistent("a second RunStarted".to_owned()));
                }
                _ if index == 0 => {
                    return Err(inconsistent(
                        "the first event must be RunStarted".to_owned(),
                    ));
                }
                RunEventKind::RunResumed { .. } => continue,
                _ => {}
            }
            let Some(step) = event.kind.step() else {
                continue;
            };
            let Some(position) = machine.position(step) else {
                return Err(ResumeError::UnknownStep {
                    run_id,
                    seq: event.seq,
                    step: step.clone(),
                });
            };
            match &event.kind {
                RunEventKind::StepStarted { attempt, .. } => {
                    let state = &mut machine.steps[position];
                    state.status = StepStatus::Running;
                    state.attempt = *attempt;
                }
                RunEventKind::StepSucceeded {
                    attempt, output, ..
                } => {
                    let output = outputs.get(step).unwrap_or(output).clone();
                    machine.steps[position].attempt = *attempt;
                    machine.record_success(position, output);
                    completed.push(step.clone());
                }
                RunEventKind::StepFailed {
                    attempt,
                    error,
                    will_retry,
                    ..
                } => {
                    let state = &mut machine.steps[position];
                    state.attempt = *attempt;
                    if *will_retry {
                        state.status = StepStatus::RetryScheduled;
                    } else {
                        state.status = StepStatus::Failed;
                        state.error = Some(error.clone());
                        machine.open_steps -= 1;
                    }
                }
                RunEventKind::StepRetryScheduled { next_attempt, .. } => {
                    let state = &mut machine.steps[position];
                    state.status = StepStatus::RetryScheduled;
                    state.attempt = next_attempt.saturating_sub(1);
                }
                RunEventKind::StepSkipped { .. } => {
                    machine.steps[position].status = StepStatus::Skipped;
                    machine.open_steps -= 1;
                }
                RunEventKind::StepCancelled { .. } => {
                    machine.steps[position].status = StepStatus::Cancelled;
                    machine.open_steps -= 1;
                }
                _ => {}
            }
        }
        Ok(machine.continue_after_replay(completed))
    }

    /// After the replay: emits `RunResumed`, finishes what the crash cut
    /// off, queues every step that may run, and starts them.
    fn continue_after_replay(mut self, completed: Vec<StepId>) -> (RunMachine, Vec<super::Action>) {
        self.phase = Phase::Running;
        let mut interrupted = Vec::new();
        for position in 0..self.steps.len() {
            let state = &mut self.steps[position];
            match state.status {
                StepStatus::Running | StepStatus::TimedOut => {
                    // Lost in flight: run again as the next attempt, which
                    // `start_attempt` numbers from a retry-scheduled step.
                    state.status = StepStatus::RetryScheduled;
                    state.retry_due = true;
                    self.ready.insert(position);
                    interrupted.push(self.step_at(position).id.clone());
                }
                StepStatus::RetryScheduled => {
                    state.retry_due = true;
                    self.ready.insert(position);
                }
                StepStatus::Pending if state.waiting_on == 0 => {
                    self.ready.insert(position);
                }
                StepStatus::Pending
                | StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::Cancelled
                | StepStatus::Skipped => {}
            }
        }
        self.actions
            .push(super::Action::Emit(RunEventKind::RunResumed {
                interrupted_steps: interrupted,
                completed_steps: completed,
            }));
        // Skips that a crash after a StepFailed may have cut off.
        for position in 0..self.steps.len() {
            if self.steps[position].status == StepStatus::Failed {
                self.skip_dependents(position);
            }
        }
        self.start_ready_steps();
        self.finish_if_done();
        let actions = std::mem::take(&mut self.actions);
        (self, actions)
    }
}

#[cfg(test)]
mod tests;
