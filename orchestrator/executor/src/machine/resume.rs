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

use super::bindings::BindingStatus;
use super::fan_out::ItemStatus;
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
        RunMachine::new(run_id, plan, inputs, config).replay(events, outputs)
    }

    /// [`RunMachine::resume`] for a machine built with
    /// [`RunMachine::new`] (and [`RunMachine::with_workflow`] when the run
    /// executes a workflow) that has not been started: replays `events` and
    /// returns the machine with the actions that continue the run.
    ///
    /// Beyond steps: a `for_each` step keeps its finished items (their
    /// outputs from the events) and reruns the items that were in flight; a
    /// binding whose delivery was in flight is delivered again with the same
    /// idempotency key; delivered, failed and skipped bindings stay as
    /// recorded.
    pub fn replay(
        self,
        events: &[RunEvent],
        outputs: &HashMap<StepId, Value>,
    ) -> Result<(RunMachine, Vec<super::Action>), ResumeError> {
        let mut machine = self;
        let run_id = machine.run_id;
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
            if let Some(binding) = event.kind.binding() {
                machine
                    .replay_binding(binding, &event.kind)
                    .map_err(inconsistent)?;
                continue;
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
                    machine.fan_outs.remove(&position);
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
                    if !*will_retry {
                        machine.fan_outs.remove(&position);
                    }
                    machine.steps[position].attempt = *attempt;
                    if *will_retry {
                        machine.steps[position].status = StepStatus::RetryScheduled;
                    } else {
                        machine.mark_failed(position, error.clone());
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
                RunEventKind::StepReflected { .. } => {
                    machine.replay_reflected(position, &event.kind);
                }
                RunEventKind::StepFannedOut { items, .. } => {
                    machine
                        .replay_fan_out(position, *items)
                        .map_err(inconsistent)?;
                }
                RunEventKind::StepItemStarted { .. }
                | RunEventKind::StepItemSucceeded { .. }
                | RunEventKind::StepItemFailed { .. } => {
                    machine
                        .replay_item(position, &event.kind)
                        .map_err(inconsistent)?;
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
        for (position, fan) in &mut self.fan_outs {
            let mut lost = false;
            for item in &mut fan.states {
                match item.status {
                    ItemStatus::Running => {
                        // Lost in flight: rerun as the item's next attempt.
                        item.status = ItemStatus::RetryScheduled;
                        item.retry_due = true;
                        lost = true;
                    }
                    ItemStatus::RetryScheduled => item.retry_due = true,
                    ItemStatus::Pending | ItemStatus::Succeeded | ItemStatus::Failed => {}
                }
            }
            fan.running = 0;
            if lost {
                interrupted.push(
                    self.plan.graph()[self.plan.topological_order()[*position]]
                        .id
                        .clone(),
                );
            }
        }
        for index in 0..self.bindings.len() {
            match self.bindings[index] {
                // Delivered again, with the same idempotency key (and without
                // asking again when it was approved).
                BindingStatus::InFlight => {
                    let approval = self
                        .workflow
                        .as_ref()
                        .is_some_and(|workflow| workflow.bindings[index].approval.is_some());
                    self.bindings[index] = if approval {
                        BindingStatus::Approved
                    } else {
                        BindingStatus::Pending
                    };
                }
                // Still waiting: the timeout starts again in full.
                BindingStatus::AwaitingApproval => self.arm_approval_timeout(index),
                _ => {}
            }
        }
        for position in 0..self.steps.len() {
            if self.fan_outs.contains_key(&position) {
                continue; // its items run again, not the step
            }
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
        // Skips that a crash after a StepFailed or StepSkipped may have cut off.
        for position in 0..self.steps.len() {
            self.skip_dependents(position);
        }
        // Fan-outs whose every item ended before the crash.
        let fanned: Vec<usize> = self.fan_outs.keys().copied().collect();
        for position in fanned {
            self.conclude_fan_out(position);
        }
        self.start_ready_steps();
        self.finish_if_done();
        let actions = std::mem::take(&mut self.actions);
        (self, actions)
    }
}

impl RunMachine {
    /// Replays `StepFannedOut`: the list is evaluated again (the outputs it
    /// reads were replayed before) and must have the recorded length.
    fn replay_fan_out(&mut self, position: usize, recorded: u32) -> Result<(), String> {
        let id = self.step_at(position).id.clone();
        let workflow = self.workflow.clone().ok_or_else(|| {
            format!("step `{id}` fanned out, but the run is resumed without its workflow")
        })?;
        let spec = workflow
            .step(id.as_str())
            .ok_or_else(|| format!("step `{id}` is not in the workflow"))?;
        let items = match synod_workflow::runtime::for_each_items(spec, &self.scope) {
            Some(Ok(items)) => items,
            Some(Err(error)) => {
                return Err(format!(
                    "the `for_each` of step `{id}` no longer evaluates: {error}"
                ));
            }
            None => return Err(format!("step `{id}` fanned out but has no `for_each`")),
        };
        if items.len() != recorded as usize {
            return Err(format!(
                "step `{id}` fanned out over {recorded} items, but its `for_each` now gives {}",
                items.len()
            ));
        }
        let max_parallel = spec.for_each.as_ref().and_then(|each| each.max_parallel);
        self.enter_fan_out(position, items, max_parallel);
        Ok(())
    }

    /// Replays one item event of a fanned-out step.
    fn replay_item(&mut self, position: usize, kind: &RunEventKind) -> Result<(), String> {
        let id = self.step_at(position).id.clone();
        let fan = self
            .fan_outs
            .get_mut(&position)
            .ok_or_else(|| format!("an item event of step `{id}` before its StepFannedOut"))?;
        let item = match kind {
            RunEventKind::StepItemStarted { item, .. }
            | RunEventKind::StepItemSucceeded { item, .. }
            | RunEventKind::StepItemFailed { item, .. } => *item as usize,
            _ => return Ok(()),
        };
        let state = fan
            .states
            .get_mut(item)
            .ok_or_else(|| format!("step `{id}` has no item {item}"))?;
        match kind {
            RunEventKind::StepItemStarted { attempt, .. } => {
                state.status = ItemStatus::Running;
                state.attempt = *attempt;
            }
            RunEventKind::StepItemSucceeded {
                attempt,
                output,
                confidence,
                duration_ms,
                instance,
                ..
            } => {
                state.status = ItemStatus::Succeeded;
                state.attempt = *attempt;
                state.output = Some(crate::invoke::StepOutput {
                    output: output.clone(),
                    confidence: *confidence,
                    instance: instance.clone(),
                    duration_ms: *duration_ms,
                    needs: Vec::new(),
                    usage: crate::invoke::Usage::default(),
                    guard: None,
                });
            }
            RunEventKind::StepItemFailed {
                attempt,
                error,
                retry_in_ms,
                ..
            } => {
                state.attempt = *attempt;
                if retry_in_ms.is_some() {
                    state.status = ItemStatus::RetryScheduled;
                } else {
                    state.status = ItemStatus::Failed;
                    state.error = Some(error.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Replays one binding event.
    fn replay_binding(&mut self, binding: &str, kind: &RunEventKind) -> Result<(), String> {
        let index = self.binding_index(binding).ok_or_else(|| {
            format!("binding `{binding}` is not in the workflow the run is resumed with")
        })?;
        match kind {
            RunEventKind::BindingStarted { .. } => self.bindings[index] = BindingStatus::InFlight,
            RunEventKind::BindingDelivered { .. } => {
                self.bindings[index] = BindingStatus::Delivered;
            }
            RunEventKind::BindingFailed { error, .. } => {
                self.bindings[index] = BindingStatus::Failed(error.clone());
            }
            RunEventKind::BindingSkipped { .. } => self.bindings[index] = BindingStatus::Skipped,
            RunEventKind::ApprovalRequested { .. } => {
                self.bindings[index] = BindingStatus::AwaitingApproval;
            }
            RunEventKind::ApprovalDecided { approved: true, .. } => {
                self.bindings[index] = BindingStatus::Approved;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
