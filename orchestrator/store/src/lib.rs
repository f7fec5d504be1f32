//! synod run store: where runs and their events live.
//!
//! Layout:
//! - [`store`]: the [`RunStore`] trait, [`RunRecord`], [`Lease`], the binding
//!   outbox ([`OutboxIntent`], [`OutboxEntry`]), [`StoreError`].
//! - [`memory`]: [`MemoryStore`], in memory, lost on exit.
//! - [`sqlite`]: [`SqliteStore`], the embedded default (one file, WAL).
//! - [`postgres`]: [`PostgresStore`], for several replicas sharing one database.
//! - [`mod@open`]: [`StoreUrl`], choosing a backend from a database url.
//! - [`tokens`]: [`TokenStore`], API tokens (hashed) and the audit log, kept
//!   by every backend next to its runs.
//! - `record` (pure: record changes, event encoding, limits), `live`
//!   (subscriptions shared by all backends), `group_commit` (batched appends
//!   of the SQL backends), `sql` (statements and row decoding both SQL
//!   backends share), [`migrations`] (the versioned schema).
//!
//! Every backend passes the same conformance suite (`src/conformance.rs`).
//!
//! # Durability (fsync policy)
//! An `append` returns only after its event is committed. SQLite runs in WAL
//! mode with `synchronous=FULL` by default: the WAL is fsynced at every
//! commit, so an acknowledged event survives `kill -9`, an OS crash and power
//! loss — the same guarantee as LangGraph's `SqliteSaver` (SQLite's default
//! `FULL`). [`Synchronous::Normal`] (opt-in) survives `kill -9` but may lose
//! the last commits on power loss. PostgreSQL relies on the server's
//! `synchronous_commit` (on by default). Both SQL backends group-commit:
//! appends that arrive while a commit is in flight share the next one, so
//! concurrent runs are not limited to one fsync per event.
//!
//! # Limits
//! An event's JSON may be up to [`MAX_EVENT_BYTES`] (64 MiB); larger ones
//! are refused with [`StoreError::PayloadTooLarge`]. Step outputs whose event
//! exceeds [`INLINE_EVENT_BYTES`] (16 KiB) are stored once in `step_outputs`
//! and referenced by their event row. JSON is stored as text (not `jsonb`)
//! so that `\u0000` in security data is accepted.

pub mod memory;
pub mod migrations;
pub mod open;
pub mod postgres;
pub mod sqlite;
pub mod store;
pub mod tokens;

mod group_commit;
mod live;
mod record;
mod sql;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod crash;

pub use memory::MemoryStore;
pub use open::{StoreUrl, open};
pub use postgres::{PostgresConfig, PostgresStore};
pub use record::{INLINE_EVENT_BYTES, MAX_EVENT_BYTES};
pub use sqlite::{SqliteConfig, SqliteStore, Synchronous};
pub use store::{
    EventStream, Lease, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore, StoreError,
};
pub use tokens::{AuditEntry, MemoryTokenStore, TokenRecord, TokenStore};
