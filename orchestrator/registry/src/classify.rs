//! How a failed expert call is classified: the step error the executor sees
//! (with its retry decision) and whether it counts against the instance.

use std::error::Error as _;
use std::time::Duration;

use synod_types::ErrorCode;
use synod_types::error::StepError;
use tonic::{Code, Status};

use crate::registry::CallOutcome;

/// gRPC codes answered by an expert after which another attempt may succeed.
/// Errors raised by the transport itself (connection refused or reset, ...)
/// are always retryable, whatever their code (`Unknown` included).
pub const RETRYABLE_CODES: &[Code] = &[
    Code::Unavailable,
    Code::ResourceExhausted,
    Code::Aborted,
    Code::DeadlineExceeded,
];

/// Retryable codes that also say the instance itself is in trouble, so they
/// count toward its circuit breaker. `Aborted` is a conflict inside one call.
const INSTANCE_FAILURE_CODES: &[Code] = &[
    Code::Unavailable,
    Code::ResourceExhausted,
    Code::DeadlineExceeded,
];

/// What the caller knew about the failed call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallContext<'a> {
    /// `expert/skill`, as text.
    pub(crate) uses: &'a str,
    /// The instance called.
    pub(crate) instance: &'a str,
    /// The attempt's deadline.
    pub(crate) deadline: Duration,
    /// Time from sending the call to the failure.
    pub(crate) elapsed: Duration,
}

/// A status's code, message and (for transport errors) source chain, as text.
pub(crate) fn status_text(status: &Status) -> String {
    let mut text = format!("{:?}", status.code());
    if !status.message().is_empty() {
        text.push_str(": ");
        text.push_str(status.message());
    }
    let mut source = status.source();
    while let Some(error) = source {
        let detail = error.to_string();
        if !text.contains(&detail) {
            text.push_str(": ");
            text.push_str(&detail);
        }
        source = error.source();
    }
    text
}

/// The error for an attempt that ran out of its deadline.
pub(crate) fn deadline_exceeded(call: &CallContext<'_>) -> StepError {
    StepError::new(
        ErrorCode::DeadlineExceeded,
        format!(
            "`{}` on instance `{}` did not answer within the attempt's deadline of {:?}; raise the step's `timeout` or look at why the expert is slow",
            call.uses, call.instance, call.deadline
        ),
    )
}

/// Classifies a failed call.
pub(crate) fn classify_status(status: &Status, call: &CallContext<'_>) -> (StepError, CallOutcome) {
    let code = status.code();
    let detail = status_text(status);
    // A status with a source was made on this side from a transport error:
    // the expert never answered.
    let from_transport = status.source().is_some();
    let timed_out = code == Code::DeadlineExceeded
        || (code == Code::Cancelled && call.elapsed >= call.deadline);
    if timed_out {
        return (deadline_exceeded(call), CallOutcome::InstanceFailure);
    }
    if from_transport {
        let error = StepError::new(
            ErrorCode::ExpertTransient,
            format!(
                "could not complete `{}` on instance `{}`: {detail}; the call will be retried",
                call.uses, call.instance
            ),
        );
        return (error, CallOutcome::InstanceFailure);
    }
    let outcome = if INSTANCE_FAILURE_CODES.contains(&code) {
        CallOutcome::InstanceFailure
    } else {
        CallOutcome::Answered
    };
    let (error_code, hint) = if RETRYABLE_CODES.contains(&code) || code == Code::Cancelled {
        (ErrorCode::ExpertTransient, "the call may be retried")
    } else {
        match code {
            Code::InvalidArgument | Code::OutOfRange => (
                ErrorCode::InvalidInput,
                "fix the step's input to match the skill's input schema",
            ),
            Code::NotFound | Code::Unimplemented => (
                ErrorCode::UnknownSkill,
                "the instance does not offer this skill although its card lists it; fix the expert or its card",
            ),
            _ => (
                ErrorCode::ExpertFailed,
                "see the expert's logs; retrying will not help",
            ),
        }
    };
    let error = StepError::new(
        error_code,
        format!(
            "instance `{}` failed `{}`: {detail}; {hint}",
            call.instance, call.uses
        ),
    );
    (error, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: CallContext<'static> = CallContext {
        uses: "det/detect",
        instance: "i-1",
        deadline: Duration::from_secs(1),
        elapsed: Duration::from_millis(10),
    };

    fn classify(status: Status) -> (StepError, CallOutcome) {
        classify_status(&status, &CALL)
    }

    #[test]
    fn invalid_argument_is_invalid_input_and_not_an_instance_failure() {
        let (error, outcome) = classify(Status::invalid_argument("`events` must be an array"));
        assert_eq!(error.code, ErrorCode::InvalidInput);
        assert!(!error.retryable);
        assert_eq!(outcome, CallOutcome::Answered);
        assert!(
            error.message.contains("`events` must be an array"),
            "{}",
            error.message
        );
    }

    #[test]
    fn unavailable_and_exhausted_are_retryable_instance_failures() {
        for status in [
            Status::unavailable("down"),
            Status::resource_exhausted("busy"),
        ] {
            let (error, outcome) = classify(status);
            assert_eq!(error.code, ErrorCode::ExpertTransient);
            assert!(error.retryable);
            assert_eq!(outcome, CallOutcome::InstanceFailure);
        }
        let (error, outcome) = classify(Status::aborted("conflict"));
        assert!(error.retryable);
        assert_eq!(outcome, CallOutcome::Answered);
    }

    #[test]
    fn deadline_and_late_cancellation_are_deadline_exceeded() {
        let (error, outcome) = classify(Status::deadline_exceeded("late"));
        assert_eq!(error.code, ErrorCode::DeadlineExceeded);
        assert!(error.retryable);
        assert_eq!(outcome, CallOutcome::InstanceFailure);
        let late = CallContext {
            elapsed: Duration::from_secs(1),
            ..CALL
        };
        let (error, _) = classify_status(&Status::cancelled("Timeout expired"), &late);
        assert_eq!(error.code, ErrorCode::DeadlineExceeded);
    }

    #[test]
    fn unknown_from_the_expert_is_permanent_but_from_the_transport_is_transient() {
        let (error, outcome) = classify(Status::unknown("panic in handler"));
        assert_eq!(error.code, ErrorCode::ExpertFailed);
        assert!(!error.retryable);
        assert_eq!(outcome, CallOutcome::Answered);
        let io = std::io::Error::other("connection reset");
        let (error, outcome) = classify(Status::from_error(Box::new(io)));
        assert_eq!(error.code, ErrorCode::ExpertTransient);
        assert!(error.retryable);
        assert_eq!(outcome, CallOutcome::InstanceFailure);
        assert!(
            error.message.contains("connection reset"),
            "{}",
            error.message
        );
    }

    #[test]
    fn not_found_is_unknown_skill_and_internal_is_expert_failed() {
        assert_eq!(
            classify(Status::not_found("no skill")).0.code,
            ErrorCode::UnknownSkill
        );
        assert_eq!(
            classify(Status::unimplemented("")).0.code,
            ErrorCode::UnknownSkill
        );
        assert_eq!(
            classify(Status::internal("bug")).0.code,
            ErrorCode::ExpertFailed
        );
        assert_eq!(
            classify(Status::permission_denied("no")).0.code,
            ErrorCode::ExpertFailed
        );
    }
}
