//! Run and step status.

use serde::{Deserialize, Serialize};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, not started.
    Pending,
    /// Steps are being executed.
    Running,
    /// Every step that had to run succeeded.
    Succeeded,
    /// A step failed for good.
    Failed,
    /// Cancelled by a user or a shutdown.
    Cancelled,
}

impl RunStatus {
    /// True once the run can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
    /// Lowercase name, as in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a step is in its life. Transitions:
/// `Pending -> Running -> {Succeeded, Failed, RetryScheduled, TimedOut, Cancelled}`,
/// `RetryScheduled -> Running`, `TimedOut -> RetryScheduled | Failed`,
/// `Pending -> Skipped` (condition false or an upstream step failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Waiting for its dependencies.
    Pending,
    /// An attempt is in flight.
    Running,
    /// Produced a valid output.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Failed with a retryable error; another attempt is scheduled.
    RetryScheduled,
    /// The last attempt exceeded its deadline.
    TimedOut,
    /// Cancelled before it could finish.
    Cancelled,
    /// Will not run (condition false, or an upstream step did not succeed).
    Skipped,
}

impl StepStatus {
    /// True once the step can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::Cancelled
                | StepStatus::Skipped
        )
    }
    /// Lowercase name, as in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::RetryScheduled => "retry_scheduled",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
        }
    }
}
