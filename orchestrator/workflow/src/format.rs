//! The workflow format as data: every section's fields with their shape and
//! documentation. The loader takes its field lists (unknown-field checks and
//! did-you-mean) from here, and [`json_schema`] turns the same tables into
//! the committed `workflow.schema.json`, so the two cannot drift apart.

use serde_json::{Map, Value, json};

/// One field of a mapping.
#[derive(Debug)]
pub struct Field {
    /// The key as written.
    pub name: &'static str,
    /// One or two sentences for people (and editor tooltips).
    pub doc: &'static str,
    /// What the value must look like.
    pub shape: Shape,
    /// Whether the mapping must have it.
    pub required: bool,
}

/// The shape of a value.
#[derive(Debug)]
pub enum Shape {
    /// Any string.
    String,
    /// A name: lowercase letters, digits and `-`.
    Name,
    /// A string that is exactly one `${{ … }}` CEL expression.
    Expression,
    /// Any YAML value; strings may hold `${{ … }}`.
    Template,
    /// `true` or `false`.
    Boolean,
    /// An integer of at least `minimum`.
    Integer {
        /// Smallest allowed value.
        minimum: i64,
    },
    /// A number between 0 and 1.
    Fraction,
    /// A duration such as `500ms`, `30s`, `2m`, `1h30m`.
    Duration,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// A five-field cron expression or `@hourly`-style macro.
    Cron,
    /// `expert/skill`.
    SkillRef,
    /// A mapping with exactly these fields.
    Object(&'static [Field]),
    /// Like [`Shape::Object`], but an empty value (`manual:`) is allowed too.
    OptionalObject(&'static [Field]),
    /// A mapping from names to values of one shape.
    MapOf(&'static Shape),
    /// A list of step ids (one id alone is accepted too).
    StepList,
    /// A non-empty list of strings.
    StringList,
    /// A mapping of this shape, or a list of them.
    OneOrMany(&'static Shape),
    /// A `retry` policy (tagged by `policy`).
    Retry,
}

const NAME_PATTERN: &str = "^[a-z0-9-]+$";
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";
const EXPRESSION_PATTERN: &str = "^\\s*\\$\\{\\{[\\s\\S]*\\}\\}\\s*$";
const SKILL_PATTERN: &str = "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$";

/// Top-level fields.
pub const WORKFLOW: &[Field] = &[
    field(
        "name",
        "Workflow name: lowercase letters, digits and `-`.",
        Shape::Name,
        true,
    ),
    field("description", "Free text for people.", Shape::String, false),
    field(
        "on",
        "What starts a run: `manual`, `webhook`, `schedule`. Without `on`, runs start manually only.",
        Shape::Object(TRIGGERS),
        false,
    ),
    field(
        "env",
        "Named constant strings, read as `${{ env.NAME }}` anywhere.",
        Shape::MapOf(&Shape::String),
        false,
    ),
    field(
        "secrets",
        "Secrets the workflow reads as `${{ secrets.NAME }}`; the server resolves them from its environment or files. Allowed only in binding `http.headers` and `on.webhook.secret`.",
        Shape::MapOf(&Shape::OptionalObject(SECRET)),
        false,
    ),
    field(
        "inputs",
        "Typed inputs given when a run starts, read as `${{ inputs.NAME }}`.",
        Shape::MapOf(&Shape::Object(INPUT)),
        false,
    ),
    field(
        "steps",
        "The steps, by id. A step runs once every step in its `needs` succeeded.",
        Shape::MapOf(&Shape::Object(STEP)),
        true,
    ),
    field(
        "outputs",
        "The run's result values, by name (templates over inputs and steps).",
        Shape::MapOf(&Shape::Template),
        false,
    ),
    field(
        "bindings",
        "Deliveries of results into business systems (HTTP calls), by name.",
        Shape::MapOf(&Shape::Object(BINDING)),
        false,
    ),
];

/// `on:` fields.
pub const TRIGGERS: &[Field] = &[
    field(
        "manual",
        "Runs may be started by hand (CLI, HTTP, gRPC). Write `manual: {}`.",
        Shape::OptionalObject(&[]),
        false,
    ),
    field(
        "webhook",
        "`POST /hooks/<name>` starts a run when the body's HMAC-SHA256 signature matches `secret`.",
        Shape::Object(WEBHOOK),
        false,
    ),
    field(
        "schedule",
        "Start runs on a cron schedule (UTC); one entry or a list.",
        Shape::OneOrMany(&Shape::Object(SCHEDULE)),
        false,
    ),
];

/// `on.webhook` fields.
pub const WEBHOOK: &[Field] = &[
    field(
        "name",
        "The hook's name in `/hooks/<name>`; defaults to the workflow name.",
        Shape::Name,
        false,
    ),
    field(
        "secret",
        "The HMAC key, exactly `${{ secrets.NAME }}`.",
        Shape::Expression,
        true,
    ),
    field(
        "signature_header",
        "Header holding `sha256=<hex>`; default `X-Synod-Signature`.",
        Shape::String,
        false,
    ),
    field(
        "timestamp_header",
        "Header holding the signing time (Unix seconds); default `X-Synod-Timestamp`.",
        Shape::String,
        false,
    ),
    field(
        "tolerance",
        "How old a signed request may be (replay window); default `5m`.",
        Shape::Duration,
        false,
    ),
];

/// One `on.schedule` entry.
pub const SCHEDULE: &[Field] = &[
    field(
        "cron",
        "Five fields (minute hour day-of-month month day-of-week) or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.",
        Shape::Cron,
        true,
    ),
    field(
        "inputs",
        "Inputs for the scheduled runs (literal values).",
        Shape::MapOf(&Shape::Template),
        false,
    ),
];

/// One `secrets` entry.
pub const SECRET: &[Field] = &[field(
    "description",
    "What the secret is for.",
    Shape::String,
    false,
)];

/// The input types.
pub const INPUT_TYPES: &[&str] = &["string", "number", "integer", "boolean", "object", "array"];

/// One `inputs` entry.
pub const INPUT: &[Field] = &[
    field(
        "type",
        "JSON type of the value.",
        Shape::Enum(INPUT_TYPES),
        true,
    ),
    field("description", "Free text for people.", Shape::String, false),
    field(
        "required",
        "Whether a run must give it (default false).",
        Shape::Boolean,
        false,
    ),
    field(
        "default",
        "Value used when a run does not give one.",
        Shape::Template,
        false,
    ),
];

/// One `steps` entry.
pub const STEP: &[Field] = &[
    field(
        "uses",
        "The skill to invoke, `expert/skill`. A step has `uses` or `plan`.",
        Shape::SkillRef,
        false,
    ),
    field(
        "plan",
        "Let the planner build a sub-plan for a goal instead of invoking one skill.",
        Shape::Object(PLAN),
        false,
    ),
    field(
        "with",
        "The skill's input object; strings may hold `${{ }}` expressions.",
        Shape::MapOf(&Shape::Template),
        false,
    ),
    field(
        "needs",
        "Steps that must succeed first. A step may read only the outputs of steps it needs, directly or transitively.",
        Shape::StepList,
        false,
    ),
    field(
        "if",
        "Run the step only when this `${{ }}` condition is true (otherwise it is skipped).",
        Shape::Expression,
        false,
    ),
    field(
        "for_each",
        "Run the step once per item of this `${{ }}` list; `item` and `item_index` are in scope in `with`.",
        Shape::Expression,
        false,
    ),
    field(
        "max_parallel",
        "With `for_each`: how many items run at once.",
        Shape::Integer { minimum: 1 },
        false,
    ),
    field(
        "timeout",
        "Deadline of one attempt, e.g. `30s`.",
        Shape::Duration,
        false,
    ),
    field(
        "retry",
        "Retry policy for failed attempts.",
        Shape::Retry,
        false,
    ),
    field(
        "reflect",
        "Judge the output and retry, ask another expert or re-plan until it is good enough.",
        Shape::Object(REFLECT),
        false,
    ),
];

/// The reflection strategies.
pub const STRATEGIES: &[&str] = &["retry_with_feedback", "second_opinion", "replan"];

/// `reflect:` fields.
pub const REFLECT: &[Field] = &[
    field(
        "until",
        "Stop when this `${{ }}` condition holds; `output` and `confidence` are in scope.",
        Shape::Expression,
        false,
    ),
    field(
        "min_confidence",
        "Stop when the expert's confidence reaches this (0..1).",
        Shape::Fraction,
        false,
    ),
    field(
        "max_rounds",
        "At most this many rounds (default 3).",
        Shape::Integer { minimum: 1 },
        false,
    ),
    field(
        "critic",
        "A skill that judges the output, `expert/skill`.",
        Shape::SkillRef,
        false,
    ),
    field(
        "strategy",
        "What a failed round does.",
        Shape::Enum(STRATEGIES),
        false,
    ),
    field(
        "budget",
        "Limits over all rounds.",
        Shape::Object(BUDGET),
        false,
    ),
];

/// `reflect.budget` fields.
pub const BUDGET: &[Field] = &[
    field(
        "tokens",
        "Most model tokens all rounds may use.",
        Shape::Integer { minimum: 1 },
        false,
    ),
    field(
        "duration",
        "Most wall time all rounds may take.",
        Shape::Duration,
        false,
    ),
];

/// `plan:` fields.
pub const PLAN: &[Field] = &[
    field(
        "goal",
        "The artifact type or task the planner must produce, e.g. `response_plan`.",
        Shape::String,
        true,
    ),
    field(
        "max_steps",
        "Most steps the planner may add.",
        Shape::Integer { minimum: 1 },
        false,
    ),
];

/// When a binding fires relative to the run's outcome.
pub const BINDING_WHEN: &[&str] = &["on_success", "on_failure", "always"];

/// One `bindings` entry.
pub const BINDING: &[Field] = &[
    field(
        "needs",
        "Steps whose outputs the binding reads; without `needs` it waits for every step.",
        Shape::StepList,
        false,
    ),
    field(
        "if",
        "Deliver only when this `${{ }}` condition is true.",
        Shape::Expression,
        false,
    ),
    field(
        "when",
        "Deliver on the run's success (default), failure, or always.",
        Shape::Enum(BINDING_WHEN),
        false,
    ),
    field("http", "The HTTP request.", Shape::Object(HTTP), true),
    field(
        "idempotency_key",
        "Sent as the `Idempotency-Key` header on every attempt and resend; a template, e.g. `${{ run.id }}-ticket`. Default: `synod-<run id>-<binding name>`.",
        Shape::Template,
        false,
    ),
    field(
        "retry",
        "Retry policy for failed deliveries.",
        Shape::Retry,
        false,
    ),
    field(
        "approval",
        "Wait for a person with one of these roles to approve before sending.",
        Shape::Object(APPROVAL),
        false,
    ),
];

/// HTTP methods a binding may use.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `http:` fields.
pub const HTTP: &[Field] = &[
    field(
        "method",
        "HTTP method (default POST).",
        Shape::Enum(METHODS),
        false,
    ),
    field(
        "url",
        "`https://host/path?query`: scheme and host are static; `${{ }}` only in path and query.",
        Shape::String,
        true,
    ),
    field(
        "headers",
        "Request headers (templates); the only place `${{ secrets.X }}` may appear besides `on.webhook.secret`.",
        Shape::MapOf(&Shape::String),
        false,
    ),
    field(
        "body",
        "The JSON body (a template).",
        Shape::Template,
        false,
    ),
];

/// `approval:` fields.
pub const APPROVAL: &[Field] = &[
    field(
        "roles",
        "Roles allowed to approve (at least one).",
        Shape::StringList,
        true,
    ),
    field(
        "timeout",
        "How long to wait; on timeout the binding is not sent.",
        Shape::Duration,
        false,
    ),
];

/// Retry policy names.
pub const RETRY_POLICIES: &[&str] = &["none", "fixed", "exponential"];

const fn field(name: &'static str, doc: &'static str, shape: Shape, required: bool) -> Field {
    Field {
        name,
        doc,
        shape,
        required,
    }
}

/// The field names of a section, in declaration order.
pub fn names(fields: &[Field]) -> Vec<&'static str> {
    fields.iter().map(|field| field.name).collect()
}

/// The JSON Schema (draft 2020-12) of the workflow format.
pub fn json_schema() -> Value {
    let mut schema = object_schema(WORKFLOW);
    if let Value::Object(map) = &mut schema {
        let mut head = Map::new();
        head.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        head.insert("title".into(), json!("synod workflow"));
        head.insert(
            "description".into(),
            json!("A synod workflow file. Generated from orchestrator/workflow/src/format.rs; do not edit."),
        );
        head.append(map);
        *map = head;
    }
    schema
}

fn object_schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        let mut schema = shape_schema(&field.shape);
        if let Value::Object(map) = &mut schema {
            map.insert("description".into(), json!(field.doc));
        }
        properties.insert(field.name.into(), schema);
        if field.required {
            required.push(json!(field.name));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    Value::Object(schema)
}

fn shape_schema(shape: &Shape) -> Value {
    match shape {
        Shape::String => json!({"type": "string"}),
        Shape::Name => json!({"type": "string", "pattern": NAME_PATTERN}),
        Shape::Expression => json!({"type": "string", "pattern": EXPRESSION_PATTERN}),
        Shape::Template => json!({}),
        Shape::Boolean => json!({"type": "boolean"}),
        Shape::Integer { minimum } => json!({"type": "integer", "minimum": minimum}),
        Shape::Fraction => json!({"type": "number", "minimum": 0, "maximum": 1}),
        Shape::Duration => json!({"type": "string", "pattern": DURATION_PATTERN}),
        Shape::Enum(values) => json!({"enum": values}),
        Shape::Cron => json!({"type": "string"}),
        Shape::SkillRef => json!({"type": "string", "pattern": SKILL_PATTERN}),
        Shape::Object(fields) => object_schema(fields),
        Shape::OptionalObject(fields) => {
            json!({"anyOf": [object_schema(fields), {"type": "null"}]})
        }
        Shape::MapOf(value) => {
            json!({"type": "object", "additionalProperties": shape_schema(value)})
        }
        Shape::StepList => json!({"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}}
        ]}),
        Shape::StringList => json!({"type": "array", "items": {"type": "string"}, "minItems": 1}),
        Shape::OneOrMany(item) => {
            let item = shape_schema(item);
            json!({"anyOf": [item.clone(), {"type": "array", "items": item}]})
        }
        Shape::Retry => retry_schema(),
    }
}

fn retry_schema() -> Value {
    let duration = json!({"type": "string", "pattern": DURATION_PATTERN});
    let attempts = json!({"type": "integer", "minimum": 1});
    json!({"oneOf": [
        {
            "type": "object",
            "properties": {"policy": {"const": "none"}},
            "required": ["policy"],
            "additionalProperties": false
        },
        {
            "type": "object",
            "properties": {
                "policy": {"const": "fixed"},
                "interval": duration,
                "max_attempts": attempts
            },
            "required": ["policy", "interval", "max_attempts"],
            "additionalProperties": false
        },
        {
            "type": "object",
            "properties": {
                "policy": {"const": "exponential"},
                "initial_interval": duration,
                "factor": {"type": "number", "exclusiveMinimum": 1},
                "max_interval": duration,
                "max_attempts": attempts
            },
            "required": ["policy", "initial_interval", "max_attempts"],
            "additionalProperties": false
        }
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value with every object's keys in sorted order, so the file is
    /// the same whether or not serde_json's `preserve_order` is enabled
    /// somewhere in the workspace.
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }

    /// The committed schema must equal the generated one.
    #[test]
    fn committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/workflow.schema.json");
        let generated = sorted(&json_schema());
        if std::env::var_os("SYNOD_UPDATE_SCHEMA").is_some() {
            let text = serde_json::to_string_pretty(&generated).expect("schema serializes");
            std::fs::write(path, format!("{text}\n")).expect("write workflow.schema.json");
            return;
        }
        let committed: Value = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        assert!(
            committed == generated,
            "orchestrator/workflow/workflow.schema.json is stale; regenerate it with \
             `SYNOD_UPDATE_SCHEMA=1 cargo test -p synod-workflow committed_schema_is_current` and commit it"
        );
    }

    fn yaml_as_json(path: &std::path::Path) -> Value {
        let source = std::fs::read_to_string(path).expect("read workflow");
        let map = crate::source::SourceMap::new(&source);
        let (node, _) = crate::syntax::parse(&map, "schema-test.yaml");
        node.expect("yaml parses").to_json()
    }

    /// Editors check files with the schema: every valid workflow must pass
    /// it, and shape errors (unknown fields, wrong enums) must fail it.
    #[test]
    fn the_schema_accepts_valid_and_rejects_misshapen_workflows() {
        let validator = jsonschema::validator_for(&json_schema()).expect("schema compiles");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut valid = Vec::new();
        for directory in ["tests/valid", "../../workflows"] {
            for entry in std::fs::read_dir(root.join(directory)).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|ext| ext == "yaml") {
                    valid.push(path);
                }
            }
        }
        assert!(valid.len() >= 4);
        for path in valid {
            let instance = yaml_as_json(&path);
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|error| error.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        }
        for name in [
            "unknown-top-level-field",
            "unknown-step-field",
            "unknown-binding-field",
            "approval-empty-roles",
            "input-bad-type-and-default",
            "reflect-invalid",
            "binding-bad-method-and-need",
            "bad-duration-and-retry",
            "webhook-secret-not-an-expression",
        ] {
            let path = root.join(format!("tests/invalid/{name}.yaml"));
            assert!(
                !validator.is_valid(&yaml_as_json(&path)),
                "{name} passes the schema"
            );
        }
    }

    #[test]
    fn every_section_documents_every_field() {
        let sections: &[&[Field]] = &[
            WORKFLOW, TRIGGERS, WEBHOOK, SCHEDULE, SECRET, INPUT, STEP, REFLECT, BUDGET, PLAN,
            BINDING, HTTP, APPROVAL,
        ];
        for section in sections {
            let mut seen = std::collections::HashSet::new();
            for field in *section {
                assert!(!field.doc.is_empty(), "{}", field.name);
                assert!(seen.insert(field.name), "{} twice", field.name);
            }
        }
    }
}
