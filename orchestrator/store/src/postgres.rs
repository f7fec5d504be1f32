//! [`PostgresStore`]: runs in PostgreSQL, shared by several orchestrator
//! replicas.
//!
//! - `append` is one statement (data-modifying CTEs, see `postgres/append.rs`):
//!   bump the run's `last_seq` under its row lock, insert the event (and a
//!   large output), and `pg_notify`. Appends are group-committed (all queued
//!   appends in one transaction, see `group_commit`) and acknowledged after
//!   commit, which PostgreSQL makes durable (`synchronous_commit=on`, the
//!   default, flushes the WAL).
//! - Live subscriptions: appends in this process are broadcast in-process
//!   after commit; every replica also `LISTEN`s on [`NOTIFY_CHANNEL`] (payload
//!   `<run id>:<seq>`, sent at commit) and turns a notice about another
//!   replica's append into a catch-up read from the table. If the listening
//!   connection drops, every subscriber re-reads, so nothing is lost.
//! - Leases: `claim_runs` picks claimable rows with `FOR UPDATE SKIP LOCKED`,
//!   so concurrent replicas never claim the same run; lease times use the
//!   database clock, so replicas' clocks need not agree.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row};
use synod_types::{RunEvent, RunEventKind, RunId};
use tokio::task::JoinHandle;
use uuid::Uuid;

mod append;

use crate::group_commit::Appender;
use crate::live::{self, LiveHub, Notice};
use crate::migrations;
use crate::record;
use crate::sql::{self, backend};
use crate::store::{
    EventStream, Lease, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore, StoreError,
};

/// The `LISTEN`/`NOTIFY` channel carrying `<run id>:<seq>` after each append.
pub const NOTIFY_CHANNEL: &str = "synod_events";

/// How to connect a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// A schema to keep synod's tables in (created if missing; default: the
    /// connection's `search_path`, normally `public`). Lowercase letters,
    /// digits and `_`.
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
}

impl PostgresConfig {
    /// Defaults for `url`: no schema, 10 connections.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: None,
            max_connections: 10,
        }
    }
}

/// A [`RunStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    hub: Arc<LiveHub>,
    /// The group-commit writer task.
    appender: Appender,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Checks a schema name, so it can be spliced into SQL safely.
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let valid_start = schema
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_');
    let valid_rest = schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid_start && valid_rest && schema.len() <= 63 {
        return Ok(());
    }
    Err(StoreError::Backend(format!(
        "PostgreSQL schema name `{schema}` is not allowed; use 1 to 63 lowercase letters, digits \
         and `_`, not starting with a digit"
    )))
}

