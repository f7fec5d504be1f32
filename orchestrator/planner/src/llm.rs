//! The LLM planner's pure half: what to ask a `plan` skill (the expert
//! cards of the skills it may use, the goal, the run inputs, the budget) and
//! the validation of what it answers.
//!
//! A model's plan is untrusted: [`validate_llm_plan`] accepts it only when
//! every skill exists and is offered, every `with` field binds to a run input
//! or an earlier step's output, the required input fields are there, bound
//! artifact types and JSON types match the skill's input, the graph is
//! acyclic, a step produces the goal type and the plan stays within the
//! budget (steps, declared cost). Otherwise it returns every problem, as
//! sentences the model can act on in a repair round. The loop that asks,
//! validates and repairs (and falls back to the typed planner) is
//! `synod_executor::plan_with_llm`; an invalid plan never runs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value, json};
use synod_types::{SkillRef, StepId};
use synod_workflow::ValueTemplate;
use synod_workflow::expr::{Expression, PathSegment};

use crate::catalog::{SkillCatalog, SkillInfo};
use crate::plan::{Plan, PlanNote, PlanStep};

/// Limits of the LLM planner.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmPlannerConfig {
    /// Repair rounds after the first answer (so at most `1 + max_repairs`
    /// requests) before falling back to the typed planner.
    pub max_repairs: u32,
    /// Most steps a plan may have.
    pub max_steps: usize,
    /// Highest total declared cost (sum of the steps' cost hints).
    pub max_cost: f64,
}

impl Default for LlmPlannerConfig {
    fn default() -> Self {
        LlmPlannerConfig {
            max_repairs: 2,
            max_steps: 12,
            max_cost: 100.0,
        }
    }
}

/// A task for the LLM planner.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmTask {
    /// The task's words (untrusted: sent to the model only as fenced data).
    pub text: String,
    /// The artifact type the plan must produce.
    pub goal: String,
    /// The run inputs: name -> JSON type (`string`, `array`, …). Each input
    /// gives the artifact type of its name.
    pub inputs: BTreeMap<String, String>,
}

impl LlmTask {
    /// A task over `inputs` (a JSON object of run inputs; only the names and
    /// JSON types are kept, never the data).
    pub fn new(text: impl Into<String>, goal: impl Into<String>, inputs: &Value) -> Self {
        let mut names = BTreeMap::new();
        for (name, value) in inputs.as_object().into_iter().flatten() {
            names.insert(name.clone(), json_type(value).to_owned());
        }
        LlmTask {
            text: text.into(),
            goal: goal.into(),
            inputs: names,
        }
    }
}

/// One request to the `plan` skill and what became of it; recorded with
/// the plan (the run's `RunPlanned` event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanAttempt {
    /// 1 for the first request, then one more per repair round.
    pub attempt: u32,
    /// The planner skill asked.
    pub uses: String,
    /// Whether the plan passed validation (and is the one that runs).
    pub accepted: bool,
    /// Why the plan was rejected, or why the call failed.
    pub problems: Vec<String>,
}

/// A validated LLM plan.
#[derive(Debug, Clone)]
pub struct LlmPlan {
    /// The plan, named `task`, noted as made by the `llm` planner.
    pub plan: Plan,
    /// Each step's `with` object as the model wrote it (storable, rebuildable).
    pub step_inputs: BTreeMap<StepId, Value>,
    /// Sum of the steps' declared cost hints.
    pub cost: f64,
    /// The model's rationale for the plan.
    pub rationale: String,
}

/// The skills an LLM planner may use: every skill producing an artifact
/// type, except the planner's own expert's `plan` skill.
pub fn plannable_skills(catalog: &dyn SkillCatalog, planner: &SkillRef) -> Vec<SkillInfo> {
    catalog
        .all_skills()
        .into_iter()
        .filter(|skill| &skill.uses != planner && !skill.produces.is_empty())
        .filter(|skill| catalog.skill_stats(&skill.uses).healthy)
        .collect()
}

