//! Pure helpers for the executor: whether a step or binding runs (`if`),
//! the items of a `for_each`, the scope of one item, and the workflow's
//! outputs. Scopes are JSON objects keyed by variable (`inputs`, `steps`,
//! `run`, `env`, …), as [`crate::Expression::evaluate`] takes them.

use serde_json::{Map, Value};

use crate::expr::EvalError;
use crate::workflow::{BindingSpec, StepSpec, Workflow};

/// Whether `step` runs: `true` without `if`, else the condition's value.
pub fn step_should_run(step: &StepSpec, scope: &Value) -> Result<bool, EvalError> {
    match &step.condition {
        None => Ok(true),
        Some(site) => site.expression.evaluate_bool(scope),
    }
}

/// Whether `binding` delivers: `true` without `if`, else the condition's value.
pub fn binding_should_run(binding: &BindingSpec, scope: &Value) -> Result<bool, EvalError> {
    match &binding.condition {
        None => Ok(true),
        Some(site) => site.expression.evaluate_bool(scope),
    }
}

/// The items of a `for_each` step (`None` for a step without `for_each`).
pub fn for_each_items(step: &StepSpec, scope: &Value) -> Option<Result<Vec<Value>, EvalError>> {
    let each = step.for_each.as_ref()?;
    let expression = &each.items.expression;
    Some(match expression.evaluate(scope) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(other) => Err(EvalError::NotList {
            expression: expression.source.clone(),
            found: crate::workflow::json_type(&other).to_owned(),
        }),
        Err(error) => Err(error),
    })
}

/// `scope` plus `item` and `item_index`, for rendering one item's `with`.
pub fn item_scope(scope: &Value, item: &Value, index: usize) -> Value {
    let mut map = match scope {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    map.insert("item".into(), item.clone());
    map.insert("item_index".into(), Value::from(index));
    Value::Object(map)
}

/// The workflow's `outputs` rendered against the final scope.
pub fn render_outputs(workflow: &Workflow, scope: &Value) -> Result<Value, EvalError> {
    let mut outputs = Map::new();
    for output in &workflow.outputs {
        outputs.insert(output.name.clone(), output.value.render(scope)?);
    }
    Ok(Value::Object(outputs))
}

/// The `env` scope object of a workflow.
pub fn env_scope(workflow: &Workflow) -> Value {
    let mut env = Map::new();
    for (name, value) in &workflow.env {
        env.insert(name.clone(), Value::String(value.clone()));
    }
    Value::Object(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FLOW: &str = r#"name: fan-out
env: { QUEUE: soc }
inputs:
  hosts: { type: array }
steps:
  scan:
    uses: demo/scan
    if: "${{ size(inputs.hosts) > 0 }}"
    for_each: "${{ inputs.hosts }}"
    max_parallel: 2
    with: { host: "${{ item }}", position: "${{ item_index }}", queue: "${{ env.QUEUE }}" }
outputs:
  count: "${{ size(inputs.hosts) }}"
"#;

    #[test]
    fn conditions_items_and_outputs() {
        let workflow = crate::load(FLOW, "f.yaml").unwrap();
        let step = &workflow.steps[0];
        let scope =
            json!({"inputs": {"hosts": ["a", "b"]}, "env": env_scope(&workflow), "steps": {}});
        assert!(step_should_run(step, &scope).unwrap());
        let empty = json!({"inputs": {"hosts": []}});
        assert!(!step_should_run(step, &empty).unwrap());
        let items = for_each_items(step, &scope).unwrap().unwrap();
        assert_eq!(items, [json!("a"), json!("b")]);
        let rendered = step.with.render(&item_scope(&scope, &items[1], 1)).unwrap();
        assert_eq!(
            rendered,
            json!({"host": "b", "position": 1, "queue": "soc"})
        );
        assert_eq!(step.for_each.as_ref().unwrap().max_parallel, Some(2));
        assert_eq!(
            render_outputs(&workflow, &scope).unwrap(),
            json!({"count": 2})
        );
        let not_list = json!({"inputs": {"hosts": "a"}});
        assert!(matches!(
            for_each_items(step, &not_list),
            Some(Err(EvalError::NotList { .. }))
        ));
    }
}
