//! synod run store: where runs and their events live.
//!
//! Layout:
//! - [`store`]: the [`RunStore`] trait, [`RunRecord`], [`StoreError`].
//! - [`memory`]: [`MemoryStore`], the in-memory implementation (durable
//!   SQLite/PostgreSQL implementations come with the durability issue).

pub mod memory;
pub mod store;

pub use memory::MemoryStore;
pub use store::{EventStream, RunRecord, RunStore, StoreError};
