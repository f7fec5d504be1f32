//! Errors: [`SkillError`] (a skill's failure, mapped to a gRPC status),
//! [`BuildError`] (an invalid expert definition) and [`ServeError`].

use std::fmt::Write as _;

use tonic::{Code, Status};
use tonic_types::{BadRequest, ErrorDetail, StatusExt};

/// One problem with one field of the input, named by a JSON Pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// JSON Pointer to the offending value, e.g. `/events/3/EventID`
    /// (`/` for the input object itself).
    pub pointer: String,
    /// What is wrong, e.g. `"abc" is not of type "integer"`.
    pub description: String,
}

impl FieldViolation {
    /// A violation at `pointer`.
    pub fn new(pointer: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            pointer: pointer.into(),
            description: description.into(),
        }
    }
}

/// Why a skill failed. Each variant maps to one gRPC status code (see
/// [`SkillError::code`]); the orchestrator retries only the retryable ones
/// ([`SkillError::is_retryable`]).
///
/// ```
/// use synod_expert_sdk::SkillError;
///
/// let error = SkillError::invalid_input("/events/0/EventID", "expected an integer, found `\"4624x\"`");
/// assert_eq!(error.code(), tonic::Code::InvalidArgument);
/// assert!(!error.is_retryable());
/// assert!(SkillError::unavailable("model server is restarting").is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SkillError {
    /// The input is wrong; retrying the same input will fail again
    /// (`INVALID_ARGUMENT`, with a `google.rpc.BadRequest` detail listing
    /// the field violations).
    #[error("{}", invalid_input_message(message, violations))]
    InvalidInput {
        /// A summary.
        message: String,
        /// The offending fields.
        violations: Vec<FieldViolation>,
    },
    /// Something the skill needs does not exist (`NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// The call cannot be served in the current state, e.g. a missing
    /// context artifact (`FAILED_PRECONDITION`).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency is down or overloaded; retrying later may work
    /// (`UNAVAILABLE`).
    #[error("{0}")]
    Unavailable(String),
    /// A quota or rate limit was hit; retry after backing off
    /// (`RESOURCE_EXHAUSTED`).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The deadline passed before the skill finished (`DEADLINE_EXCEEDED`).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A bug or an unexpected state in the expert (`INTERNAL`).
    #[error("{0}")]
    Internal(String),
}

fn invalid_input_message(message: &str, violations: &[FieldViolation]) -> String {
    let mut out = message.to_owned();
    for (index, violation) in violations.iter().enumerate() {
        out.push_str(if index == 0 { ": " } else { "; " });
        let _ = write!(out, "`{}`: {}", violation.pointer, violation.description);
    }
    out
}

impl SkillError {
    /// Invalid input at one field: `pointer` is a JSON Pointer (`/a/0/b`),
    /// `description` says what is wrong and how to fix it.
    pub fn invalid_input(pointer: impl Into<String>, description: impl Into<String>) -> Self {
        SkillError::InvalidInput {
            message: "invalid input".to_owned(),
            violations: vec![FieldViolation::new(pointer, description)],
        }
    }

    /// Invalid input with several field violations and a summary.
    pub fn invalid_input_fields(
        message: impl Into<String>,
        violations: Vec<FieldViolation>,
    ) -> Self {
        SkillError::InvalidInput {
            message: message.into(),
            violations,
        }
    }

    /// A transient failure of a dependency; see [`SkillError::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        SkillError::Unavailable(message.into())
    }

    /// A bug or unexpected state; see [`SkillError::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        SkillError::Internal(message.into())
    }

    /// The gRPC status code this error is sent as.
    pub fn code(&self) -> Code {
        match self {
            SkillError::InvalidInput { .. } => Code::InvalidArgument,
            SkillError::NotFound(_) => Code::NotFound,
            SkillError::FailedPrecondition(_) => Code::FailedPrecondition,
            SkillError::Unavailable(_) => Code::Unavailable,
            SkillError::ResourceExhausted(_) => Code::ResourceExhausted,
            SkillError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            SkillError::Internal(_) => Code::Internal,
        }
    }

    /// Whether calling again (after a backoff) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SkillError::Unavailable(_)
                | SkillError::ResourceExhausted(_)
                | SkillError::DeadlineExceeded(_)
        )
    }

    /// The gRPC status, with a `google.rpc.BadRequest` detail for
    /// [`SkillError::InvalidInput`].
    pub fn to_status(&self) -> Status {
        match self {
            SkillError::InvalidInput { violations, .. } => {
                let mut bad_request = BadRequest::new(Vec::new());
                for violation in violations {
                    bad_request.add_violation(&violation.pointer, &violation.description);
                }
                Status::with_error_details_vec(
                    Code::InvalidArgument,
                    self.to_string(),
                    [ErrorDetail::from(bad_request)],
                )
            }
            other => Status::new(other.code(), other.to_string()),
        }
    }
}

