//! [`MemoryStore`]: runs and events in memory, lost on exit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use futures::StreamExt;
use synod_types::{RunEvent, RunEventKind, RunId, RunStatus};
use tokio::sync::broadcast;

use crate::store::{EventStream, RunRecord, RunStore, StoreError};

/// Live events buffered per run for slow subscribers; a subscriber that falls
/// further behind catches up from the stored log instead.
const LIVE_BUFFER: usize = 1024;

/// An in-memory [`RunStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<HashMap<RunId, RunLog>>>,
}

#[derive(Debug)]
struct RunLog {
    record: RunRecord,
    events: Vec<RunEvent>,
    live: broadcast::Sender<RunEvent>,
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

    fn events_after(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError> {
        let runs = self.lock();
        let log = runs.get(&run_id).ok_or(StoreError::RunNotFound(run_id))?;
        Ok(events_after(&log.events, after_seq))
    }
}

fn events_after(events: &[RunEvent], after_seq: u64) -> Vec<RunEvent> {
    // seq n is at index n-1.
    let start = usize::try_from(after_seq)
        .unwrap_or(usize::MAX)
        .min(events.len());
    events[start..].to_vec()
}

fn apply_to_record(record: &mut RunRecord, event: &RunEvent) {
    record.last_seq = event.seq;
    match &event.kind {
        RunEventKind::RunStarted { .. } => record.status = RunStatus::Running,
        RunEventKind::RunSucceeded { result } => {
            record.status = RunStatus::Succeeded;
            record.result = Some(result.clone());
            record.ended_at = Some(event.time);
        }
        RunEventKind::RunFailed { error, .. } => {
            record.status = RunStatus::Failed;
            record.error = Some(error.clone());
            record.ended_at = Some(event.time);
        }
        RunEventKind::RunCancelled { reason } => {
            record.status = RunStatus::Cancelled;
            record.error = Some(format!("cancelled: {reason}"));
            record.ended_at = Some(event.time);
        }
        _ => {}
    }
}

#[async_trait::async_trait]
impl RunStore for MemoryStore {
    async fn create_run(&self, record: RunRecord) -> Result<(), StoreError> {
        let mut runs = self.lock();
        if runs.contains_key(&record.run_id) {
            return Err(StoreError::RunExists(record.run_id));
        }
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        runs.insert(
            record.run_id,
            RunLog {
                record,
                events: Vec::new(),
                live,
            },
        );
        Ok(())
    }

    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError> {
        let mut runs = self.lock();
        let log = runs
            .get_mut(&run_id)
            .ok_or(StoreError::RunNotFound(run_id))?;
        if log.record.status.is_terminal() {
            return Err(StoreError::RunEnded(run_id));
        }
        let event = RunEvent {
            run_id,
            seq: log.events.len() as u64 + 1,
            time: Utc::now(),
            kind,
        };
        apply_to_record(&mut log.record, &event);
        log.events.push(event.clone());
        // Sent under the lock, so live order equals log order. No receiver is fine.
        let _ = log.live.send(event.clone());
        Ok(event)
    }

    async fn events(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError> {
        self.events_after(run_id, after_seq)
    }

    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError> {
        // Backlog and live receiver are taken under one lock: no event can
        // fall between them, and none is in both.
        let (backlog, receiver, ended) = {
            let runs = self.lock();
            let log = runs.get(&run_id).ok_or(StoreError::RunNotFound(run_id))?;
            (
                events_after(&log.events, after_seq),
                log.live.subscribe(),
                log.record.status.is_terminal(),
            )
        };
        let last_seq = backlog.last().map_or(after_seq, |event| event.seq);
        let backlog_stream = futures::stream::iter(backlog.into_iter().map(Ok));
        if ended {
            return Ok(backlog_stream.boxed());
        }
        let state = LiveState {
            store: self.clone(),
            run_id,
            receiver,
            last_seq,
            pending: Vec::new(),
            done: false,
        };
        let live = futures::stream::unfold(state, |mut state| async move {
            let event = state.next().await?;
            Some((event, state))
        });
        Ok(backlog_stream.chain(live).boxed())
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
}

/// Live part of a subscription: delivers events after `last_seq` in order,
/// catching up from the stored log when the broadcast buffer overflowed.
struct LiveState {
    store: MemoryStore,
    run_id: RunId,
    receiver: broadcast::Receiver<RunEvent>,
    last_seq: u64,
    /// Events read back from the log after a lag, oldest last (popped).
    pending: Vec<RunEvent>,
    done: bool,
}

impl LiveState {
    async fn next(&mut self) -> Option<Result<RunEvent, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            let event = match self.pending.pop() {
                Some(event) => event,
                None => match self.receiver.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        match self.store.events_after(self.run_id, self.last_seq) {
                            Ok(mut missed) => {
                                missed.reverse();
                                self.pending = missed;
                                continue;
                            }
                            Err(error) => {
                                self.done = true;
                                return Some(Err(error));
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if event.seq <= self.last_seq {
                continue; // already delivered (replayed after a lag)
            }
            self.last_seq = event.seq;
            if event.kind.is_terminal() {
                self.done = true;
            }
            return Some(Ok(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use synod_types::StepId;

    fn record(run_id: RunId) -> RunRecord {
        RunRecord {
            run_id,
            workflow: "wf".into(),
            status: RunStatus::Pending,
            created_at: Utc::now(),
            ended_at: None,
            inputs: json!({}),
            result: None,
            error: None,
            last_seq: 0,
        }
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
