//! Write a synod expert in Rust.
//!
//! An expert is a gRPC service (`synod.expert.v1.Expert`) offering one or
//! more **skills**: operations with JSON Schemas for their input and output,
//! and the artifact types they consume and produce. This crate lets an
//! expert team write only the skills; the SDK serves them with everything
//! the orchestrator expects:
//!
//! - `Describe`, `Invoke` and `InvokeStream` (progress, then the response);
//! - input validation against the skill's input schema (`INVALID_ARGUMENT`
//!   naming the JSON Pointer of each failing field, with a
//!   `google.rpc.BadRequest` detail) and output validation against the output
//!   schema (`INTERNAL` naming the path: a bug in the expert);
//! - `grpc.health.v1` health and gRPC server reflection (v1);
//! - a per-connection concurrency limit and a per-call timeout that honours
//!   the caller's `grpc-timeout`;
//! - W3C trace context extraction ([`TraceContext`]) and, with OTLP
//!   configured ([`telemetry`]), a server span per call that continues the
//!   orchestrator's trace;
//! - self-registration with the orchestrator (Register, Heartbeat,
//!   Deregister on shutdown), retried with backoff, never fatal;
//! - a [`testing`] harness.
//!
//! # Example: a complete expert
//!
//! ```no_run
//! use serde_json::json;
//! use synod_expert_sdk::{ExpertServer, SkillDefinition, SkillError, SkillOutput, skill_fn};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let count_words = SkillDefinition::new("count-words")
//!         .description("counts the words of a text")
//!         .consumes(["text"])
//!         .produces("findings")
//!         .input_schema(json!({
//!             "type": "object", "required": ["text"], "additionalProperties": false,
//!             "properties": { "text": { "type": "string" } }
//!         }))
//!         .output_schema(json!({
//!             "type": "object", "required": ["words"],
//!             "properties": { "words": { "type": "integer", "minimum": 0 } }
//!         }));
//!     let skill = skill_fn(count_words, |_ctx, input| async move {
//!         let text = input["text"].as_str().ok_or_else(|| SkillError::invalid_input("/text", "expected a string"))?;
//!         Ok(SkillOutput::new(json!({ "words": text.split_whitespace().count() })))
//!     });
//!     ExpertServer::builder("word-counter", "0.1.0")
//!         .description("counts words, as an example")
//!         .skill(skill)
//!         .register_with("http://127.0.0.1:7100")
//!         .serve("127.0.0.1:7101".parse()?)
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! - Skills: the [`Skill`] trait, [`skill_fn`], [`SkillDefinition`], [`SkillOutput`].
//! - Context ([`SkillContext`]): run and step ids, round, attempt, artifacts, feedback,
//!   deadline, trace context, progress.
//! - Errors ([`SkillError`]): failures mapped to gRPC status codes; [`BuildError`],
//!   [`ServeError`].
//! - [`ExpertServer`] / [`ExpertServerBuilder`]: building, serving,
//!   in-process calls; [`ExpertHandle`] for servers running in the background.
//! - Tracing ([`TraceContext`]): W3C `traceparent` / `tracestate`.
//! - [`testing`] (module): [`testing::TestExpert`].
#![warn(missing_docs)]

mod context;
mod error;
mod registration;
mod schema;
mod server;
mod skill;
pub mod telemetry;
pub mod testing;
mod trace;

pub use context::{Artifact, Feedback, Progress, ProgressSender, SkillContext};
pub use error::{BuildError, FieldViolation, ServeError, SkillError};
pub use server::{
    DEFAULT_CONCURRENCY_LIMIT, DEFAULT_REGISTRATION_TTL, DEFAULT_REQUEST_TIMEOUT, ExpertHandle,
    ExpertServer, ExpertServerBuilder,
};
pub use skill::{
    Evidence, Need, Sensitivity, Skill, SkillDefinition, SkillFn, SkillOutput, Usage, skill_fn,
};
pub use telemetry::{OtlpConfig, Telemetry, TelemetryError};
pub use trace::{TRACEPARENT, TRACESTATE, TraceContext, TraceContextError};

/// Re-exported for `#[async_trait]` on [`Skill`] implementations.
pub use async_trait::async_trait;
/// The gRPC contracts, re-exported so experts need no direct dependency.
pub use synod_proto as proto;
