//! [`Workflow`]: a loaded, validated workflow file, and run-input checking.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use synod_types::{RetryPolicy, SkillRef, StepId};

use crate::Diagnostic;
use crate::source::Span;
use crate::suggest::name_list;
use crate::template::{Expression, ValueTemplate};

/// A validated workflow. Invariants (established by [`crate::load`]): the
/// name and every step id and input name are well formed and unique, every
/// `needs` entry names another step, the steps form no cycle, and every
/// expression reads a declared input or an existing step's `output`.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// `[a-z0-9-]+`.
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// Declared inputs, in declaration order.
    pub inputs: Vec<InputSpec>,
    /// Steps, in declaration order.
    pub steps: Vec<StepSpec>,
    /// The file name given to the loader (for diagnostics found later).
    pub file: String,
    /// Warnings found while loading (the workflow is usable).
    pub warnings: Vec<Diagnostic>,
}

/// One declared input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// Name used as `${{ inputs.<name> }}`.
    pub name: String,
    /// JSON type the value must have.
    pub ty: InputType,
    /// Free text for people.
    pub description: Option<String>,
    /// Whether a run must give it (default `false`).
    pub required: bool,
    /// Value used when the run does not give one.
    pub default: Option<Value>,
    /// Where the input's name is written.
    pub span: Span,
}

/// The JSON type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// A JSON string.
    String,
    /// Any JSON number.
    Number,
    /// A JSON number without a fractional part.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
}

impl InputType {
    /// Every type, in the order error messages list them.
    pub const ALL: [InputType; 6] = [
        InputType::String,
        InputType::Number,
        InputType::Integer,
        InputType::Boolean,
        InputType::Array,
        InputType::Object,
    ];

    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Integer => "integer",
            InputType::Boolean => "boolean",
            InputType::Array => "array",
            InputType::Object => "object",
        }
    }

    /// The type called `name`, if any.
    pub fn from_name(name: &str) -> Option<InputType> {
        InputType::ALL.into_iter().find(|ty| ty.name() == name)
    }

    /// Whether `value` has this type.
    pub fn matches(self, value: &Value) -> bool {
        match self {
            InputType::String => value.is_string(),
            InputType::Number => value.is_number(),
            InputType::Integer => value.is_i64() || value.is_u64(),
            InputType::Boolean => value.is_boolean(),
            InputType::Array => value.is_array(),
            InputType::Object => value.is_object(),
        }
    }
}

impl fmt::Display for InputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step: invoke `uses` with `with` once every step in `needs` succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// The step's key in `steps:`.
    pub id: StepId,
    /// The skill to invoke.
    pub uses: SkillRef,
    /// The whole `with:` mapping as an object template (`{}` when absent).
    pub with: ValueTemplate,
    /// Explicit `needs` (in written order, without repeats) followed by
    /// steps referenced from `with` that were not listed.
    pub needs: Vec<StepId>,
    /// Deadline of one attempt.
    pub timeout: Option<Duration>,
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Every expression in `with`, with its location.
    pub expressions: Vec<ExpressionSite>,
    /// Where the step's parts are written.
    pub spans: StepSpans,
}

/// Locations of a step's parts, for diagnostics found after loading (e.g.
/// by the planner against a skill catalog).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepSpans {
    /// The step's key.
    pub id: Span,
    /// The `uses` value.
    pub uses: Span,
    /// One per entry of [`StepSpec::needs`]: the `needs` list item, or the
    /// expression that implies the need.
    pub needs: Vec<Span>,
    /// The `timeout` value.
    pub timeout: Option<Span>,
    /// The `retry` value.
    pub retry: Option<Span>,
}

/// An expression inside `with`, with where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionSite {
    /// The parsed expression.
    pub expression: Expression,
    /// The expression text inside `${{ … }}` (best effort for strings
    /// written with escapes or over several lines).
    pub span: Span,
    /// Where in `with` it appears, e.g. `with.iocs` or `with.items[2]`.
    pub key_path: String,
}

impl Workflow {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|step| step.id.as_str() == id)
    }

    /// Checks a run's inputs against the declarations and returns them with
    /// defaults applied (optional inputs without default and not given are
    /// `null`). `given` must be a JSON object, or `null` for no inputs.
    /// Reports every problem: unknown inputs, missing required inputs and
    /// values of the wrong type.
    pub fn check_inputs(&self, given: &Value) -> Result<Value, Vec<String>> {
        let empty = Map::new();
        let given_map = match given {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return Err(vec![format!(
                    "run inputs must be a JSON object like {{\"name\": value}}, found {}",
                    json_type(other)
                )]);
            }
        };
        let declared: Vec<&str> = self
            .inputs
            .iter()
            .map(|input| input.name.as_str())
            .collect();
        let mut problems = Vec::new();
        for name in given_map.keys() {
            if !declared.contains(&name.as_str()) {
                problems.push(format!(
                    "unknown input `{name}`; declared inputs: {}",
                    name_list(&declared)
                ));
            }
        }
        let mut checked = Map::new();
        for input in &self.inputs {
            match given_map.get(&input.name) {
                Some(value) => {
                    if !input.ty.matches(value) {
                        problems.push(format!(
                            "input `{}` must be {} {}, found {}",
                            input.name,
                            article(input.ty),
                            input.ty,
                            json_type(value)
                        ));
                    }
                    checked.insert(input.name.clone(), value.clone());
                }
                None => match &input.default {
                    Some(default) => {
                        checked.insert(input.name.clone(), default.clone());
                    }
                    None if input.required => problems.push(format!(
                        "missing required input `{}` ({}); give it with the run's inputs",
                        input.name, input.ty
                    )),
                    None => {
                        checked.insert(input.name.clone(), Value::Null);
                    }
                },
            }
        }
        if problems.is_empty() {
            Ok(Value::Object(checked))
        } else {
            Err(problems)
        }
    }
}

fn article(ty: InputType) -> &'static str {
    match ty {
        InputType::Integer | InputType::Array | InputType::Object => "an",
        _ => "a",
    }
}

/// A JSON value's type, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
