//! Run events: the typed, versioned record of everything a run does.
//!
//! The executor emits [`RunEventKind`]s; the store assigns each a per-run
//! sequence number (1, 2, 3, … without gaps) and a time, giving a
//! [`RunEvent`]. On the wire (SSE, gRPC `cloud_event_json`) an event is a
//! CloudEvents 1.0 JSON object ([`CloudEvent`]): `type` is
//! `synod.<noun>.<verb>`, `source` is `synod/runs/<run id>`, `subject` is the
//! step id, the extension `synodseq` carries the sequence number and
//! `synodversion` the payload schema version ([`EVENT_SCHEMA_VERSION`]).
//!
//! Payloads must be redacted of secrets before they become events
//! ([`crate::redact`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StepError;
use crate::{RunId, SkillRef, StepId};

/// Version of the event payload schema. Bump when a variant's fields change
/// incompatibly; readers accept older versions.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// One recorded event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// The run.
    pub run_id: RunId,
    /// Position in the run's event log, from 1, without gaps.
    pub seq: u64,
    /// When the event was recorded.
    pub time: DateTime<Utc>,
    /// What happened.
    pub kind: RunEventKind,
}

/// A step as planned, listed in [`RunEventKind::RunStarted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Step id.
    pub id: StepId,
    /// The skill it invokes.
    pub uses: SkillRef,
    /// Steps it waits for.
    pub needs: Vec<StepId>,
}

