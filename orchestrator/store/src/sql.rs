//! Helpers both SQL backends share: error wrapping and turning columns into
//! a [`RunRecord`].

use chrono::{DateTime, Utc};
use synod_types::RunId;

use crate::record::{self, parse_json, parse_status};
use crate::store::{RunRecord, StoreError};

/// Wraps a database error with what the store was doing.
pub(crate) fn backend(doing: &str, error: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("{doing}: {error}"))
}

/// The columns of a `runs` row, decoded by each backend from its own types.
#[derive(Debug)]
pub(crate) struct RunColumns {
    pub(crate) run_id: RunId,
    pub(crate) workflow: String,
    pub(crate) status: String,
    pub(crate) inputs: String,
    pub(crate) result: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) last_seq: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
}

impl RunColumns {
    /// The record these columns hold.
    pub(crate) fn into_record(self) -> Result<RunRecord, StoreError> {
        let run_id = self.run_id;
        Ok(RunRecord {
            run_id,
            workflow: self.workflow,
            status: parse_status(&self.status)?,
            created_at: self.created_at,
            ended_at: self.ended_at,
            inputs: parse_json(run_id, "inputs", &self.inputs)?,
            result: self
                .result
                .as_deref()
                .map(|text| parse_json(run_id, "result", text))
                .transpose()?,
            error: self.error,
            last_seq: record::seq_from_sql(run_id, self.last_seq)?,
        })
    }
}

/// Why an update of `run_id` matched no row: it does not exist, or it ended.
pub(crate) fn missing_or_ended(run_id: RunId, status: Option<String>) -> StoreError {
    match status {
        None => StoreError::RunNotFound(run_id),
        Some(_) => StoreError::RunEnded(run_id),
    }
}
