//! Typed records of a delivery, for the executor to turn into run events.
//! Every string in them has been passed through the run's [`crate::Redactor`].

use serde::Serialize;

use crate::classify::ErrorClass;

/// One HTTP attempt of a binding delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    /// The binding name.
    pub binding: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// HTTP status, when a response arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Wall time of the attempt, in milliseconds.
    pub duration_ms: u64,
    /// Failure class; `None` when the attempt succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// Failure message (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the response body (redacted, at most `DeliveryPolicy::body_excerpt_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// Delay before the next attempt, when one is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// The end result of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The destination answered 2xx.
    Delivered {
        /// The status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Delivery gave up.
    Failed {
        /// Class of the last failure.
        error_class: ErrorClass,
        /// What went wrong and how to fix it (redacted).
        error: String,
        /// The last HTTP status, if any response arrived.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Attempts made (0 when nothing was sent).
        attempts: u32,
        /// Whether a later delivery (e.g. by the outbox) may succeed.
        retryable: bool,
    },
}

/// Everything that happened while delivering one binding request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// The binding name.
    pub binding: String,
    /// The idempotency key sent (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Each attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// The final outcome.
    pub outcome: DeliveryOutcome,
    /// Total wall time, including waits between attempts, in milliseconds.
    pub total_ms: u64,
}

impl DeliveryOutcome {
    /// True when the destination accepted the request.
    pub fn is_delivered(&self) -> bool {
        matches!(self, DeliveryOutcome::Delivered { .. })
    }
}
