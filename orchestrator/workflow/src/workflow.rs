//! [`Workflow`]: a loaded, validated workflow file, and run-input checking.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use synod_types::{RetryPolicy, SkillRef, StepId};

use crate::Diagnostic;
use crate::cron::CronSchedule;
use crate::source::Span;
use crate::suggest::name_list;
use crate::template::{Expression, ValueTemplate};

/// A validated workflow. Invariants (established by [`crate::load`]): the
/// name and every step id and input name are well formed and unique, every
/// `needs` entry names another step, the steps form no cycle, and every
/// expression parses, reads only names in scope where it is written (see
/// [`crate::scope`]) and reads steps only from its `needs` ancestry.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// `[a-z0-9-]+`.
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// What starts runs.
    pub triggers: Triggers,
    /// `env` constants, in declaration order.
    pub env: Vec<(String, String)>,
    /// Declared secret names, in declaration order.
    pub secrets: Vec<String>,
    /// Declared inputs, in declaration order.
    pub inputs: Vec<InputSpec>,
    /// Steps, in declaration order.
    pub steps: Vec<StepSpec>,
    /// The run's result values, in declaration order.
    pub outputs: Vec<OutputSpec>,
    /// Deliveries into business systems, in declaration order.
    pub bindings: Vec<BindingSpec>,
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

/// What starts runs of a workflow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    /// Runs may be started by hand (true when `on` is absent).
    pub manual: bool,
    /// `POST /hooks/<name>` with an HMAC signature.
    pub webhook: Option<WebhookTrigger>,
    /// Cron schedules (UTC).
    pub schedules: Vec<ScheduleTrigger>,
}

/// `on.webhook`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTrigger {
    /// The hook name in `/hooks/<name>`.
    pub name: String,
    /// The declared secret holding the HMAC key.
    pub secret: String,
    /// Header with `sha256=<hex>`.
    pub signature_header: String,
    /// Header with the signing time (Unix seconds).
    pub timestamp_header: String,
    /// Replay window.
    pub tolerance: Duration,
}

/// One `on.schedule` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTrigger {
    /// The cron text as written.
    pub cron: String,
    /// The parsed schedule.
    pub schedule: CronSchedule,
    /// Inputs for the scheduled runs.
    pub inputs: Value,
}

/// One workflow output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// The output's name.
    pub name: String,
    /// Its value.
    pub value: ValueTemplate,
    /// Its expressions with locations.
    pub expressions: Vec<ExpressionSite>,
}

/// One step: invoke `uses` with `with` once every step in `needs` succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// The step's key in `steps:`.
    pub id: StepId,
    /// The skill to invoke; `None` for a `plan` step.
    pub uses: Option<SkillRef>,
    /// The planner goal of a `plan` step.
    pub plan: Option<PlanSpec>,
    /// The whole `with:` mapping as an object template (`{}` when absent).
    pub with: ValueTemplate,
    /// `needs`, in written order, without repeats.
    pub needs: Vec<StepId>,
    /// `if`: the step runs only when this is true.
    pub condition: Option<ExpressionSite>,
    /// `for_each`: one invocation per item.
    pub for_each: Option<ForEachSpec>,
    /// Deadline of one attempt.
    pub timeout: Option<Duration>,
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Reflection loop.
    pub reflect: Option<ReflectSpec>,
    /// Every expression in `with`, with its location.
    pub expressions: Vec<ExpressionSite>,
    /// Where the step's parts are written.
    pub spans: StepSpans,
}

/// `plan:` of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSpec {
    /// The artifact type or task to reach.
    pub goal: String,
    /// Most steps the planner may add.
    pub max_steps: Option<u32>,
}

/// `for_each` (+ `max_parallel`) of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct ForEachSpec {
    /// The list expression.
    pub items: ExpressionSite,
    /// How many items run at once (`None`: no limit beyond the run's).
    pub max_parallel: Option<u32>,
}

/// What a failed reflection round does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReflectStrategy {
    /// Invoke the same skill again with the critic's feedback.
    RetryWithFeedback,
    /// Ask another expert offering the skill.
    SecondOpinion,
    /// Ask the planner for a different sub-plan.
    Replan,
}

impl ReflectStrategy {
    /// The name as written in a workflow (`retry_with_feedback`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReflectStrategy::RetryWithFeedback => "retry_with_feedback",
            ReflectStrategy::SecondOpinion => "second_opinion",
            ReflectStrategy::Replan => "replan",
        }
    }
}

