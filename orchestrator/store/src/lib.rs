//! synod run store: where runs and their events live.
//!
//! Layout:
//! - [`store`]: the [`RunStore`] trait, [`RunRecord`], [`Lease`], the binding
//!   outbox ([`OutboxIntent`], [`OutboxEntry`]), [`StoreError`].
//! - [`memory`]: [`MemoryStore`], in memory, lost on exit (tests, `--ephemeral` use).
//! - [`sqlite`]: [`SqliteStore`], the embedded default (one file, WAL).
//! - [`postgres`]: [`PostgresStore`], for several replicas sharing one database.
//! - [`open`]: [`StoreUrl`], choosing a backend from `--database-url`.
//! - `record` (pure: record changes, event encoding, limits), `live`
//!   (subscriptions shared by all backends), [`migrations`] (versioned schema).
//!
//! Every backend passes the same conformance suite (`src/conformance.rs`).

pub mod memory;
pub mod migrations;
pub mod open;
pub mod postgres;
pub mod sqlite;
pub mod store;

mod live;
mod record;
mod sql;

#[cfg(test)]
mod conformance;

pub use memory::MemoryStore;
pub use open::{StoreUrl, open};
pub use postgres::{PostgresConfig, PostgresStore};
pub use record::{INLINE_EVENT_BYTES, MAX_EVENT_BYTES};
pub use sqlite::{SqliteConfig, SqliteStore, Synchronous};
pub use store::{
    EventStream, Lease, OutboxEntry, OutboxIntent, OutboxState, RunRecord, RunStore, StoreError,
};