/// What happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunEventKind {
    /// The run was accepted and planned.
    RunStarted {
        /// Workflow name (or `task` for planner-driven runs).
        workflow: String,
        /// The run's inputs (redacted).
        inputs: Value,
        /// The plan's steps.
        steps: Vec<PlannedStep>,
    },
    /// A planner made the run's plan; says which planner, for what goal, and
    /// why each step was chosen. Follows `RunStarted` for planned runs.
    RunPlanned {
        /// `typed` or `llm`.
        planner: String,
        /// The artifact type the plan produces.
        goal: String,
        /// The task's text, as given.
        task: String,
        /// Per step: `{step, uses, produces, consumes, weight, cost,
        /// alternatives, reason}`.
        choices: Value,
        /// The LLM planner's requests, in order: `{attempt, uses, accepted,
        /// problems}`; when none was accepted the plan is the typed
        /// planner's (`planner: typed`). Absent when no LLM planner was
        /// asked. (Boxed: keeps every event small.)
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempts: Option<Box<Value>>,
    },
    /// An attempt of a step was sent to an expert.
    StepStarted {
        /// Step id.
        step: StepId,
        /// Attempt number, from 1.
        attempt: u32,
        /// The skill invoked.
        uses: SkillRef,
        /// The resolved input (redacted).
        input: Value,
    },
    /// A step produced a valid output.
    StepSucceeded {
        /// Step id.
        step: StepId,
        /// The attempt that succeeded.
        attempt: u32,
        /// The output, validated against the skill's output schema (redacted).
        output: Value,
        /// The expert's confidence, 0..1.
        confidence: f64,
        /// Wall time of the successful attempt, in milliseconds.
        duration_ms: u64,
        /// The expert instance that served it.
        instance: String,
    },
    /// A step attempt failed. `will_retry` says whether another attempt follows.
    StepFailed {
        /// Step id.
        step: StepId,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: StepError,
        /// True when a [`RunEventKind::StepRetryScheduled`] follows.
        will_retry: bool,
    },
    /// Another attempt of a step is scheduled after a delay.
    StepRetryScheduled {
        /// Step id.
        step: StepId,
        /// The attempt that will run next.
        next_attempt: u32,
        /// Delay before it, in milliseconds.
        delay_ms: u64,
    },
    /// A step will not run.
    StepSkipped {
        /// Step id.
        step: StepId,
        /// Why (e.g. "upstream step `detect` failed").
        reason: String,
    },
    /// A step was cancelled.
    StepCancelled {
        /// Step id.
        step: StepId,
    },
    /// A `for_each` step evaluated its list: one attempt per item follows
    /// ([`RunEventKind::StepItemStarted`]), then the step's own
    /// [`RunEventKind::StepSucceeded`] (output: the item outputs in order) or
    /// [`RunEventKind::StepFailed`].
    StepFannedOut {
        /// Step id.
        step: StepId,
        /// Number of items.
        items: u32,
        /// Most items in flight at once (`None`: only the run's limit).
        max_parallel: Option<u32>,
    },
    /// An attempt of one item of a `for_each` step was sent to an expert.
    StepItemStarted {
        /// Step id.
        step: StepId,
        /// Item index, from 0.
        item: u32,
        /// Attempt number of this item, from 1.
        attempt: u32,
        /// The resolved input (redacted).
        input: Value,
    },
    /// One item of a `for_each` step produced a valid output.
    StepItemSucceeded {
        /// Step id.
        step: StepId,
        /// Item index, from 0.
        item: u32,
        /// The attempt that succeeded.
        attempt: u32,
        /// The output (redacted).
        output: Value,
        /// The expert's confidence, 0..1.
        confidence: f64,
        /// Wall time of the attempt, in milliseconds.
        duration_ms: u64,
        /// The expert instance that served it.
        instance: String,
    },
    /// An attempt of one item of a `for_each` step failed.
    StepItemFailed {
        /// Step id.
        step: StepId,
        /// Item index, from 0.
        item: u32,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: StepError,
        /// Delay before the item's next attempt; `None` when the item failed for good.
        retry_in_ms: Option<u64>,
    },
    /// The data-protection guard redacted the step's input before it went
    /// to an expert marked `external` (recorded before `StepSucceeded`).
    StepInputRedacted {
        /// Step id.
        step: StepId,
        /// The attempt.
        attempt: u32,
        /// The external expert.
        expert: String,
        /// Redacted values per entity type; never the values themselves.
        redacted: std::collections::BTreeMap<String, u64>,
    },
    /// A round of a step with `reflect` was judged: by its built-in rules
    /// (`until`, `min_confidence`) and, when they hold, by its critic skill.
    /// `revise` without `stop` sends the step back with the feedback for the
    /// next round; with `stop` the last output stands and the step succeeds.
    StepReflected {
        /// Step id.
        step: StepId,
        /// The round judged, from 0.
        round: u32,
        /// Who judged: `rule:until`, `rule:min_confidence`, or the critic
        /// skill (`expert/skill`).
        critic: String,
        /// `accept` or `revise`.
        verdict: String,
        /// What the judge said; sent to the expert as feedback on `revise`.
        feedback: String,
        /// Confidence of the judged output, 0..1.
        confidence: f64,
        /// Why the loop ended with this round (`criterion met`, `max_rounds
        /// (3) reached`, `no new evidence: …`, a spent budget, a failed
        /// critic); absent when another round follows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop: Option<String>,
    },
    /// A binding is about to be delivered (after any approval).
    BindingStarted {
        /// Binding name.
        binding: String,
        /// HTTP method.
        method: String,
        /// `scheme://host[:port]` of the destination.
        origin: String,
    },
    /// One HTTP attempt of a binding delivery ended. Never holds secret values.
    BindingAttempt {
        /// Binding name.
        binding: String,
        /// Attempt number, from 1.
        attempt: u32,
        /// HTTP status, when a response arrived.
        status: Option<u16>,
        /// Wall time of the attempt, in milliseconds.
        duration_ms: u64,
        /// What went wrong (redacted), for a failed attempt.
        error: Option<String>,
        /// Delay before the next attempt, when one follows.
        retry_in_ms: Option<u64>,
    },
    /// A binding was accepted by its destination (2xx).
    BindingDelivered {
        /// Binding name.
        binding: String,
        /// The URL sent to (redacted).
        url: String,
        /// The HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// A binding could not be delivered; the run fails.
    BindingFailed {
        /// Binding name.
        binding: String,
        /// What went wrong and how to fix it (redacted).
        error: String,
        /// Attempts made (0 when nothing was sent).
        attempts: u32,
    },
    /// A binding waits for a human decision before it is sent.
    ApprovalRequested {
        /// Binding name.
        binding: String,
        /// Roles allowed to decide.
        roles: Vec<String>,
        /// How long the binding waits, in milliseconds (`None`: until decided).
        timeout_ms: Option<u64>,
    },
    /// A human approved or rejected a binding. A rejected binding is not
    /// sent and fails the run.
    ApprovalDecided {
        /// Binding name.
        binding: String,
        /// True when approved.
        approved: bool,
        /// The decider's comment, as given.
        comment: String,
    },
    /// Nobody decided within the binding's approval timeout; it is not sent
    /// and the run fails.
    ApprovalTimedOut {
        /// Binding name.
        binding: String,
        /// The timeout that passed, in milliseconds.
        after_ms: u64,
    },
    /// A binding will not be delivered (its `if`, `when` or `needs` rule it out).
    BindingSkipped {
        /// Binding name.
        binding: String,
        /// Why.
        reason: String,
    },
    /// The run was picked up again from its recorded events after the
    /// process driving it stopped (crash, restart, lease takeover).
    RunResumed {
        /// Steps whose attempt was in flight when the run was interrupted;
        /// they are invoked again with a new attempt number.
        interrupted_steps: Vec<StepId>,
        /// Steps that succeeded before the interruption and will not be
        /// invoked again.
        completed_steps: Vec<StepId>,
    },
    /// Every step finished and the run succeeded.
    RunSucceeded {
        /// The run's result (redacted).
        result: Value,
    },
    /// The run failed.
    RunFailed {
        /// Summary of what failed.
        error: String,
        /// Steps that failed for good.
        failed_steps: Vec<StepId>,
    },
    /// The run was cancelled.
    RunCancelled {
        /// Why, as given by whoever cancelled it.
        reason: String,
    },
}

