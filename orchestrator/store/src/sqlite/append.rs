//! The SQLite [`BatchWriter`]: a batch of appends in one transaction on the
//! single writer connection.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;

use super::micros;
use crate::group_commit::{AppendRequest, BatchWriter};
use crate::record::{self, RecordChange};
use crate::sql;
use crate::store::StoreError;

/// Writes batches through the writer pool (one connection).
#[derive(Debug)]
pub(super) struct SqliteBatchWriter(pub(super) SqlitePool);

impl BatchWriter for SqliteBatchWriter {
    async fn write(
        &self,
        batch: &[AppendRequest],
        time: DateTime<Utc>,
    ) -> Result<Vec<Result<i64, StoreError>>, sqlx::Error> {
        write(&self.0, batch, time).await
    }
}

/// One transaction for `batch`: per request, the assigned seq, or why the
/// run cannot take events.
async fn write(
    writer: &SqlitePool,
    batch: &[AppendRequest],
    time: DateTime<Utc>,
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
