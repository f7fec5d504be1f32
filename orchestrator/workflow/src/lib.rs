//! synod workflow files: YAML text in, a validated [`Workflow`] or every
//! problem found ([`Diagnostics`], each with file, line and column) out.
//! Pure: no I/O; the caller reads the file and passes its text.
//!
//! Pipeline: [`load`] → `syntax` (YAML to a span-carrying tree) → `config`
//! (the tree read into raw per-section structs; unknown, missing and
//! mistyped fields) → `validate` (names, `uses`, durations, retries,
//! expressions and references, dependency cycles) → [`Workflow`].
//!
//! Layout:
//! - [`workflow`]: [`Workflow`], [`StepSpec`], [`InputSpec`] and run-input checking.
//! - [`diagnostic`]: [`Diagnostic`], [`Diagnostics`] and their rustc-style rendering.
//! - [`codes`]: the table of stable diagnostic codes (`SYN-W…`, `SYN-P…`).
//! - [`source`]: [`Span`], positions in the file.
//! - [`template`]: values with `${{ … }}` holes and their rendering.
//! - [`graph`]: dependency-cycle detection shared with the planner.
//! - [`suggest`]: "did you mean" suggestions and name lists.
//! - `syntax` (private): the only module that knows the YAML library (marked-yaml).
//! - `config`, `validate` (private): the two checking stages.

pub mod codes;
mod config;
pub mod diagnostic;
pub mod graph;
pub mod source;
pub mod suggest;
mod syntax;
pub mod template;
mod validate;
pub mod workflow;

pub use diagnostic::{Diagnostic, Diagnostics, Label, Severity};
pub use source::Span;
pub use template::{Expression, RenderError, ValueTemplate};
pub use workflow::{ExpressionSite, InputSpec, InputType, StepSpans, StepSpec, Workflow};

use config::Reporter;
use source::SourceMap;

/// Loads a workflow from its YAML text. `file` names the file in
/// diagnostics (e.g. `workflows/ioc-triage.yaml`).
///
/// Every problem is reported, not just the first, sorted by position.
/// Warnings alone do not fail the load; they are kept in
/// [`Workflow::warnings`].
pub fn load(source: &str, file: &str) -> Result<Workflow, Diagnostics> {
    let map = SourceMap::new(source);
    let mut reporter = Reporter::new(file, &map);
    let (root, syntax_problems) = syntax::parse(&map, file);
    for problem in syntax_problems {
        reporter.push(problem);
    }
    let mut workflow = None;
    if let Some(root) = &root {
        let raw = config::read_workflow(root, &mut reporter);
        workflow = validate::validate(&raw, &mut reporter);
    }
    let mut diagnostics = Diagnostics(reporter.diagnostics);
    diagnostics.sort();
    match workflow {
        Some(mut workflow) if !diagnostics.has_errors() => {
            workflow.warnings = diagnostics.0;
            Ok(workflow)
        }
        _ => Err(diagnostics),
    }
}

#[cfg(test)]
mod tests;
