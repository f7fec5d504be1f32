//! Configuration: endpoint, model, API key, limits. Built in code
//! ([`Config::new`]) or from `SYNOD_LLM_*` environment variables
//! ([`Config::from_env`]); checked by [`Config::validate`].

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

/// Base URL of the OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
pub const ENV_ENDPOINT: &str = "SYNOD_LLM_ENDPOINT";
/// Model name sent in every request.
pub const ENV_MODEL: &str = "SYNOD_LLM_MODEL";
/// File holding the API key (preferred over [`ENV_API_KEY`]).
pub const ENV_API_KEY_FILE: &str = "SYNOD_LLM_API_KEY_FILE";
/// The API key itself.
pub const ENV_API_KEY: &str = "SYNOD_LLM_API_KEY";
/// Per-request timeout in seconds.
pub const ENV_TIMEOUT_SECS: &str = "SYNOD_LLM_TIMEOUT_SECS";
/// `max_tokens` of each request.
pub const ENV_MAX_TOKENS: &str = "SYNOD_LLM_MAX_TOKENS";
/// Tokens (prompt + completion) one invocation may spend over all its requests.
pub const ENV_TOKEN_BUDGET: &str = "SYNOD_LLM_TOKEN_BUDGET";
/// Sampling temperature (0..2).
pub const ENV_TEMPERATURE: &str = "SYNOD_LLM_TEMPERATURE";
/// `true`/`false`: send `response_format: {"type": "json_object"}`.
pub const ENV_JSON_MODE: &str = "SYNOD_LLM_JSON_MODE";

/// An API key. Its `Debug` output is redacted and it has no `Display`, so
/// it cannot end up in logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace is removed).
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into().trim().to_owned())
    }

    /// The key, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How the expert reaches its model. Defaults (from [`Config::new`]):