impl RunEventKind {
    /// The CloudEvents `type`, e.g. `synod.step.succeeded`.
    pub fn cloud_event_type(&self) -> &'static str {
        match self {
            RunEventKind::RunStarted { .. } => "synod.run.started",
            RunEventKind::StepStarted { .. } => "synod.step.started",
            RunEventKind::StepSucceeded { .. } => "synod.step.succeeded",
            RunEventKind::StepFailed { .. } => "synod.step.failed",
            RunEventKind::StepRetryScheduled { .. } => "synod.step.retry_scheduled",
            RunEventKind::StepSkipped { .. } => "synod.step.skipped",
            RunEventKind::StepCancelled { .. } => "synod.step.cancelled",
            RunEventKind::StepFannedOut { .. } => "synod.step.fanned_out",
            RunEventKind::StepItemStarted { .. } => "synod.step.item_started",
            RunEventKind::StepItemSucceeded { .. } => "synod.step.item_succeeded",
            RunEventKind::StepItemFailed { .. } => "synod.step.item_failed",
            RunEventKind::StepReflected { .. } => "synod.step.reflected",
            RunEventKind::StepInputRedacted { .. } => "synod.step.input_redacted",
            RunEventKind::BindingStarted { .. } => "synod.binding.started",
            RunEventKind::BindingAttempt { .. } => "synod.binding.attempt",
            RunEventKind::BindingDelivered { .. } => "synod.binding.delivered",
            RunEventKind::BindingFailed { .. } => "synod.binding.failed",
            RunEventKind::BindingSkipped { .. } => "synod.binding.skipped",
            RunEventKind::ApprovalRequested { .. } => "synod.approval.requested",
            RunEventKind::ApprovalDecided { .. } => "synod.approval.decided",
            RunEventKind::ApprovalTimedOut { .. } => "synod.approval.timed_out",
            RunEventKind::RunSucceeded { .. } => "synod.run.succeeded",
            RunEventKind::RunFailed { .. } => "synod.run.failed",
            RunEventKind::RunCancelled { .. } => "synod.run.cancelled",
            RunEventKind::RunResumed { .. } => "synod.run.resumed",
            RunEventKind::RunPlanned { .. } => "synod.run.planned",
        }
    }

    /// The step the event is about, if any (the CloudEvents `subject`).
    pub fn step(&self) -> Option<&StepId> {
        match self {
            RunEventKind::StepStarted { step, .. }
            | RunEventKind::StepSucceeded { step, .. }
            | RunEventKind::StepFailed { step, .. }
            | RunEventKind::StepRetryScheduled { step, .. }
            | RunEventKind::StepSkipped { step, .. }
            | RunEventKind::StepCancelled { step }
            | RunEventKind::StepFannedOut { step, .. }
            | RunEventKind::StepItemStarted { step, .. }
            | RunEventKind::StepItemSucceeded { step, .. }
            | RunEventKind::StepItemFailed { step, .. }
            | RunEventKind::StepReflected { step, .. }
            | RunEventKind::StepInputRedacted { step, .. } => Some(step),
            RunEventKind::RunStarted { .. }
            | RunEventKind::RunResumed { .. }
            | RunEventKind::RunPlanned { .. }
            | RunEventKind::BindingStarted { .. }
            | RunEventKind::BindingAttempt { .. }
            | RunEventKind::BindingDelivered { .. }
            | RunEventKind::BindingFailed { .. }
            | RunEventKind::BindingSkipped { .. }
            | RunEventKind::ApprovalRequested { .. }
            | RunEventKind::ApprovalDecided { .. }
            | RunEventKind::ApprovalTimedOut { .. }
            | RunEventKind::RunSucceeded { .. }
            | RunEventKind::RunFailed { .. }
            | RunEventKind::RunCancelled { .. } => None,
        }
    }

    /// The binding the event is about, if any.
    pub fn binding(&self) -> Option<&str> {
        match self {
            RunEventKind::BindingStarted { binding, .. }
            | RunEventKind::BindingAttempt { binding, .. }
            | RunEventKind::BindingDelivered { binding, .. }
            | RunEventKind::BindingFailed { binding, .. }
            | RunEventKind::BindingSkipped { binding, .. }
            | RunEventKind::ApprovalRequested { binding, .. }
            | RunEventKind::ApprovalDecided { binding, .. }
            | RunEventKind::ApprovalTimedOut { binding, .. } => Some(binding),
            _ => None,
        }
    }

    /// True for the last event a run can have.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunEventKind::RunSucceeded { .. }
                | RunEventKind::RunFailed { .. }
                | RunEventKind::RunCancelled { .. }
        )
    }
}

