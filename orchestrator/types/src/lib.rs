//! synod's shared vocabulary. Pure data and logic, no I/O.
//!
//! Layout:
//! - [`id`]: [`RunId`], [`StepId`], [`SkillRef`] (`expert/skill`).
//! - [`duration`]: human-written durations (`"500ms"`, `"2m"`) with serde.
//! - [`retry`]: [`RetryPolicy`] (user-facing, tagged) and its backoff schedule.
//! - [`event`]: [`RunEvent`], the typed, versioned run-event enum, and its
//!   CloudEvents 1.0 JSON form.
//! - [`status`]: run and step status enums.
//! - [`error`]: stable user-facing error codes ([`ErrorCode`]).
//! - [`redact`]: removal of secret-looking values from event payloads.
//! - [`telemetry`]: OpenTelemetry span names and attribute keys (one place).

pub mod duration;
pub mod error;
pub mod event;
pub mod id;
pub mod redact;
pub mod retry;
pub mod status;
pub mod telemetry;

pub use duration::HumanDuration;
pub use error::ErrorCode;
pub use event::{CloudEvent, EVENT_SCHEMA_VERSION, RunEvent, RunEventKind};
pub use id::{RunId, SkillRef, SkillRefError, StepId};
pub use retry::RetryPolicy;
pub use status::{RunStatus, StepStatus};