/// no key, 60 s timeout, 1024 `max_tokens`, 16 000 tokens per invocation,
/// temperature 0, JSON mode on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Base URL of the OpenAI-compatible API; requests go to
    /// `{endpoint}/chat/completions`.
    pub endpoint: String,
    /// Model name, e.g. `gpt-4o-mini` or `llama3.1:8b`.
    pub model: String,
    /// Sent as `Authorization: Bearer <key>`; `None` for local servers without auth.
    pub api_key: Option<ApiKey>,
    /// Limit for one HTTP request (the invocation's deadline may cut it shorter).
    pub timeout: Duration,
    /// `max_tokens` of each request.
    pub max_tokens: u32,
    /// Tokens (prompt + completion) one invocation may spend over all its
    /// requests, the repair request included; a request that could exceed it
    /// is not sent.
    pub token_budget: u64,
    /// Sampling temperature, 0..2.
    pub temperature: f32,
    /// Whether to send `response_format: {"type": "json_object"}` (turn off
    /// for servers that reject it; the output is validated either way).
    pub json_mode: bool,
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("`{name}` is not set; {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// How to fix it.
        hint: &'static str,
    },
    /// A value does not parse or is out of range.
    #[error("`{name}` is invalid: {reason}")]
    Invalid {
        /// The variable or field.
        name: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// Both key sources are set.
    #[error("both `{ENV_API_KEY_FILE}` and `{ENV_API_KEY}` are set; set only one")]
    TwoKeys,
    /// The key file cannot be read.
    #[error("cannot read the API key file `{path}` (`{ENV_API_KEY_FILE}`)")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client cannot be built (TLS setup).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl Config {
    /// A configuration for `model` at `endpoint` with the defaults listed on
    /// the type.
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>) -> Self {
        Config {
            endpoint: endpoint.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(60),
            max_tokens: 1024,
            token_budget: 16_000,
            temperature: 0.0,
            json_mode: true,
        }
    }

    /// Sets the API key.
    #[must_use]
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `max_tokens` per request and the per-invocation token budget.
    #[must_use]
    pub fn with_tokens(mut self, max_tokens: u32, token_budget: u64) -> Self {
        self.max_tokens = max_tokens;
        self.token_budget = token_budget;
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// Turns `response_format: json_object` on or off.
    #[must_use]
    pub fn with_json_mode(mut self, json_mode: bool) -> Self {
        self.json_mode = json_mode;
        self
    }

    /// Reads the `SYNOD_LLM_*` variables (see the `ENV_*` constants).
    /// `Ok(None)` when `SYNOD_LLM_ENDPOINT` is unset or empty: the expert is
    /// not configured and should not be served.
    ///
    /// # Errors
    ///
    /// When a variable is invalid, the model is missing, both key sources
    /// are set or the key file cannot be read.
    pub fn from_env() -> Result<Option<Config>, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `var`.
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`].
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Config>, ConfigError> {
        let get = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let Some(endpoint) = get(ENV_ENDPOINT) else {
            return Ok(None);
        };
        let model = get(ENV_MODEL).ok_or(ConfigError::Missing {
            name: ENV_MODEL,
            hint: "name the model to call, e.g. `gpt-4o-mini`",
        })?;
        let mut config = Config::new(endpoint.trim(), model.trim());
        config.api_key = match (get(ENV_API_KEY_FILE), get(ENV_API_KEY)) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoKeys),
            (Some(path), None) => {
                let path = PathBuf::from(path.trim());
                let key = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::KeyFile { path, source })?;
                Some(ApiKey::new(key))
            }
            (None, Some(key)) => Some(ApiKey::new(key)),
            (None, None) => None,
        };
        if let Some(seconds) = get(ENV_TIMEOUT_SECS) {
            config.timeout = Duration::from_secs(parse_number(ENV_TIMEOUT_SECS, &seconds)?);
        }
        if let Some(tokens) = get(ENV_MAX_TOKENS) {
            config.max_tokens = parse_number(ENV_MAX_TOKENS, &tokens)?;
        }
        if let Some(budget) = get(ENV_TOKEN_BUDGET) {
            config.token_budget = parse_number(ENV_TOKEN_BUDGET, &budget)?;
        }
        if let Some(temperature) = get(ENV_TEMPERATURE) {
            config.temperature = parse_number(ENV_TEMPERATURE, &temperature)?;
        }
        if let Some(json_mode) = get(ENV_JSON_MODE) {
            config.json_mode = parse_number(ENV_JSON_MODE, &json_mode)?;
        }
        config.validate()?;
        Ok(Some(config))
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the field and the expected value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let url = Url::parse(&self.endpoint).map_err(|error| {
            invalid(
                "endpoint",
                format!("{error}; expected a base URL such as `https://api.openai.com/v1`"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid(
                "endpoint",
                format!(
                    "expected an http(s) URL with a host, such as `https://api.openai.com/v1`, found scheme `{}`",
                    url.scheme()
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "endpoint",
                "credentials in the URL are not allowed; use the API key settings".to_owned(),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(invalid("model", "must not be empty".to_owned()));
        }
        if self.api_key.as_ref().is_some_and(|key| key.0.is_empty()) {
            return Err(invalid("api key", "is empty".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be more than 0 seconds".to_owned()));
        }
        if self.max_tokens == 0 {
            return Err(invalid("max_tokens", "must be at least 1".to_owned()));
        }
        if self.token_budget < u64::from(self.max_tokens) {
            return Err(invalid(
                "token budget",
                format!(
                    "{} is below max_tokens {}; the budget covers prompt and completion of every request",
                    self.token_budget, self.max_tokens
                ),
            ));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(invalid(
                "temperature",
                format!("{} is outside 0..2", self.temperature),
            ));
        }
        Ok(())
    }

    /// Whether the endpoint is off this host (anything but `localhost` and
    /// loopback addresses). The card of an external expert is marked
    /// `external`, so the orchestrator's data-protection guard screens what
    /// is sent to it. An unparseable endpoint counts as external.
    pub fn is_external(&self) -> bool {
        let Ok(url) = Url::parse(&self.endpoint) else {
            return true;
        };
        let Some(host) = url.host_str() else {
            return true;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
        {
            return false;
        }
        !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The endpoint without path and query, safe to name in messages.
    pub(crate) fn endpoint_origin(&self) -> String {
        match Url::parse(&self.endpoint) {
            Ok(url) => url.origin().ascii_serialization(),
            Err(_) => "<invalid endpoint>".to_owned(),
        }
    }
}

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    value.trim().parse().map_err(|error| ConfigError::Invalid {
        name,
        reason: format!("`{}`: {error}", value.trim()),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn no_endpoint_means_not_configured() {
        assert!(Config::from_vars(vars(&[])).unwrap().is_none());
        assert!(
            Config::from_vars(vars(&[(ENV_ENDPOINT, " "), (ENV_MODEL, "m")]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reads_every_variable() {
        let config = Config::from_vars(vars(&[
            (ENV_ENDPOINT, "https://api.example.com/v1/"),
            (ENV_MODEL, "gpt-4o-mini"),
            (ENV_API_KEY, " sk-abc \n"),
            (ENV_TIMEOUT_SECS, "15"),
            (ENV_MAX_TOKENS, "800"),
            (ENV_TOKEN_BUDGET, "4000"),
            (ENV_TEMPERATURE, "0.3"),
            (ENV_JSON_MODE, "false"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.api_key.as_ref().unwrap().expose(), "sk-abc");
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!((config.max_tokens, config.token_budget), (800, 4000));
        assert_eq!(config.temperature, 0.3);
        assert!(!config.json_mode);
        assert!(config.is_external());
        assert_eq!(config.endpoint_origin(), "https://api.example.com");
    }

    #[test]
    fn reads_the_key_from_a_file_and_never_shows_it() {
        let path = std::env::temp_dir().join(format!("synod-llm-key-{}", std::process::id()));
        std::fs::write(&path, "sk-from-file\n").unwrap();
        let config = Config::from_vars(vars(&[
            (ENV_ENDPOINT, "http://127.0.0.1:8000/v1"),
            (ENV_MODEL, "m"),
            (ENV_API_KEY_FILE, path.to_str().unwrap()),
        ]))
        .unwrap()
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(config.api_key.as_ref().unwrap().expose(), "sk-from-file");
        assert!(!format!("{config:?}").contains("sk-from-file"));
        assert!(!config.is_external());
    }

    #[test]
    fn names_what_is_wrong() {
        let error = Config::from_vars(vars(&[(ENV_ENDPOINT, "http://x/v1")])).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`SYNOD_LLM_MODEL` is not set"),
            "{error}"
        );
        let error = Config::from_vars(vars(&[
            (ENV_ENDPOINT, "http://x/v1"),
            (ENV_MODEL, "m"),
            (ENV_API_KEY, "a"),
            (ENV_API_KEY_FILE, "/k"),
        ]))
        .unwrap_err();
        assert!(matches!(error, ConfigError::TwoKeys));
        let error = Config::from_vars(vars(&[
            (ENV_ENDPOINT, "http://x/v1"),
            (ENV_MODEL, "m"),
            (ENV_API_KEY_FILE, "/nonexistent/synod-key"),
        ]))
        .unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/synod-key"),
            "{error}"
        );
        let error = Config::from_vars(vars(&[
            (ENV_ENDPOINT, "http://x/v1"),
            (ENV_MODEL, "m"),
            (ENV_MAX_TOKENS, "lots"),
        ]))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`SYNOD_LLM_MAX_TOKENS` is invalid: `lots`"),
            "{error}"
        );
        for endpoint in ["ftp://x/v1", "not a url", "https://user:pw@x/v1"] {
            let error = Config::new(endpoint, "m").validate().unwrap_err();
            assert!(
                error.to_string().starts_with("`endpoint` is invalid"),
                "{error}"
            );
        }
        let error = Config::new("http://x", "m")
            .with_tokens(100, 50)
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("below max_tokens"), "{error}");
    }
}
