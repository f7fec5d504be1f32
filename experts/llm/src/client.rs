//! The HTTP side: one chat-completions request to an OpenAI-compatible
//! endpoint, with HTTP failures mapped to [`SkillError`]s.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use synod_expert_sdk::SkillError;

use crate::config::{ApiKey, Config, ConfigError, ENV_API_KEY, ENV_API_KEY_FILE, ENV_TIMEOUT_SECS};
use crate::prompt::Message;

/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Most characters of an endpoint's error message quoted in errors.
const MAX_QUOTED_ERROR_CHARS: usize = 300;

/// A client for `{endpoint}/chat/completions`.
pub(crate) struct ChatClient {
    http: reqwest::Client,
    url: Url,
    origin: String,
    model: String,
    api_key: Option<ApiKey>,
    temperature: f32,
    json_mode: bool,
    timeout: Duration,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// What one request returned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    /// The message content.
    pub(crate) content: String,
    /// Prompt tokens, when the endpoint reported usage.
    pub(crate) prompt_tokens: Option<u64>,
    /// Completion tokens, when the endpoint reported usage.
    pub(crate) completion_tokens: Option<u64>,
    /// Whether the model stopped at `max_tokens` (`finish_reason: length`).
    pub(crate) truncated: bool,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    temperature: f32,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
}

#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    usage: Option<UsageField>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct UsageField {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl ChatClient {
    /// A client for `config` (validated here).
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let endpoint = config.endpoint.trim_end_matches('/');
        let url = Url::parse(&format!("{endpoint}/chat/completions")).map_err(|error| {
            ConfigError::Invalid {
                name: "endpoint",
                reason: error.to_string(),
            }
        })?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("synod-expert-llm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ConfigError::Client)?;
        Ok(ChatClient {
            http,
            url,
            origin: config.endpoint_origin(),
            model: config.model.clone(),
            api_key: config.api_key.clone(),
            temperature: config.temperature,
            json_mode: config.json_mode,
            timeout: config.timeout,
        })
    }

    /// The model name.
    pub(crate) fn model(&self) -> &str {
        &self.model
    }

    /// Sends one request. `remaining` is the time left before the
    /// invocation's deadline, if it has one.
    pub(crate) async fn complete(
        &self,
        messages: &[Message],
        max_tokens: u32,
        remaining: Option<Duration>,
    ) -> Result<Completion, SkillError> {
        let (timeout, cut_by_deadline) = match remaining {
            Some(remaining) if remaining < self.timeout => (remaining, true),
            _ => (self.timeout, false),
        };
        if timeout.is_zero() {
            return Err(SkillError::DeadlineExceeded(
                "the invocation's deadline passed before the model was called".to_owned(),
            ));
        }
        let body = ChatRequest {
            model: &self.model,
            messages,
            temperature: self.temperature,
            max_tokens,
            response_format: self.json_mode.then_some(ResponseFormat {
                kind: "json_object",
            }),
        };
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(timeout)
            .json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let result = async {
            let mut response = request.send().await?;
            let status = response.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_RESPONSE_BYTES {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        let (status, bytes) = match result {
            Ok(answer) => answer,
            Err(error) => return Err(self.transport_error(error, timeout, cut_by_deadline)),
        };
        if !status.is_success() {
            return Err(self.status_error(status, &bytes));
        }
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(SkillError::Unavailable(format!(
                "the model endpoint `{}` sent more than {MAX_RESPONSE_BYTES} bytes; the answer was discarded",
                self.origin
            )));
        }
        parse_completion(&bytes).map_err(|reason| {
            SkillError::FailedPrecondition(format!(
                "the answer of `{}` is not an OpenAI chat-completions response ({reason}); check that the endpoint is the API base URL (e.g. `https://api.openai.com/v1`)",
                self.origin
            ))
        })
    }

    fn transport_error(
        &self,
        error: reqwest::Error,
        timeout: Duration,
        by_deadline: bool,
    ) -> SkillError {
        if error.is_timeout() {
            let hint = if by_deadline {
                "the invocation's deadline cut it short; give the step a longer timeout".to_owned()
            } else {
                format!("raise `{ENV_TIMEOUT_SECS}` if the model is slow")
            };
            return SkillError::DeadlineExceeded(format!(
                "the model endpoint `{}` did not answer within {:.1}s; {hint}",
                self.origin,
                timeout.as_secs_f64()
            ));
        }
        let action = if error.is_connect() {
            "cannot connect to"
        } else {
            "request failed to"
        };
        SkillError::Unavailable(format!(
            "{action} the model endpoint `{}`: {}",
            self.origin,
            self.scrub(&error_chain(error))
        ))
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> SkillError {
        let detail = self.endpoint_message(body);
        let origin = &self.origin;
        match status.as_u16() {
            401 | 403 => SkillError::FailedPrecondition(format!(
                "the model endpoint `{origin}` refused the API key ({status}{detail}); check the key in `{ENV_API_KEY_FILE}` or `{ENV_API_KEY}` and its access to model `{}`",
                self.model
            )),
            429 => SkillError::Unavailable(format!(
                "the model endpoint `{origin}` is rate limiting ({status}{detail}); retry later"
            )),
            500..=599 => SkillError::Unavailable(format!(
                "the model endpoint `{origin}` failed ({status}{detail}); retry later"
            )),
            404 => SkillError::FailedPrecondition(format!(
                "the model endpoint `{origin}` answered {status}{detail}; check the endpoint base URL (requests go to `<endpoint>/chat/completions`) and the model name `{}`",
                self.model
            )),
            _ => SkillError::FailedPrecondition(format!(
                "the model endpoint `{origin}` rejected the request ({status}{detail})"
            )),
        }
    }

    /// `: <message>` from an OpenAI-style error body, shortened and scrubbed.
    fn endpoint_message(&self, body: &[u8]) -> String {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return String::new();
        };
        let message = value["error"]["message"]
            .as_str()
            .or_else(|| value["error"].as_str())
            .or_else(|| value["message"].as_str());
        match message {
            Some(message) if !message.trim().is_empty() => {
                let short: String = message.chars().take(MAX_QUOTED_ERROR_CHARS).collect();
                format!(": {}", self.scrub(short.trim()))
            }
            _ => String::new(),
        }
    }

    /// `text` with the API key (should an endpoint echo it) replaced.
    fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "<redacted>"),
            _ => text.to_owned(),
        }
    }
}

