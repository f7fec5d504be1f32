//! [`RunView`]: a run's current picture, folded from its record and events.
//! Used by `GetRun`, `GET /runs/{id}` and the CLI.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use synod_store::RunRecord;
use synod_types::{RunEvent, RunEventKind, RunStatus, StepStatus};

/// A step's current picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    /// Step id.
    pub id: String,
    /// `expert/skill`.
    pub uses: String,
    /// Steps it waits for.
    pub needs: Vec<String>,
    /// Current status.
    pub status: StepStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// Output, once succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Last error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Duration of the successful attempt, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A run's current picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    /// The run's record.
    #[serde(flatten)]
    pub record: RunRecord,
    /// Steps in plan order.
    pub steps: Vec<StepView>,
}

impl RunView {
    /// Folds the events into step pictures.
    pub fn build(record: RunRecord, events: &[RunEvent]) -> RunView {
        let mut steps: Vec<StepView> = Vec::new();
        let mut position: BTreeMap<String, usize> = BTreeMap::new();
        for event in events {
            match &event.kind {
                RunEventKind::RunStarted { steps: planned, .. } => {
                    for step in planned {
                        position.insert(step.id.0.clone(), steps.len());
                        steps.push(StepView {
                            id: step.id.0.clone(),
                            uses: step.uses.to_string(),
                            needs: step.needs.iter().map(|n| n.0.clone()).collect(),
                            status: StepStatus::Pending,
                            attempts: 0,
                            output: None,
                            error: None,
                            duration_ms: None,
                        });
                    }
                }
                kind => {
                    let Some(step_id) = kind.step() else { continue };
                    let Some(index) = position.get(step_id.as_str()) else {
                        continue;
                    };
                    let step = &mut steps[*index];
                    match kind {
                        RunEventKind::StepStarted { attempt, .. } => {
                            step.status = StepStatus::Running;
                            step.attempts = *attempt;
                        }
                        RunEventKind::StepSucceeded {
                            output,
                            duration_ms,
                            ..
                        } => {
                            step.status = StepStatus::Succeeded;
                            step.output = Some(output.clone());
                            step.duration_ms = Some(*duration_ms);
                            step.error = None;
                        }
                        RunEventKind::StepFailed {
                            error, will_retry, ..
                        } => {
                            step.error = Some(error.to_string());
                            step.status = if *will_retry {
                                StepStatus::RetryScheduled
                            } else if error.code == synod_types::ErrorCode::DeadlineExceeded {
                                StepStatus::TimedOut
                            } else {
                                StepStatus::Failed
                            };
                        }
                        RunEventKind::StepRetryScheduled { .. } => {
                            step.status = StepStatus::RetryScheduled;
                        }
                        RunEventKind::StepSkipped { reason, .. } => {
                            step.status = StepStatus::Skipped;
                            step.error = Some(reason.clone());
                        }
                        RunEventKind::StepCancelled { .. } => step.status = StepStatus::Cancelled,
                        _ => {}
                    }
                }
            }
        }
        RunView { record, steps }
    }

    /// True once the run has ended.
    pub fn is_finished(&self) -> bool {
        self.record.status.is_terminal()
    }
}

/// Lowercase name of a run status.
pub fn run_status_name(status: RunStatus) -> &'static str {
    status.as_str()
}
