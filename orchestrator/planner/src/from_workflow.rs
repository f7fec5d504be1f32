//! [`plan_workflow`]: a loaded [`Workflow`] turned into a [`Plan`], checked
//! against a skill catalog when one is given. Diagnostics point into the
//! workflow file through the spans kept in [`StepSpec`].

use serde_json::Value;
use synod_types::{SkillRef, StepId};
use synod_workflow::typecheck::check_workflow;
use synod_workflow::{
    Diagnostic, Diagnostics, LoadOptions, OutputSchemas, Span, StepSpec, Workflow, codes,
    load_partial,
};

use crate::catalog::SkillCatalog;
use crate::plan::{Plan, PlanStep};
use crate::problem::{PlanProblem, check_uses};

/// Converts `workflow` into a plan. With a catalog, also checks every
/// `uses` (unknown expert or skill, with suggestions) and type-checks every
/// expression against the output schemas of the skills
/// ([`synod_workflow::typecheck`]: unknown output fields, wrong types).
/// Reports every problem found, including the workflow features the
/// executor cannot run yet (`plan` steps, `if`, `for_each`, `reflect`,
/// `bindings`), so that no such workflow silently runs differently.
pub fn plan_workflow(
    workflow: &Workflow,
    catalog: Option<&dyn SkillCatalog>,
) -> Result<Plan, Diagnostics> {
    plan_workflow_for(workflow, catalog, Executable::default())
}

/// The workflow features an executor runs beyond plain `uses` steps. A
/// feature left `false` makes [`plan_workflow_for`] refuse workflows that
/// use it (`SYN-P0005`) instead of running them differently than written.
/// `plan` steps are always refused until [`PlanStep`] can carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Executable {
    /// Step `if` conditions.
    pub conditions: bool,
    /// Step `for_each` fan-out.
    pub for_each: bool,
    /// Step `reflect` loops.
    pub reflect: bool,
    /// `bindings` deliveries.
    pub bindings: bool,
}

/// [`plan_workflow`] for an executor that runs the features in `executable`.
pub fn plan_workflow_for(
    workflow: &Workflow,
    catalog: Option<&dyn SkillCatalog>,
    executable: Executable,
) -> Result<Plan, Diagnostics> {
    plan_checked(workflow, catalog, executable, false)
}

/// [`plan_workflow_for`]; `type_checked` says the loader already checked
/// the expressions against the catalog's output schemas.
fn plan_checked(
    workflow: &Workflow,
    catalog: Option<&dyn SkillCatalog>,
    executable: Executable,
    type_checked: bool,
) -> Result<Plan, Diagnostics> {
    let mut diagnostics = Vec::new();
    if let Some(catalog) = catalog {
        check_against_catalog(workflow, catalog, type_checked, &mut diagnostics);
    }
    report_unsupported(workflow, executable, &mut diagnostics);
    let mut steps = Vec::with_capacity(workflow.steps.len());
    for step in &workflow.steps {
        let Some(uses) = &step.uses else {
            continue;
        };
        steps.push(PlanStep {
            id: step.id.clone(),
            uses: uses.clone(),
            input: step.with.clone(),
            needs: needs_with_references(step),
            timeout: step.timeout,
            retry: step.retry.clone(),
        });
    }
    // A workflow from `synod_workflow::load` always passes; one built by
    // code may not, so report what is wrong instead of panicking.
    if diagnostics.is_empty() {
        for problem in Plan::validate(&steps, None) {
            let span = problem_span(workflow, &problem);
            diagnostics.push(
                Diagnostic::error(problem.code(), &workflow.file, span, problem.message())
                    .with_help(problem.help()),
            );
        }
    }
    if !diagnostics.is_empty() {
        let mut diagnostics = Diagnostics(diagnostics);
        diagnostics.0.sort_by_key(|d| (d.line, d.column));
        return Err(diagnostics);
    }
    match Plan::from_checked_steps(workflow.name.clone(), steps) {
        Some(plan) => Ok(plan),
        None => Err(Diagnostics(vec![Diagnostic::error(
            codes::DEPENDENCY_CYCLE,
            &workflow.file,
            Span::START,
            "the workflow's steps do not form a valid plan",
        )])),
    }
}

/// Loads `source` and plans it in one go, reporting loader, type and
/// catalog problems together (an unknown expert is reported even while the
/// file has loader errors). With a catalog, output fields and their types
/// are checked against the skills' output schemas while loading.
pub fn compile_workflow(
    source: &str,
    file: &str,
    catalog: Option<&dyn SkillCatalog>,
    executable: Executable,
) -> Result<(Workflow, Plan), Diagnostics> {
    let schemas = catalog.map(|catalog| CatalogSchemas { catalog });
    let options = LoadOptions {
        schemas: schemas.as_ref().map(|s| s as &dyn OutputSchemas),
    };
    let (workflow, mut diagnostics) = load_partial(source, file, options);
    let Some(mut workflow) = workflow else {
        return Err(diagnostics);
    };
    if diagnostics.has_errors() {
        if let Some(catalog) = catalog {
            for step in &workflow.steps {
                if let Some(uses) = &step.uses {
                    report_unknown_skill(
                        &workflow,
                        step,
                        uses,
                        step.spans.uses,
                        catalog,
                        &mut diagnostics.0,
                    );
                }
            }
        }
        diagnostics.0.sort_by_key(|d| (d.line, d.column));
        return Err(diagnostics);
    }
    workflow.warnings = diagnostics.0;
    // The loader type-checked against the catalog's schemas already.
    let plan = plan_checked(&workflow, catalog, executable, true)?;
    Ok((workflow, plan))
}

