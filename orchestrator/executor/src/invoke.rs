//! The boundary between the executor and whatever performs a step attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synod_types::error::StepError;
use synod_types::{RunId, SkillRef, StepId};

/// One attempt of one step, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The run.
    pub run_id: RunId,
    /// The step.
    pub step: StepId,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Reflection round, from 0.
    pub round: u32,
    /// What judges said of earlier rounds (empty in round 0).
    pub feedback: Vec<Feedback>,
    /// The skill to invoke.
    pub uses: SkillRef,
    /// The rendered input object.
    pub input: Value,
    /// Time the attempt may take; sent as the gRPC deadline.
    pub deadline: Duration,
}

/// A judgement of an earlier round, sent back to the expert with the next
/// round (`InvokeRequest.feedback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Who judged: `rule:until`, `rule:min_confidence`, or a critic skill.
    pub critic: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The round judged.
    pub round: u32,
}

/// An expert's request for more input (see the design's "Need").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Need {
    /// Artifact type wanted, e.g. `knowledge`.
    pub artifact_type: String,
    /// What exactly, e.g. `T1003.001`.
    pub query: String,
    /// Why.
    pub reason: String,
}

/// Resource use reported by the expert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, for LLM-backed experts.
    pub input_tokens: u64,
    /// Completion tokens, for LLM-backed experts.
    pub output_tokens: u64,
}

/// A successful, validated attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The output object (already validated against the skill's output schema).
    pub output: Value,
    /// The expert's confidence, 0..1.
    pub confidence: f64,
    /// The instance that served the call (for events and debugging).
    pub instance: String,
    /// Wall time of the attempt in milliseconds.
    pub duration_ms: u64,
    /// Further inputs the expert asks for.
    pub needs: Vec<Need>,
    /// Resource use.
    pub usage: Usage,
    /// Set when the input was redacted before it left for an external
    /// expert (the data-protection guard).
    pub guard: Option<GuardReport>,
}

/// What the data-protection guard redacted from an input before sending it
/// to an expert marked `external`; recorded as `StepInputRedacted`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// The external expert.
    pub expert: String,
    /// Redacted values per entity type (e.g. `EMAIL_ADDRESS`, `aws-key`).
    pub redacted: std::collections::BTreeMap<String, u64>,
}

/// Performs step attempts. Implementations enforce `deadline`, classify
/// failures with [`StepError::retryable`] and validate outputs.
#[async_trait::async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// Runs one attempt.
    async fn invoke(&self, call: Invocation) -> Result<StepOutput, StepError>;

    /// Runs one attempt as part of the trace in `trace`: the driver's span
    /// for the attempt, or an empty context when tracing is off. Invokers
    /// that call out start their call span as a child of it and propagate
    /// it (the registry's gRPC client sends W3C `traceparent`); the default
    /// ignores it and calls [`Invoker::invoke`].
    async fn invoke_traced(
        &self,
        call: Invocation,
        trace: &opentelemetry::Context,
    ) -> Result<StepOutput, StepError> {
        let _ = trace;
        self.invoke(call).await
    }
}
