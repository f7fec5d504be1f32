//! [`MemoryStore`]: runs and events in memory, lost on exit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use synod_types::{RunEvent, RunEventKind, RunId};

use crate::live::{self, LiveHub, Notice};
use crate::record::{self, apply_to_record};
use crate::store::{
    EventStream, Lease, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore, StoreError,
};

/// An in-memory [`RunStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<HashMap<RunId, RunLog>>>,
    hub: Arc<LiveHub>,
    tokens: crate::tokens::MemoryTokenStore,
}

#[derive(Debug)]
struct RunLog {
    record: RunRecord,
    events: Vec<RunEvent>,
    lease: Option<Lease>,
    outbox: BTreeMap<String, OutboxEntry>,
    /// What the run executes, for resuming ([`RunStore::create_run_with_spec`]).
    spec: Option<Value>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RunId, RunLog>> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single push/assignment), so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends, fenced by `owner`'s lease when given.
    fn append_as(
        &self,
        run_id: RunId,
        owner: Option<&str>,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        // Same size limit as the durable stores, so behaviour does not depend on the backend.
        record::encode_event(run_id, &kind)?;
        let mut runs = self.lock();
        let log = runs
            .get_mut(&run_id)
            .ok_or(StoreError::RunNotFound(run_id))?;
        if log.record.status.is_terminal() {
            return Err(StoreError::RunEnded(run_id));
        }
        if let Some(owner) = owner {
            let now = record::now();
            let held = log
                .lease
                .as_ref()
                .is_some_and(|lease| lease.owner == owner && lease.expires_at >= now);
            if !held {
                return Err(StoreError::LeaseNotHeld {
                    run_id,
                    owner: owner.to_owned(),
                });
            }
        }
        let event = RunEvent {
            run_id,
            seq: log.events.len() as u64 + 1,
            time: record::now(),
            kind,
        };
        apply_to_record(&mut log.record, &event);
        log.events.push(event.clone());
        // Published under the lock, so live order equals log order.
        self.hub.publish(run_id, Notice::Appended(event.clone()));
        Ok(event)
    }
}

fn events_after(events: &[RunEvent], after_seq: u64) -> Vec<RunEvent> {
    // seq n is at index n-1.
    let start = usize::try_from(after_seq)
        .unwrap_or(usize::MAX)
        .min(events.len());
    events[start..].to_vec()
}

#[async_trait::async_trait]
impl RunStore for MemoryStore {
    fn token_store(&self) -> Option<Arc<dyn crate::tokens::TokenStore>> {
        Some(Arc::new(self.tokens.clone()))
    }

    async fn create_run_with_spec(
        &self,
        mut record: RunRecord,
        spec: Value,
    ) -> Result<(), StoreError> {
        let mut runs = self.lock();
        if runs.contains_key(&record.run_id) {
            return Err(StoreError::RunExists(record.run_id));
        }
        record.created_at = record::truncate_time(record.created_at);
        runs.insert(
            record.run_id,
            RunLog {
                record,
                events: Vec::new(),
                lease: None,
                outbox: BTreeMap::new(),
                spec: (!spec.is_null()).then_some(spec),
            },
        );
        Ok(())
    }

    async fn run_spec(&self, run_id: RunId) -> Result<Option<Value>, StoreError> {
        let runs = self.lock();
        let log = runs.get(&run_id).ok_or(StoreError::RunNotFound(run_id))?;
        Ok(log.spec.clone())
    }

    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError> {
        self.append_as(run_id, None, kind)
    }

    async fn append_leased(
        &self,
        run_id: RunId,
        owner: &str,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        self.append_as(run_id, Some(owner), kind)
    }