impl From<SkillError> for Status {
    fn from(error: SkillError) -> Self {
        error.to_status()
    }
}

/// An expert definition the SDK refuses to serve. Reported by
/// [`ExpertServerBuilder::build`](crate::ExpertServerBuilder::build).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Expert or skill names are lowercase ASCII letters, digits and dashes.
    #[error(
        "{what} name `{name}` is invalid: use lowercase letters, digits and dashes, starting with a letter (e.g. `classify-ips`)"
    )]
    InvalidName {
        /// `expert` or `skill`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The expert has no skills.
    #[error("expert `{expert}` has no skills; add one with `.skill(...)`")]
    NoSkills {
        /// The expert.
        expert: String,
    },
    /// Two skills share a name.
    #[error("expert `{expert}` defines skill `{skill}` twice; skill names must be unique")]
    DuplicateSkill {
        /// The expert.
        expert: String,
        /// The duplicated skill.
        skill: String,
    },
    /// A schema does not compile (or is not a JSON object).
    #[error("the {which} schema of skill `{skill}` is invalid: {reason}")]
    InvalidSchema {
        /// The skill.
        skill: String,
        /// `input` or `output`.
        which: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The cost hint is negative, NaN or infinite.
    #[error(
        "skill `{skill}` has cost hint {cost_hint}; use a finite number >= 0 (1.0 = a cheap local call)"
    )]
    InvalidCostHint {
        /// The skill.
        skill: String,
        /// The value given.
        cost_hint: f64,
    },
    /// The orchestrator URL or advertised endpoint is not a valid URI.
    #[error("{what} `{url}` is not a valid URL; use e.g. `http://127.0.0.1:7100`")]
    InvalidUrl {
        /// `orchestrator URL` or `advertised endpoint`.
        what: &'static str,
        /// The value given.
        url: String,
    },
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The expert definition is invalid.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The address could not be bound.
    #[error("cannot listen on `{addr}`; is another process using the port?")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the listener's local address failed.
    #[error("cannot read the listener's local address")]
    LocalAddr(#[source] std::io::Error),
    /// The reflection service could not load the descriptors (a bug).
    #[error("cannot build the gRPC reflection service")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_every_field_and_carries_bad_request_details() {
        let error = SkillError::invalid_input_fields(
            "input does not match the schema",
            vec![
                FieldViolation::new("/text", "expected a string"),
                FieldViolation::new("/", "\"mode\" is a required property"),
            ],
        );
        assert_eq!(
            error.to_string(),
            "input does not match the schema: `/text`: expected a string; `/`: \"mode\" is a required property"
        );
        let status = error.to_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_details_bad_request().unwrap();
        assert_eq!(details.field_violations.len(), 2);
        assert_eq!(details.field_violations[0].field, "/text");
    }

    #[test]
    fn maps_each_variant_to_its_code() {
        let cases = [
            (SkillError::NotFound("x".into()), Code::NotFound, false),
            (
                SkillError::FailedPrecondition("x".into()),
                Code::FailedPrecondition,
                false,
            ),
            (SkillError::unavailable("x"), Code::Unavailable, true),
            (
                SkillError::ResourceExhausted("x".into()),
                Code::ResourceExhausted,
                true,
            ),
            (
                SkillError::DeadlineExceeded("x".into()),
                Code::DeadlineExceeded,
                true,
            ),
            (SkillError::internal("x"), Code::Internal, false),
        ];
        for (error, code, retryable) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_status().code(), code);
            assert_eq!(error.to_status().message(), "x");
            assert_eq!(error.is_retryable(), retryable, "{error:?}");
        }
    }
}
