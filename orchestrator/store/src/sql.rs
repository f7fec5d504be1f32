//! What both SQL backends share: the statements whose text is the same in
//! SQLite and PostgreSQL (`$n` parameters work in both), row decoding and
//! error wrapping. Each backend binds its own column types: SQLite keeps run
//! ids as text and times as microseconds, PostgreSQL as `uuid` and `timestamptz`.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};
use synod_types::{RunEvent, RunId};

use crate::record::{self, parse_json, parse_outbox_state, parse_status};
use crate::store::{OutboxEntry, RunRecord, StoreError};

/// `$1` run id → status.
pub(crate) const STATUS_OF: &str = "SELECT status FROM runs WHERE run_id = $1";

/// `$1..$11` → a new run, or nothing when the id exists.
pub(crate) const CREATE_RUN: &str = "INSERT INTO runs (run_id, workflow, status, inputs, result, \
     error, last_seq, created_at, updated_at, ended_at, spec) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (run_id) DO NOTHING";

/// `$1` run id → the run's spec (NULL when none was recorded).
pub(crate) const RUN_SPEC: &str = "SELECT spec FROM runs WHERE run_id = $1";

/// `$1` run id, `$2` limit (1) → the run's row.
pub(crate) const GET_RUN: &str = "SELECT run_id, workflow, status, inputs, result, error, \
     last_seq, created_at, ended_at FROM runs WHERE run_id = $1 LIMIT $2";

/// `$1` limit → the newest runs' rows.
pub(crate) const LIST_RUNS: &str = "SELECT run_id, workflow, status, inputs, result, error, \
     last_seq, created_at, ended_at FROM runs ORDER BY run_id DESC LIMIT $1";

/// `$1` limit → the oldest unfinished runs' rows.
pub(crate) const LIST_UNFINISHED: &str = "SELECT run_id, workflow, status, inputs, result, error, \
     last_seq, created_at, ended_at FROM runs WHERE status IN ('pending', 'running') \
     ORDER BY run_id LIMIT $1";

/// Decodes the `spec` column read for `run_id` (`None`: no such run).
pub(crate) fn decode_spec(
    run_id: RunId,
    row: Option<Option<String>>,
) -> Result<Option<serde_json::Value>, StoreError> {
    match row {
        None => Err(StoreError::RunNotFound(run_id)),
        Some(None) => Ok(None),
        Some(Some(text)) => parse_json(run_id, "spec", &text).map(Some),
    }
}

/// `$1` run id, `$2` after seq → event rows, with split-off outputs.
pub(crate) const EVENTS_AFTER: &str = "SELECT e.seq, e.time, e.payload, o.output FROM events e \
     LEFT JOIN step_outputs o ON o.run_id = e.run_id AND o.seq = e.seq \
     WHERE e.run_id = $1 AND e.seq > $2 ORDER BY e.seq";

/// `$1` run id, `$2` owner → the lease dropped, if `$2` held it.
pub(crate) const RELEASE_LEASE: &str = "UPDATE runs SET lease_owner = NULL, \
     lease_expires_at = NULL WHERE run_id = $1 AND lease_owner = $2";

/// `$1` time → finished runs that ended before it deleted (events and
/// outputs follow through `ON DELETE CASCADE`).
pub(crate) const PRUNE: &str = "DELETE FROM runs \
     WHERE status IN ('succeeded', 'failed', 'cancelled') AND ended_at < $1";

/// `$1` run, `$2` binding, `$3` key, `$4` request, `$5` time → the intent
/// recorded, unless the binding already has one.
pub(crate) const RECORD_INTENT: &str = "INSERT INTO outbox (run_id, binding, idempotency_key, \
     request, state, attempts, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5) \
     ON CONFLICT (run_id, binding) DO NOTHING";

/// `$1` run, `$2` binding, `$3` state, `$4` attempts, `$5` outcome, `$6`
/// completion time → a pending entry updated.
pub(crate) const COMPLETE_DELIVERY: &str = "UPDATE outbox SET state = $3, attempts = $4, \
     outcome = $5, completed_at = $6 WHERE run_id = $1 AND binding = $2 AND state = 'pending'";

/// `$1` run → its outbox rows.
pub(crate) const OUTBOX: &str = "SELECT run_id, binding, idempotency_key, request, state, \
     attempts, outcome, created_at, completed_at FROM outbox WHERE run_id = $1 ORDER BY binding";

/// `$1` run, `$2` binding → that outbox row.
pub(crate) const OUTBOX_ENTRY: &str = "SELECT run_id, binding, idempotency_key, request, state, \
     attempts, outcome, created_at, completed_at FROM outbox WHERE run_id = $1 AND binding = $2";

/// A time kept as microseconds since 1970 (SQLite's runs, both backends'
/// token tables); `place` names where it was read in the error.
pub(crate) fn time_from_micros(micros: i64, place: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        StoreError::Backend(format!(
            "timestamp {micros} (microseconds since 1970) in {place} is out of range"
        ))
    })
}

