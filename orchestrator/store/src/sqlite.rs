//! [`SqliteStore`]: the embedded default, one SQLite file in WAL mode.
//!
//! Durability: every write is committed before it returns. The default [`Synchronous::Full`] makes SQLite fsync the
//! WAL at every commit, so an acknowledged event survives a process kill
//! *and* an OS crash or power loss (the same as LangGraph's `SqliteSaver`,
//! which leaves SQLite's default `synchronous=FULL`). [`Synchronous::Normal`]
//! fsyncs only at checkpoints: still safe against `kill -9` (the WAL is in the
//! OS page cache), but the last commits can be lost on power loss; it trades
//! that for several times the write throughput.
//!
//! Writes go through a pool of one connection, so writes in this process are
//! serialized without `SQLITE_BUSY` retries; appends are group-committed (one
//! transaction and one fsync for all appends queued meanwhile, each still
//! acknowledged only after commit). Reads use a separate pool and, thanks to
//! WAL, never wait for the writer. Live subscriptions are fed by an
//! in-process broadcast after each commit. Another process writing the same
//! file (e.g. a CLI `cancel`) is safe (SQLite locks, `busy_timeout`), but its
//! events reach this process's subscribers only with their next local notice.
//!
//! Leases use the same rows as PostgreSQL; SQLite serializes writers, so a
//! claim is atomic even across processes on one machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use synod_types::{RunEvent, RunEventKind, RunId};

mod append;

use crate::group_commit::Appender;
use crate::live::{self, LiveHub};
use crate::migrations;
use crate::record;
use crate::sql::{self, backend};
use crate::store::{
    EventStream, Lease, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore, StoreError,
};

/// When SQLite forces commits to disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync the WAL at every commit: committed data survives power loss.
    #[default]
    Full,
    /// fsync at WAL checkpoints only: survives a process crash, may lose the
    /// latest commits on power loss or an OS crash.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; created (with its schema) if missing.
    pub path: PathBuf,
    /// The fsync policy.
    pub synchronous: Synchronous,
    /// Connections for reads (subscriptions, listings).
    pub readers: u32,
    /// How long to wait for a lock held by another process.
    pub busy_timeout: Duration,
}