impl PostgresStore {
    /// Drops `schema` and everything in it (e.g. after a test that used
    /// [`PostgresConfig::schema`]).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        check_schema(schema)?;
        let pool = sqlx::PgPool::connect(url)
            .await
            .map_err(|error| backend("cannot connect to PostgreSQL", error))?;
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&pool)
        .await
        .map_err(|error| backend("cannot drop a schema", error));
        pool.close().await;
        dropped.map(|_| ())
    }

    /// Connects to `url` with the defaults of [`PostgresConfig::new`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects, migrates the schema and starts listening for other
    /// replicas' appends.
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, StoreError> {
        let connect_error = |error: sqlx::Error| {
            StoreError::Backend(format!(
                "cannot connect to PostgreSQL (database url with its password hidden: `{}`): \
                 {error}; check that the server is running and the url is right",
                redact_url(&config.url)
            ))
        };
        let mut options = PgConnectOptions::from_str(&config.url).map_err(connect_error)?;
        if let Some(schema) = &config.schema {
            check_schema(schema)?;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(2))
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        if let Some(schema) = &config.schema {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&pool)
            .await
            .map_err(|error| backend("cannot create the schema", error))?;
        }
        migrations::postgres()
            .run(&pool)
            .await
            .map_err(|error| migrations::error("PostgreSQL", error))?;
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(connect_error)?;
        listener
            .listen(NOTIFY_CHANNEL)
            .await
            .map_err(|error| backend("cannot LISTEN for other replicas' events", error))?;
        let hub = Arc::new(LiveHub::default());
        let listener = tokio::spawn(forward_notifications(listener, Arc::clone(&hub)));
        let appender = Appender::spawn(append::PgBatchWriter(pool.clone()), Arc::clone(&hub));
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                hub,
                appender,
                listener,
            }),
        })
    }

    /// The connection pool (for administration and tests).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// `Ok` when the run exists, else `RunNotFound`.
    async fn require_run(&self, run_id: RunId) -> Result<(), StoreError> {
        let status: Option<String> = sqlx::query_scalar(sql::STATUS_OF)
            .bind(run_id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot read a run's status", error))?;
        sql::require_run(run_id, status)
    }

    async fn outbox_entry(&self, run_id: RunId, binding: &str) -> Result<OutboxEntry, StoreError> {
        let row = sqlx::query(sql::OUTBOX_ENTRY)
            .bind(run_id.0)
            .bind(binding)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot read an outbox entry", error))?;
        let Some(row) = row else {
            self.require_run(run_id).await?;
            return Err(StoreError::OutboxEntryNotFound {
                run_id,
                binding: binding.to_owned(),
            });
        };
        sql::decode_outbox_entry(&row, |id: Uuid| Ok(RunId(id)), Ok)
    }

    async fn query_runs(
        &self,
        sql: &'static str,
        run_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(run_id) = run_id {
            query = query.bind(run_id);
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot read runs", error))?;
        rows.iter()
            .map(|row| sql::decode_run(row, |id: Uuid| Ok(RunId(id)), Ok))
            .collect()
    }
}

/// `url` without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Turns `NOTIFY`s into hub notices until the store is dropped.
async fn forward_notifications(mut listener: PgListener, hub: Arc<LiveHub>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let parsed = notification
                    .payload()
                    .split_once(':')
                    .and_then(|(run_id, seq)| Some((run_id.parse().ok()?, seq.parse().ok()?)));
                match parsed {
                    Some((run_id, seq)) => hub.publish(run_id, Notice::Committed(seq)),
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "ignoring a malformed notification on `{NOTIFY_CHANNEL}`"
                    ),
                }
            }
            // The connection dropped and was re-established (and LISTENs
            // again): notifications in between are lost, so every subscriber
            // re-reads the store.
            Ok(None) => hub.resync_all(),
            Err(error) => {
                tracing::warn!(%error, "lost the PostgreSQL notification connection; reconnecting");
                reconnect(&mut listener).await;
                hub.resync_all();
            }
        }
    }
}

/// Retries until the listener is connected and listening again (a query
/// through it reconnects and re-issues its LISTENs).
async fn reconnect(listener: &mut PgListener) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match sqlx::query("SELECT 1").execute(&mut *listener).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot reconnect to PostgreSQL for notifications")
            }
        }
    }
}

fn lease_from_row(row: &PgRow, owner: &str) -> Result<Lease, StoreError> {
    let column = |error| backend("cannot decode a lease", error);
    Ok(Lease {
        run_id: RunId(row.try_get("run_id").map_err(column)?),
        owner: owner.to_owned(),
        expires_at: row.try_get("lease_expires_at").map_err(column)?,
    })
}

crate::tokens::sql_token_store!(PostgresStore, inner.pool; inner.pool);

#[async_trait::async_trait]
impl RunStore for PostgresStore {
    fn token_store(&self) -> Option<Arc<dyn crate::tokens::TokenStore>> {
        Some(Arc::new(self.clone()))
    }

    async fn create_run_with_spec(&self, record: RunRecord, spec: Value) -> Result<(), StoreError> {
        let inserted = sqlx::query(sql::CREATE_RUN)
            .bind(record.run_id.0)
            .bind(&record.workflow)
            .bind(record.status.as_str())
            .bind(record::json_text(&record.inputs))
            .bind(record.result.as_ref().map(record::json_text))
            .bind(&record.error)
            .bind(record::seq_to_sql(record.last_seq))
            .bind(record::truncate_time(record.created_at))
            .bind(record::now())
            .bind(record.ended_at)
            .bind((!spec.is_null()).then(|| record::json_text(&spec)))
            .execute(&self.inner.pool)
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
            .bind(run_id.0)
            .bind(record::seq_to_sql(after_seq))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot read events", error))?;
        if rows.is_empty() {
            self.require_run(run_id).await?;
        }
        sql::decode_events(run_id, &rows, Ok)
    }

    async fn subscribe(&self, run_id: RunId, after_seq: u64) -> Result<EventStream, StoreError> {
        let receiver = self.inner.hub.receiver(run_id);
        live::follow(self.clone(), run_id, after_seq, receiver).await
    }

