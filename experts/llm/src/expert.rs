//! The `llm` expert on `synod-expert-sdk`: one [`Skill`] per
//! [`SkillKind`], each a fenced prompt, a model call, validation and at
//! most one repair request, within the invocation's token budget and
//! deadline.

use std::sync::Arc;

use serde_json::Value;
use synod_expert_sdk::{
    ExpertServer, ExpertServerBuilder, Skill, SkillContext, SkillDefinition, SkillError,
    SkillOutput, Usage,
};

use crate::client::{ChatClient, Completion};
use crate::config::{Config, ConfigError, ENV_TOKEN_BUDGET};
use crate::fence::Fence;
use crate::prompt::Prompt;
use crate::reply::{OutputCheck, extract_json};
use crate::skills::SkillKind;

/// Version reported on the expert card.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Requests per invocation: the first answer and one repair.
const MAX_REQUESTS: u32 = 2;

/// Builds the `llm` expert for `config` (add `.register_with(..)` and
/// serve). The card is marked `external` unless the endpoint is on
/// loopback ([`Config::is_external`]); an external expert's skills accept
/// data up to `internal` sensitivity, a local one's up to `confidential`.
///
/// # Errors
///
/// When the configuration is invalid ([`Config::validate`]) or the HTTP
/// client cannot be built.
pub fn expert(config: &Config) -> Result<ExpertServerBuilder, ConfigError> {
    let client = Arc::new(ChatClient::new(config)?);
    let description = format!(
        "General-purpose language model `{}` at `{}` behind schema-checked skills: plan, critique, summarize, answer. Input data is fenced as untrusted; outputs are validated, never executed.",
        config.model,
        config.endpoint_origin()
    );
    let mut builder = ExpertServer::builder("llm", VERSION)
        .description(description)
        .external(config.is_external());
    for kind in SkillKind::ALL {
        builder = builder.skill(LlmSkill {
            kind,
            external: config.is_external(),
            check: OutputCheck::new(kind),
            client: Arc::clone(&client),
            budget: Budget {
                max_tokens: config.max_tokens,
                token_budget: config.token_budget,
            },
        });
    }
    Ok(builder)
}

// === impl LlmSkill ===

/// One skill backed by the model.
#[derive(Debug)]
struct LlmSkill {
    kind: SkillKind,
    external: bool,
    check: OutputCheck,
    client: Arc<ChatClient>,
    budget: Budget,
}

#[synod_expert_sdk::async_trait]
impl Skill for LlmSkill {
    fn definition(&self) -> SkillDefinition {
        self.kind.definition(self.external)
    }

    async fn invoke(&self, ctx: SkillContext, input: Value) -> Result<SkillOutput, SkillError> {
        let fence = Fence::random();
        let mut prompt = Prompt::new(self.kind, &fence, &input, ctx.artifacts(), ctx.feedback());
        let mut spent = Spent::default();
        let mut problems = Vec::new();
        for request in 1..=MAX_REQUESTS {
            let stage = if request == 1 {
                "asking the model"
            } else {
                "asking the model to repair its output"
            };
            ctx.progress(f64::from(request - 1) / f64::from(MAX_REQUESTS), stage)
                .await;
            let estimate = prompt.estimated_tokens();
            self.budget.check(self.kind, &spent, estimate)?;
            let completion = self
                .client
                .complete(&prompt.messages, self.budget.max_tokens, ctx.remaining())
                .await?;
            spent.add(&completion, estimate);
            tracing::debug!(
                skill = self.kind.name(),
                request,
                prompt_tokens = completion.prompt_tokens,
                completion_tokens = completion.completion_tokens,
                "model answered"
            );
            problems = match extract_json(&completion.content) {
                Ok(output) => {
                    let found = self.check.problems(&input, &output, &prompt.context_ids);
                    if found.is_empty() {
                        let confidence = self.kind.confidence(&output);
                        return Ok(SkillOutput::new(output)
                            .with_confidence(confidence)
                            .with_usage(spent.usage()));
                    }
                    found
                }
                Err(reason) => vec![reason],
            };
            if completion.truncated {
                problems.push(format!(
                    "the reply was cut off at max_tokens ({}); answer more briefly",
                    self.budget.max_tokens
                ));
            }
            tracing::debug!(
                skill = self.kind.name(),
                request,
                problems = problems.len(),
                "model output rejected"
            );
            if request < MAX_REQUESTS {
                prompt.add_repair_request(&completion.content, &problems);
            }
        }
        Err(SkillError::internal(format!(
            "model `{}` returned invalid output for skill `{}` in both the first answer and the repair; the output was discarded: {}",
            self.client.model(),
            self.kind.name(),
            problems.join("; ")
        )))
    }
}