impl SqliteConfig {
    /// Defaults for `path`: `synchronous=FULL`, 4 readers, 5 s busy timeout.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`RunStore`] in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
    hub: Arc<LiveHub>,
    /// The group-commit writer task.
    appender: Appender,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` with the defaults
    /// of [`SqliteConfig::new`], and migrates its schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(SqliteConfig::new(path.as_ref())).await
    }

    /// Opens the database described by `config` and migrates its schema.
    pub async fn open_with(config: SqliteConfig) -> Result<Self, StoreError> {
        let path = config.path.clone();
        let open_error = |error: sqlx::Error| {
            StoreError::Backend(format!(
                "cannot open the SQLite database `{}`: {error}; check that its directory exists \
                 and is writable",
                path.display()
            ))
        };
        let base = SqliteConnectOptions::new()
            .filename(&config.path)
            .busy_timeout(config.busy_timeout)
            .foreign_keys(true)
            .synchronous(match config.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            });
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(open_error)?;
        migrations::sqlite()
            .run(&writer)
            .await
            .map_err(|error| migrations::error("SQLite", error))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.readers.max(1))
            .connect_with(base)
            .await
            .map_err(open_error)?;
        let hub = Arc::new(LiveHub::default());
        let appender = Appender::spawn(append::SqliteBatchWriter(writer.clone()), Arc::clone(&hub));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: config.path,
                writer,
                reader,
                hub,
                appender,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Closes both pools, waiting for open connections to finish.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.reader.close().await;
    }

    /// `Ok` when the run exists, else `RunNotFound`.
    async fn require_run(&self, run_id: RunId) -> Result<(), StoreError> {
        let status: Option<String> = sqlx::query_scalar(sql::STATUS_OF)
            .bind(run_id.to_string())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(|error| backend("cannot read a run's status", error))?;
        sql::require_run(run_id, status)
    }

    async fn outbox_entry(&self, run_id: RunId, binding: &str) -> Result<OutboxEntry, StoreError> {
        let row = sqlx::query(sql::OUTBOX_ENTRY)
            .bind(run_id.to_string())
            .bind(binding)
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(|error| backend("cannot read an outbox entry", error))?;
        let Some(row) = row else {
            self.require_run(run_id).await?;
            return Err(StoreError::OutboxEntryNotFound {
                run_id,
                binding: binding.to_owned(),
            });
        };
        sql::decode_outbox_entry(&row, |id: String| parse_run_id(&id), time_from_micros)
    }

    async fn query_runs(
        &self,
        sql: &'static str,
        bind: Option<String>,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(bind) = bind {
            query = query.bind(bind);
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.inner.reader)
            .await
            .map_err(|error| backend("cannot read runs", error))?;
        rows.iter()
            .map(|row| sql::decode_run(row, |id: String| parse_run_id(&id), time_from_micros))
            .collect()
    }
}

pub(crate) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

fn time_from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    sql::time_from_micros(micros, "the SQLite database")
}

fn parse_run_id(text: &str) -> Result<RunId, StoreError> {
    text.parse().map_err(|error| {
        StoreError::Backend(format!(
            "run id `{text}` in the SQLite database is not a UUID: {error}"
        ))
    })
}

crate::tokens::sql_token_store!(SqliteStore, inner.writer; inner.reader);

#[async_trait::async_trait]
impl RunStore for SqliteStore {
    fn token_store(&self) -> Option<Arc<dyn crate::tokens::TokenStore>> {
        Some(Arc::new(self.clone()))
    }

    async fn create_run_with_spec(&self, record: RunRecord, spec: Value) -> Result<(), StoreError> {
        let now = micros(record::now());
        let inserted = sqlx::query(sql::CREATE_RUN)
            .bind(record.run_id.to_string())
            .bind(&record.workflow)
            .bind(record.status.as_str())
            .bind(record::json_text(&record.inputs))
            .bind(record.result.as_ref().map(record::json_text))
            .bind(&record.error)
            .bind(record::seq_to_sql(record.last_seq))
            .bind(micros(record::truncate_time(record.created_at)))
            .bind(now)
            .bind(record.ended_at.map(micros))
            .bind((!spec.is_null()).then(|| record::json_text(&spec)))
            .execute(&self.inner.writer)
            .await
            .map_err(|error| backend("cannot create a run", error))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::RunExists(record.run_id));
        }
        Ok(())
    }

    async fn append(&self, run_id: RunId, kind: RunEventKind) -> Result<RunEvent, StoreError> {
        self.inner.appender.append(run_id, None, kind).await
    }

    async fn append_leased(
        &self,
        run_id: RunId,
        owner: &str,
        kind: RunEventKind,
    ) -> Result<RunEvent, StoreError> {
        self.inner
            .appender
            .append(run_id, Some(owner.to_owned()), kind)
            .await
    }

    async fn events(&self, run_id: RunId, after_seq: u64) -> Result<Vec<RunEvent>, StoreError> {
        let rows = sqlx::query(sql::EVENTS_AFTER)
            .bind(run_id.to_string())
            .bind(record::seq_to_sql(after_seq))
            .fetch_all(&self.inner.reader)
            .await
            .map_err(|error| backend("cannot read events", error))?;
        if rows.is_empty() {
            self.require_run(run_id).await?;
        }
        sql::decode_events(run_id, &rows, time_from_micros)
    }

    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError> {
        let receiver = self.inner.hub.receiver(run_id);
        live::follow(self.clone(), run_id, after_seq, receiver).await
    }

    async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let mut runs = self
            .query_runs(sql::GET_RUN, Some(run_id.to_string()), 1)
            .await?;
        Ok(runs.pop())
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(sql::LIST_RUNS, None, record::limit_to_sql(limit))
            .await
    }

    async fn list_unfinished(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(sql::LIST_UNFINISHED, None, record::limit_to_sql(limit))
            .await
    }

    async fn claim_runs(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Lease>, StoreError> {
        let now = record::now();
        let expires_at = record::lease_end(now, lease);
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE runs SET lease_owner = $1, lease_expires_at = $2 WHERE run_id IN ( \
               SELECT run_id FROM runs WHERE status IN ('pending', 'running') \
               AND (lease_owner IS NULL OR lease_expires_at < $3) ORDER BY run_id LIMIT $4) \
             RETURNING run_id",
        )
        .bind(owner)
        .bind(micros(expires_at))
        .bind(micros(now))
        .bind(record::limit_to_sql(limit))
        .fetch_all(&self.inner.writer)
        .await
        .map_err(|error| backend("cannot claim runs", error))?;
        let mut leases = Vec::with_capacity(ids.len());
        for id in ids {
            leases.push(Lease {
                run_id: parse_run_id(&id)?,
                owner: owner.to_owned(),
                expires_at,
            });
        }
        leases.sort_by_key(|lease| lease.run_id);
        Ok(leases)
    }

    async fn claim_run(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = record::now();
        let expires_at = record::lease_end(now, lease);
        let claimed = sqlx::query(
            "UPDATE runs SET lease_owner = $1, lease_expires_at = $2 WHERE run_id = $3 \
             AND status IN ('pending', 'running') \
             AND (lease_owner IS NULL OR lease_expires_at < $4 OR lease_owner = $1)",
        )
        .bind(owner)
        .bind(micros(expires_at))
        .bind(run_id.to_string())
        .bind(micros(now))
        .execute(&self.inner.writer)
        .await
        .map_err(|error| backend("cannot claim a run", error))?;
        if claimed.rows_affected() == 0 {
            self.require_run(run_id).await?;
            return Ok(None);
        }
        Ok(Some(Lease {
            run_id,
            owner: owner.to_owned(),
            expires_at,
        }))
    }

    async fn renew_lease(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let expires_at = record::lease_end(record::now(), lease);
        let renewed = sqlx::query(
            "UPDATE runs SET lease_expires_at = $3 WHERE run_id = $1 AND lease_owner = $2",
        )
        .bind(run_id.to_string())
        .bind(owner)
        .bind(micros(expires_at))
        .execute(&self.inner.writer)
        .await
        .map_err(|error| backend("cannot renew a lease", error))?;
        if renewed.rows_affected() == 1 {
            return Ok(Some(Lease {
                run_id,
                owner: owner.to_owned(),
                expires_at,
            }));
        }
        self.require_run(run_id).await?;
        Ok(None)
    }

    async fn release_lease(&self, run_id: RunId, owner: &str) -> Result<bool, StoreError> {
        let released = sqlx::query(sql::RELEASE_LEASE)
            .bind(run_id.to_string())
            .bind(owner)
            .execute(&self.inner.writer)
            .await
            .map_err(|error| backend("cannot release a lease", error))?;
        if released.rows_affected() == 1 {
            return Ok(true);
        }
        self.require_run(run_id).await?;
        Ok(false)
    }

    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let pruned = sqlx::query(sql::PRUNE)
            .bind(micros(ended_before))
            .execute(&self.inner.writer)
            .await
            .map_err(|error| backend("cannot prune runs", error))?;
        Ok(pruned.rows_affected())
    }

    async fn record_intent(&self, intent: OutboxIntent) -> Result<OutboxEntry, StoreError> {
        self.require_run(intent.run_id).await?;
        sqlx::query(sql::RECORD_INTENT)
            .bind(intent.run_id.to_string())
            .bind(&intent.binding)
            .bind(&intent.idempotency_key)
            .bind(record::json_text(&intent.request))
            .bind(micros(record::now()))
            .execute(&self.inner.writer)
            .await
            .map_err(|error| backend("cannot record a binding intent", error))?;
        self.outbox_entry(intent.run_id, &intent.binding).await
    }

    async fn complete_delivery(
        &self,
        run_id: RunId,
        binding: &str,
        state: OutboxState,
        attempts: u32,
        outcome: Value,
    ) -> Result<OutboxEntry, StoreError> {
        sqlx::query(sql::COMPLETE_DELIVERY)
            .bind(run_id.to_string())
            .bind(binding)
            .bind(state.as_str())
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
            .bind(record::json_text(&outcome))
            .bind(state.is_final().then(|| micros(record::now())))
            .execute(&self.inner.writer)
            .await
            .map_err(|error| backend("cannot record a binding delivery", error))?;
        self.outbox_entry(run_id, binding).await
    }

    async fn run_spec(&self, run_id: RunId) -> Result<Option<Value>, StoreError> {
        let row: Option<Option<String>> = sqlx::query_scalar(sql::RUN_SPEC)
            .bind(run_id.to_string())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(|error| backend("cannot read a run's spec", error))?;
        sql::decode_spec(run_id, row)
    }

    async fn outbox(&self, run_id: RunId) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(sql::OUTBOX)
            .bind(run_id.to_string())
            .fetch_all(&self.inner.reader)
            .await
            .map_err(|error| backend("cannot read the outbox", error))?;
        if rows.is_empty() {
            self.require_run(run_id).await?;
        }
        rows.iter()
            .map(|row| {
                sql::decode_outbox_entry(row, |id: String| parse_run_id(&id), time_from_micros)
            })
            .collect()
    }
}
