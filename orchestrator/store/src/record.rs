//! Pure logic every backend shares: how an event changes its run's record,
//! how events are encoded for storage, time precision and lease arithmetic.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;
use synod_types::{RunEvent, RunEventKind, RunId, RunStatus};

use crate::store::{OutboxState, RunRecord, StoreError};

/// Largest JSON payload one event may have, in bytes (64 MiB).
///
/// Both databases could hold more (SQLite's default `SQLITE_MAX_LENGTH` is
/// 1 GB, a PostgreSQL `text` value 1 GB), but an event is read into memory
/// whole and fanned out to subscribers, so the store refuses larger ones with
/// [`StoreError::PayloadTooLarge`] rather than exhausting memory later.
pub const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// A step output whose event is larger than this (in bytes of JSON) is
/// stored once in the `step_outputs` table and referenced by its event row,
/// which keeps the `events` table small for scans and replays of other runs.
pub const INLINE_EVENT_BYTES: usize = 16 * 1024;

/// How an event changes its run's record.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RecordChange {
    /// The new status, if it changes.
    pub(crate) status: Option<RunStatus>,
    /// The result, once succeeded.
    pub(crate) result: Option<Value>,
    /// The error summary, once failed or cancelled.
    pub(crate) error: Option<String>,
    /// True when the event ends the run (its time becomes `ended_at`).
    pub(crate) ends_run: bool,
}

impl RecordChange {
    /// The change `kind` makes.
    pub(crate) fn of(kind: &RunEventKind) -> Self {
        match kind {
            RunEventKind::RunStarted { .. } => RecordChange {
                status: Some(RunStatus::Running),
                ..RecordChange::default()
            },
            RunEventKind::RunSucceeded { result } => RecordChange {
                status: Some(RunStatus::Succeeded),
                result: Some(result.clone()),
                error: None,
                ends_run: true,
            },
            RunEventKind::RunFailed { error, .. } => RecordChange {
                status: Some(RunStatus::Failed),
                result: None,
                error: Some(error.clone()),
                ends_run: true,
            },
            RunEventKind::RunCancelled { reason } => RecordChange {
                status: Some(RunStatus::Cancelled),
                result: None,
                error: Some(format!("cancelled: {reason}")),
                ends_run: true,
            },
            _ => RecordChange::default(),
        }
    }
}

/// Applies `event` to an in-memory record.
pub(crate) fn apply_to_record(record: &mut RunRecord, event: &RunEvent) {
    record.last_seq = event.seq;
    let change = RecordChange::of(&event.kind);
    if let Some(status) = change.status {
        record.status = status;
    }
    if change.result.is_some() {
        record.result = change.result;
    }
    if change.error.is_some() {
        record.error = change.error;
    }
    if change.ends_run {
        record.ended_at = Some(event.time);
    }
}

/// Parses a status as stored (`RunStatus::as_str`).
pub(crate) fn parse_status(text: &str) -> Result<RunStatus, StoreError> {
    Ok(match text {
        "pending" => RunStatus::Pending,
        "running" => RunStatus::Running,
        "succeeded" => RunStatus::Succeeded,
        "failed" => RunStatus::Failed,
        "cancelled" => RunStatus::Cancelled,
        other => {
            return Err(StoreError::Backend(format!(
                "unknown run status `{other}` in the database; expected pending, running, \
                 succeeded, failed or cancelled (was the database written by a newer synod?)"
            )));
        }
    })
}

/// Parses an outbox state as stored (`OutboxState::as_str`).
pub(crate) fn parse_outbox_state(text: &str) -> Result<OutboxState, StoreError> {
    Ok(match text {
        "pending" => OutboxState::Pending,
        "delivered" => OutboxState::Delivered,
        "failed" => OutboxState::Failed,
        other => {
            return Err(StoreError::Backend(format!(
                "unknown outbox state `{other}` in the database; expected pending, delivered or \
                 failed (was the database written by a newer synod?)"
            )));
        }
    })
}

/// The current time at the precision both databases keep (microseconds), so
/// an event read back equals the event `append` returned.
pub(crate) fn now() -> DateTime<Utc> {
    truncate_time(Utc::now())
}

/// `time` truncated to microseconds.
pub(crate) fn truncate_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(time)
}

