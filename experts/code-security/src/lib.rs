//! Code-security expert: tree-sitter static analysis with intra-procedural
//! taint tracking, findings as SARIF 2.1.0.
//!
//! - [`Scanner`] parses Python, Java, JavaScript and Go with tree-sitter and
//!   runs the taint engine and pattern rules of a [`RuleSet`] (per-language
//!   JSON rule files under `rules/`).
//! - [`to_sarif`] writes a scan as a SARIF 2.1.0 log; [`ScanReport::summary`]
//!   counts findings by CWE, category, severity and language.
//! - [`expert`] serves the `scan` skill on `synod-expert-sdk`.
//! - [`benchmark`] scores scans against OWASP Benchmark-style expected results.

pub mod benchmark;
mod expert;
mod finding;
mod input;
mod lang;
mod path;
mod rules;
mod sarif;
mod scan;
mod taint;

pub use expert::{Config, ExpertError, expert, scan_input_schema, scan_output_schema};
pub use finding::{Finding, FlowSource};
pub use input::{InputError, collect_files, read_source};
pub use lang::Language;
pub use path::PathPattern;
pub use rules::{Category, RuleError, RuleSet};
pub use sarif::{SARIF_SCHEMA, SARIF_VERSION, TOOL_NAME, to_sarif};
pub use scan::{FileOutcome, ScanError, ScanReport, Scanner, SourceFile};
