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
//! - A binding with `approval` is failed without being sent: this executor
//!   does not collect approvals yet, and sending it unapproved would be
//!   wrong.

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
}

/// What to do with the next pending binding.
enum Decision {
    Skip(String),
    Fail(String),
    Deliver,
}

impl RunMachine {
    /// True while a delivery is in flight.
    pub(super) fn binding_in_flight(&self) -> bool {
        self.bindings.contains(&BindingStatus::InFlight)
    }

    /// Considers pending bindings in order until one is sent. True when no
    /// binding is in flight or pending any more (the run may end).
    pub(super) fn deliver_next_binding(&mut self) -> bool {
        if self.binding_in_flight() {
            return false;
        }
        let Some(workflow) = self.workflow.clone() else {
            return true;
        };
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
                Decision::Fail(error) => {
                    self.bindings[index] = BindingStatus::Failed(error.clone());
                    self.actions.push(Action::Emit(RunEventKind::BindingFailed {
                        binding,
                        error,
                        attempts: 0,
                    }));
                }
                Decision::Deliver => {
                    self.bindings[index] = BindingStatus::InFlight;
                    self.actions
                        .push(Action::Emit(RunEventKind::BindingStarted {
                            binding: binding.clone(),
                            method: spec.http.method.clone(),
                            origin: spec.http.origin.clone(),
                        }));
                    self.actions.push(Action::Deliver(BindingCall {
                        run_id: self.run_id,
                        workflow: std::sync::Arc::clone(&workflow),
                        binding,
                        scope: self.scope.clone(),
                    }));
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
        if let Some(approval) = &spec.approval {
            return Decision::Fail(format!(
                "binding `{}` needs approval by one of [{}], which this orchestrator cannot collect yet; it was not sent. Remove `approval` to deliver it without one",
                spec.name,
                approval.roles.join(", ")
            ));
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
        let Some(workflow) = self.workflow.clone() else {
            return;
        };
        let Some(index) = workflow
            .bindings
            .iter()
            .position(|spec| spec.name == binding)
        else {
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
            Err(error) => {
                self.bindings[index] = BindingStatus::Failed(error.clone());
                self.actions.push(Action::Emit(RunEventKind::BindingFailed {
                    binding: binding.to_owned(),
                    error,
                    attempts,
                }));
            }
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
