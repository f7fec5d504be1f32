//! The boundary between the executor and whatever delivers a workflow
//! binding (the server's HTTP sender, or an in-process fake in tests).
//!
//! The machine decides *whether* and *when* a binding is delivered; a
//! [`Deliverer`] renders the request (it alone sees secret values), checks
//! the destination, sends it with retries and reports what happened in a
//! [`BindingResult`] whose strings are already redacted of secrets.

use std::sync::Arc;

use serde_json::Value;
use synod_types::RunId;
use synod_workflow::Workflow;

/// One binding to deliver, as asked by [`crate::Action::Deliver`].
#[derive(Debug, Clone, PartialEq)]
pub struct BindingCall {
    /// The run.
    pub run_id: RunId,
    /// The workflow the binding belongs to.
    pub workflow: Arc<Workflow>,
    /// The binding's name (a key of the workflow's `bindings`).
    pub binding: String,
    /// The run scope to render against (`inputs`, `steps`, `run`, `env`);
    /// never holds secrets.
    pub scope: Value,
}

/// One HTTP attempt of a delivery. Strings are redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// Attempt number, from 1.
    pub attempt: u32,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Wall time of the attempt, in milliseconds.
    pub duration_ms: u64,
    /// What went wrong, for a failed attempt.
    pub error: Option<String>,
    /// Delay before the next attempt, when one follows.
    pub retry_in_ms: Option<u64>,
}

/// How a delivery ended. Strings are redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingResult {
    /// The URL the request was (or would have been) sent to; empty when it
    /// could not be rendered.
    pub url: String,
    /// Every attempt, in order (empty when nothing was sent).
    pub attempts: Vec<DeliveryAttempt>,
    /// The accepted HTTP status, or what went wrong and how to fix it.
    pub outcome: Result<u16, String>,
}

impl BindingResult {
    /// A delivery that failed before anything was sent.
    pub fn not_sent(url: impl Into<String>, error: impl Into<String>) -> Self {
        BindingResult {
            url: url.into(),
            attempts: Vec::new(),
            outcome: Err(error.into()),
        }
    }
}

/// Delivers bindings. Implementations never fail: every problem is in the
/// result's outcome, redacted.
#[async_trait::async_trait]
pub trait Deliverer: Send + Sync + 'static {
    /// Renders, checks and sends one binding.
    async fn deliver(&self, call: BindingCall) -> BindingResult;
}
