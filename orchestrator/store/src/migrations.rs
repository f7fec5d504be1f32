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
];

/// The schema version this build writes (the highest migration).
pub const SCHEMA_VERSION: i64 = 2;

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
}
