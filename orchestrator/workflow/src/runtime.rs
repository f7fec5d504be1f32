//! Pure helpers for the executor: whether a step or binding runs (`if`),
//! the items of a `for_each`, the scope of one item, and the workflow's
//! outputs. Scopes are JSON objects keyed by variable (`inputs`, `steps`,
//! `run`, `env`, …), as [`crate::Expression::evaluate`] takes them.

use serde_json::{Map, Value};

use crate::expr::EvalError;
use crate::template::{TemplatePart, ValueTemplate};
use crate::workflow::{BindingSpec, ExpressionSite, StepSpec, Workflow};

/// A binding's request with every template rendered, ready for a sender
/// (which still checks the destination against its allowlist).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedBinding {
    /// The binding's name.
    pub binding: String,
    /// Upper-case method.
    pub method: String,
    /// The static origin followed by the rendered path and query; values
    /// from expressions are percent-encoded, so they cannot add path
    /// segments, a query or a fragment, nor change the host.
    pub url: String,
    /// Header names and rendered values (may hold secrets: redact before
    /// recording).
    pub headers: Vec<(String, String)>,
    /// The rendered JSON body.
    pub body: Option<Value>,
    /// The rendered `Idempotency-Key`.
    pub idempotency_key: Option<String>,
}

/// Renders `binding` against the run `scope`. `secrets` (an object of
/// resolved secret values) is visible to the headers only, as the loader
/// guarantees no other part reads it.
pub fn render_binding(
    binding: &BindingSpec,
    scope: &Value,
    secrets: &Value,
) -> Result<RenderedBinding, EvalError> {
    let http = &binding.http;
    let mut url = http.origin.clone();
    url.push_str(&render_url_part(&http.path, scope)?);
    let mut header_scope = match scope {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    header_scope.insert("secrets".into(), secrets.clone());
    let header_scope = Value::Object(header_scope);
    let mut headers = Vec::with_capacity(http.headers.len());
    for (name, template) in &http.headers {
        headers.push((name.clone(), as_text(template.render(&header_scope)?)));
    }
    let body = match &http.body {
        Some(template) => Some(template.render(scope)?),
        None => None,
    };
    let idempotency_key = match &binding.idempotency_key {
        Some(template) => Some(as_text(template.render(scope)?)),
        None => None,
    };
    Ok(RenderedBinding {
        binding: binding.name.clone(),
        method: http.method.clone(),
        url,
        headers,
        body,
        idempotency_key,
    })
}

fn as_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Literal text as written; expression values percent-encoded.
fn render_url_part(template: &ValueTemplate, scope: &Value) -> Result<String, EvalError> {
    Ok(match template {
        ValueTemplate::Literal(Value::String(text)) => text.clone(),
        ValueTemplate::Literal(other) => other.to_string(),
        ValueTemplate::Expr(expression) => percent_encode(&as_text(expression.evaluate(scope)?)),
        ValueTemplate::Interpolate(parts) => {
            let mut text = String::new();
            for part in parts {
                match part {
                    TemplatePart::Text(literal) => text.push_str(literal),
                    TemplatePart::Expr(expression) => {
                        text.push_str(&percent_encode(&as_text(expression.evaluate(scope)?)));
                    }
                }
            }
            text
        }
        other => as_text(other.render(scope)?),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether `step` runs: `true` without `if`, else the condition's value.
pub fn step_should_run(step: &StepSpec, scope: &Value) -> Result<bool, EvalError> {
    condition_holds(step.condition.as_ref(), scope)
}

/// Whether `binding` delivers: `true` without `if`, else the condition's value.
pub fn binding_should_run(binding: &BindingSpec, scope: &Value) -> Result<bool, EvalError> {
    condition_holds(binding.condition.as_ref(), scope)
}

/// `true` without an `if`, else the condition's value.
fn condition_holds(condition: Option<&ExpressionSite>, scope: &Value) -> Result<bool, EvalError> {
    match condition {
        None => Ok(true),
        Some(site) => site.expression.evaluate_bool(scope),
    }
}

/// Whether a step's `reflect.until` holds for one round: `scope` plus the
/// round's `output`, `confidence` and `round` (from 0).
pub fn reflect_until_holds(
    until: &ExpressionSite,
    scope: &Value,
    output: &Value,
    confidence: f64,
    round: u32,
) -> Result<bool, EvalError> {
    let mut map = match scope {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    map.insert("output".into(), output.clone());
    map.insert("confidence".into(), Value::from(confidence));
    map.insert("round".into(), Value::from(round));
    until.expression.evaluate_bool(&Value::Object(map))
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

/// The workflow's `outputs` rendered against the final scope. An output
/// that reads a step without an output (skipped by its `if` or upstream) is
/// `null`; any other evaluation error is returned.
pub fn render_outputs(workflow: &Workflow, scope: &Value) -> Result<Value, EvalError> {
    let mut outputs = Map::new();
    for output in &workflow.outputs {
        let reads_missing_step = output
            .expressions
            .iter()
            .flat_map(|site| &site.expression.references)
            .filter_map(|reference| reference.step())
            .any(|step| scope["steps"][step].get("output").is_none());
        let value = if reads_missing_step {
            Value::Null
        } else {
            output.value.render(scope)?
        };
        outputs.insert(output.name.clone(), value);
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

    const DELIVERY: &str = r#"name: deliver
secrets: { TOKEN: }
inputs:
  queue: { type: string }
steps:
  detect: { uses: demo/detect }
bindings:
  ticket:
    needs: [detect]
    http:
      method: PUT
      url: "https://tickets.example.org/api/${{ inputs.queue }}/issues?run=${{ run.id }}"
      headers: { Authorization: "Bearer ${{ secrets.TOKEN }}", X-Count: "${{ size(steps.detect.output.alerts) }}" }
      body: { alerts: "${{ steps.detect.output.alerts }}" }
    idempotency_key: "${{ run.id }}-ticket"
"#;

    #[test]
    fn bindings_render_with_encoded_urls_and_header_only_secrets() {
        let workflow = crate::load(DELIVERY, "d.yaml").unwrap();
        let binding = &workflow.bindings[0];
        let scope = json!({
            "inputs": {"queue": "../admin?x=1#f"},
            "steps": {"detect": {"output": {"alerts": [{"rule": "r1"}]}}},
            "run": {"id": "r-1"},
        });
        let rendered = render_binding(binding, &scope, &json!({"TOKEN": "s3cret"})).unwrap();
        assert_eq!(rendered.method, "PUT");
        assert_eq!(
            rendered.url,
            "https://tickets.example.org/api/..%2Fadmin%3Fx%3D1%23f/issues?run=r-1"
        );
        assert_eq!(
            rendered.headers,
            [
                ("Authorization".to_owned(), "Bearer s3cret".to_owned()),
                ("X-Count".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(rendered.body, Some(json!({"alerts": [{"rule": "r1"}]})));
        assert_eq!(rendered.idempotency_key.as_deref(), Some("r-1-ticket"));
        // Without resolved secrets the header cannot render.
        assert!(render_binding(binding, &scope, &json!({})).is_err());
    }

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
  first: "${{ steps.scan.output[0].host }}"
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
        // `scan` has not produced an output (it was skipped): `first` is null.
        assert_eq!(
            render_outputs(&workflow, &scope).unwrap(),
            json!({"count": 2, "first": null})
        );
        let done =
            json!({"inputs": {"hosts": ["a"]}, "steps": {"scan": {"output": [{"host": "a"}]}}});
        assert_eq!(
            render_outputs(&workflow, &done).unwrap(),
            json!({"count": 1, "first": "a"})
        );
        let broken = json!({"inputs": {"hosts": ["a"]}, "steps": {"scan": {"output": []}}});
        assert!(render_outputs(&workflow, &broken).is_err());
        let not_list = json!({"inputs": {"hosts": "a"}});
        assert!(matches!(
            for_each_items(step, &not_list),
            Some(Err(EvalError::NotList { .. }))
        ));
    }
}