/// The input of the `plan` skill: the goal (task text and goal type), the
/// expert cards of the usable skills (description, consumes/produces,
/// schemas, cost), the run inputs by name and type, and the budget.
pub fn plan_request(
    task: &LlmTask,
    catalog: &dyn SkillCatalog,
    planner: &SkillRef,
    config: &LlmPlannerConfig,
) -> Value {
    let mut cards = Vec::new();
    for skill in plannable_skills(catalog, planner) {
        cards.push(json!({
            "uses": skill.uses.to_string(),
            "description": skill.description,
            "consumes": skill.consumes,
            "produces": skill.produces,
            "input_schema": schema_outline(&skill.input_schema),
            "output_schema": schema_outline(&skill.output_schema),
            "cost": skill.declared_cost(),
        }));
    }
    let mut inputs = Map::new();
    for (name, kind) in &task.inputs {
        inputs.insert(
            name.clone(),
            json!({ "artifact_type": name, "json_type": kind }),
        );
    }
    json!({
        "goal": format!(
            "{}\n\nProduce the artifact type `{}` (a step whose skill produces it). Bind each `with` field to a run input or to an earlier step's output of the matching artifact type. Total cost at most {}.",
            task.text, task.goal, config.max_cost
        ),
        "catalog": cards,
        "inputs": inputs,
        "max_steps": config.max_steps,
    })
}

/// Records the LLM planner's attempts in `plan`'s note, so that the run's
/// `RunPlanned` event shows each request and why it was rejected (also on
/// a typed plan made after the LLM planner gave up).
pub fn record_attempts(plan: &mut Plan, attempts: &[PlanAttempt]) {
    if let Some(note) = plan.note.as_mut() {
        note.attempts = serde_json::to_value(attempts).unwrap_or(Value::Null);
    }
}

