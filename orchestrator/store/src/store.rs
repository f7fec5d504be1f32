//! The [`RunStore`] trait.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use synod_types::{RunEvent, RunEventKind, RunId, RunStatus};

/// A run's summary row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run.
    pub run_id: RunId,
    /// Workflow name (or `task`).
    pub workflow: String,
    /// Current status, kept in step with the events.
    pub status: RunStatus,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When it reached a terminal status.
    pub ended_at: Option<DateTime<Utc>>,
    /// The run's inputs (redacted).
    pub inputs: Value,
    /// The result, once succeeded.
    pub result: Option<Value>,
    /// The error summary, once failed or cancelled.
    pub error: Option<String>,
    /// Sequence number of the last event (0 = none yet).
    pub last_seq: u64,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No run with this id.
    #[error("run `{0}` not found")]
    RunNotFound(RunId),
    /// The run already exists.
    #[error("run `{0}` already exists")]
    RunExists(RunId),
    /// The run already ended; no event may follow its terminal event.
    #[error("run `{0}` has ended; no more events can be appended")]
    RunEnded(RunId),
    /// A live subscriber fell so far behind that events were dropped from
    /// its buffer; it must resubscribe from its last sequence number.
    #[error(
        "subscriber for run `{run_id}` lagged behind after seq {last_seq}; resubscribe from there"
    )]
    Lagged {
        /// The run.
        run_id: RunId,
        /// The last sequence number delivered.
        last_seq: u64,
    },
    /// A backend failure (I/O, database).
    #[error("store backend failed: {0}")]
    Backend(String),
}

/// Events of one run in sequence order.
pub type EventStream = BoxStream<'static, Result<RunEvent, StoreError>>;

/// Runs and their event logs.
///
/// Guarantees every implementation keeps (checked by the conformance suite):
/// - `append` assigns sequence numbers 1, 2, 3, … per run, without gaps, and
///   an event is readable (`events`, `subscribe`) once `append` returns;
/// - `subscribe(run, after)` yields every event with `seq > after` exactly
///   once, in order — first those already stored, then live ones — and ends
///   after the run's terminal event;
/// - the run record's status follows the events (`RunStarted` → running,
///   terminal events → succeeded/failed/cancelled).
#[async_trait::async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Creates a run (status pending, no events).
    async fn create_run(&self, record: RunRecord) -> Result<(), StoreError>;
    /// Appends an event, assigning the next sequence number and the time.
    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError>;
    /// Events with `seq > after_seq`, in order.
    async fn events(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError>;
    /// Stored then live events with `seq > after_seq`; ends after the terminal event.
    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError>;
    /// One run's record.
    async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError>;
    /// The newest runs first, at most `limit`.
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
}
