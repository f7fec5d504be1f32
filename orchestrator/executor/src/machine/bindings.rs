//! Workflow bindings: delivering results into business systems.
//!
//! Rules:
//! - Bindings run once no step can change any more, one at a time, in
//!   declaration order; the run ends after the last one.
//! - A binding is skipped (`BindingSkipped` with the reason) when its
//!   `when` does not match the run so far (`on_success`, the default: no
//!   step and no earlier binding failed; `on_failure`: one did; `always`),
//!   when a step in its `needs` did not succeed (for `on_success`), or when
//!   its `if` is false.
//! - Otherwise `BindingStarted` is recorded and the driver's
//!   [`Deliverer`](crate::Deliverer) renders and sends it
//!   ([`Action::Deliver`]); each HTTP attempt becomes a `BindingAttempt`,
//!   the end `BindingDelivered` or `BindingFailed`.
//! - A failed binding (an `if` that cannot be evaluated, a refused
//!   destination, a missing secret, a delivery that gave up) fails the run,
//!   with the binding named in `RunFailed`'s error.
//! - A binding with `approval` is not sent until a human decides:
//!   `ApprovalRequested` is recorded (with the roles and timeout) and the
//!   run waits (`MachineInput::ApprovalDecision`). Approved: it is
//!   delivered as above. Rejected: `ApprovalDecided` + `BindingFailed`, it is
//!   never sent and the run fails. Nobody decides within `timeout`
//!   (`Action::ScheduleApprovalTimeout`): `ApprovalTimedOut` +
//!   `BindingFailed`, the run fails. After a resume the timeout starts again
//!   in full (the machine has no clock).

use synod_types::RunEventKind;
use synod_workflow::BindingWhen;
use synod_workflow::runtime::binding_should_run;

use super::{Action, RunMachine};
use crate::binding::{BindingCall, BindingResult};

/// Where one binding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BindingStatus {
    /// Not considered yet.
    Pending,
    /// `BindingStarted` recorded; the delivery is under way.
    InFlight,
    /// Accepted by the destination.
    Delivered,
    /// Not delivered, for this reason.
    Failed(String),
    /// Ruled out by `when`, `needs` or `if`.
    Skipped,
    /// `ApprovalRequested` recorded; waiting for a decision.
    AwaitingApproval,
    /// Approved; to be delivered.
    Approved,
}

/// What to do with the next pending binding.
enum Decision {
    Skip(String),
    Fail(String),
    AskApproval,
    Deliver,
}

impl RunMachine {
    /// True while a delivery is in flight.
    pub(super) fn binding_in_flight(&self) -> bool {
        self.bindings.contains(&BindingStatus::InFlight)
    }

    /// True while a binding waits for an approval decision.
    pub fn awaiting_approval(&self) -> bool {
        self.bindings.contains(&BindingStatus::AwaitingApproval)
    }

    /// `BindingStarted` and [`Action::Deliver`] for binding `index`.
    fn start_delivery(&mut self, index: usize) {
        let Some(workflow) = self.workflow.clone() else {
            return;
        };
        let spec = &workflow.bindings[index];
        self.bindings[index] = BindingStatus::InFlight;
        self.actions
            .push(Action::Emit(RunEventKind::BindingStarted {
                binding: spec.name.clone(),
                method: spec.http.method.clone(),
                origin: spec.http.origin.clone(),
            }));
        self.actions.push(Action::Deliver(BindingCall {
            run_id: self.run_id,
            workflow: std::sync::Arc::clone(&workflow),
            binding: spec.name.clone(),
            scope: self.scope.clone(),
        }));
    }

    /// Records a failed binding after `attempts` delivery attempts.
    fn fail_binding(&mut self, index: usize, error: String, attempts: u32) {
        let Some(workflow) = &self.workflow else {
            return;
        };
        let binding = workflow.bindings[index].name.clone();
        self.bindings[index] = BindingStatus::Failed(error.clone());
        self.actions.push(Action::Emit(RunEventKind::BindingFailed {
            binding,
            error,
            attempts,
        }));
    }