/// The top level of a JSON Schema (its type, required fields, and each
/// field's type and description), which is what binding a step needs; full
/// schemas of every skill would crowd the model's context.
fn schema_outline(schema: &Value) -> Value {
    let mut outline = Map::new();
    for key in ["type", "required", "additionalProperties", "anyOf"] {
        if let Some(value) = schema.get(key)
            && (key != "additionalProperties" || value.is_boolean())
        {
            outline.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let mut fields = Map::new();
        for (name, field) in properties {
            let mut summary = Map::new();
            for key in ["type", "description", "enum"] {
                if let Some(value) = field.get(key) {
                    summary.insert(key.to_owned(), value.clone());
                }
            }
            if let Some(items) = field.get("items").and_then(|items| items.get("type")) {
                summary.insert("items".to_owned(), json!({ "type": items }));
            }
            fields.insert(name.clone(), Value::Object(summary));
        }
        outline.insert("properties".to_owned(), Value::Object(fields));
    }
    Value::Object(outline)
}

/// Checks a `plan` skill's output (`{steps: [{id, uses, with, needs,
/// rationale}], rationale}`) against the catalog and the task; see the
/// [module docs](self). Returns the plan, or every problem found.
pub fn validate_llm_plan(
    reply: &Value,
    task: &LlmTask,
    catalog: &dyn SkillCatalog,
    planner: &SkillRef,
    config: &LlmPlannerConfig,
) -> Result<LlmPlan, Vec<String>> {
    let mut problems = Vec::new();
    let Some(raw_steps) = reply.get("steps").and_then(Value::as_array) else {
        return Err(vec![
            "the plan has no `steps` array; reply with `{\"steps\": [...], \"rationale\": \"...\"}`"
                .to_owned(),
        ]);
    };
    if raw_steps.is_empty() {
        problems.push("the plan has no steps".to_owned());
    }
    if raw_steps.len() > config.max_steps {
        problems.push(format!(
            "the plan has {} steps; the budget allows at most {}",
            raw_steps.len(),
            config.max_steps
        ));
    }

    let mut steps = Vec::with_capacity(raw_steps.len());
    let mut step_inputs = BTreeMap::new();
    let mut rationales = Vec::with_capacity(raw_steps.len());
    for (index, raw) in raw_steps.iter().enumerate() {
        match parse_step(index, raw) {
            Ok((step, with, rationale)) => {
                step_inputs.insert(step.id.clone(), with);
                rationales.push(rationale);
                steps.push(step);
            }
            Err(mut step_problems) => problems.append(&mut step_problems),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Graph and catalog checks: duplicates, unknown needs and references,
    // cycles, unknown experts and skills.
    for problem in Plan::validate(&steps, Some(catalog)) {
        problems.push(problem.to_string());
    }

    let plannable = plannable_skills(catalog, planner);
    let usable: BTreeSet<String> = plannable
        .iter()
        .map(|skill| skill.uses.to_string())
        .collect();
    let mut skill_of: BTreeMap<StepId, SkillInfo> = BTreeMap::new();
    for step in &steps {
        if let Some(info) = catalog.skill(&step.uses) {
            if !usable.contains(&step.uses.to_string()) {
                problems.push(format!(
                    "step `{}` uses `{}`, which is not offered for planning (the planner itself, a skill that produces no artifact type, or an expert with no healthy instance)",
                    step.id, step.uses
                ));
            }
            skill_of.insert(step.id.clone(), info);
        }
    }

    let mut cost = 0.0;
    for step in &steps {
        let Some(skill) = skill_of.get(&step.id) else {
            continue;
        };
        cost += skill.declared_cost();
        let with = &step_inputs[&step.id];
        check_bindings(step, skill, with, task, &skill_of, &mut problems);
    }

    if !skill_of.values().any(|skill| skill.produces == task.goal) {
        let producers: Vec<String> = plannable
            .iter()
            .filter(|skill| skill.produces == task.goal)
            .map(|skill| format!("`{}`", skill.uses))
            .collect();
        let hint = if producers.is_empty() {
            "no offered skill produces it".to_owned()
        } else {
            format!("skills that produce it: {}", producers.join(", "))
        };
        problems.push(format!(
            "no step produces the goal type `{}`; {hint}",
            task.goal
        ));
    }
    if cost > config.max_cost {
        problems.push(format!(
            "the plan's declared cost is {cost:.2}, over the budget of {:.2}; use fewer or cheaper steps",
            config.max_cost
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut choices = Vec::with_capacity(steps.len());
    for (step, rationale) in steps.iter().zip(&rationales) {
        let skill = &skill_of[&step.id];
        choices.push(json!({
            "step": step.id,
            "uses": step.uses.to_string(),
            "produces": skill.produces,
            "consumes": skill.consumes,
            "weight": skill.declared_cost(),
            "reason": rationale,
        }));
    }
    let mut plan = Plan::from_checked_steps("task", steps)
        .expect("validate_llm_plan checks every invariant of Plan::from_checked_steps");
    plan.note = Some(PlanNote {
        planner: "llm".to_owned(),
        goal: task.goal.clone(),
        task: task.text.clone(),
        choices: Value::Array(choices),
        attempts: Value::Null,
    });
    Ok(LlmPlan {
        plan,
        step_inputs,
        cost,
        rationale: reply["rationale"].as_str().unwrap_or_default().to_owned(),
    })
}

/// One step of the reply as a [`PlanStep`], its raw `with` and its rationale.
fn parse_step(index: usize, raw: &Value) -> Result<(PlanStep, Value, String), Vec<String>> {
    let mut problems = Vec::new();
    let id = raw["id"].as_str().unwrap_or_default();
    if !is_identifier(id) {
        problems.push(format!(
            "`/steps/{index}/id` must be a lowercase identifier (`a-z`, `0-9`, `_`, not starting with a digit), got `{id}`"
        ));
    }
    let uses = raw["uses"].as_str().unwrap_or_default();
    let parsed_uses = uses.parse::<SkillRef>();
    if parsed_uses.is_err() {
        problems.push(format!(
            "`/steps/{index}/uses` must be `expert/skill`, got `{uses}`"
        ));
    }
    let with = match raw.get("with") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(_) => {
            problems.push(format!("`/steps/{index}/with` must be an object"));
            Value::Object(Map::new())
        }
    };
    let template = match ValueTemplate::from_value(&with) {
        Ok(template) => Some(template),
        Err(error) => {
            problems.push(format!(
                "`/steps/{index}/with` has an invalid `${{{{ }}}}` expression: {}",
                error.message
            ));
            None
        }
    };
    let mut needs = Vec::new();
    for need in raw["needs"].as_array().into_iter().flatten() {
        match need.as_str() {
            Some(need) => needs.push(StepId::new(need)),
            None => problems.push(format!("`/steps/{index}/needs` must list step ids")),
        }
    }
    let rationale = raw["rationale"].as_str().unwrap_or_default().to_owned();
    match (parsed_uses, template) {
        (Ok(uses), Some(input)) if problems.is_empty() => Ok((
            PlanStep {
                id: StepId::new(id),
                uses,
                input,
                needs,
                timeout: None,
                retry: None,
            },
            with,
            rationale,
        )),
        _ => Err(problems),
    }
}

fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && id.len() <= 64
}

/// What a `with` value bound to a plain reference carries.
struct Source {
    /// Where it comes from, for messages (`run input `events``).
    what: String,
    /// Its artifact type, when known.
    artifact: Option<String>,
    /// Its JSON type, when known.
    json_type: Option<String>,
}

/// Checks one step's `with` against its skill's input schema and the types
/// of what it binds: required and unknown fields, run inputs that exist,
/// step output fields that exist, artifact types and JSON types that match.
fn check_bindings(
    step: &PlanStep,
    skill: &SkillInfo,
    with: &Value,
    task: &LlmTask,
    skill_of: &BTreeMap<StepId, SkillInfo>,
    problems: &mut Vec<String>,
) {
    let schema = &skill.input_schema;
    let properties = schema.get("properties").and_then(Value::as_object);
    let no_fields = Map::new();
    let fields = with.as_object().unwrap_or(&no_fields);
    for required in schema["required"].as_array().into_iter().flatten() {
        let Some(required) = required.as_str() else {
            continue;
        };
        if !fields.contains_key(required) {
            problems.push(format!(
                "step `{}` does not set `{required}`, which the input of `{}` requires",
                step.id, skill.uses
            ));
        }
    }
    if let Some(properties) = properties
        && schema.get("additionalProperties") == Some(&Value::Bool(false))
    {
        for name in fields.keys() {
            if !properties.contains_key(name) {
                let mut known: Vec<&str> = properties.keys().map(String::as_str).collect();
                known.sort_unstable();
                problems.push(format!(
                    "step `{}` sets `{name}`, which is not a field of the input of `{}`; fields: {}",
                    step.id,
                    skill.uses,
                    known.join(", ")
                ));
            }
        }
    }

    for (field, value) in fields {
        let Ok(template) = ValueTemplate::from_value(value) else {
            continue;
        };
        for expression in template.expressions() {
            check_references(step, expression, task, skill_of, problems);
        }
        let ValueTemplate::Expr(expression) = &template else {
            continue;
        };
        let Some(source) = plain_source(expression, task, skill_of) else {
            continue;
        };
        if skill.consumes.iter().any(|consumed| consumed == field)
            && let Some(artifact) = &source.artifact
            && artifact != field
        {
            problems.push(format!(
                "step `{}` binds `{field}` (artifact type `{field}` of `{}`) to {}, which is of artifact type `{artifact}`",
                step.id, skill.uses, source.what
            ));
            continue;
        }
        let wanted = properties
            .and_then(|properties| properties.get(field))
            .map(schema_types)
            .unwrap_or_default();
        if let Some(found) = &source.json_type
            && !wanted.is_empty()
            && !wanted.iter().any(|wanted| types_match(wanted, found))
        {
            problems.push(format!(
                "step `{}` binds `{field}` to {}, a JSON {found}; the input of `{}` wants {}",
                step.id,
                source.what,
                skill.uses,
                wanted.join(" or ")
            ));
        }
    }
}

/// Reports references to run inputs that do not exist and to output
/// fields a step's skill does not produce.
fn check_references(
    step: &PlanStep,
    expression: &Expression,
    task: &LlmTask,
    skill_of: &BTreeMap<StepId, SkillInfo>,
    problems: &mut Vec<String>,
) {
    for reference in &expression.references {
        match reference.root() {
            "inputs" => {
                let Some(name) = reference.field(1) else {
                    continue;
                };
                if !task.inputs.contains_key(name) {
                    let known: Vec<&str> = task.inputs.keys().map(String::as_str).collect();
                    problems.push(format!(
                        "step `{}` reads run input `{name}`, which does not exist; inputs: {}",
                        step.id,
                        if known.is_empty() {
                            "(none)".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
            }
            "steps" => {
                let (Some(other), Some("output"), Some(field)) =
                    (reference.step(), reference.field(2), reference.field(3))
                else {
                    continue;
                };
                let Some(producer) = skill_of.get(&StepId::new(other)) else {
                    continue;
                };
                if let Some(outputs) = producer.output_schema["properties"].as_object()
                    && !outputs.contains_key(field)
                {
                    let mut known: Vec<&str> = outputs.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    problems.push(format!(
                        "step `{}` reads `{field}` from the output of step `{other}`, which `{}` does not produce; its output fields: {}",
                        step.id,
                        producer.uses,
                        known.join(", ")
                    ));
                }
            }
            _ => {}
        }
    }
}

/// The source of a value that is exactly one path (`inputs.events`,
/// `steps.detect.output`, `steps.detect.output.alerts`), if it is one.
fn plain_source(
    expression: &Expression,
    task: &LlmTask,
    skill_of: &BTreeMap<StepId, SkillInfo>,
) -> Option<Source> {
    let [reference] = expression.references.as_slice() else {
        return None;
    };
    if reference.display_path() != expression.source.trim()
        || reference
            .path
            .iter()
            .any(|segment| matches!(segment, PathSegment::Index(_)))
    {
        return None;
    }
    match (reference.root(), reference.path.len()) {
        ("inputs", 2) => {
            let name = reference.field(1)?;
            Some(Source {
                what: format!("run input `{name}`"),
                artifact: Some(name.to_owned()),
                json_type: task.inputs.get(name).cloned(),
            })
        }
        ("steps", 3) if reference.field(2) == Some("output") => {
            let other = reference.step()?;
            let producer = skill_of.get(&StepId::new(other))?;
            Some(Source {
                what: format!("the output of step `{other}`"),
                artifact: Some(producer.produces.clone()),
                json_type: Some("object".to_owned()),
            })
        }
        ("steps", 4) if reference.field(2) == Some("output") => {
            let other = reference.step()?;
            let field = reference.field(3)?;
            let producer = skill_of.get(&StepId::new(other))?;
            let field_schema = producer.output_schema["properties"].get(field)?;
            let types = schema_types(field_schema);
            Some(Source {
                what: format!("`{field}` of step `{other}`"),
                // A field named after the produced type carries that type.
                artifact: (field == producer.produces).then(|| field.to_owned()),
                json_type: match types.as_slice() {
                    [single] => Some(single.clone()),
                    _ => None,
                },
            })
        }
        _ => None,
    }
}

/// The JSON types a schema allows (`type` as a string or a list).
fn schema_types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.clone()],
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(|kind| kind.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn types_match(wanted: &str, found: &str) -> bool {
    wanted == found || (wanted == "number" && found == "integer")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
