//! synod evaluation harnesses (never part of `cargo test` timings).
//!
//! - [`bench`]: `synod-eval bench`, the orchestration benchmark against the
//!   LangGraph peer (`../shared/bench`), results in its JSON schema v1.
//! - [`detection`]: `synod-eval detection`, the attack-detection expert's
//!   Sigma engine on the shared datasets (regression set, EVTX-to-MITRE).

pub mod bench;
pub mod detection;
