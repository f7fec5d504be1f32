//! synod evaluation harnesses (never part of `cargo test` timings).
//!
//! - [`bench`]: `synod-eval bench`, the orchestration benchmark against the
//!   LangGraph peer (`../shared/bench`), results in its JSON schema v1.

pub mod bench;
