//! synod evaluation harnesses (never part of `cargo test` timings).
//!
//! - [`bench`]: `synod-eval bench`, the orchestration benchmark against the
//!   LangGraph peer (`../shared/bench`), results in its JSON schema v1.
//! - [`detection`]: `synod-eval detection`, the attack-detection expert's
//!   Sigma engine on the shared datasets (regression set, EVTX-to-MITRE).
//! - [`code`]: `synod-eval code`, the code-security expert scored the OWASP
//!   Benchmark way (per-category TPR/FPR) on a benchmark folder and CSV.
//! - [`data_protection`]: `synod-eval data-protection`, PII and secret
//!   detection on the Nosey Parker and Presidio sets, plus throughput.
//! - [`load`] / [`faults`]: `synod-eval load` (10,000 concurrent diamond6
//!   runs against `synod serve`) and `synod-eval faults` (faulty experts).
//! - [`pipeline`]: `synod-eval pipeline`, the alert-triage workflow end to
//!   end through the orchestrator on labelled attack recordings.

use std::path::Path;

use anyhow::Context as _;

pub mod bench;
pub mod code;
pub mod data_protection;
pub mod detection;
pub mod faults;
pub mod load;
pub mod pipeline;

/// Writes `doc` as pretty JSON to `path`, creating its folder.
pub fn write_json(path: &Path, doc: &serde_json::Value) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(doc)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}
