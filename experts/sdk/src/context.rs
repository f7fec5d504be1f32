//! What a skill knows about the call it is serving: [`SkillContext`].

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::trace::TraceContext;

/// An artifact handed to a skill as context (e.g. an earlier step's result,
/// or what the orchestrator gathered to satisfy a [`Need`](crate::Need)).
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// Artifact type, e.g. `knowledge`.
    pub artifact_type: String,
    /// Where it came from, e.g. the producing step id.
    pub source: String,
    /// The artifact's data (a JSON object).
    pub data: Value,
}

/// Feedback from an earlier reflection round: why a critic rejected the
/// skill's previous output.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    /// Who judged: `rule:confidence`, `knowledge/verify`, ...
    pub critic: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The round the feedback is about.
    pub round: u32,
    /// Structured details (a JSON object, empty when the critic gave none).
    pub details: Value,
}

/// One progress update of a streaming call.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Fraction done, 0..1, or negative when unknown.
    pub fraction: f64,
    /// What the skill is doing.
    pub message: String,
}

/// Sends progress updates to the caller of `InvokeStream`. For unary calls
/// (`Invoke`, or in-process calls) updates are discarded.
#[derive(Debug, Clone, Default)]
pub struct ProgressSender {
    sender: Option<mpsc::Sender<Progress>>,
}

impl ProgressSender {
    /// A sender that discards every update.
    pub fn discard() -> Self {
        ProgressSender { sender: None }
    }

    /// A sender that delivers updates into `sender` (the SDK uses this for
    /// `InvokeStream`; tests may use it to observe progress).
    pub fn new(sender: mpsc::Sender<Progress>) -> Self {
        ProgressSender {
            sender: Some(sender),
        }
    }

    /// Whether updates reach a caller.
    pub fn is_streaming(&self) -> bool {
        self.sender
            .as_ref()
            .is_some_and(|sender| !sender.is_closed())
    }

    /// Sends one update, waiting while the caller is slow to read. Updates
    /// after the caller went away are dropped silently.
    pub async fn send(&self, fraction: f64, message: impl Into<String>) {
        if let Some(sender) = &self.sender {
            let progress = Progress {
                fraction,
                message: message.into(),
            };
            // A closed channel means the caller stopped listening; the final
            // response is still produced, so there is nothing to report.
            let _ = sender.send(progress).await;
        }
    }
}

/// What a skill knows about the call it is serving.
///
/// Built by the SDK from the `InvokeRequest` and its metadata. Tests build
/// one with [`SkillContext::default`] and the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use synod_expert_sdk::SkillContext;
///
/// let ctx = SkillContext::default()
///     .with_run_id("run-1")
///     .with_step_id("extract")
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(ctx.step_id(), "extract");
/// assert!(ctx.remaining().unwrap() <= Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SkillContext {
    run_id: String,
    step_id: String,
    skill: String,
    round: u32,
    attempt: u32,
    artifacts: Vec<Artifact>,
    feedback: Vec<Feedback>,
    deadline: Option<Instant>,
    trace: Option<TraceContext>,
    progress: ProgressSender,
}

impl SkillContext {
    /// The run this call belongs to (empty for calls outside a run).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The step within the run.
    pub fn step_id(&self) -> &str {
        &self.step_id
    }

    /// The skill being invoked.
    pub fn skill(&self) -> &str {
        &self.skill
    }

    /// Reflection round, 0 for the first call.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Attempt within the round, 1 for the first try (0 when unknown).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Extra artifacts sent with the call.
    pub fn artifacts(&self) -> &[Artifact] {
        &self.artifacts
    }

    /// The artifacts of one type, e.g. `knowledge`.
    pub fn artifacts_of_type<'a>(
        &'a self,
        artifact_type: &'a str,
    ) -> impl Iterator<Item = &'a Artifact> + 'a {
        self.artifacts
            .iter()
            .filter(move |artifact| artifact.artifact_type == artifact_type)
    }

    /// Feedback from earlier reflection rounds, oldest first.
    pub fn feedback(&self) -> &[Feedback] {
        &self.feedback
    }

    /// When the call must be done: over gRPC, the caller's `grpc-timeout`
    /// or the server's [request timeout](crate::ExpertServerBuilder::request_timeout),
    /// whichever is sooner. `None` only for in-process calls without one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (zero once passed), or `None` without
    /// a deadline. Long skills should budget their work with it.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The caller's W3C trace context, if it sent a valid one.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// The progress sender (use [`SkillContext::progress`] for one update).
    pub fn progress_sender(&self) -> &ProgressSender {
        &self.progress
    }

    /// Reports progress to an `InvokeStream` caller (no-op for unary calls).
    /// `fraction` is 0..1, or negative when unknown.
    pub async fn progress(&self, fraction: f64, message: impl Into<String>) {
        self.progress.send(fraction, message).await;
    }

    /// Sets the run id.
    #[must_use]
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = run_id.into();
        self
    }

    /// Sets the step id.
    #[must_use]
    pub fn with_step_id(mut self, step_id: impl Into<String>) -> Self {
        self.step_id = step_id.into();
        self
    }

    /// Sets the skill name (the SDK sets it on every call).
    #[must_use]
    pub fn with_skill(mut self, skill: impl Into<String>) -> Self {
        self.skill = skill.into();
        self
    }

    /// Sets the reflection round.
    #[must_use]
    pub fn with_round(mut self, round: u32) -> Self {
        self.round = round;
        self
    }

    /// Sets the attempt number.
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the context artifacts.
    #[must_use]
    pub fn with_artifacts(mut self, artifacts: Vec<Artifact>) -> Self {
        self.artifacts = artifacts;
        self
    }

    /// Sets the reflection feedback.
    #[must_use]
    pub fn with_feedback(mut self, feedback: Vec<Feedback>) -> Self {
        self.feedback = feedback;
        self
    }

    /// Sets the deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the deadline to `timeout` from now.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Some(Instant::now() + timeout))
    }

    /// Sets the trace context.
    #[must_use]
    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// Sets where progress updates go.
    #[must_use]
    pub fn with_progress(mut self, progress: ProgressSender) -> Self {
        self.progress = progress;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_to_zero() {
        let ctx = SkillContext::default().with_timeout(Duration::from_secs(2));
        assert_eq!(ctx.remaining(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
        assert_eq!(SkillContext::default().remaining(), None);
    }

    #[tokio::test]
    async fn progress_reaches_a_listener_and_is_discarded_without_one() {
        let (sender, mut receiver) = mpsc::channel(4);
        let ctx = SkillContext::default().with_progress(ProgressSender::new(sender));
        assert!(ctx.progress_sender().is_streaming());
        ctx.progress(0.5, "half").await;
        assert_eq!(
            receiver.recv().await,
            Some(Progress {
                fraction: 0.5,
                message: "half".into()
            })
        );
        let silent = SkillContext::default();
        assert!(!silent.progress_sender().is_streaming());
        silent.progress(1.0, "ignored").await;
    }

    #[test]
    fn filters_artifacts_by_type() {
        let artifact = |artifact_type: &str| Artifact {
            artifact_type: artifact_type.into(),
            source: "step".into(),
            data: Value::Null,
        };
        let ctx = SkillContext::default().with_artifacts(vec![
            artifact("knowledge"),
            artifact("alerts"),
            artifact("knowledge"),
        ]);
        assert_eq!(ctx.artifacts_of_type("knowledge").count(), 2);
        assert_eq!(ctx.artifacts_of_type("events").count(), 0);
    }
}
