//! Skills: what an expert can do, described by a [`SkillDefinition`] and
//! performed by a [`Skill`] implementation (or a closure via [`skill_fn`]).

use std::fmt;
use std::future::Future;

use serde_json::{Map, Value};
use synod_proto::expert as pb;

use crate::context::SkillContext;
use crate::error::SkillError;

// === Skill ===

/// One operation of an expert.
///
/// Implement this trait for skills that keep state (a model handle, a rule
/// set), or use [`skill_fn`] to turn an async closure into a skill.
///
/// The SDK validates `input` against [`SkillDefinition::input_schema`]
/// before calling [`Skill::invoke`], and validates the returned output
/// against [`SkillDefinition::output_schema`] afterwards, so implementations
/// may rely on the input's shape.
///
/// # Example
///
/// ```
/// use serde_json::{Value, json};
/// use synod_expert_sdk::{Skill, SkillContext, SkillDefinition, SkillError, SkillOutput};
///
/// struct Echo;
///
/// #[async_trait::async_trait]
/// impl Skill for Echo {
///     fn definition(&self) -> SkillDefinition {
///         SkillDefinition::new("echo").description("returns its input")
///     }
///
///     async fn invoke(&self, _ctx: SkillContext, input: Value) -> Result<SkillOutput, SkillError> {
///         Ok(SkillOutput::new(input))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Skill: Send + Sync + 'static {
    /// The skill's name, schemas and artifact types. Called once, when the
    /// server is built.
    fn definition(&self) -> SkillDefinition;

    /// Performs the skill on an input that already matches the input schema.
    async fn invoke(&self, ctx: SkillContext, input: Value) -> Result<SkillOutput, SkillError>;
}

/// A [`Skill`] made from a definition and an async closure; see [`skill_fn`].
pub struct SkillFn<F> {
    definition: SkillDefinition,
    handler: F,
}

/// Makes a [`Skill`] from a definition and an async closure.
///
/// # Example
///
/// ```
/// use serde_json::json;
/// use synod_expert_sdk::{SkillDefinition, SkillOutput, skill_fn};
///
/// let upper = skill_fn(
///     SkillDefinition::new("upper").consumes(["text"]).produces("text"),
///     |_ctx, input| async move {
///         let text = input["text"].as_str().unwrap_or_default().to_uppercase();
///         Ok(SkillOutput::new(json!({ "text": text })))
///     },
/// );
/// # let _ = upper;
/// ```
pub fn skill_fn<F, Fut>(definition: SkillDefinition, handler: F) -> SkillFn<F>
where
    F: Fn(SkillContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SkillOutput, SkillError>> + Send + 'static,
{
    SkillFn {
        definition,
        handler,
    }
}

#[async_trait::async_trait]
impl<F, Fut> Skill for SkillFn<F>
where
    F: Fn(SkillContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SkillOutput, SkillError>> + Send + 'static,
{
    fn definition(&self) -> SkillDefinition {
        self.definition.clone()
    }

    async fn invoke(&self, ctx: SkillContext, input: Value) -> Result<SkillOutput, SkillError> {
        (self.handler)(ctx, input).await
    }
}

impl<F> fmt::Debug for SkillFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkillFn")
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}

// === SkillDefinition ===

/// How sensitive data is, from least to most (`synod.expert.v1.Sensitivity`).
///
/// A skill states the most sensitive data it accepts; the orchestrator
/// redacts anything above it before calling the skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum Sensitivity {
    /// Data anyone may see.
    Public,
    /// Data for the organisation's staff (the default).
    #[default]
    Internal,
    /// Data for a limited group (customer data, incident details).
    Confidential,
    /// The most sensitive data (credentials, regulated personal data).
    Restricted,
}

impl Sensitivity {
    /// The protobuf enum value.
    pub fn to_proto(self) -> pb::Sensitivity {
        match self {
            Sensitivity::Public => pb::Sensitivity::Public,
            Sensitivity::Internal => pb::Sensitivity::Internal,
            Sensitivity::Confidential => pb::Sensitivity::Confidential,
            Sensitivity::Restricted => pb::Sensitivity::Restricted,
        }
    }
}

/// What a skill is: its name, artifact types, JSON Schemas and hints for
/// planners. Built with chained methods starting from [`SkillDefinition::new`].
///
/// Defaults: no description, consumes nothing, produces nothing, both schemas
/// `{"type": "object"}`, cost hint `1.0`, [`Sensitivity::Internal`], not
/// streaming.
///
/// ```
/// use serde_json::json;
/// use synod_expert_sdk::{Sensitivity, SkillDefinition};
///
/// let definition = SkillDefinition::new("detect")
///     .description("finds attacks in Windows events")
///     .consumes(["events"])
///     .produces("alerts")
///     .input_schema(json!({
///         "type": "object",
///         "required": ["events"],
///         "properties": { "events": { "type": "array" } }
///     }))
///     .cost_hint(2.0)
///     .max_sensitivity(Sensitivity::Confidential);
/// assert_eq!(definition.name, "detect");
/// assert_eq!(definition.produces, "alerts");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SkillDefinition {
    /// Name unique within the expert, lowercase with dashes.
    pub name: String,
    /// One paragraph for operators and LLM planners.
    pub description: String,
    /// Artifact types consumed.
    pub consumes: Vec<String>,
    /// Artifact type produced.
    pub produces: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
    /// JSON Schema of the output object.
    pub output_schema: Value,
    /// Relative cost per call.
    pub cost_hint: f64,
    /// The most sensitive data accepted.
    pub max_sensitivity: Sensitivity,
    /// Whether the skill streams progress.
    pub streaming: bool,
}

