//! Classification of delivery failures and `Retry-After` parsing. Pure.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The kind of a failed delivery attempt; decides whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// TCP/TLS connection could not be established. Retried.
    Connect,
    /// The attempt exceeded its timeout. Retried.
    Timeout,
    /// The destination's TLS certificate is not trusted (unknown CA, wrong name, expired).
    /// Not retried: it will not fix itself.
    Certificate,
    /// The connection failed after it was established (reset, closed early). Retried:
    /// the idempotency key makes a repeat safe.
    Transport,
    /// HTTP 5xx. Retried.
    ServerError,
    /// HTTP 429. Retried, after `Retry-After` when given.
    RateLimited,
    /// HTTP 408. Retried.
    RequestTimeout,
    /// HTTP 4xx other than 408 and 429. Not retried: the request itself is wrong.
    ClientError,
    /// HTTP 3xx. Not retried: bindings do not follow redirects.
    Redirect,
    /// Any other non-2xx status (1xx). Not retried.
    UnexpectedStatus,
    /// The destination is not in the allowlist. Nothing was sent.
    Disallowed,
    /// The rendered request is invalid. Nothing was sent.
    InvalidRequest,
    /// The total delivery deadline was reached before an attempt could succeed.
    DeadlineExceeded,
}

impl ErrorClass {
    /// Whether another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Connect
                | ErrorClass::Timeout
                | ErrorClass::Transport
                | ErrorClass::ServerError
                | ErrorClass::RateLimited
                | ErrorClass::RequestTimeout
        )
    }

    /// The class of an HTTP status, or `None` for success (2xx).
    pub fn from_status(status: u16) -> Option<ErrorClass> {
        match status {
            200..=299 => None,
            429 => Some(ErrorClass::RateLimited),
            408 => Some(ErrorClass::RequestTimeout),
            300..=399 => Some(ErrorClass::Redirect),
            400..=499 => Some(ErrorClass::ClientError),
            500..=599 => Some(ErrorClass::ServerError),
            _ => Some(ErrorClass::UnexpectedStatus),
        }
    }

    /// The snake_case name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Certificate => "certificate",
            ErrorClass::Transport => "transport",
            ErrorClass::ServerError => "server_error",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::RequestTimeout => "request_timeout",
            ErrorClass::ClientError => "client_error",
            ErrorClass::Redirect => "redirect",
            ErrorClass::UnexpectedStatus => "unexpected_status",
            ErrorClass::Disallowed => "disallowed",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms).
/// A date in the past means "now" (zero). Returns `None` when the value is malformed.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let text = value.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ErrorClass::from_status(204), None);
        for (status, class, retry) in [
            (500, ErrorClass::ServerError, true),
            (503, ErrorClass::ServerError, true),
            (429, ErrorClass::RateLimited, true),
            (408, ErrorClass::RequestTimeout, true),
            (400, ErrorClass::ClientError, false),
            (404, ErrorClass::ClientError, false),
            (409, ErrorClass::ClientError, false),
            (302, ErrorClass::Redirect, false),
            (101, ErrorClass::UnexpectedStatus, false),
        ] {
            assert_eq!(ErrorClass::from_status(status), Some(class), "{status}");
            assert_eq!(class.is_retryable(), retry, "{status}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:02 2015", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
