//! [`plan_workflow`]: a loaded [`Workflow`] turned into a [`Plan`], checked
//! against a skill catalog when one is given. Diagnostics point into the
//! workflow file through the spans kept in [`StepSpec`].

use std::collections::HashMap;

use serde_json::Value;
use synod_workflow::suggest::unknown_name_help;
use synod_workflow::template::PathSegment;
use synod_workflow::{Diagnostic, Diagnostics, Span, StepSpec, Workflow, codes};

use crate::catalog::{SkillCatalog, SkillInfo};
use crate::plan::{Plan, PlanStep};
use crate::problem::{PlanProblem, check_uses};

/// Converts `workflow` into a plan. With a catalog, also checks every
/// `uses` (unknown expert or skill, with suggestions) and every
/// `steps.<id>.output.<field>` reference against the output schema of the
/// step's skill, when that schema lists `properties` and does not allow
/// additional ones. Reports every problem found.
pub fn plan_workflow(
    workflow: &Workflow,
    catalog: Option<&dyn SkillCatalog>,
) -> Result<Plan, Diagnostics> {
    let mut diagnostics = Vec::new();
    if let Some(catalog) = catalog {
        check_against_catalog(workflow, catalog, &mut diagnostics);
    }
    let mut steps = Vec::with_capacity(workflow.steps.len());
    for step in &workflow.steps {
        steps.push(PlanStep {
            id: step.id.clone(),
            uses: step.uses.clone(),
            input: step.with.clone(),
            needs: step.needs.clone(),
            timeout: step.timeout,
            retry: step.retry.clone(),
        });
    }
    // A workflow from `synod_workflow::load` always passes; one built by
    // code may not, so report what is wrong instead of panicking.
    for problem in Plan::validate(&steps, None) {
        let span = problem_span(workflow, &problem);
        diagnostics.push(
            Diagnostic::error(problem.code(), &workflow.file, span, problem.message())
                .with_help(problem.help()),
        );
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
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut skills: HashMap<&str, SkillInfo> = HashMap::new();
    for step in &workflow.steps {
        match check_uses(&step.id, &step.uses, catalog) {
            Ok(info) => {
                skills.insert(step.id.as_str(), info);
            }
            Err(problem) => {
                let label = match problem {
                    PlanProblem::UnknownExpert { .. } => "unknown expert",
                    _ => "unknown skill",
                };
                diagnostics.push(
                    Diagnostic::error(
                        problem.code(),
                        &workflow.file,
                        step.spans.uses,
                        problem.message(),
                    )
                    .with_label(label)
                    .with_help(problem.help()),
                );
            }
        }
    }
    for step in &workflow.steps {
        check_output_fields(workflow, step, &skills, diagnostics);
    }
}

/// `steps.<id>.output.<field>` must name a property of the skill's output
/// schema when that schema is closed.
fn check_output_fields(
    workflow: &Workflow,
    step: &StepSpec,
    skills: &HashMap<&str, SkillInfo>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for site in &step.expressions {
        let Some(target) = site.expression.referenced_step() else {
            continue;
        };
        let Some(info) = skills.get(target) else {
            continue;
        };
        let Some(PathSegment::Field(field)) = site.expression.path.get(3) else {
            continue;
        };
        let Some(properties) = closed_properties(&info.output_schema) else {
            continue;
        };
        if properties.contains(&field.as_str()) {
            continue;
        }
        diagnostics.push(
            Diagnostic::error(
                codes::UNKNOWN_OUTPUT_FIELD,
                &workflow.file,
                site.span,
                format!(
                    "step `{}` reads `{}`, but the output of `{}` has no field `{field}`",
                    step.id, site.expression, info.uses
                ),
            )
            .with_label("unknown output field")
            .with_help(unknown_name_help(field, &properties, "output fields")),
        );
    }
}

/// The property names of an object schema that allows no other properties;
/// `None` when the schema is open or does not list properties.
fn closed_properties(schema: &Value) -> Option<Vec<&str>> {
    let properties = schema.get("properties")?.as_object()?;
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) | Some(Value::Object(_)) => return None,
        _ => {}
    }
    let mut names = Vec::with_capacity(properties.len());
    for name in properties.keys() {
        names.push(name.as_str());
    }
    Some(names)
}
