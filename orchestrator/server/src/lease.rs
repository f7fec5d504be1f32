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

use synod_store::{RunStore, StoreError};
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

impl LeasedStore {
    /// Every append is fenced by this replica's lease.
    async fn append_event(
        &self,
        run_id: RunId,
        owner: Option<&str>,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        let owner = owner.unwrap_or(&self.owner);
        self.inner.append_leased(run_id, owner, kind).await
    }
}

crate::store_layer::store_layer!(LeasedStore);

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
