//! Run leases: which orchestrator replica drives a run.
//!
//! A replica drives a run only while it holds the run's lease in the store;
//! it renews the lease every third of its duration and writes the run's
//! events with `append_leased`, so a replica that lost its lease (paused,
//! partitioned) cannot write another event (fencing). Replicas claim runs
//! whose lease expired, so a killed replica's runs are taken over once their
//! leases lapse; a restarted replica with the same id takes its own runs back
//! at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use synod_store::{
    EventStream, Lease, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore, StoreError,
};
use synod_types::{RunEvent, RunEventKind, RunId};
use tokio_util::sync::CancellationToken;

/// How long a lease lasts unless renewed, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The store as seen by one run's executor: every append is fenced by the
/// replica's lease on that run.
#[derive(Clone)]
pub(crate) struct LeasedStore {
    pub(crate) inner: Arc<dyn RunStore>,
    pub(crate) owner: Arc<str>,
}

impl std::fmt::Debug for LeasedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedStore")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RunStore for LeasedStore {
    async fn create_run_with_spec(&self, record: RunRecord, spec: Value) -> Result<(), StoreError> {
        self.inner.create_run_with_spec(record, spec).await
    }
    async fn run_spec(&self, run_id: RunId) -> Result<Option<Value>, StoreError> {
        self.inner.run_spec(run_id).await
    }
    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError> {
        self.inner.append_leased(run_id, &self.owner, kind).await
    }
    async fn append_leased(
        &self,
        run_id: RunId,
        owner: &str,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        self.inner.append_leased(run_id, owner, kind).await
    }
    async fn events(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError> {
        self.inner.events(run_id, after_seq).await
    }
    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError> {
        self.inner.subscribe(run_id, after_seq).await
    }
    async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.inner.get_run(run_id).await
    }
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list_runs(limit).await
    }
    async fn list_unfinished(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list_unfinished(limit).await
    }
    async fn claim_runs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>, StoreError> {
        self.inner.claim_runs(owner, lease, limit).await
    }
    async fn claim_run(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.claim_run(run_id, owner, lease).await
    }
    async fn renew_lease(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.renew_lease(run_id, owner, lease).await
    }
    async fn release_lease(&self, run_id: RunId, owner: &str) -> Result<bool, StoreError> {
        self.inner.release_lease(run_id, owner).await
    }
    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune(ended_before).await
    }
    async fn record_intent(&self, intent: OutboxIntent) -> Result<OutboxEntry, StoreError> {
        self.inner.record_intent(intent).await
    }
    async fn complete_delivery(
        &self,
        run_id: RunId,
        binding: &str,
        state: OutboxState,
        attempts: u32,
        outcome: Value,
    ) -> Result<OutboxEntry, StoreError> {
        self.inner
            .complete_delivery(run_id, binding, state, attempts, outcome)
            .await
    }
    async fn outbox(&self, run_id: RunId) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.outbox(run_id).await
    }
}

/// Renews `owner`'s `lease` on `run_id` every third of it until `done`
/// fires; fires `lost` (and stops) when the lease cannot be renewed.
pub(crate) async fn keep_lease(
    store: Arc<dyn RunStore>,
    run_id: RunId,
    owner: Arc<str>,
    lease: Duration,
    done: CancellationToken,
    lost: CancellationToken,
) {
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            () = tokio::time::sleep(lease / 3) => {}
        }
        match store.renew_lease(run_id, &owner, lease).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::warn!(run_id = %run_id, owner = %owner, "lease lost: another replica took the run over");
                lost.cancel();
                return;
            }
            Err(error) => {
                // Keep trying until the lease would have expired anyway.
                tracing::warn!(run_id = %run_id, error = %error, "cannot renew the run's lease");
            }
        }
    }
}