/// `reflect:` of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectSpec {
    /// Stop when this holds (`output`, `confidence` in scope).
    pub until: Option<ExpressionSite>,
    /// Stop when the confidence reaches this.
    pub min_confidence: Option<f64>,
    /// Most rounds (default 3).
    pub max_rounds: u32,
    /// Skill that judges the output.
    pub critic: Option<SkillRef>,
    /// Where the critic is written.
    pub critic_span: Option<Span>,
    /// What a failed round does.
    pub strategy: ReflectStrategy,
    /// Most model tokens over all rounds.
    pub budget_tokens: Option<u64>,
    /// Most wall time over all rounds.
    pub budget_duration: Option<Duration>,
}

/// When a binding fires relative to the run's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingWhen {
    /// Only when the run succeeded (default).
    OnSuccess,
    /// Only when the run failed.
    OnFailure,
    /// Either way.
    Always,
}

/// One delivery into a business system.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingSpec {
    /// The binding's key in `bindings:`.
    pub name: String,
    /// Steps it waits for; empty = every step.
    pub needs: Vec<StepId>,
    /// Deliver only when this is true.
    pub condition: Option<ExpressionSite>,
    /// Relative to the run's outcome.
    pub when: BindingWhen,
    /// The request.
    pub http: HttpSpec,
    /// `Idempotency-Key` header value.
    pub idempotency_key: Option<ValueTemplate>,
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Human approval before sending.
    pub approval: Option<ApprovalSpec>,
    /// Every expression of the binding, with its location.
    pub expressions: Vec<ExpressionSite>,
    /// Where the binding's key is written.
    pub span: Span,
}

/// The HTTP request of a binding.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// Upper-case method.
    pub method: String,
    /// `scheme://host[:port]`, never templated.
    pub origin: String,
    /// Path and query after the origin (may hold expressions), e.g. `/api/issues`.
    pub path: ValueTemplate,
    /// Header name and value template, in written order.
    pub headers: Vec<(String, ValueTemplate)>,
    /// JSON body.
    pub body: Option<ValueTemplate>,
}

/// `approval:` of a binding.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalSpec {
    /// Roles allowed to approve (at least one).
    pub roles: Vec<String>,
    /// How long to wait before the binding times out unsent.
    pub timeout: Option<Duration>,
}

/// Locations of a step's parts, for diagnostics found after loading (e.g.
/// by the planner against a skill catalog).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepSpans {
    /// The step's key.
    pub id: Span,
    /// The `uses` value (or the `plan` key).
    pub uses: Span,
    /// One per entry of [`StepSpec::needs`]: the `needs` list item, or the
    /// expression that implies the need.
    pub needs: Vec<Span>,
    /// The `timeout` value.
    pub timeout: Option<Span>,
    /// The `retry` value.
    pub retry: Option<Span>,
}

/// An expression, with where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionSite {
    /// The parsed expression.
    pub expression: Expression,
    /// The expression text inside `${{ … }}` (best effort for strings
    /// written with escapes or over several lines).
    pub span: Span,
    /// Where it appears, e.g. `with.iocs`, `with.items[2]` or `if`.
    pub key_path: String,
}

impl ExpressionSite {
    /// The source span of `range`, a byte range inside the expression text.
    ///
    /// The expression text is assumed to be written verbatim at
    /// [`ExpressionSite::span`] (true for plain and simply quoted strings);
    /// line and column are derived from the text itself, so no source is
    /// needed.
    pub fn sub_span(&self, range: &std::ops::Range<usize>) -> Span {
        let text = self.expression.source.as_str();
        let length = self.span.end.saturating_sub(self.span.start);
        let mut offset = range.start.min(length).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let mut end = range.end.min(length).min(text.len()).max(offset);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..offset];
        let (line, column) = match before.rfind('\n') {
            Some(newline) => (
                self.span.line + before.matches('\n').count(),
                before[newline + 1..].chars().count() + 1,
            ),
            None => (self.span.line, self.span.column + before.chars().count()),
        };
        Span {
            start: self.span.start + offset,
            end: self.span.start + end.max(offset),
            line,
            column,
        }
    }
}

impl Workflow {
    /// Every expression of the workflow with its location.
    pub fn expression_sites(&self) -> Vec<&ExpressionSite> {
        let mut sites = Vec::new();
        for step in &self.steps {
            sites.extend(step.condition.iter());
            sites.extend(step.for_each.iter().map(|each| &each.items));
            sites.extend(step.expressions.iter());
            if let Some(reflect) = &step.reflect {
                sites.extend(reflect.until.iter());
            }
        }
        for output in &self.outputs {
            sites.extend(output.expressions.iter());
        }
        for binding in &self.bindings {
            sites.extend(binding.condition.iter());
            sites.extend(binding.expressions.iter());
        }
        sites
    }

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