/// The step's `needs` plus every step its input reads. The loader allows
/// reading any step of the `needs` ancestry; the plan lists those reads as
/// direct edges (which changes no ordering: they are ancestors already).
fn needs_with_references(step: &StepSpec) -> Vec<StepId> {
    let mut needs = step.needs.clone();
    for site in &step.expressions {
        for reference in &site.expression.references {
            if let Some(target) = reference.step()
                && !needs.iter().any(|need| need.as_str() == target)
            {
                needs.push(StepId::new(target));
            }
        }
    }
    needs
}

/// Features the loader accepts but the executor cannot run yet.
fn report_unsupported(
    workflow: &Workflow,
    executable: Executable,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut push = |span: Span, feature: &str, what: String| {
        diagnostics.push(
            Diagnostic::error(
                codes::NOT_EXECUTABLE_YET,
                &workflow.file,
                span,
                format!("{what} uses `{feature}`, which this orchestrator cannot execute yet"),
            )
            .with_label("not executable yet")
            .with_help("the workflow is valid; remove this part to run it now, or wait for the executor to support it"),
        );
    };
    for step in &workflow.steps {
        let what = format!("step `{}`", step.id);
        if step.plan.is_some() {
            push(step.spans.uses, "plan", what.clone());
        }
        if let Some(site) = &step.condition
            && !executable.conditions
        {
            push(site.span, "if", what.clone());
        }
        if let Some(each) = &step.for_each
            && !executable.for_each
        {
            push(each.items.span, "for_each", what.clone());
        }
        if step.reflect.is_some() && (!executable.reflect || step.for_each.is_some()) {
            // A fanned-out step's items are not judged one by one yet.
            let feature = if step.for_each.is_some() {
                "reflect` together with `for_each"
            } else {
                "reflect"
            };
            push(step.spans.id, feature, what.clone());
        }
    }
    if !executable.bindings {
        for binding in &workflow.bindings {
            push(
                binding.span,
                "bindings",
                format!("binding `{}`", binding.name),
            );
        }
    }
}
/// The best span for a problem of a workflow built by code.
fn problem_span(workflow: &Workflow, problem: &PlanProblem) -> Span {
    let step = match problem {
        PlanProblem::DuplicateStep { step }
        | PlanProblem::UnknownNeed { step, .. }
        | PlanProblem::UnknownReference { step, .. }
        | PlanProblem::UnlistedReference { step, .. }
        | PlanProblem::UnknownExpert { step, .. }
        | PlanProblem::UnknownSkill { step, .. } => step,
        PlanProblem::Cycle { steps } => match steps.first() {
            Some(step) => step,
            None => return Span::START,
        },
    };
    match workflow.step(step.as_str()) {
        Some(spec) if spec.spans.id.line >= 1 => spec.spans.id,
        _ => Span::START,
    }
}

fn check_against_catalog(
    workflow: &Workflow,
    catalog: &dyn SkillCatalog,
    type_checked: bool,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for step in &workflow.steps {
        let mut skills = Vec::new();
        if let Some(uses) = &step.uses {
            skills.push((uses, step.spans.uses));
        }
        if let Some(reflect) = &step.reflect
            && let Some(critic) = &reflect.critic
        {
            skills.push((critic, reflect.critic_span.unwrap_or(step.spans.id)));
        }
        for (uses, span) in skills {
            report_unknown_skill(workflow, step, uses, span, catalog, diagnostics);
        }
    }
    if !type_checked {
        let schemas = CatalogSchemas { catalog };
        diagnostics.extend(check_workflow(workflow, Some(&schemas)));
    }
}

/// `uses` (or a critic) must name a skill some expert offers.
fn report_unknown_skill(
    workflow: &Workflow,
    step: &StepSpec,
    uses: &SkillRef,
    span: Span,
    catalog: &dyn SkillCatalog,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Err(problem) = check_uses(&step.id, uses, catalog) else {
        return;
    };
    let label = match problem {
        PlanProblem::UnknownExpert { .. } => "unknown expert",
        _ => "unknown skill",
    };
    diagnostics.push(
        Diagnostic::error(problem.code(), &workflow.file, span, problem.message())
            .with_label(label)
            .with_help(problem.help()),
    );
}

/// The catalog as the workflow type checker's schema lookup.
struct CatalogSchemas<'a> {
    catalog: &'a dyn SkillCatalog,
}

impl OutputSchemas for CatalogSchemas<'_> {
    fn output_schema(&self, uses: &SkillRef) -> Option<Value> {
        self.catalog.skill(uses).map(|info| info.output_schema)
    }
}
