//! synod workflow files: YAML text in, a validated [`Workflow`] or every
//! problem found ([`Diagnostics`], each with file, line and column) out.
//! Pure: no I/O; the caller reads the file and passes its text.
//!
//! Pipeline: [`load`] → `syntax` (YAML to a span-carrying tree) → `config`
//! (the tree read into raw per-section structs; unknown, missing and
//! mistyped fields) → `validate` (names, `uses`, durations, retries,
//! expressions and their scope, dependency cycles, `on`, `bindings`) →
//! [`typecheck`] (expression types, output fields against skill schemas
//! when a [`OutputSchemas`] lookup is given) → [`Workflow`].
//!
//! Layout:
//! - [`workflow`]: [`Workflow`], [`StepSpec`], [`BindingSpec`], … and run-input checking.
//! - [`expr`]: CEL expressions: parsing with located errors, references, evaluation.
//! - [`template`]: values with `${{ … }}` holes and their rendering.
//! - [`runtime`]: pure helpers for the executor (`if`, `for_each`, outputs).
//! - [`scope`]: which names each place may read (the secrets rule lives here).
//! - [`typecheck`]: static types of expressions, output schemas.
//! - [`format`](mod@format): the format as data, and the JSON Schema generated from it.
//! - [`cron`]: cron schedules.
//! - [`diagnostic`]: [`Diagnostic`], [`Diagnostics`] and their rustc-style rendering.
//! - [`codes`]: the table of stable diagnostic codes (`SYN-W…`, `SYN-P…`).
//! - [`source`]: [`Span`], positions in the file.
//! - [`graph`]: dependency-cycle detection shared with the planner.
//! - [`suggest`]: "did you mean" suggestions and name lists.
//! - `syntax` (private): the only module that knows the YAML library (marked-yaml).
//! - `config`, `validate`, `values`, `triggers`, `bindings` (private): the checking stages.

mod bindings;
pub mod codes;
mod config;
pub mod cron;
pub mod diagnostic;
pub mod expr;
pub mod format;
pub mod graph;
pub mod runtime;
pub mod scope;
pub mod source;
pub mod suggest;
mod syntax;
pub mod template;
mod triggers;
pub mod typecheck;
mod validate;
mod values;
pub mod workflow;

pub use diagnostic::{Diagnostic, Diagnostics, Label, Severity};
pub use expr::{EvalError, Expression, ExpressionError, Reference};
pub use source::Span;
pub use template::{RenderError, ValueTemplate};
pub use typecheck::OutputSchemas;
pub use workflow::{
    ApprovalSpec, BindingSpec, BindingWhen, ExpressionSite, ForEachSpec, HttpSpec, InputSpec,
    InputType, OutputSpec, PlanSpec, ReflectSpec, ReflectStrategy, ScheduleTrigger, StepSpans,
    StepSpec, Triggers, WebhookTrigger, Workflow,
};

/// Optional knowledge used while loading.
#[derive(Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Output JSON Schemas of skills (e.g. from the registry's catalog):
    /// with it, `steps.<id>.output.<field>` paths and their types are
    /// checked; without it, step outputs are of unknown type.
    pub schemas: Option<&'a dyn OutputSchemas>,
}

impl std::fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("schemas", &self.schemas.is_some())
            .finish()
    }
}

use config::Reporter;
use source::SourceMap;

/// Loads a workflow from its YAML text. `file` names the file in
/// diagnostics (e.g. `workflows/ioc-triage.yaml`).
///
/// Every problem is reported, not just the first, sorted by position.
/// Warnings alone do not fail the load; they are kept in
/// [`Workflow::warnings`].
pub fn load(source: &str, file: &str) -> Result<Workflow, Diagnostics> {
    load_with(source, file, LoadOptions::default())
}

/// [`load`] with optional knowledge, e.g. skill output schemas.
pub fn load_with(
    source: &str,
    file: &str,
    options: LoadOptions<'_>,
) -> Result<Workflow, Diagnostics> {
    let (workflow, diagnostics) = load_partial(source, file, options);
    match workflow {
        Some(mut workflow) if !diagnostics.has_errors() => {
            workflow.warnings = diagnostics.0;
            Ok(workflow)
        }
        _ => Err(diagnostics),
    }
}

/// Loads as far as possible: every diagnostic (sorted), and the workflow
/// built from the parts that could be read, also when there are errors
/// (`None` only when the text is not YAML or has no `name`).
///
/// With errors, the workflow does **not** hold [`Workflow`]'s invariants
/// (steps with bad parts are left out, references may dangle): use it only
/// to find further problems, e.g. checking `uses` against a catalog so that
/// `synod validate` reports loader and catalog problems together.
pub fn load_partial(
    source: &str,
    file: &str,
    options: LoadOptions<'_>,
) -> (Option<Workflow>, Diagnostics) {
    let map = SourceMap::new(source);
    let mut reporter = Reporter::new(file, &map);
    let (root, syntax_problems) = syntax::parse(&map, file);
    for problem in syntax_problems {
        reporter.push(problem);
    }
    let mut workflow = None;
    if let Some(root) = &root {
        let raw = config::read_workflow(root, &mut reporter);
        let built = validate::validate(&raw, &mut reporter);
        for diagnostic in typecheck::check_workflow(&built, options.schemas) {
            reporter.push(diagnostic);
        }
        if raw.name.is_some() {
            workflow = Some(built);
        }
    }
    let mut diagnostics = Diagnostics(reporter.diagnostics);
    diagnostics.sort();
    (workflow, diagnostics)
}

#[cfg(test)]
mod tests;