/// A CloudEvents 1.0 event in its JSON format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique per event: `<run id>:<seq>`.
    pub id: String,
    /// `synod/runs/<run id>`.
    pub source: String,
    /// `synod.<noun>.<verb>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The step id, for step events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339 time.
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Extension: the per-run sequence number.
    pub synodseq: u64,
    /// Extension: the payload schema version.
    pub synodversion: u32,
    /// The event payload: the [`RunEventKind`] fields (with `type`).
    pub data: Value,
}

impl RunEvent {
    /// The CloudEvents 1.0 form of this event.
    pub fn to_cloud_event(&self) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".to_owned(),
            id: format!("{}:{}", self.run_id, self.seq),
            source: format!("synod/runs/{}", self.run_id),
            event_type: self.kind.cloud_event_type().to_owned(),
            subject: self.kind.step().map(|step| step.0.clone()),
            time: self.time,
            datacontenttype: "application/json".to_owned(),
            synodseq: self.seq,
            synodversion: EVENT_SCHEMA_VERSION,
            data: serde_json::to_value(&self.kind).unwrap_or(Value::Null),
        }
    }

    /// The CloudEvents 1.0 JSON text of this event.
    pub fn to_cloud_event_json(&self) -> String {
        serde_json::to_string(&self.to_cloud_event()).unwrap_or_default()
    }

    /// Reads an event back from its CloudEvents form.
    pub fn from_cloud_event(event: &CloudEvent) -> Result<RunEvent, serde_json::Error> {
        let run_id = event
            .source
            .strip_prefix("synod/runs/")
            .unwrap_or(&event.source)
            .parse()
            .map_err(serde::de::Error::custom)?;
        Ok(RunEvent {
            run_id,
            seq: event.synodseq,
            time: event.time,
            kind: serde_json::from_value(event.data.clone())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloud_event_round_trip() {
        let event = RunEvent {
            run_id: RunId::new(),
            seq: 7,
            time: Utc::now(),
            kind: RunEventKind::StepSucceeded {
                step: StepId::new("detect"),
                attempt: 2,
                output: json!({"alerts": []}),
                confidence: 0.9,
                duration_ms: 12,
                instance: "i-1".into(),
            },
        };
        let cloud = event.to_cloud_event();
        assert_eq!(cloud.event_type, "synod.step.succeeded");
        assert_eq!(cloud.subject.as_deref(), Some("detect"));
        assert_eq!(cloud.data["type"], "step_succeeded");
        let text = event.to_cloud_event_json();
        let parsed: CloudEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(RunEvent::from_cloud_event(&parsed).unwrap(), event);
    }
}