    pub(super) fn binding_index(&self, binding: &str) -> Option<usize> {
        self.workflow
            .as_ref()?
            .bindings
            .iter()
            .position(|spec| spec.name == binding)
    }

    /// A human decided on binding `binding`; ignored unless it awaits one.
    pub(super) fn approval_decided(&mut self, binding: &str, approved: bool, comment: String) {
        let Some(index) = self.binding_index(binding) else {
            return;
        };
        if self.bindings[index] != BindingStatus::AwaitingApproval {
            return;
        }
        self.actions
            .push(Action::Emit(RunEventKind::ApprovalDecided {
                binding: binding.to_owned(),
                approved,
                comment: comment.clone(),
            }));
        if approved {
            self.bindings[index] = BindingStatus::Approved;
        } else {
            let why = if comment.is_empty() {
                String::new()
            } else {
                format!(": {comment}")
            };
            self.fail_binding(
                index,
                format!("the approval was rejected{why}; it was not sent"),
                0,
            );
        }
        self.finish_if_done();
    }

    /// The approval timeout of `binding` passed; ignored unless it still awaits a decision.
    pub(super) fn approval_timed_out(&mut self, binding: &str) {
        let Some(index) = self.binding_index(binding) else {
            return;
        };
        if self.bindings[index] != BindingStatus::AwaitingApproval {
            return;
        }
        let timeout = self.approval_timeout(index).unwrap_or_default();
        let after_ms = super::millis(timeout);
        self.actions
            .push(Action::Emit(RunEventKind::ApprovalTimedOut {
                binding: binding.to_owned(),
                after_ms,
            }));
        self.fail_binding(
            index,
            format!("nobody approved it within {timeout:?}; it was not sent"),
            0,
        );
        self.finish_if_done();
    }

    fn approval_timeout(&self, index: usize) -> Option<std::time::Duration> {
        self.workflow.as_ref()?.bindings[index]
            .approval
            .as_ref()?
            .timeout
    }

    /// [`Action::ScheduleApprovalTimeout`] for binding `index`, if it has a timeout.
    pub(super) fn arm_approval_timeout(&mut self, index: usize) {
        let (Some(timeout), Some(workflow)) = (self.approval_timeout(index), &self.workflow) else {
            return;
        };
        self.actions.push(Action::ScheduleApprovalTimeout {
            binding: workflow.bindings[index].name.clone(),
            delay: timeout,
        });
    }

    /// Considers pending bindings in order until one is sent. True when no
    /// binding is in flight or pending any more (the run may end).
    pub(super) fn deliver_next_binding(&mut self) -> bool {
        if self.binding_in_flight() || self.awaiting_approval() {
            return false;
        }
        let Some(workflow) = self.workflow.clone() else {
            return true;
        };
        if let Some(index) = self
            .bindings
            .iter()
            .position(|status| *status == BindingStatus::Approved)
        {
            self.start_delivery(index);
            return false;
        }
        while let Some(index) = self
            .bindings
            .iter()
            .position(|status| *status == BindingStatus::Pending)
        {
            let spec = &workflow.bindings[index];
            let binding = spec.name.clone();
            match self.decide(index) {
                Decision::Skip(reason) => {
                    self.bindings[index] = BindingStatus::Skipped;
                    self.actions
                        .push(Action::Emit(RunEventKind::BindingSkipped {
                            binding,
                            reason,
                        }));
                }
                Decision::Fail(error) => self.fail_binding(index, error, 0),
                Decision::AskApproval => {
                    let approval =
                        spec.approval
                            .clone()
                            .unwrap_or_else(|| synod_workflow::ApprovalSpec {
                                roles: Vec::new(),
                                timeout: None,
                            });
                    self.bindings[index] = BindingStatus::AwaitingApproval;
                    self.actions
                        .push(Action::Emit(RunEventKind::ApprovalRequested {
                            binding,
                            roles: approval.roles,
                            timeout_ms: approval.timeout.map(super::millis),
                        }));
                    self.arm_approval_timeout(index);
                    return false;
                }
                Decision::Deliver => {
                    self.start_delivery(index);
                    return false;
                }
            }
        }
        true
    }