    async fn get_run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let mut runs = self.query_runs(sql::GET_RUN, Some(run_id.0), 1).await?;
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
        let rows = sqlx::query(
            "UPDATE runs r SET lease_owner = $1, \
               lease_expires_at = now() + $2 * interval '1 millisecond' \
             FROM (SELECT run_id FROM runs WHERE status IN ('pending', 'running') \
                   AND (lease_owner IS NULL OR lease_expires_at < now()) \
                   ORDER BY run_id LIMIT $3 FOR UPDATE SKIP LOCKED) claimable \
             WHERE r.run_id = claimable.run_id \
             RETURNING r.run_id, r.lease_expires_at",
        )
        .bind(owner)
        .bind(record::lease_millis(lease))
        .bind(record::limit_to_sql(limit))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|error| backend("cannot claim runs", error))?;
        let mut leases = rows
            .iter()
            .map(|row| lease_from_row(row, owner))
            .collect::<Result<Vec<_>, _>>()?;
        leases.sort_by_key(|lease| lease.run_id);
        Ok(leases)
    }

    async fn claim_run(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query(
            "UPDATE runs SET lease_owner = $2, \
               lease_expires_at = now() + $3 * interval '1 millisecond' \
             WHERE run_id = $1 AND status IN ('pending', 'running') \
               AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = $2) \
             RETURNING run_id, lease_expires_at",
        )
        .bind(run_id.0)
        .bind(owner)
        .bind(record::lease_millis(lease))
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|error| backend("cannot claim a run", error))?;
        match row {
            Some(row) => Ok(Some(lease_from_row(&row, owner)?)),
            None => {
                self.require_run(run_id).await?;
                Ok(None)
            }
        }
    }

    async fn renew_lease(
        &self,
        run_id: RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query(
            "UPDATE runs SET lease_expires_at = now() + $3 * interval '1 millisecond' \
             WHERE run_id = $1 AND lease_owner = $2 RETURNING run_id, lease_expires_at",
        )
        .bind(run_id.0)
        .bind(owner)
        .bind(record::lease_millis(lease))
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|error| backend("cannot renew a lease", error))?;
        match row {
            Some(row) => Ok(Some(lease_from_row(&row, owner)?)),
            None => {
                self.require_run(run_id).await?;
                Ok(None)
            }
        }
    }

    async fn release_lease(&self, run_id: RunId, owner: &str) -> Result<bool, StoreError> {
        let released = sqlx::query(sql::RELEASE_LEASE)
            .bind(run_id.0)
            .bind(owner)
            .execute(&self.inner.pool)
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
            .bind(ended_before)
            .execute(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot prune runs", error))?;
        Ok(pruned.rows_affected())
    }

    async fn record_intent(&self, intent: OutboxIntent) -> Result<OutboxEntry, StoreError> {
        self.require_run(intent.run_id).await?;
        sqlx::query(sql::RECORD_INTENT)
            .bind(intent.run_id.0)
            .bind(&intent.binding)
            .bind(&intent.idempotency_key)
            .bind(record::json_text(&intent.request))
            .bind(record::now())
            .execute(&self.inner.pool)
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
            .bind(run_id.0)
            .bind(binding)
            .bind(state.as_str())
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
            .bind(record::json_text(&outcome))
            .bind(state.is_final().then(record::now))
            .execute(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot record a binding delivery", error))?;
        self.outbox_entry(run_id, binding).await
    }

    async fn run_spec(&self, run_id: RunId) -> Result<Option<Value>, StoreError> {
        let row: Option<Option<String>> = sqlx::query_scalar(sql::RUN_SPEC)
            .bind(run_id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot read a run's spec", error))?;
        sql::decode_spec(run_id, row)
    }

    async fn outbox(&self, run_id: RunId) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(sql::OUTBOX)
            .bind(run_id.0)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|error| backend("cannot read the outbox", error))?;
        if rows.is_empty() {
            self.require_run(run_id).await?;
        }
        rows.iter()
            .map(|row| sql::decode_outbox_entry(row, |id: Uuid| Ok(RunId(id)), Ok))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked_and_passwords_hidden() {
        assert!(check_schema("synod_test_01").is_ok());
        for bad in ["", "1abc", "Caps", "a;drop", &"x".repeat(64)] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
        assert_eq!(
            redact_url("postgres://synod:secret@db:5432/synod"),
            "postgres://synod:***@db:5432/synod"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}
