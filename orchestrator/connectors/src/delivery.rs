//! Sending a binding request over HTTP(S) with bounded retries.
//!
//! Order of checks: the request is validated, then the destination is checked against the
//! [`Allowlist`]; only then is a connection made. **Redirects are not followed**: a 3xx
//! answer ends the delivery with [`ErrorClass::Redirect`] and the `Location` in the error,
//! so a destination can never bounce a request (with its secrets) to a host outside the
//! allowlist. No proxy from the environment is used either.
//!
//! Retries: connect errors, timeouts, broken connections, 5xx, 408 and 429 are retried up
//! to the policy's attempt count, waiting `Retry-After` when the answer has one, otherwise
//! the policy's exponential backoff with jitter; no attempt starts after the total deadline.
//! Every attempt sends the same `Idempotency-Key`.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use http::header::{LOCATION, RETRY_AFTER};
use synod_types::{HumanDuration, RetryPolicy};
use tokio::time::Instant;

use crate::allowlist::Allowlist;
use crate::classify::{ErrorClass, parse_retry_after};
use crate::record::{AttemptRecord, DeliveryOutcome, DeliveryReport};
use crate::redact::Redactor;
use crate::request::{BindingRequest, ValidRequest};

/// Retry and time limits of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// Attempts and backoff between them (`Retry-After` overrides the backoff).
    pub retry: RetryPolicy,
    /// Limit for one attempt, from connect to the end of the response body excerpt.
    pub attempt_timeout: Duration,
    /// Limit for the whole delivery, waits included.
    pub total_deadline: Duration,
    /// How much of a response body is kept in records.
    pub body_excerpt_bytes: usize,
}

impl Default for DeliveryPolicy {
    /// 5 attempts, backoff 500 ms doubling up to 30 s, 10 s per attempt, 2 min in total.
    fn default() -> Self {
        DeliveryPolicy {
            retry: RetryPolicy::Exponential {
                initial_interval: HumanDuration(Duration::from_millis(500)),
                factor: 2.0,
                max_interval: HumanDuration(Duration::from_secs(30)),
                max_attempts: 5,
            },
            attempt_timeout: Duration::from_secs(10),
            total_deadline: Duration::from_secs(120),
            body_excerpt_bytes: 2048,
        }
    }
}

/// An invalid [`DeliveryPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid delivery policy: {}", problems.join("; "))]
pub struct DeliveryPolicyError {
    /// Every problem found.
    pub problems: Vec<String>,
}

impl DeliveryPolicy {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), DeliveryPolicyError> {
        let mut problems = self.retry.problems();
        if self.attempt_timeout.is_zero() {
            problems.push("`attempt_timeout` must be greater than zero".to_owned());
        }
        if self.total_deadline < self.attempt_timeout {
            problems.push(format!(
                "`total_deadline` ({}) is shorter than `attempt_timeout` ({})",
                HumanDuration(self.total_deadline),
                HumanDuration(self.attempt_timeout)
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DeliveryPolicyError { problems })
        }
    }
}

/// Which certificate authorities HTTPS destinations are verified against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsRoots {
    /// The operating system's trust store.
    #[default]
    System,
    /// The system's trust store plus these PEM certificates (e.g. an internal CA).
    SystemAnd(Vec<u8>),
    /// Only these PEM certificates.
    Only(Vec<u8>),
}