impl SkillDefinition {
    /// A definition named `name` (unique within the expert, lowercase with
    /// dashes, e.g. `classify-ips`), with the defaults listed on the type.
    pub fn new(name: impl Into<String>) -> Self {
        SkillDefinition {
            name: name.into(),
            description: String::new(),
            consumes: Vec::new(),
            produces: String::new(),
            input_schema: object_schema(),
            output_schema: object_schema(),
            cost_hint: 1.0,
            max_sensitivity: Sensitivity::default(),
            streaming: false,
        }
    }

    /// One paragraph for operators and LLM planners.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Artifact types the skill consumes, e.g. `["events"]`.
    #[must_use]
    pub fn consumes<I, S>(mut self, artifact_types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.consumes = artifact_types.into_iter().map(Into::into).collect();
        self
    }

    /// The artifact type the skill produces, e.g. `alerts`.
    #[must_use]
    pub fn produces(mut self, artifact_type: impl Into<String>) -> Self {
        self.produces = artifact_type.into();
        self
    }

    /// JSON Schema (draft 2020-12 unless `$schema` says otherwise) the input
    /// object must match. Checked when the server is built.
    #[must_use]
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    /// JSON Schema the output object must match. The SDK checks every output
    /// against it, so a bug in the expert surfaces as `INTERNAL` with the
    /// failing path instead of confusing the orchestrator.
    #[must_use]
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = schema;
        self
    }

    /// Relative cost per call (`1.0` = a cheap local computation); planners
    /// prefer cheaper skills. Must be finite and not negative.
    #[must_use]
    pub fn cost_hint(mut self, cost_hint: f64) -> Self {
        self.cost_hint = cost_hint;
        self
    }

    /// The most sensitive data the skill accepts.
    #[must_use]
    pub fn max_sensitivity(mut self, sensitivity: Sensitivity) -> Self {
        self.max_sensitivity = sensitivity;
        self
    }

    /// Marks the skill as reporting progress meaningfully over `InvokeStream`
    /// (see [`SkillContext::progress`]).
    #[must_use]
    pub fn streaming(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
        self
    }

    /// The `synod.expert.v1.Skill` message for the expert card.
    ///
    /// # Errors
    ///
    /// When a schema is not a JSON object or holds an integer beyond 2^53.
    pub fn to_proto(&self) -> Result<pb::Skill, synod_proto::json::JsonError> {
        Ok(pb::Skill {
            name: self.name.clone(),
            description: self.description.clone(),
            consumes: self.consumes.clone(),
            produces: self.produces.clone(),
            input_schema: Some(synod_proto::json::json_to_struct(&self.input_schema)?),
            output_schema: Some(synod_proto::json::json_to_struct(&self.output_schema)?),
            cost_hint: self.cost_hint,
            max_sensitivity: self.max_sensitivity.to_proto() as i32,
            streaming: self.streaming,
        })
    }
}

fn object_schema() -> Value {
    let mut schema = Map::new();
    schema.insert("type".to_owned(), Value::from("object"));
    Value::Object(schema)
}

// === SkillOutput ===

/// A reference into the input supporting the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// JSON Pointer into the input, e.g. `/events/17`.
    pub pointer: String,
    /// Why this evidence matters.
    pub note: String,
}

impl Evidence {
    /// Evidence at `pointer` with a note.
    pub fn new(pointer: impl Into<String>, note: impl Into<String>) -> Self {
        Evidence {
            pointer: pointer.into(),
            note: note.into(),
        }
    }
}

/// A request for more input before the skill can do its best; the
/// orchestrator plans steps that produce it and invokes the skill again with
/// the result in [`SkillContext::artifacts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Artifact type wanted, e.g. `knowledge`.
    pub artifact_type: String,
    /// What exactly, e.g. `T1003.001`.
    pub query: String,
    /// Why it is needed.
    pub reason: String,
}

impl Need {
    /// A need for `artifact_type` matching `query`, with the reason.
    pub fn new(
        artifact_type: impl Into<String>,
        query: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Need {
            artifact_type: artifact_type.into(),
            query: query.into(),
            reason: reason.into(),
        }
    }
}

/// Resource use of one call. The SDK fills `duration_ms` with the measured
/// wall time when the skill leaves it at 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, for model-backed skills.
    pub input_tokens: u64,
    /// Completion tokens, for model-backed skills.
    pub output_tokens: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// The result of a skill.
///
/// ```
/// use serde_json::json;
/// use synod_expert_sdk::{Evidence, SkillOutput};
///
/// let output = SkillOutput::new(json!({ "alerts": [] }))
///     .with_confidence(0.9)
///     .with_evidence(Evidence::new("/events/3", "logon from a new country"));
/// assert_eq!(output.confidence, 0.9);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SkillOutput {
    /// The output object; must match the skill's output schema.
    pub output: Value,
    /// How sure the skill is, 0..1 (default 1.0).
    pub confidence: f64,
    /// References into the input supporting the result.
    pub evidence: Vec<Evidence>,
    /// Further inputs the skill asks for.
    pub needs: Vec<Need>,
    /// Resource use.
    pub usage: Usage,
}

impl SkillOutput {
    /// An output object with confidence 1.0 and nothing else.
    pub fn new(output: Value) -> Self {
        SkillOutput {
            output,
            confidence: 1.0,
            evidence: Vec::new(),
            needs: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// Sets the confidence (0..1).
    #[must_use]
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = confidence;
        self
    }

    /// Adds one piece of evidence.
    #[must_use]
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence.push(evidence);
        self
    }

    /// Adds one need.
    #[must_use]
    pub fn with_need(mut self, need: Need) -> Self {
        self.needs.push(need);
        self
    }

    /// Sets the resource use.
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }
}
