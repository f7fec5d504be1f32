//! The `llm` expert: wraps any OpenAI-compatible chat-completions endpoint
//! (`POST {endpoint}/chat/completions`) as a synod expert with four
//! schema-checked skills: `plan`, `critique`, `summarize` and `answer`.
//!
//! Every model answer is parsed as JSON (code fences tolerated), validated
//! against the skill's output schema and checked for references the schema
//! cannot express (unknown steps, skills or sources). An invalid answer gets
//! one repair request listing the problems; a second invalid answer fails
//! the call. Model output is never passed on unvalidated and never executed.
//!
//! Untrusted data (the input, context artifacts, critic feedback) is sent
//! only inside `<data-NONCE>` sections with a random per-invocation nonce,
//! and the system message says that data is not instructions.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! if let Some(config) = synod_expert_llm::Config::from_env()? {
//!     synod_expert_llm::expert(&config)?
//!         .serve("127.0.0.1:7107".parse()?)
//!         .await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `config`: [`Config`], [`ApiKey`] (redacted `Debug`), [`ConfigError`], `SYNOD_LLM_*` names.
//! - `expert`: [`expert`], the skills' request / validate / repair loop, token budget.
//! - `skills`: schemas, task instructions and semantic checks per skill (pure).
//! - `prompt`, `fence`: message building and data fencing (pure).
//! - `reply`: JSON extraction and validation of answers (pure).
//! - `client`: the HTTP request and the mapping of HTTP failures to skill errors.

mod client;
mod config;
mod expert;
mod fence;
mod prompt;
mod reply;
mod skills;

pub use config::{
    ApiKey, Config, ConfigError, ENV_API_KEY, ENV_API_KEY_FILE, ENV_ENDPOINT, ENV_JSON_MODE,
    ENV_MAX_TOKENS, ENV_MODEL, ENV_TEMPERATURE, ENV_TIMEOUT_SECS, ENV_TOKEN_BUDGET,
};
pub use expert::expert;