/// Building an [`HttpDelivery`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpDeliveryError {
    /// The policy is invalid.
    #[error(transparent)]
    Policy(#[from] DeliveryPolicyError),
    /// The configured CA certificates are not PEM certificates.
    #[error(
        "the CA certificates configured for bindings are not valid PEM certificates (expected `-----BEGIN CERTIFICATE-----` blocks)"
    )]
    Certificates(#[source] Option<reqwest::Error>),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client for bindings")]
    Client(#[source] reqwest::Error),
}

/// Delivers binding requests to allowlisted destinations.
#[derive(Debug, Clone)]
pub struct HttpDelivery {
    client: reqwest::Client,
    allowlist: Allowlist,
    policy: DeliveryPolicy,
}

/// What one attempt produced, before it becomes an [`AttemptRecord`].
struct AttemptResult {
    status: Option<u16>,
    failure: Option<(ErrorClass, String)>,
    excerpt: Option<String>,
    /// The response's `Retry-After`; [`after_failure`] reads it only for retryable failures.
    retry_after: Option<Duration>,
}

impl HttpDelivery {
    /// A sender with its own connection pool (TLS: rustls with the system's root certificates).
    pub fn new(allowlist: Allowlist, policy: DeliveryPolicy) -> Result<Self, HttpDeliveryError> {
        HttpDelivery::with_tls_roots(allowlist, policy, &TlsRoots::System)
    }

    /// Like [`HttpDelivery::new`], verifying HTTPS destinations against `roots`.
    pub fn with_tls_roots(
        allowlist: Allowlist,
        policy: DeliveryPolicy,
        roots: &TlsRoots,
    ) -> Result<Self, HttpDeliveryError> {
        policy.validate()?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(policy.attempt_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("synod/", env!("CARGO_PKG_VERSION")));
        builder = match roots {
            TlsRoots::System => builder,
            TlsRoots::SystemAnd(pem) => builder.tls_certs_merge(certificates(pem)?),
            TlsRoots::Only(pem) => builder.tls_certs_only(certificates(pem)?),
        };
        let client = builder.build().map_err(HttpDeliveryError::Client)?;
        Ok(HttpDelivery {
            client,
            allowlist,
            policy,
        })
    }

    /// The destinations this sender accepts.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The retry and time limits.
    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    /// Delivers `request`, retrying as the policy allows. Never fails: every problem is
    /// in the report's outcome. Strings in the report are passed through `redactor`.
    pub async fn deliver(&self, request: &BindingRequest, redactor: &Redactor) -> DeliveryReport {
        self.deliver_with(request, redactor, |_| {}).await
    }

    /// Like [`HttpDelivery::deliver`], calling `on_attempt` as each attempt ends (before
    /// waiting for the next), so callers can emit events live.
    #[tracing::instrument(name = "binding.deliver", skip_all, fields(synod.binding = %request.binding))]
    pub async fn deliver_with(
        &self,
        request: &BindingRequest,
        redactor: &Redactor,
        mut on_attempt: impl FnMut(&AttemptRecord),
    ) -> DeliveryReport {
        let started = Instant::now();
        let mut attempts = Vec::new();
        let outcome = match self.check(request) {
            Err((class, error)) => DeliveryOutcome::Failed {
                error_class: class,
                error: redactor.redact(&error),
                status: None,
                attempts: 0,
                retryable: false,
            },
            Ok(valid) => {
                self.send_with_retries(&valid, redactor, started, |record| {
                    on_attempt(&record);
                    attempts.push(record);
                })
                .await
            }
        };
        DeliveryReport {
            binding: request.binding.clone(),
            idempotency_key: request
                .idempotency_key
                .as_deref()
                .map(|key| redactor.redact(key)),
            attempts,
            outcome,
            total_ms: millis(started.elapsed()),
        }
    }

    /// Validation and the allowlist, before any connection.
    fn check(&self, request: &BindingRequest) -> Result<ValidRequest, (ErrorClass, String)> {
        let valid = request
            .validate()
            .map_err(|error| (ErrorClass::InvalidRequest, error.to_string()))?;
        if let Err(error) = self.allowlist.check(valid.url()) {
            tracing::warn!(binding = %request.binding, host = %error.host, "binding destination refused by allowlist");
            let message = format!("binding `{}`: {error}", request.binding);
            return Err((ErrorClass::Disallowed, message));
        }
        Ok(valid)
    }

    async fn send_with_retries(
        &self,
        request: &ValidRequest,
        redactor: &Redactor,
        started: Instant,
        mut record_attempt: impl FnMut(AttemptRecord),
    ) -> DeliveryOutcome {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = self.policy.total_deadline.saturating_sub(started.elapsed());
            let timeout = self.policy.attempt_timeout.min(remaining);
            let attempt_started = Instant::now();
            let result = self.attempt(request, timeout, redactor).await;
            let mut record = AttemptRecord {
                binding: request.binding().to_owned(),
                attempt,
                status: result.status,
                duration_ms: millis(attempt_started.elapsed()),
                error_class: result.failure.as_ref().map(|(class, _)| *class),
                error: result.failure.as_ref().map(|(_, message)| message.clone()),
                response_excerpt: result.excerpt,
                retry_in_ms: None,
            };
            let Some((class, message)) = result.failure else {
                tracing::debug!(attempt, status = ?result.status, "binding delivered");
                record_attempt(record);
                return DeliveryOutcome::Delivered {
                    status: result.status.unwrap_or_default(),
                    attempts: attempt,
                };
            };
            tracing::debug!(attempt, status = ?result.status, error_class = class.as_str(), "binding attempt failed");
            let decision = after_failure(
                &self.policy,
                class,
                attempt,
                result.retry_after,
                started.elapsed(),
                fastrand::f64(),
            );
            match decision {
                AfterFailure::Retry(delay) => {
                    record.retry_in_ms = Some(millis(delay));
                    record_attempt(record);
                    tokio::time::sleep(delay).await;
                }
                AfterFailure::GiveUp {
                    class: final_class,
                    why,
                    retryable,
                } => {
                    record_attempt(record);
                    let error = match why {
                        None => message,
                        Some(why) => format!("{why}; last error: {message}"),
                    };
                    return DeliveryOutcome::Failed {
                        error_class: final_class,
                        error,
                        status: result.status,
                        attempts: attempt,
                        retryable,
                    };
                }
            }
        }
    }

    async fn attempt(
        &self,
        request: &ValidRequest,
        timeout: Duration,
        redactor: &Redactor,
    ) -> AttemptResult {
        let mut builder = self
            .client
            .request(request.method().clone(), request.url().clone())
            .timeout(timeout);
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body_bytes() {
            builder = builder.body(body);
        }
        let mut response = match builder.send().await {
            Ok(response) => response,
            Err(error) => {
                let class = classify_client_error(&error);
                let mut message = error_chain(error);
                if class == ErrorClass::Certificate {
                    message.push_str(
                        "; if the destination uses an internal CA, add its certificate to the CA certificates trusted for bindings",
                    );
                }
                return AttemptResult {
                    status: None,
                    failure: Some((class, redactor.redact(&message))),
                    excerpt: None,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let location = response
            .headers()
            .get(LOCATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let excerpt = read_excerpt(&mut response, self.policy.body_excerpt_bytes, redactor).await;
        let failure = ErrorClass::from_status(status.as_u16()).map(|class| {
            (
                class,
                redactor.redact(&status_message(class, status, location)),
            )
        });
        AttemptResult {
            status: Some(status.as_u16()),
            failure,
            excerpt,
            retry_after,
        }
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, HttpDeliveryError> {
    let certificates = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|error| HttpDeliveryError::Certificates(Some(error)))?;
    if certificates.is_empty() {
        return Err(HttpDeliveryError::Certificates(None));
    }
    Ok(certificates)
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterFailure {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Stop; `why` explains a stop that is not the failure's own fault.
    GiveUp {
        class: ErrorClass,
        why: Option<String>,
        retryable: bool,
    },
}

/// The retry decision. Pure: `elapsed` is the time since the delivery started and `jitter`
/// a uniform sample in `[0, 1)`. `Retry-After` replaces the backoff when present.
fn after_failure(
    policy: &DeliveryPolicy,
    class: ErrorClass,
    attempt: u32,
    retry_after: Option<Duration>,
    elapsed: Duration,
    jitter: f64,
) -> AfterFailure {
    if !class.is_retryable() {
        return AfterFailure::GiveUp {
            class,
            why: None,
            retryable: false,
        };
    }
    let Some(backoff) = policy.retry.delay_after(attempt, jitter) else {
        return AfterFailure::GiveUp {
            class,
            why: Some(format!(
                "gave up after {} (the policy's maximum)",
                attempts_text(attempt)
            )),
            retryable: true,
        };
    };
    let delay = retry_after.unwrap_or(backoff);
    let remaining = policy.total_deadline.saturating_sub(elapsed);
    if delay >= remaining {
        return AfterFailure::GiveUp {
            class: ErrorClass::DeadlineExceeded,
            why: Some(format!(
                "gave up after {}: the next one, in {}, would start after the delivery deadline of {}",
                attempts_text(attempt),
                HumanDuration(round_to_millis(delay)),
                HumanDuration(policy.total_deadline)
            )),
            retryable: true,
        };
    }
    AfterFailure::Retry(delay)
}

fn status_message(class: ErrorClass, status: StatusCode, location: Option<String>) -> String {
    let status_text = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let status_text = status_text.trim_end();
    match class {
        ErrorClass::Redirect => format!(
            "the destination answered {status_text} redirecting to `{}`; bindings do not follow redirects: set the binding URL to the final address",
            location.as_deref().unwrap_or("(no Location header)")
        ),
        ErrorClass::ClientError => format!(
            "the destination rejected the request with {status_text}; it is not retried: check the binding's URL, headers and body against the destination's API"
        ),
        ErrorClass::RateLimited => format!("the destination is rate limiting ({status_text})"),
        _ => format!("the destination answered {status_text}"),
    }
}

fn classify_client_error(error: &reqwest::Error) -> ErrorClass {
    if is_certificate_error(error) {
        ErrorClass::Certificate
    } else if error.is_timeout() {
        ErrorClass::Timeout
    } else if error.is_connect() {
        ErrorClass::Connect
    } else if error.is_builder() {
        ErrorClass::InvalidRequest
    } else {
        ErrorClass::Transport
    }
}

/// True when a rustls certificate error is somewhere in the chain (rustls reports it
/// inside `io::Error`s, whose `source()` skips it, so those are unwrapped explicitly).
fn is_certificate_error(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if matches!(
            find_rustls_error(cause),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        ) {
            return true;
        }
        source = cause.source();
    }
    false
}

fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = error;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// The error and its sources, without the URL (it may carry templated data).
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Reads at most `limit` bytes of the body (plus enough to redact a secret cut at the
/// limit), redacts, then truncates. Read errors end the excerpt silently.
async fn read_excerpt(
    response: &mut reqwest::Response,
    limit: usize,
    redactor: &Redactor,
) -> Option<String> {
    if limit == 0 {
        return None;
    }
    let wanted = limit + redactor.longest_pattern();
    let mut bytes = Vec::new();
    let mut truncated = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > wanted {
            bytes.truncate(wanted);
            truncated = true;
            break;
        }
    }
    if bytes.is_empty() {
        return None;
    }
    let mut text = redactor.redact(&String::from_utf8_lossy(&bytes));
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        truncated = true;
    }
    if truncated {
        text.push('…');
    }
    Some(text)
}

fn attempts_text(attempts: u32) -> String {
    if attempts == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{attempts} attempts")
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn round_to_millis(duration: Duration) -> Duration {
    Duration::from_millis(millis(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DeliveryPolicy {
        DeliveryPolicy {
            retry: RetryPolicy::Exponential {
                initial_interval: HumanDuration(Duration::from_millis(100)),
                factor: 2.0,
                max_interval: HumanDuration(Duration::from_secs(1)),
                max_attempts: 4,
            },
            attempt_timeout: Duration::from_secs(1),
            total_deadline: Duration::from_secs(10),
            body_excerpt_bytes: 64,
        }
    }

    fn decide(
        class: ErrorClass,
        attempt: u32,
        retry_after: Option<u64>,
        elapsed: u64,
    ) -> AfterFailure {
        after_failure(
            &policy(),
            class,
            attempt,
            retry_after.map(Duration::from_secs),
            Duration::from_secs(elapsed),
            1.0,
        )
    }

    #[test]
    fn backoff_grows_and_retry_after_replaces_it() {
        let ms = Duration::from_millis;
        assert_eq!(
            decide(ErrorClass::ServerError, 1, None, 0),
            AfterFailure::Retry(ms(100))
        );
        assert_eq!(
            decide(ErrorClass::Connect, 2, None, 0),
            AfterFailure::Retry(ms(200))
        );
        assert_eq!(
            decide(ErrorClass::Timeout, 3, None, 0),
            AfterFailure::Retry(ms(400))
        );
        assert_eq!(
            decide(ErrorClass::RateLimited, 1, Some(3), 0),
            AfterFailure::Retry(ms(3000))
        );
        assert_eq!(
            decide(ErrorClass::RequestTimeout, 1, Some(0), 0),
            AfterFailure::Retry(ms(0))
        );
    }

    #[test]
    fn gives_up_on_permanent_errors_attempts_and_deadline() {
        let AfterFailure::GiveUp {
            class,
            why,
            retryable,
        } = decide(ErrorClass::ClientError, 1, None, 0)
        else {
            panic!("4xx must not be retried");
        };
        assert_eq!(
            (class, why, retryable),
            (ErrorClass::ClientError, None, false)
        );

        let AfterFailure::GiveUp {
            class,
            why,
            retryable,
        } = decide(ErrorClass::ServerError, 4, None, 0)
        else {
            panic!("attempts are bounded");
        };
        assert_eq!((class, retryable), (ErrorClass::ServerError, true));
        assert!(why.unwrap().contains("after 4 attempts"));

        let AfterFailure::GiveUp { class, why, .. } =
            decide(ErrorClass::RateLimited, 1, Some(60), 0)
        else {
            panic!("Retry-After beyond the deadline");
        };
        assert_eq!(class, ErrorClass::DeadlineExceeded);
        assert!(
            why.unwrap()
                .contains("in 1m, would start after the delivery deadline of 10s")
        );
        assert!(matches!(
            decide(ErrorClass::ServerError, 1, None, 10),
            AfterFailure::GiveUp { .. }
        ));
    }

    #[test]
    fn policy_validation_reports_every_problem() {
        let bad = DeliveryPolicy {
            attempt_timeout: Duration::ZERO,
            total_deadline: Duration::ZERO,
            retry: RetryPolicy::Fixed {
                interval: HumanDuration(Duration::ZERO),
                max_attempts: 0,
            },
            ..policy()
        };
        let error = bad.validate().unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
        let short = DeliveryPolicy {
            total_deadline: Duration::from_millis(500),
            ..policy()
        };
        assert!(
            short
                .validate()
                .unwrap_err()
                .to_string()
                .contains("shorter than `attempt_timeout`")
        );
        assert!(DeliveryPolicy::default().validate().is_ok());
    }
}
