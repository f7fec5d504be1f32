//! Plan and outcome builders shared by the machine and driver tests.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use synod_planner::{Plan, PlanStep};
use synod_types::error::{ErrorCode, StepError};
use synod_types::{HumanDuration, RetryPolicy, SkillRef, StepId};
use synod_workflow::ValueTemplate;

use crate::invoke::{StepOutput, Usage};

/// Every workflow feature the executor runs.
pub(crate) const ALL_FEATURES: synod_planner::Executable = synod_planner::Executable {
    conditions: true,
    for_each: true,
    reflect: true,
    bindings: true,
};

/// A step of skill `demo/<id>` whose input is `input` (with `${{ }}` holes).
pub(crate) fn step_with_input(id: &str, needs: &[&str], input: Value) -> PlanStep {
    PlanStep {
        id: StepId::new(id),
        uses: SkillRef::new("demo", id),
        input: ValueTemplate::from_value(&input).expect("test templates parse"),
        needs: needs.iter().map(|need| StepId::new(*need)).collect(),
        timeout: None,
        retry: None,
    }
}

/// A step whose input is `{"step": "<id>"}`.
pub(crate) fn step(id: &str, needs: &[&str]) -> PlanStep {
    step_with_input(id, needs, json!({ "step": id }))
}

/// A plan named `test` of these steps.
pub(crate) fn plan(steps: Vec<PlanStep>) -> Arc<Plan> {
    Arc::new(Plan::from_checked_steps("test", steps).expect("test plans are valid"))
}

/// `attempts` attempts in all, one second apart.
pub(crate) fn fixed_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::Fixed {
        interval: HumanDuration(Duration::from_secs(1)),
        max_attempts: attempts,
    }
}

/// A successful attempt with this output.
pub(crate) fn output(value: Value) -> StepOutput {
    StepOutput {
        output: value,
        confidence: 0.9,
        instance: "test-1".to_owned(),
        duration_ms: 1,
        needs: Vec::new(),
        usage: Usage::default(),
        guard: None,
    }
}

/// A retryable failure.
pub(crate) fn transient(message: &str) -> StepError {
    StepError::new(ErrorCode::ExpertTransient, message)
}

/// A permanent failure.
pub(crate) fn permanent(message: &str) -> StepError {
    StepError::new(ErrorCode::ExpertFailed, message)
}

/// A deadline failure, as an invoker reports it.
pub(crate) fn deadline(message: &str) -> StepError {
    StepError::new(ErrorCode::DeadlineExceeded, message)
}

/// One line per event, for asserting whole sequences.
pub(crate) fn describe_event(kind: &synod_types::RunEventKind) -> String {
    use synod_types::RunEventKind;
    match kind {
        RunEventKind::RunStarted { steps, .. } => {
            let ids: Vec<&str> = steps.iter().map(|step| step.id.as_str()).collect();
            format!("run_started [{}]", ids.join(","))
        }
        RunEventKind::StepStarted { step, attempt, .. } => format!("started {step}#{attempt}"),
        RunEventKind::StepSucceeded { step, attempt, .. } => {
            format!("succeeded {step}#{attempt}")
        }
        RunEventKind::StepFailed {
            step,
            attempt,
            error,
            will_retry,
        } => format!(
            "failed {step}#{attempt} {} will_retry={will_retry}",
            error.code.code()
        ),
        RunEventKind::StepRetryScheduled {
            step,
            next_attempt,
            delay_ms,
        } => format!("retry_scheduled {step}#{next_attempt} in {delay_ms}ms"),
        RunEventKind::StepSkipped { step, reason } => format!("skipped {step}: {reason}"),
        RunEventKind::StepCancelled { step } => format!("cancelled {step}"),
        RunEventKind::StepReflected {
            step,
            round,
            critic,
            verdict,
            stop,
            ..
        } => match stop {
            Some(stop) => {
                format!("reflected {step} round {round} {verdict} by {critic}, stop: {stop}")
            }
            None => format!("reflected {step} round {round} {verdict} by {critic}"),
        },
        RunEventKind::RunSucceeded { .. } => "run_succeeded".to_owned(),
        RunEventKind::RunFailed { failed_steps, .. } => {
            let ids: Vec<&str> = failed_steps.iter().map(|step| step.as_str()).collect();
            format!("run_failed [{}]", ids.join(","))
        }
        RunEventKind::RunCancelled { reason } => format!("run_cancelled: {reason}"),
        RunEventKind::RunResumed {
            interrupted_steps, ..
        } => {
            let ids: Vec<&str> = interrupted_steps.iter().map(|step| step.as_str()).collect();
            format!("run_resumed, again: [{}]", ids.join(","))
        }
        other => format!("{other:?}"),
    }
}
