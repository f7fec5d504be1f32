//! The PostgreSQL [`BatchWriter`]: a batch of appends in one transaction,
//! each one statement (data-modifying CTEs): bump the run's `last_seq` under
//! its row lock (fenced by the lease when an owner is given), insert the
//! event and a split-off output, and `pg_notify` — sent at commit.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

use super::NOTIFY_CHANNEL;
use crate::group_commit::{AppendRequest, BatchWriter};
use crate::record::{self, RecordChange};
use crate::sql;
use crate::store::StoreError;

const APPEND: &str = "WITH bumped AS ( \
       UPDATE runs SET last_seq = last_seq + 1, status = COALESCE($2, status), \
         result = COALESCE($3, result), error = COALESCE($4, error), \
         ended_at = COALESCE($5, ended_at), updated_at = $6 \
       WHERE run_id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled') \
       AND ($12::text IS NULL OR (lease_owner = $12 AND lease_expires_at >= now())) \
       RETURNING last_seq), \
     event AS ( \
       INSERT INTO events (run_id, seq, time, type, payload) \
       SELECT $1, last_seq, $6, $7, $8 FROM bumped RETURNING seq), \
     output AS ( \
       INSERT INTO step_outputs (run_id, seq, step, output) \
       SELECT $1, seq, $9, $10 FROM event WHERE $10::text IS NOT NULL) \
     SELECT seq FROM event, pg_notify($11, $1::text || ':' || seq)";

/// Writes batches on one pooled connection at a time.
#[derive(Debug)]
pub(super) struct PgBatchWriter(pub(super) PgPool);

impl BatchWriter for PgBatchWriter {
    async fn write(
        &self,
        batch: &[AppendRequest],
        time: DateTime<Utc>,
    ) -> Result<Vec<Result<i64, StoreError>>, sqlx::Error> {
        let mut tx = self.0.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for request in batch {
            let change = RecordChange::of(&request.kind);
            let (step, output) = match &request.encoded.output {
                Some((step, output)) => (Some(step.as_str()), Some(output.as_str())),
                None => (None, None),
            };
            let seq: Option<i64> = sqlx::query_scalar(APPEND)
                .bind(request.run_id.0)
                .bind(change.status.map(|status| status.as_str()))
                .bind(change.result.as_ref().map(record::json_text))
                .bind(&change.error)
                .bind(change.ends_run.then_some(time))
                .bind(time)
                .bind(request.encoded.event_type)
                .bind(&request.encoded.payload)
                .bind(step)
                .bind(output)
                .bind(NOTIFY_CHANNEL)
                .bind(&request.owner)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match seq {
                Some(seq) => Ok(seq),
                None => {
                    let status: Option<String> = sqlx::query_scalar(sql::STATUS_OF)
                        .bind(request.run_id.0)
                        .fetch_optional(&mut *tx)
                        .await?;
                    Err(sql::append_refused(
                        request.run_id,
                        status,
                        request.owner.as_deref(),
                    ))
                }
            };
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}
