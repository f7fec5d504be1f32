//! Stable, user-facing error codes and the step error carried in events.

use serde::{Deserialize, Serialize};

/// Stable codes for run-time failures (`SYN-R…`). Each maps to a gRPC code
/// and an HTTP status, and says whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No healthy instance of the expert is registered (SYN-R0001).
    ExpertUnavailable,
    /// The attempt exceeded its deadline (SYN-R0002).
    DeadlineExceeded,
    /// The expert failed with a transient error: unavailable, resource
    /// exhausted, aborted, connection reset (SYN-R0003).
    ExpertTransient,
    /// The expert failed with a permanent error (SYN-R0004).
    ExpertFailed,
    /// The expert's output does not match the skill's output schema (SYN-R0005).
    InvalidOutput,
    /// The step's input does not match the skill's input schema, or the
    /// expert rejected it (SYN-R0006).
    InvalidInput,
    /// The step was cancelled (SYN-R0007).
    Cancelled,
    /// An expression or input reference could not be resolved at run time (SYN-R0008).
    BindingError,
    /// The expert or skill is not known to the registry (SYN-R0009).
    UnknownSkill,
    /// An internal invariant broke; a bug in synod (SYN-R0010).
    Internal,
}

impl ErrorCode {
    /// The stable code, e.g. `SYN-R0002`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::ExpertUnavailable => "SYN-R0001",
            ErrorCode::DeadlineExceeded => "SYN-R0002",
            ErrorCode::ExpertTransient => "SYN-R0003",
            ErrorCode::ExpertFailed => "SYN-R0004",
            ErrorCode::InvalidOutput => "SYN-R0005",
            ErrorCode::InvalidInput => "SYN-R0006",
            ErrorCode::Cancelled => "SYN-R0007",
            ErrorCode::BindingError => "SYN-R0008",
            ErrorCode::UnknownSkill => "SYN-R0009",
            ErrorCode::Internal => "SYN-R0010",
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::ExpertUnavailable | ErrorCode::DeadlineExceeded | ErrorCode::ExpertTransient
        )
    }

    /// The numeric gRPC status code (as in `tonic::Code`).
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorCode::ExpertUnavailable | ErrorCode::ExpertTransient => 14, // UNAVAILABLE
            ErrorCode::DeadlineExceeded => 4,
            ErrorCode::ExpertFailed | ErrorCode::Internal => 13, // INTERNAL
            ErrorCode::InvalidOutput => 13,
            ErrorCode::InvalidInput | ErrorCode::BindingError => 3, // INVALID_ARGUMENT
            ErrorCode::Cancelled => 1,
            ErrorCode::UnknownSkill => 5, // NOT_FOUND
        }
    }

    /// The HTTP status for the same failure.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ExpertUnavailable | ErrorCode::ExpertTransient => 503,
            ErrorCode::DeadlineExceeded => 504,
            ErrorCode::ExpertFailed | ErrorCode::Internal | ErrorCode::InvalidOutput => 500,
            ErrorCode::InvalidInput | ErrorCode::BindingError => 400,
            ErrorCode::Cancelled => 499,
            ErrorCode::UnknownSkill => 404,
        }
    }
}

/// Why a step attempt failed, as recorded in run events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code_text}: {message}")]
pub struct StepError {
    /// Classification.
    pub code: ErrorCode,
    /// Stable code text, e.g. `SYN-R0005` (redundant with `code`, for readers of raw JSON).
    pub code_text: String,
    /// What happened, naming the offending field or value and the fix.
    pub message: String,
    /// Whether the executor may retry.
    pub retryable: bool,
}

impl StepError {
    /// A step error with the code's default retry classification.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        StepError {
            code,
            code_text: code.code().to_owned(),
            message: message.into(),
            retryable: code.is_retryable(),
        }
    }
}
