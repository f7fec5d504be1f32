//! [`store_layer!`]: a run store wrapping another, changing only how events
//! are appended (the lease fencing of [`crate::lease::LeasedStore`], the
//! event counting of [`crate::metrics`]) and forwarding everything else.

/// Implements [`synod_store::RunStore`] for `$layer`, a struct with a field
/// `inner: Arc<dyn RunStore>`: every method is forwarded to `inner` except
/// `append` and `append_leased`, which call the layer's inherent
/// `async fn append_event(&self, run_id, owner: Option<&str>, kind)`
/// (`owner` is `None` for `append`).
macro_rules! store_layer {
    ($layer:ty) => {
        #[async_trait::async_trait]
        impl synod_store::RunStore for $layer {
            fn token_store(&self) -> Option<std::sync::Arc<dyn synod_store::TokenStore>> {
                self.inner.token_store()
            }
            async fn create_run_with_spec(
                &self,
                record: synod_store::RunRecord,
                spec: serde_json::Value,
            ) -> Result<(), synod_store::StoreError> {
                self.inner.create_run_with_spec(record, spec).await
            }
            async fn run_spec(
                &self,
                run_id: synod_types::RunId,
            ) -> Result<Option<serde_json::Value>, synod_store::StoreError> {
                self.inner.run_spec(run_id).await
            }
            async fn append(
                &self,
                run_id: synod_types::RunId,
                kind: synod_types::RunEventKind,
            ) -> Result<synod_types::RunEvent, synod_store::StoreError> {
                self.append_event(run_id, None, kind).await
            }
            async fn append_leased(
                &self,
                run_id: synod_types::RunId,
                owner: &str,
                kind: synod_types::RunEventKind,
            ) -> Result<synod_types::RunEvent, synod_store::StoreError> {
                self.append_event(run_id, Some(owner), kind).await
            }
            async fn events(
                &self,
                run_id: synod_types::RunId,
                after_seq: u64,
            ) -> Result<Vec<synod_types::RunEvent>, synod_store::StoreError> {
                self.inner.events(run_id, after_seq).await
            }
            async fn subscribe(
                &self,
                run_id: synod_types::RunId,
                after_seq: u64,
            ) -> Result<synod_store::EventStream, synod_store::StoreError> {
                self.inner.subscribe(run_id, after_seq).await
            }
            async fn get_run(
                &self,
                run_id: synod_types::RunId,
            ) -> Result<Option<synod_store::RunRecord>, synod_store::StoreError> {
                self.inner.get_run(run_id).await
            }
            async fn list_runs(
                &self,
                limit: usize,
            ) -> Result<Vec<synod_store::RunRecord>, synod_store::StoreError> {
                self.inner.list_runs(limit).await
            }
            async fn list_unfinished(
                &self,
                limit: usize,
            ) -> Result<Vec<synod_store::RunRecord>, synod_store::StoreError> {
                self.inner.list_unfinished(limit).await
            }
            async fn claim_runs(
                &self,
                owner: &str,
                lease: std::time::Duration,
                limit: usize,
            ) -> Result<Vec<synod_store::Lease>, synod_store::StoreError> {
                self.inner.claim_runs(owner, lease, limit).await
            }
            async fn claim_run(
                &self,
                run_id: synod_types::RunId,
                owner: &str,
                lease: std::time::Duration,
            ) -> Result<Option<synod_store::Lease>, synod_store::StoreError> {
                self.inner.claim_run(run_id, owner, lease).await
            }
            async fn renew_lease(
                &self,
                run_id: synod_types::RunId,
                owner: &str,
                lease: std::time::Duration,
            ) -> Result<Option<synod_store::Lease>, synod_store::StoreError> {
                self.inner.renew_lease(run_id, owner, lease).await
            }
            async fn release_lease(
                &self,
                run_id: synod_types::RunId,
                owner: &str,
            ) -> Result<bool, synod_store::StoreError> {
                self.inner.release_lease(run_id, owner).await
            }
            async fn prune(
                &self,
                ended_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, synod_store::StoreError> {
                self.inner.prune(ended_before).await
            }
            async fn record_intent(
                &self,
                intent: synod_store::OutboxIntent,
            ) -> Result<synod_store::OutboxEntry, synod_store::StoreError> {
                self.inner.record_intent(intent).await
            }
            async fn complete_delivery(
                &self,
                run_id: synod_types::RunId,
                binding: &str,
                state: synod_store::OutboxState,
                attempts: u32,
                outcome: serde_json::Value,
            ) -> Result<synod_store::OutboxEntry, synod_store::StoreError> {
                self.inner
                    .complete_delivery(run_id, binding, state, attempts, outcome)
                    .await
            }
            async fn outbox(
                &self,
                run_id: synod_types::RunId,
            ) -> Result<Vec<synod_store::OutboxEntry>, synod_store::StoreError> {
                self.inner.outbox(run_id).await
            }
        }
    };
}

pub(crate) use store_layer;
