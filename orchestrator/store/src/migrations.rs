//! The schema, versioned: SQL files embedded in the binary, applied in order
//! on open by `sqlx`'s migrator, which records each applied version (with a
//! checksum) in the `_sqlx_migrations` table and refuses a database whose
//! applied migrations differ from these.
//!
//! To change the schema, add a file with the next version to both
//! `migrations/sqlite/` and `migrations/postgres/` and list it here; never
//! edit an applied one.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::store::StoreError;

/// `(version, description, SQL)` of each SQLite migration.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "runs, events, step outputs",
        include_str!("../migrations/sqlite/0001_runs_events.sql"),
    ),
    (
        2,
        "binding outbox",
        include_str!("../migrations/sqlite/0002_outbox.sql"),
    ),
    (
        3,
        "run specs for resuming",
        include_str!("../migrations/sqlite/0003_run_specs.sql"),
    ),
    (
        4,
        "api tokens and audit log",
        include_str!("../migrations/sqlite/0004_tokens_audit.sql"),
    ),
];

/// `(version, description, SQL)` of each PostgreSQL migration.
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "runs, events, step outputs",
        include_str!("../migrations/postgres/0001_runs_events.sql"),
    ),
    (
        2,
        "binding outbox",
        include_str!("../migrations/postgres/0002_outbox.sql"),
    ),
    (
        3,
        "run specs for resuming",
        include_str!("../migrations/postgres/0003_run_specs.sql"),
    ),
    (
        4,
        "api tokens and audit log",
        include_str!("../migrations/postgres/0004_tokens_audit.sql"),
    ),
];

/// The schema version this build writes (the highest migration).
pub const SCHEMA_VERSION: i64 = 4;

fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The SQLite migrator.
pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// The PostgreSQL migrator.
pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

/// Wraps a migration failure with what to do about it.
pub(crate) fn error(database: &str, error: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(format!(
        "cannot migrate the {database} schema to version {SCHEMA_VERSION}: {error}; \
         if the database was created by a newer synod, upgrade synod, otherwise restore a backup"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_versions_ending_at_schema_version() {
        let versions = |list: &[(i64, &str, &str)]| list.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
        assert_eq!(versions(SQLITE).last(), Some(&SCHEMA_VERSION));
        assert_eq!(sqlite().iter().count(), SQLITE.len());
    }

    #[tokio::test]
    async fn an_older_sqlite_file_is_upgraded_on_open_and_a_newer_one_refused() {
        use serde_json::json;
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

        use crate::{OutboxIntent, RunStore, SqliteStore};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // A file written by a synod that knew only schema version 1.
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        migrator(&SQLITE[..1]).run(&pool).await.unwrap();
        let run_id = synod_types::RunId::new();
        sqlx::query(
            "INSERT INTO runs (run_id, workflow, status, inputs, created_at, updated_at) \
             VALUES ($1, 'triage', 'running', '{}', 0, 0)",
        )
        .bind(run_id.to_string())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let record = store.get_run(run_id).await.unwrap().unwrap();
        assert_eq!(record.workflow, "triage");
        let intent = OutboxIntent {
            run_id,
            binding: "ticket".into(),
            idempotency_key: "k".into(),
            request: json!({}),
        };
        store.record_intent(intent).await.unwrap(); // table of version 2
        store.close().await;

        // A file from a newer synod (a version this build does not know) is refused.
        let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (99, 'from the future', 1, X'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let error = SqliteStore::open(&path).await.unwrap_err().to_string();
        assert!(
            error.contains("cannot migrate the SQLite schema"),
            "{error}"
        );
        assert!(error.contains("upgrade synod"), "{error}");
    }
}
