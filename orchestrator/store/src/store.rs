//! The [`RunStore`] trait.

use std::time::Duration;

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
    /// An event's JSON payload exceeds [`crate::MAX_EVENT_BYTES`].
    #[error(
        "event for run `{run_id}` is {size} bytes of JSON, over the store's limit of {limit} bytes; \
         make the step return a smaller output (e.g. a reference to an artifact) instead"
    )]
    PayloadTooLarge {
        /// The run.
        run_id: RunId,
        /// The event's serialized size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A backend failure (I/O, database).
    #[error("store backend failed: {0}")]
    Backend(String),
}

/// A replica's time-limited claim on driving a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The run.
    pub run_id: RunId,
    /// Who holds it (a replica id).
    pub owner: String,
    /// When it lapses unless renewed; after that another owner may claim the run.
    pub expires_at: DateTime<Utc>,
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
///   terminal events → succeeded/failed/cancelled);
/// - at most one owner holds an unexpired lease on a run; only unfinished runs
///   can be claimed; `prune` removes only finished runs.
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
    /// Claims up to `limit` unfinished runs (pending or running) that have no
    /// lease or whose lease expired, for `owner`, for `lease` from now; oldest
    /// runs first. Returns the new leases.
    async fn claim_runs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>, StoreError>;
    /// Extends `owner`'s lease on a run to `lease` from now. `None` when
    /// `owner` no longer holds it (another owner took it over, or it was released).
    async fn renew_lease(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError>;
    /// Gives up `owner`'s lease on a run; false when `owner` did not hold it.
    async fn release_lease(&self, run_id: RunId, owner: &str) -> Result<bool, StoreError>;
    /// Deletes finished runs (succeeded, failed, cancelled) that ended before
    /// `ended_before`, with their events. Returns how many runs were deleted.
    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError>;
}
