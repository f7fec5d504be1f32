//! Group commit for SQLite appends.
//!
//! Every `append` is queued to one writer task, which takes whatever is
//! queued (up to [`MAX_BATCH`]) and writes it in one transaction: one WAL
//! fsync then acknowledges many events. An append still returns only after
//! its event is committed (and, with `synchronous=FULL`, on disk), so
//! durability is unchanged; a lone appender pays one commit as before, and
//! concurrent runs share commits instead of queueing for the file lock.

use std::sync::Arc;

use sqlx::sqlite::SqlitePool;
use synod_types::{RunEvent, RunEventKind, RunId};
use tokio::sync::{mpsc, oneshot};

use super::micros;
use crate::live::{LiveHub, Notice};
use crate::record::{self, EncodedEvent, RecordChange};
use crate::sql;
use crate::store::StoreError;

/// Most appends written in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// Appends waiting for the writer before `append` callers wait to queue.
const QUEUE: usize = 4096;

/// One queued append.
#[derive(Debug)]
pub(super) struct AppendRequest {
    pub(super) run_id: RunId,
    /// Fence: append only while this owner holds the run's lease.
    pub(super) owner: Option<String>,
    pub(super) kind: RunEventKind,
    pub(super) encoded: EncodedEvent,
    pub(super) reply: oneshot::Sender<Result<RunEvent, StoreError>>,
}

/// Starts the writer task; it ends when every sender is dropped.
pub(super) fn spawn(writer: SqlitePool, hub: Arc<LiveHub>) -> mpsc::Sender<AppendRequest> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(write_batches(writer, hub, receiver));
    sender
}

async fn write_batches(
    writer: SqlitePool,
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
async fn commit(writer: &SqlitePool, hub: &LiveHub, batch: Vec<AppendRequest>) {
    let time = record::now();
    let error = match write(writer, &batch, time).await {
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
        match write(writer, std::slice::from_ref(&request), time).await {
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
    time: chrono::DateTime<chrono::Utc>,
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

/// One transaction for `batch`: per request, the assigned seq, or why the
/// run cannot take events.
async fn write(
    writer: &SqlitePool,
    batch: &[AppendRequest],
    time: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Result<i64, StoreError>>, sqlx::Error> {
    let mut tx = writer.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let id = request.run_id.to_string();
        let change = RecordChange::of(&request.kind);
        // The first statement writes, so the transaction takes the write
        // lock at once; `last_seq + 1` under it is the next gap-free number.
        let seq: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET last_seq = last_seq + 1, status = COALESCE($2, status), \
             result = COALESCE($3, result), error = COALESCE($4, error), \
             ended_at = COALESCE($5, ended_at), updated_at = $6 \
             WHERE run_id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled') \
             AND ($7 IS NULL OR (lease_owner = $7 AND lease_expires_at >= $6)) \
             RETURNING last_seq",
        )
        .bind(&id)
        .bind(change.status.map(|status| status.as_str()))
        .bind(change.result.as_ref().map(record::json_text))
        .bind(&change.error)
        .bind(change.ends_run.then(|| micros(time)))
        .bind(micros(time))
        .bind(&request.owner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(seq) = seq else {
            let status: Option<String> = sqlx::query_scalar(sql::STATUS_OF)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
            let refused = sql::append_refused(request.run_id, status, request.owner.as_deref());
            outcomes.push(Err(refused));
            continue;
        };
        sqlx::query(
            "INSERT INTO events (run_id, seq, time, type, payload) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(seq)
        .bind(micros(time))
        .bind(request.encoded.event_type)
        .bind(&request.encoded.payload)
        .execute(&mut *tx)
        .await?;
        if let Some((step, output)) = &request.encoded.output {
            sqlx::query(
                "INSERT INTO step_outputs (run_id, seq, step, output) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(seq)
            .bind(step)
            .bind(output)
            .execute(&mut *tx)
            .await?;
        }
        outcomes.push(Ok(seq));
    }
    tx.commit().await?;
    Ok(outcomes)
}