fn parse_completion(bytes: &[u8]) -> Result<Completion, String> {
    let response: ChatResponse =
        serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    let usage = response.usage;
    let Some(choice) = response.choices.into_iter().next() else {
        return Err("`choices` is empty".to_owned());
    };
    let content = match (choice.message.content, choice.message.refusal) {
        (Some(content), _) => content,
        (None, Some(_)) => String::new(),
        (None, None) => return Err("`choices[0].message.content` is missing".to_owned()),
    };
    Ok(Completion {
        content,
        prompt_tokens: usage.as_ref().and_then(|usage| usage.prompt_tokens),
        completion_tokens: usage.as_ref().and_then(|usage| usage.completion_tokens),
        truncated: choice.finish_reason.as_deref() == Some("length"),
    })
}

/// The error and its innermost cause (e.g. `connection refused`), without the URL.
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let root =
        std::iter::successors(std::error::Error::source(&error), |cause| cause.source()).last();
    match root {
        Some(root) => format!("{error}: {root}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_usage_and_truncation() {
        let body = br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"{}"},"finish_reason":"length"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let completion = parse_completion(body).unwrap();
        assert_eq!(completion.content, "{}");
        assert_eq!(completion.prompt_tokens, Some(12));
        assert_eq!(completion.completion_tokens, Some(3));
        assert!(completion.truncated);
    }

    #[test]
    fn refusals_read_as_empty_content_and_junk_is_named() {
        let body = br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#;
        assert_eq!(parse_completion(body).unwrap().content, "");
        assert!(
            parse_completion(br#"{"choices":[]}"#)
                .unwrap_err()
                .contains("empty")
        );
        assert!(parse_completion(b"<html>").is_err());
    }
}
