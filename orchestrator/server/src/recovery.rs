//! Crash recovery: what a run executes is stored with it (its *spec*) when it
//! starts, so that after a restart every unfinished run can be rebuilt and
//! resumed from its recorded events (`synod_executor::resume`).
//!
//! A spec is JSON, internal to the store (never in events or run APIs):
//! - `{"kind": "workflow", "source", "file", "inputs"}` for workflow runs;
//! - `{"kind": "plan", "name", "steps": [{"id", "uses", "needs", "with"}],
//!   "note", "inputs"}` for planner-made runs, so that a resumed run keeps
//!   the plan it started with even if the registry changed meanwhile.
//!
//! Inputs are kept unredacted: a resumed run must see what the first one saw.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use synod_planner::{Plan, PlanNote, PlanStep};
use synod_types::{SkillRef, StepId};
use synod_workflow::ValueTemplate;

/// The spec of a workflow run.
pub(crate) fn workflow_spec(source: &str, file: &str, inputs: &Value) -> Value {
    json!({ "kind": "workflow", "source": source, "file": file, "inputs": inputs })
}

/// The spec of a planner-made run: its steps with their raw input objects.
pub(crate) fn plan_spec(
    plan: &Plan,
    step_inputs: &BTreeMap<StepId, Value>,
    inputs: &Value,
) -> Value {
    let steps: Vec<Value> = plan
        .steps_in_order()
        .map(|step| {
            json!({
                "id": step.id.as_str(),
                "uses": step.uses.to_string(),
                "needs": step.needs.iter().map(StepId::as_str).collect::<Vec<_>>(),
                "with": step_inputs.get(&step.id).cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let note = plan.note.as_ref().map(|note| {
        json!({
            "planner": note.planner,
            "goal": note.goal,
            "task": note.task,
            "choices": note.choices,
            "attempts": note.attempts,
        })
    });
    json!({ "kind": "plan", "name": plan.name, "steps": steps, "note": note, "inputs": inputs })
}

/// What a spec describes, ready to resume.
#[derive(Debug)]
pub(crate) enum Rebuilt {
    /// A workflow to compile (against the registry, like a new run).
    Workflow {
        /// YAML text.
        source: String,
        /// File name for diagnostics.
        file: String,
        /// The run's inputs.
        inputs: Value,
    },
    /// A plan as it was made.
    Plan {
        /// The plan.
        plan: Box<Plan>,
        /// The run's inputs.
        inputs: Value,
    },
}

/// Reads a spec; errors say what is wrong with it.
pub(crate) fn rebuild(spec: &Value) -> Result<Rebuilt, String> {
    let text = |field: &str| {
        spec[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the run spec has no `{field}` text"))
    };
    let inputs = spec.get("inputs").cloned().unwrap_or(json!({}));
    match spec["kind"].as_str() {
        Some("workflow") => Ok(Rebuilt::Workflow {
            source: text("source")?,
            file: text("file")?,
            inputs,
        }),
        Some("plan") => {
            let mut steps = Vec::new();
            for (index, step) in spec["steps"].as_array().into_iter().flatten().enumerate() {
                let field = |name: &str| {
                    step[name]
                        .as_str()
                        .ok_or_else(|| format!("step {index} of the run spec has no `{name}`"))
                };
                let uses: SkillRef = field("uses")?
                    .parse()
                    .map_err(|error| format!("step {index} of the run spec: {error}"))?;
                let input = ValueTemplate::from_value(&step["with"])
                    .map_err(|error| format!("step {index} of the run spec: {error}"))?;
                steps.push(PlanStep {
                    id: StepId::new(field("id")?),
                    uses,
                    input,
                    needs: step["needs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(StepId::new)
                        .collect(),
                    timeout: None,
                    retry: None,
                });
            }
            let name = text("name")?;
            let mut plan = Plan::from_checked_steps(name, steps)
                .ok_or("the run spec's steps do not form a valid plan")?;
            plan.note = spec["note"].as_object().map(|note| PlanNote {
                planner: note["planner"].as_str().unwrap_or_default().to_owned(),
                goal: note["goal"].as_str().unwrap_or_default().to_owned(),
                task: note["task"].as_str().unwrap_or_default().to_owned(),
                choices: note.get("choices").cloned().unwrap_or(Value::Null),
                attempts: note.get("attempts").cloned().unwrap_or(Value::Null),
            });
            Ok(Rebuilt::Plan {
                plan: Box::new(plan),
                inputs,
            })
        }
        Some(other) => Err(format!("unknown run spec kind `{other}`")),
        None => Err("the run spec has no `kind`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use synod_planner::{SkillInfo, StaticCatalog, TypedTask, plan_typed};
    use synod_types::SkillRef;

    use super::{Rebuilt, plan_spec, rebuild, workflow_spec};

    #[test]
    fn a_typed_plan_survives_its_spec() {
        let skill = |uses: &str, consumes: &str, produces: &str| SkillInfo {
            uses: uses.parse::<SkillRef>().unwrap(),
            description: String::new(),
            consumes: vec![consumes.to_owned()],
            produces: produces.to_owned(),
            input_schema: json!({}),
            output_schema: json!({ "properties": { produces: {} } }),
            cost_hint: 1.0,
        };
        let catalog = StaticCatalog::new(vec![
            skill("ioc/extract", "text", "iocs"),
            skill("ioc/classify-ips", "iocs", "findings"),
        ]);
        let task = TypedTask {
            given: BTreeMap::from([("text".to_owned(), "text".to_owned())]),
            goal: "findings".to_owned(),
            text: "classify".to_owned(),
        };
        let typed = plan_typed(&task, &catalog).unwrap();
        let inputs = json!({ "text": "10.0.0.1", "api_token": "kept" });
        let spec = plan_spec(&typed.plan, &typed.step_inputs, &inputs);
        let Rebuilt::Plan {
            plan,
            inputs: rebuilt_inputs,
        } = rebuild(&spec).unwrap()
        else {
            panic!("a plan spec rebuilds a plan");
        };
        assert_eq!(rebuilt_inputs, inputs, "inputs are kept unredacted");
        let ids: Vec<&str> = plan.steps_in_order().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["extract", "classify_ips"]);
        let scope = json!({
            "inputs": inputs,
            "steps": { "extract": { "output": { "iocs": ["x"] } } },
            "run": { "id": "r" }
        });
        let step = plan.step(&"classify_ips".into()).unwrap();
        assert_eq!(step.input.render(&scope).unwrap(), json!({ "iocs": ["x"] }));
        assert_eq!(plan.note, typed.plan.note);
        assert_eq!(plan.len(), typed.plan.len());
    }

    #[test]
    fn workflow_specs_and_broken_specs() {
        let spec = workflow_spec("name: x\n", "x.yaml", &json!({"a": 1}));
        assert!(matches!(rebuild(&spec), Ok(Rebuilt::Workflow { .. })));
        assert!(
            rebuild(&json!({"kind": "mystery"}))
                .unwrap_err()
                .contains("unknown run spec kind")
        );
        assert!(
            rebuild(&json!({"kind": "workflow"}))
                .unwrap_err()
                .contains("`source`")
        );
    }
}
