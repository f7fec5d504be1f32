//! Group commit for appends, shared by the SQL backends.
//!
//! Every `append` is queued to one writer task per store, which takes
//! whatever is queued (up to [`MAX_BATCH`]) and writes it in one transaction:
//! one WAL flush then acknowledges many events. An append still returns only
//! after its event is committed, so durability is unchanged; a lone appender
//! pays one commit as before, and concurrent runs share commits instead of
//! each waiting for its own fsync.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use synod_types::{RunEvent, RunEventKind, RunId};
use tokio::sync::{mpsc, oneshot};

use crate::live::{LiveHub, Notice};
use crate::record::{self, EncodedEvent};
use crate::store::StoreError;

/// Most appends written in one transaction.
pub(crate) const MAX_BATCH: usize = 256;

/// Appends waiting for the writer before `append` callers wait to queue.
const QUEUE: usize = 4096;

/// One queued append.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    pub(crate) run_id: RunId,
    /// Fence: append only while this owner holds the run's lease.
    pub(crate) owner: Option<String>,
    pub(crate) kind: RunEventKind,
    pub(crate) encoded: EncodedEvent,
    pub(crate) reply: oneshot::Sender<Result<RunEvent, StoreError>>,
}

/// A backend's way of writing a batch of appends in one transaction.
pub(crate) trait BatchWriter: Send + Sync + 'static {
    /// Writes `batch` with event time `time` in one transaction. Per
    /// request: the assigned seq, or why the run refused the event. `Err`
    /// when the transaction failed as a whole (nothing was written).
    fn write(
        &self,
        batch: &[AppendRequest],
        time: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Result<i64, StoreError>>, sqlx::Error>> + Send;
}

/// The sending side of a writer task.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    queue: mpsc::Sender<AppendRequest>,
}

impl Appender {
    /// Starts the writer task; it ends when every `Appender` clone is dropped.
    pub(crate) fn spawn(writer: impl BatchWriter, hub: Arc<LiveHub>) -> Appender {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(writer, hub, requests));
        Appender { queue }
    }

    /// Queues an append and waits until it is committed (or refused).
    pub(crate) async fn append(
        &self,
        run_id: RunId,
        owner: Option<String>,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        let encoded = record::encode_event(run_id, &kind)?;
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            run_id,
            owner,
            kind,
            encoded,
            reply,
        };
        let stopped = || {
            StoreError::Backend(
                "the store's writer task has stopped (was the runtime that opened the store \
                 shut down?); open the store again"
                    .to_owned(),
            )
        };
        self.queue.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(
    writer: impl BatchWriter,
    hub: Arc<LiveHub>,
    mut requests: mpsc::Receiver<AppendRequest>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&writer, &hub, std::mem::take(&mut batch)).await;
    }
}

/// Writes `batch` in one transaction and answers each request. If the
/// transaction fails as a whole, each append is retried alone, so one bad
/// request cannot fail the others.
async fn commit(writer: &impl BatchWriter, hub: &LiveHub, batch: Vec<AppendRequest>) {
    let time = record::now();
    let error = match writer.write(&batch, time).await {
        Ok(outcomes) => return answer(hub, batch.into_iter().zip(outcomes), time),
        Err(error) => error,
    };
    if batch.len() == 1 {
        batch
            .into_iter()
            .for_each(|request| fail(request, error.to_string()));
        return;
    }
    for request in batch {
        match writer.write(std::slice::from_ref(&request), time).await {
            Ok(outcomes) => answer(hub, std::iter::once(request).zip(outcomes), time),
            Err(error) => fail(request, error.to_string()),
        }
    }
}

fn fail(request: AppendRequest, error: String) {
    let _ = request.reply.send(Err(StoreError::Backend(format!(
        "cannot append an event to run `{}`: {error}",
        request.run_id
    ))));
}

/// Publishes and returns the committed events, in order.
fn answer(
    hub: &LiveHub,
    outcomes: impl Iterator<Item = (AppendRequest, Result<i64, StoreError>)>,
    time: DateTime<Utc>,
) {
    for (request, outcome) in outcomes {
        let run_id = request.run_id;
        let event = outcome
            .and_then(|seq| record::seq_from_sql(run_id, seq))
            .map(|seq| RunEvent {
                run_id,
                seq,
                time,
                kind: request.kind,
            });
        if let Ok(event) = &event {
            hub.publish(run_id, Notice::Appended(event.clone()));
        }
        // The caller may have gone away (cancelled); the event is stored anyway.
        let _ = request.reply.send(event);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use synod_types::StepId;

    /// Fails any transaction that contains the poisoned run, like a database
    /// error would; counts the batch sizes it saw.
    #[derive(Debug, Default)]
    struct FakeWriter {
        poisoned: Mutex<Option<RunId>>,
        seqs: Mutex<HashMap<RunId, i64>>,
        batch_sizes: Arc<Mutex<Vec<usize>>>,
    }

    impl BatchWriter for FakeWriter {
        async fn write(
            &self,
            batch: &[AppendRequest],
            _time: DateTime<Utc>,
        ) -> Result<Vec<Result<i64, StoreError>>, sqlx::Error> {
            self.batch_sizes.lock().unwrap().push(batch.len());
            let poisoned = *self.poisoned.lock().unwrap();
            if batch.iter().any(|request| Some(request.run_id) == poisoned) {
                return Err(sqlx::Error::Protocol("disk I/O error".into()));
            }
            let mut seqs = self.seqs.lock().unwrap();
            Ok(batch
                .iter()
                .map(|request| {
                    let seq = seqs.entry(request.run_id).or_default();
                    *seq += 1;
                    Ok(*seq)
                })
                .collect())
        }
    }

    fn skipped() -> RunEventKind {
        RunEventKind::StepSkipped {
            step: StepId::new("s"),
            reason: "test".into(),
        }
    }

    #[tokio::test]
    async fn a_failing_batch_is_retried_one_by_one_so_only_the_bad_append_fails() {
        let poisoned = RunId::new();
        let writer = FakeWriter {
            poisoned: Mutex::new(Some(poisoned)),
            ..FakeWriter::default()
        };
        let batch_sizes = Arc::clone(&writer.batch_sizes);
        let appender = Appender::spawn(writer, Arc::new(LiveHub::default()));
        let good = [RunId::new(), RunId::new()];
        // Queued together on this single-threaded runtime: one batch of three.
        let (a, bad, b) = tokio::join!(
            appender.append(good[0], None, skipped()),
            appender.append(poisoned, None, skipped()),
            appender.append(good[1], None, skipped()),
        );
        assert_eq!(a.unwrap().seq, 1);
        assert_eq!(b.unwrap().seq, 1);
        let error = bad.unwrap_err().to_string();
        assert!(error.contains(&poisoned.to_string()), "{error}");
        assert!(error.contains("disk I/O error"), "{error}");
        assert_eq!(*batch_sizes.lock().unwrap(), vec![3, 1, 1, 1]);
    }
}