/// Wraps a database error with what the store was doing.
pub(crate) fn backend(doing: &str, error: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("{doing}: {error}"))
}

/// Why an append to `run_id` (by `owner`, when fenced) matched no row: the
/// run does not exist, it ended, or `owner` does not hold its lease.
pub(crate) fn append_refused(
    run_id: RunId,
    status: Option<String>,
    owner: Option<&str>,
) -> StoreError {
    match (status, owner) {
        (None, _) => StoreError::RunNotFound(run_id),
        (Some(status), Some(owner)) if !is_terminal(&status) => StoreError::LeaseNotHeld {
            run_id,
            owner: owner.to_owned(),
        },
        (Some(_), _) => StoreError::RunEnded(run_id),
    }
}

fn is_terminal(status: &str) -> bool {
    parse_status(status).is_ok_and(|status| status.is_terminal())
}

/// `Ok` when the run exists (its `status` was found), else `RunNotFound`.
pub(crate) fn require_run(run_id: RunId, status: Option<String>) -> Result<(), StoreError> {
    match status {
        None => Err(StoreError::RunNotFound(run_id)),
        Some(_) => Ok(()),
    }
}

/// Decodes rows of [`EVENTS_AFTER`]; `time` converts the backend's time column.
pub(crate) fn decode_events<'r, R, T>(
    run_id: RunId,
    rows: &'r [R],
    time: impl Fn(T) -> Result<DateTime<Utc>, StoreError>,
) -> Result<Vec<RunEvent>, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    let column = |error| backend("cannot decode an event row", error);
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get("seq").map_err(column)?;
        let payload: &str = row.try_get("payload").map_err(column)?;
        let output: Option<&str> = row.try_get("output").map_err(column)?;
        events.push(record::decode_event(
            run_id,
            record::seq_from_sql(run_id, seq)?,
            time(row.try_get("time").map_err(column)?)?,
            payload,
            output,
        )?);
    }
    Ok(events)
}

/// Decodes a row of [`GET_RUN`] or [`LIST_RUNS`]; `id` and `time` convert
/// the backend's id and time columns.
pub(crate) fn decode_run<'r, R, I, T>(
    row: &'r R,
    id: impl Fn(I) -> Result<RunId, StoreError>,
    time: impl Fn(T) -> Result<DateTime<Utc>, StoreError>,
) -> Result<RunRecord, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    I: Decode<'r, R::Database> + Type<R::Database>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    let column = |error| backend("cannot decode a run row", error);
    let run_id = id(row.try_get("run_id").map_err(column)?)?;
    let status: String = row.try_get("status").map_err(column)?;
    let inputs: String = row.try_get("inputs").map_err(column)?;
    let result: Option<String> = row.try_get("result").map_err(column)?;
    let last_seq: i64 = row.try_get("last_seq").map_err(column)?;
    let ended_at: Option<T> = row.try_get("ended_at").map_err(column)?;
    Ok(RunRecord {
        run_id,
        workflow: row.try_get("workflow").map_err(column)?,
        status: parse_status(&status)?,
        created_at: time(row.try_get("created_at").map_err(column)?)?,
        ended_at: ended_at.map(&time).transpose()?,
        inputs: parse_json(run_id, "inputs", &inputs)?,
        result: result
            .as_deref()
            .map(|text| parse_json(run_id, "result", text))
            .transpose()?,
        error: row.try_get("error").map_err(column)?,
        last_seq: record::seq_from_sql(run_id, last_seq)?,
    })
}

/// Decodes a row of [`OUTBOX`] or [`OUTBOX_ENTRY`]; `id` and `time` convert
/// the backend's id and time columns.
pub(crate) fn decode_outbox_entry<'r, R, I, T>(
    row: &'r R,
    id: impl Fn(I) -> Result<RunId, StoreError>,
    time: impl Fn(T) -> Result<DateTime<Utc>, StoreError>,
) -> Result<OutboxEntry, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    I: Decode<'r, R::Database> + Type<R::Database>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    let column = |error| backend("cannot decode an outbox row", error);
    let run_id = id(row.try_get("run_id").map_err(column)?)?;
    let request: String = row.try_get("request").map_err(column)?;
    let state: String = row.try_get("state").map_err(column)?;
    let attempts: i32 = row.try_get("attempts").map_err(column)?;
    let outcome: Option<String> = row.try_get("outcome").map_err(column)?;
    let completed_at: Option<T> = row.try_get("completed_at").map_err(column)?;
    Ok(OutboxEntry {
        run_id,
        binding: row.try_get("binding").map_err(column)?,
        idempotency_key: row.try_get("idempotency_key").map_err(column)?,
        request: parse_json(run_id, "outbox request", &request)?,
        state: parse_outbox_state(&state)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        outcome: outcome
            .as_deref()
            .map(|text| parse_json(run_id, "outbox outcome", text))
            .transpose()?,
        created_at: time(row.try_get("created_at").map_err(column)?)?,
        completed_at: completed_at.map(&time).transpose()?,
    })
}
