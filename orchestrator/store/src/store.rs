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

impl RunRecord {
    /// A fresh run of `workflow`, pending, created now (to the microsecond,
    /// as stores keep it), with no events yet.
    pub fn pending(run_id: RunId, workflow: impl Into<String>, inputs: Value) -> Self {
        RunRecord {
            run_id,
            workflow: workflow.into(),
            status: RunStatus::Pending,
            created_at: crate::record::now(),
            ended_at: None,
            inputs,
            result: None,
            error: None,
            last_seq: 0,
        }
    }
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
    /// `append_leased` by an owner that does not hold an unexpired lease on
    /// the run (it expired and may have been taken over).
    #[error(
        "`{owner}` does not hold the lease on run `{run_id}` (it expired or another replica \
         took the run over); stop driving the run"
    )]
    LeaseNotHeld {
        /// The run.
        run_id: RunId,
        /// Who tried to append.
        owner: String,
    },
    /// The run has no outbox entry for this binding.
    #[error(
        "run `{run_id}` has no outbox entry for binding `{binding}`; record the intent \
         (`record_intent`) before sending"
    )]
    OutboxEntryNotFound {
        /// The run.
        run_id: RunId,
        /// The binding name.
        binding: String,
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

/// Where a binding delivery in the outbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Recorded, not yet confirmed: (re)send it with its idempotency key.
    Pending,
    /// The destination accepted it. Final.
    Delivered,
    /// Delivery gave up. Final.
    Failed,
}

impl OutboxState {
    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }

    /// True for `Delivered` and `Failed`.
    pub fn is_final(self) -> bool {
        !matches!(self, OutboxState::Pending)
    }
}

/// A binding delivery about to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxIntent {
    /// The run.
    pub run_id: RunId,
    /// The binding name (unique within the run).
    pub binding: String,
    /// The idempotency key the destination deduplicates on.
    pub idempotency_key: String,
    /// The rendered request, without resolved secrets (they are looked up at
    /// send time and must never be stored).
    pub request: Value,
}

/// A binding delivery recorded in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The run.
    pub run_id: RunId,
    /// The binding name.
    pub binding: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// The request as first recorded.
    pub request: Value,
    /// Where the delivery is.
    pub state: OutboxState,
    /// HTTP attempts made so far.
    pub attempts: u32,
    /// Report of the latest delivery attempt(s), if any.
    pub outcome: Option<Value>,
    /// When the intent was recorded.
    pub created_at: DateTime<Utc>,
    /// When it reached a final state.
    pub completed_at: Option<DateTime<Utc>>,
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
///   can be claimed; `prune` removes only finished runs (with their events
///   and outbox entries);
/// - an outbox entry, once recorded, keeps its first request and key, and a
///   final state never changes.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Creates a run (status pending, no events) with no spec.
    async fn create_run(&self, record: RunRecord) -> Result<(), StoreError> {
        self.create_run_with_spec(record, Value::Null).await
    }
    /// Creates a run together with its spec: what it executes (workflow
    /// source or plan, unredacted inputs), kept so that a restarted
    /// orchestrator can resume it. The spec is internal: never returned by
    /// the run APIs or written to events. `Null` = no spec.
    async fn create_run_with_spec(&self, record: RunRecord, spec: Value) -> Result<(), StoreError>;
    /// The run's spec, if one was recorded; [`StoreError::RunNotFound`] for
    /// an unknown run.
    async fn run_spec(&self, run_id: RunId) -> Result<Option<Value>, StoreError>;
    /// Appends an event, assigning the next sequence number and the time.
    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError>;
    /// Like [`RunStore::append`], but only while `owner` holds an unexpired
    /// lease on the run, checked atomically with the append (fencing: a
    /// replica that lost its lease cannot write); else
    /// [`StoreError::LeaseNotHeld`].
    async fn append_leased(
        &self,
        run_id: RunId,
        owner: &str,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError>;
    /// Events with `seq > after_seq`, in order.
    async fn events(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError>;
    /// Stored then live events with `seq > after_seq`; ends after the terminal event.
    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError>;
    /// One run's record.
    async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError>;
    /// The newest runs first, at most `limit`.
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
    /// Unfinished runs (pending or running), oldest first, at most `limit`:
    /// what a single orchestrator resumes after a restart. (Replicas sharing
    /// a database use [`RunStore::claim_runs`] instead.)
    async fn list_unfinished(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
    /// Claims up to `limit` unfinished runs (pending or running) that have no
    /// lease or whose lease expired, for `owner`, for `lease` from now; oldest
    /// runs first. Returns the new leases.
    async fn claim_runs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>, StoreError>;
    /// Claims one unfinished run for `owner` for `lease` from now, when it
    /// has no lease, its lease expired, or `owner` already holds it (e.g. the
    /// same replica restarted). `None` when another owner holds it or the
    /// run has finished.
    async fn claim_run(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError>;
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
    /// Records a binding delivery before it is sent (state pending). When
    /// the run already has an entry for the binding (a resumed run), returns
    /// that entry unchanged: send only while it is pending, with its key.
    async fn record_intent(&self, intent: OutboxIntent) -> Result<OutboxEntry, StoreError>;
    /// Records the outcome of sending a binding: `Delivered`/`Failed` are
    /// final; `Pending` keeps it pending with updated attempts and outcome
    /// (e.g. a retryable failure). An entry already final is returned
    /// unchanged.
    async fn complete_delivery(
        &self,
        run_id: RunId,
        binding: &str,
        state: OutboxState,
        attempts: u32,
        outcome: Value,
    ) -> Result<OutboxEntry, StoreError>;
    /// The run's outbox entries, by binding name.
    async fn outbox(&self, run_id: RunId) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The API tokens and audit log kept with these runs (same database);
    /// `None` for a store that keeps none (the server then keeps them in
    /// memory).
    fn token_store(&self) -> Option<std::sync::Arc<dyn crate::tokens::TokenStore>> {
        None
    }
}