    async fn events(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError> {
        let runs = self.lock();
        let log = runs.get(&run_id).ok_or(StoreError::RunNotFound(run_id))?;
        Ok(events_after(&log.events, after_seq))
    }

    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError> {
        let receiver = self.hub.receiver(run_id);
        live::follow(self.clone(), run_id, after_seq, receiver).await
    }

    async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().get(&run_id).map(|log| log.record.clone()))
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let runs = self.lock();
        let mut records: Vec<RunRecord> = runs.values().map(|log| log.record.clone()).collect();
        // Run ids are UUID v7: newest first is descending id order.
        records.sort_by_key(|record| std::cmp::Reverse(record.run_id));
        records.truncate(limit);
        Ok(records)
    }

    async fn list_unfinished(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let runs = self.lock();
        let mut records: Vec<RunRecord> = runs
            .values()
            .filter(|log| !log.record.status.is_terminal())
            .map(|log| log.record.clone())
            .collect();
        records.sort_by_key(|record| record.run_id);
        records.truncate(limit);
        Ok(records)
    }

    async fn claim_runs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>, StoreError> {
        let now = record::now();
        let mut runs = self.lock();
        let mut claimable: Vec<&mut RunLog> = runs
            .values_mut()
            .filter(|log| {
                !log.record.status.is_terminal()
                    && log.lease.as_ref().is_none_or(|held| held.expires_at < now)
            })
            .collect();
        claimable.sort_by_key(|log| log.record.run_id);
        let mut claimed = Vec::new();
        for log in claimable.into_iter().take(limit) {
            let new_lease = Lease {
                run_id: log.record.run_id,
                owner: owner.to_owned(),
                expires_at: record::lease_end(now, lease),
            };
            log.lease = Some(new_lease.clone());
            claimed.push(new_lease);
        }
        Ok(claimed)
    }

    async fn claim_run(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = record::now();
        let mut runs = self.lock();
        let log = runs
            .get_mut(&run_id)
            .ok_or(StoreError::RunNotFound(run_id))?;
        let free = log
            .lease
            .as_ref()
            .is_none_or(|held| held.expires_at < now || held.owner == owner);
        if log.record.status.is_terminal() || !free {
            return Ok(None);
        }
        let new_lease = Lease {
            run_id,
            owner: owner.to_owned(),
            expires_at: record::lease_end(now, lease),
        };
        log.lease = Some(new_lease.clone());
        Ok(Some(new_lease))
    }

    async fn renew_lease(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut runs = self.lock();
        let log = runs
            .get_mut(&run_id)
            .ok_or(StoreError::RunNotFound(run_id))?;
        match &mut log.lease {
            Some(held) if held.owner == owner => {
                held.expires_at = record::lease_end(record::now(), lease);
                Ok(Some(held.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn release_lease(&self, run_id: RunId, owner: &str) -> Result<bool, StoreError> {
        let mut runs = self.lock();
        let log = runs
            .get_mut(&run_id)
            .ok_or(StoreError::RunNotFound(run_id))?;
        if log.lease.as_ref().is_some_and(|held| held.owner == owner) {
            log.lease = None;
            return Ok(true);
        }
        Ok(false)
    }

    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut runs = self.lock();
        let before = runs.len();
        runs.retain(|_, log| {
            !(log.record.status.is_terminal()
                && log
                    .record
                    .ended_at
                    .is_some_and(|ended| ended < ended_before))
        });
        Ok((before - runs.len()) as u64)
    }

    async fn record_intent(&self, intent: OutboxIntent) -> Result<OutboxEntry, StoreError> {
        let mut runs = self.lock();
        let log = runs
            .get_mut(&intent.run_id)
            .ok_or(StoreError::RunNotFound(intent.run_id))?;
        let entry = log
            .outbox
            .entry(intent.binding.clone())
            .or_insert_with(|| OutboxEntry {
                run_id: intent.run_id,
                binding: intent.binding,
                idempotency_key: intent.idempotency_key,
                request: intent.request,
                state: OutboxState::Pending,
                attempts: 0,
                outcome: None,
                created_at: record::now(),
                completed_at: None,
            });
        Ok(entry.clone())
    }

    async fn complete_delivery(
        &self,
        run_id: RunId,
        binding: &str,
        state: OutboxState,
        attempts: u32,
        outcome: Value,
    ) -> Result<OutboxEntry, StoreError> {
        let mut runs = self.lock();
        let log = runs
            .get_mut(&run_id)
            .ok_or(StoreError::RunNotFound(run_id))?;
        let entry = log
            .outbox
            .get_mut(binding)
            .ok_or_else(|| StoreError::OutboxEntryNotFound {
                run_id,
                binding: binding.to_owned(),
            })?;
        if !entry.state.is_final() {
            entry.state = state;
            entry.attempts = attempts;
            entry.outcome = Some(outcome);
            entry.completed_at = state.is_final().then(record::now);
        }
        Ok(entry.clone())
    }

    async fn outbox(&self, run_id: RunId) -> Result<Vec<OutboxEntry>, StoreError> {
        let runs = self.lock();
        let log = runs.get(&run_id).ok_or(StoreError::RunNotFound(run_id))?;
        Ok(log.outbox.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LIVE_BUFFER;
    use futures::StreamExt;
    use serde_json::json;
    use synod_types::{RunStatus, StepId};

    fn record(run_id: RunId) -> RunRecord {
        RunRecord::pending(run_id, "wf", json!({}))
    }

    fn skipped(n: usize) -> RunEventKind {
        RunEventKind::StepSkipped {
            step: StepId::new(format!("s{n}")),
            reason: "test".into(),
        }
    }

    #[tokio::test]
    async fn subscribe_replays_then_follows_without_gaps_or_duplicates() {
        let store = MemoryStore::new();
        let run_id = RunId::new();
        store.create_run(record(run_id)).await.unwrap();
        for n in 0..5 {
            store.append(run_id, skipped(n)).await.unwrap();
        }
        let mut stream = store.subscribe(run_id, 2).await.unwrap();
        let writer = store.clone();
        let producer = tokio::spawn(async move {
            // More than the live buffer, to force the lag catch-up path.
            for n in 5..(LIVE_BUFFER + 100) {
                writer.append(run_id, skipped(n)).await.unwrap();
            }
            writer
                .append(run_id, RunEventKind::RunSucceeded { result: json!({}) })
                .await
                .unwrap();
        });
        let mut seqs = Vec::new();
        while let Some(event) = stream.next().await {
            seqs.push(event.unwrap().seq);
        }
        producer.await.unwrap();
        let expected: Vec<u64> = (3..=(LIVE_BUFFER as u64 + 101)).collect();
        assert_eq!(seqs, expected);
        let record = store.get_run(run_id).await.unwrap().unwrap();
        assert_eq!(record.status, RunStatus::Succeeded);
        assert!(matches!(
            store.append(run_id, skipped(0)).await,
            Err(StoreError::RunEnded(_))
        ));
    }
}
