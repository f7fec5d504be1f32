//! Retry policies, as written in workflows (`retry: { policy: exponential, ... }`)
//! and used by the executor. Only errors classified retryable are retried.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::HumanDuration;

/// When and how often a failed step attempt is tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryPolicy {
    /// Never retry.
    None,
    /// Retry after the same delay every time.
    Fixed {
        /// Delay between attempts.
        interval: HumanDuration,
        /// Total attempts including the first (>= 1).
        max_attempts: u32,
    },
    /// Retry with exponentially growing delays and full jitter.
    Exponential {
        /// Delay before the first retry.
        initial_interval: HumanDuration,
        /// Growth factor per retry (>= 1.0).
        #[serde(default = "default_factor")]
        factor: f64,
        /// Upper bound for one delay.
        #[serde(default = "default_max_interval")]
        max_interval: HumanDuration,
        /// Total attempts including the first (>= 1).
        max_attempts: u32,
    },
}

fn default_factor() -> f64 {
    2.0
}

fn default_max_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms then 200 ms (each with jitter), capped at 10 s.
    fn default() -> Self {
        RetryPolicy::Exponential {
            initial_interval: HumanDuration(Duration::from_millis(100)),
            factor: 2.0,
            max_interval: default_max_interval(),
            max_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// Total attempts allowed, including the first.
    pub fn max_attempts(&self) -> u32 {
        match self {
            RetryPolicy::None => 1,
            RetryPolicy::Fixed { max_attempts, .. }
            | RetryPolicy::Exponential { max_attempts, .. } => (*max_attempts).max(1),
        }
    }

    /// The delay before attempt `failed_attempt + 1`, or `None` when no
    /// attempt is left. `jitter` is a uniform sample in `[0, 1)`; exponential
    /// delays use "equal jitter": half fixed, half random, so a retry never
    /// fires immediately yet retries of many runs spread out.
    pub fn delay_after(&self, failed_attempt: u32, jitter: f64) -> Option<Duration> {
        if failed_attempt >= self.max_attempts() {
            return None;
        }
        match self {
            RetryPolicy::None => None,
            RetryPolicy::Fixed { interval, .. } => Some(interval.0),
            RetryPolicy::Exponential {
                initial_interval,
                factor,
                max_interval,
                ..
            } => {
                let exponent = failed_attempt.saturating_sub(1).min(64) as i32;
                let base = initial_interval.0.as_secs_f64() * factor.max(1.0).powi(exponent);
                let capped = base.min(max_interval.0.as_secs_f64());
                let jittered = capped / 2.0 + capped / 2.0 * jitter.clamp(0.0, 1.0);
                Some(Duration::from_secs_f64(jittered))
            }
        }
    }

    /// Problems with the policy's numbers, as messages (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match self {
            RetryPolicy::None => {}
            RetryPolicy::Fixed { max_attempts, .. } => {
                if *max_attempts == 0 {
                    problems.push("`max_attempts` must be at least 1 (1 = no retry)".to_owned());
                }
            }
            RetryPolicy::Exponential {
                factor,
                max_attempts,
                initial_interval,
                max_interval,
            } => {
                if *max_attempts == 0 {
                    problems.push("`max_attempts` must be at least 1 (1 = no retry)".to_owned());
                }
                if !(factor.is_finite() && *factor >= 1.0) {
                    problems.push(format!("`factor` must be a number >= 1.0, found {factor}"));
                }
                if max_interval.0 < initial_interval.0 {
                    problems.push(format!(
                        "`max_interval` ({max_interval}) is shorter than `initial_interval` ({initial_interval})"
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_grows_caps_and_stops() {
        let policy = RetryPolicy::Exponential {
            initial_interval: HumanDuration(Duration::from_millis(100)),
            factor: 2.0,
            max_interval: HumanDuration(Duration::from_millis(300)),
            max_attempts: 4,
        };
        assert_eq!(policy.delay_after(1, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(policy.delay_after(2, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(policy.delay_after(3, 1.0), Some(Duration::from_millis(300)));
        assert_eq!(policy.delay_after(3, 0.0), Some(Duration::from_millis(150)));
        assert_eq!(policy.delay_after(4, 0.5), None);
    }

    #[test]
    fn reads_yaml_style_json() {
        let policy: RetryPolicy = serde_json::from_str(
            r#"{"policy":"exponential","initial_interval":"250ms","max_attempts":5}"#,
        )
        .unwrap();
        assert_eq!(policy.max_attempts(), 5);
        let none: RetryPolicy = serde_json::from_str(r#"{"policy":"none"}"#).unwrap();
        assert_eq!(none.delay_after(1, 0.5), None);
    }
}