    fn decide(&self, index: usize) -> Decision {
        let Some(workflow) = &self.workflow else {
            return Decision::Skip("the run has no workflow".to_owned());
        };
        let spec = &workflow.bindings[index];
        let failed = self.run_failed_so_far();
        match spec.when {
            BindingWhen::OnSuccess if failed => {
                return Decision::Skip("the run failed (`when: on_success`)".to_owned());
            }
            BindingWhen::OnFailure if !failed => {
                return Decision::Skip("the run did not fail (`when: on_failure`)".to_owned());
            }
            BindingWhen::OnSuccess | BindingWhen::OnFailure | BindingWhen::Always => {}
        }
        if spec.when == BindingWhen::OnSuccess {
            for need in &spec.needs {
                let status = self.step_status(need);
                if status != Some(synod_types::StepStatus::Succeeded) {
                    let status = status.map_or("unknown".to_owned(), |status| {
                        format!("{status:?}").to_lowercase()
                    });
                    return Decision::Skip(format!("needed step `{need}` is {status}"));
                }
            }
        }
        match binding_should_run(spec, &self.scope) {
            Ok(true) => {}
            Ok(false) => {
                let condition = super::condition_text(spec.condition.as_ref());
                return Decision::Skip(format!(
                    "its condition `if: ${{{{ {condition} }}}}` is false"
                ));
            }
            Err(error) => {
                return Decision::Fail(format!(
                    "the `if` of binding `{}` cannot be evaluated: {error}; fix the condition or what it reads",
                    spec.name
                ));
            }
        }
        if spec.approval.is_some() && !self.dry_run {
            return Decision::AskApproval;
        }
        Decision::Deliver
    }

    /// True when a step failed or a binding failed.
    fn run_failed_so_far(&self) -> bool {
        self.steps
            .iter()
            .any(|state| state.status == synod_types::StepStatus::Failed)
            || self
                .bindings
                .iter()
                .any(|status| matches!(status, BindingStatus::Failed(_)))
    }

    pub(super) fn binding_finished(&mut self, binding: &str, result: BindingResult) {
        let Some(index) = self.binding_index(binding) else {
            return;
        };
        if self.bindings[index] != BindingStatus::InFlight {
            return; // not ours, or already recorded
        }
        let attempts = u32::try_from(result.attempts.len()).unwrap_or(u32::MAX);
        for attempt in result.attempts {
            self.actions
                .push(Action::Emit(RunEventKind::BindingAttempt {
                    binding: binding.to_owned(),
                    attempt: attempt.attempt,
                    status: attempt.status,
                    duration_ms: attempt.duration_ms,
                    error: attempt.error,
                    retry_in_ms: attempt.retry_in_ms,
                }));
        }
        match result.outcome {
            Ok(_) if self.dry_run => {
                self.bindings[index] = BindingStatus::Skipped;
                self.actions
                    .push(Action::Emit(RunEventKind::BindingSkipped {
                        binding: binding.to_owned(),
                        reason: format!("dry run: rendered for {}, not sent", result.url),
                    }));
            }
            Ok(status) => {
                self.bindings[index] = BindingStatus::Delivered;
                self.actions
                    .push(Action::Emit(RunEventKind::BindingDelivered {
                        binding: binding.to_owned(),
                        url: result.url,
                        status,
                        attempts,
                    }));
            }
            Err(error) => self.fail_binding(index, error, attempts),
        }
        self.finish_if_done();
    }

    /// `binding `x` failed: …` for every failed binding, in order.
    pub(super) fn binding_failures(&self) -> Vec<String> {
        let Some(workflow) = &self.workflow else {
            return Vec::new();
        };
        self.bindings
            .iter()
            .zip(&workflow.bindings)
            .filter_map(|(status, spec)| match status {
                BindingStatus::Failed(error) => {
                    Some(format!("binding `{}` failed: {error}", spec.name))
                }
                _ => None,
            })
            .collect()
    }
}