// === Budget ===

/// Token limits of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    max_tokens: u32,
    token_budget: u64,
}

impl Budget {
    /// Refuses a request that could take the invocation over its budget:
    /// what was spent, plus the estimated prompt, plus `max_tokens`.
    fn check(self, kind: SkillKind, spent: &Spent, prompt_estimate: u64) -> Result<(), SkillError> {
        let needed = prompt_estimate + u64::from(self.max_tokens);
        let left = self.token_budget.saturating_sub(spent.total());
        if needed <= left {
            return Ok(());
        }
        let stage = if spent.requests == 0 {
            "the request"
        } else {
            "the repair request"
        };
        Err(SkillError::FailedPrecondition(format!(
            "token budget exceeded: {stage} of skill `{}` could need about {needed} tokens (prompt about {prompt_estimate} + max_tokens {}) but {left} of the invocation's {} are left; shorten the input or raise `{ENV_TOKEN_BUDGET}`",
            kind.name(),
            self.max_tokens,
            self.token_budget
        )))
    }
}

/// Tokens spent so far in one invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Spent {
    requests: u32,
    prompt: u64,
    completion: u64,
}

impl Spent {
    /// Adds a request's usage: as reported, else estimated.
    fn add(&mut self, completion: &Completion, prompt_estimate: u64) {
        self.requests += 1;
        self.prompt += completion.prompt_tokens.unwrap_or(prompt_estimate);
        self.completion += completion
            .completion_tokens
            .unwrap_or_else(|| (completion.content.chars().count() as u64).div_ceil(4));
    }

    fn total(&self) -> u64 {
        self.prompt + self.completion
    }

    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt,
            output_tokens: self.completion,
            duration_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(prompt: Option<u64>, output: Option<u64>) -> Completion {
        Completion {
            content: "12345678".to_owned(),
            prompt_tokens: prompt,
            completion_tokens: output,
            truncated: false,
        }
    }

    #[test]
    fn spent_uses_reported_usage_or_estimates() {
        let mut spent = Spent::default();
        spent.add(&completion(Some(100), Some(20)), 90);
        spent.add(&completion(None, None), 50);
        assert_eq!(spent.prompt, 150);
        assert_eq!(spent.completion, 22);
        assert_eq!(spent.total(), 172);
        assert_eq!(spent.usage().input_tokens, 150);
    }

    #[test]
    fn budget_refuses_requests_that_could_exceed_it() {
        let budget = Budget {
            max_tokens: 100,
            token_budget: 500,
        };
        let mut spent = Spent::default();
        assert!(budget.check(SkillKind::Plan, &spent, 400).is_ok());
        let error = budget.check(SkillKind::Plan, &spent, 401).unwrap_err();
        assert!(matches!(error, SkillError::FailedPrecondition(_)));
        assert!(error.to_string().contains("500 are left"), "{error}");
        spent.add(&completion(Some(300), Some(50)), 0);
        let error = budget.check(SkillKind::Plan, &spent, 60).unwrap_err();
        assert!(error.to_string().contains("the repair request"), "{error}");
        assert!(
            error.to_string().contains("150 of the invocation's 500"),
            "{error}"
        );
    }
}