/// `from + lease`, saturating.
pub(crate) fn lease_end(from: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    let delta = TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
    truncate_time(
        from.checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// `lease` in whole milliseconds, saturating (for SQL interval arithmetic).
pub(crate) fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// An event as stored: its JSON payload and, when large, its step output
/// split off to be stored once in `step_outputs`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedEvent {
    /// The CloudEvents type, e.g. `synod.step.succeeded` (for queries by hand).
    pub(crate) event_type: &'static str,
    /// The [`RunEventKind`] JSON (with `output: null` when split off).
    pub(crate) payload: String,
    /// The step and its output JSON, when split off.
    pub(crate) output: Option<(String, String)>,
}

/// Encodes `kind` for storage, enforcing [`MAX_EVENT_BYTES`] and splitting
/// large step outputs off ([`INLINE_EVENT_BYTES`]).
pub(crate) fn encode_event(run_id: RunId, kind: &RunEventKind) -> Result<EncodedEvent, StoreError> {
    let payload = serde_json::to_string(kind).map_err(|error| {
        StoreError::Backend(format!(
            "cannot encode an event of run `{run_id}` as JSON: {error}"
        ))
    })?;
    if payload.len() > MAX_EVENT_BYTES {
        return Err(StoreError::PayloadTooLarge {
            run_id,
            size: payload.len(),
            limit: MAX_EVENT_BYTES,
        });
    }
    let event_type = kind.cloud_event_type();
    let step = match kind {
        RunEventKind::StepSucceeded { step, .. } if payload.len() > INLINE_EVENT_BYTES => step,
        _ => {
            return Ok(EncodedEvent {
                event_type,
                payload,
                output: None,
            });
        }
    };
    let mut value: Value = serde_json::from_str(&payload).map_err(|error| {
        StoreError::Backend(format!(
            "cannot re-read the event of run `{run_id}`: {error}"
        ))
    })?;
    let output = value
        .get_mut("output")
        .map(Value::take)
        .unwrap_or(Value::Null);
    Ok(EncodedEvent {
        event_type,
        payload: value.to_string(),
        output: Some((step.as_str().to_owned(), output.to_string())),
    })
}

/// Decodes a stored event; `output` is the split-off step output, if any.
pub(crate) fn decode_event(
    run_id: RunId,
    seq: u64,
    time: DateTime<Utc>,
    payload: &str,
    output: Option<&str>,
) -> Result<RunEvent, StoreError> {
    let corrupt = |error: serde_json::Error| {
        StoreError::Backend(format!(
            "event {seq} of run `{run_id}` in the database is not a valid synod event: {error}"
        ))
    };
    let kind: RunEventKind = match output {
        None => serde_json::from_str(payload).map_err(corrupt)?,
        Some(output) => {
            let mut value: Value = serde_json::from_str(payload).map_err(corrupt)?;
            let output: Value = serde_json::from_str(output).map_err(corrupt)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("output".to_owned(), output);
            }
            serde_json::from_value(value).map_err(corrupt)?
        }
    };
    Ok(RunEvent {
        run_id,
        seq,
        time,
        kind,
    })
}

/// Encodes a JSON value for a text column.
pub(crate) fn json_text(value: &Value) -> String {
    value.to_string()
}

/// Decodes a JSON text column; `what` names it in the error.
pub(crate) fn parse_json(run_id: RunId, what: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|error| {
        StoreError::Backend(format!(
            "the {what} of run `{run_id}` in the database is not valid JSON: {error}"
        ))
    })
}

/// Converts a stored sequence number (signed in SQL) to `u64`.
pub(crate) fn seq_from_sql(run_id: RunId, seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| {
        StoreError::Backend(format!(
            "run `{run_id}` has a negative sequence number {seq} in the database"
        ))
    })
}

/// Converts a sequence number to SQL's signed integer, saturating.
pub(crate) fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Converts a row limit to SQL's signed integer, saturating.
pub(crate) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use synod_types::StepId;

    fn succeeded(output: Value) -> RunEventKind {
        RunEventKind::StepSucceeded {
            step: StepId::new("detect"),
            attempt: 1,
            output,
            confidence: 0.5,
            duration_ms: 3,
            instance: "a".into(),
        }
    }

    #[test]
    fn small_outputs_stay_inline_and_large_ones_are_split_off_and_restored() {
        let run_id = RunId::new();
        let small = succeeded(json!({"hits": 1}));
        let encoded = encode_event(run_id, &small).unwrap();
        assert!(encoded.output.is_none());
        assert_eq!(encoded.event_type, "synod.step.succeeded");

        let large = succeeded(json!({"blob": "x".repeat(INLINE_EVENT_BYTES)}));
        let encoded = encode_event(run_id, &large).unwrap();
        let (step, output) = encoded.output.as_ref().unwrap();
        assert_eq!(step, "detect");
        assert!(encoded.payload.len() < 1024, "{}", encoded.payload);
        let time = now();
        let decoded = decode_event(run_id, 7, time, &encoded.payload, Some(output)).unwrap();
        assert_eq!(decoded.kind, large);
        assert_eq!(decoded.seq, 7);
    }

    #[test]
    fn oversized_events_are_refused_with_the_limit() {
        let run_id = RunId::new();
        let huge = succeeded(json!("y".repeat(MAX_EVENT_BYTES)));
        match encode_event(run_id, &huge) {
            Err(StoreError::PayloadTooLarge { size, limit, .. }) => {
                assert!(size > limit);
                assert_eq!(limit, MAX_EVENT_BYTES);
            }
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }
    }

    #[test]
    fn terminal_events_end_the_record() {
        let mut record = RunRecord::pending(RunId::new(), "wf", json!({}));
        let event = RunEvent {
            run_id: record.run_id,
            seq: 4,
            time: now(),
            kind: RunEventKind::RunCancelled {
                reason: "user".into(),
            },
        };
        apply_to_record(&mut record, &event);
        assert_eq!(record.status, RunStatus::Cancelled);
        assert_eq!(record.error.as_deref(), Some("cancelled: user"));
        assert_eq!(record.ended_at, Some(event.time));
        assert_eq!(record.last_seq, 4);
        for status in ["pending", "running", "succeeded", "failed", "cancelled"] {
            assert_eq!(parse_status(status).unwrap().as_str(), status);
        }
        assert!(parse_status("paused").is_err());
    }
}
