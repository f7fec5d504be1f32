//! The per-instance circuit breaker. Pure: callers pass the current time, so
//! the transitions test without a clock.
//!
//! ```text
//! Closed --N consecutive instance failures--> Open --cool-down over, one call sent--> HalfOpen (probe)
//! HalfOpen --probe answered--> Closed    HalfOpen --probe failed--> Open (new cool-down)
//! HalfOpen --probe dropped unanswered--> HalfOpen (next call is the probe)
//! ```

use std::time::Duration;

use tokio::time::Instant;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    /// Calls flow; counts consecutive instance failures.
    Closed { consecutive_failures: u32 },
    /// Calls are rejected until `until`.
    Open { until: Instant },
    /// One probe call may go through; its outcome closes or re-opens.
    HalfOpen { probe_in_flight: bool },
}

/// A circuit breaker for one instance.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    state: BreakerState,
    failure_threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `failure_threshold` (at least 1)
    /// consecutive failures and stays open for `cooldown`.
    pub(crate) fn new(failure_threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
            failure_threshold: failure_threshold.max(1),
            cooldown,
        }
    }

    /// The current state.
    #[cfg(test)]
    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call may be sent at `now`.
    pub(crate) fn admits(&self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until } => now >= until,
            BreakerState::HalfOpen { probe_in_flight } => !probe_in_flight,
        }
    }

    /// Whether the breaker is open or half-open (not trusted yet).
    pub(crate) fn is_tripped(&self) -> bool {
        !matches!(self.state, BreakerState::Closed { .. })
    }

    /// Records that a call is sent at `now`; returns true when the call is the
    /// half-open probe. Call only after [`Breaker::admits`] returned true.
    pub(crate) fn on_dispatch(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed { .. } => false,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
            BreakerState::HalfOpen {
                probe_in_flight: false,
            } => {
                self.state = BreakerState::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => false,
        }
    }

    /// The instance answered (successfully, or with an error of its own that
    /// proves it is alive): close.
    pub(crate) fn on_answer(&mut self) {
        self.state = BreakerState::Closed {
            consecutive_failures: 0,
        };
    }

    /// The instance failed (unreachable, unavailable, overloaded, deadline
    /// exceeded) at `now`. Returns true when this failure opened the breaker.
    pub(crate) fn on_failure(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let consecutive_failures = consecutive_failures + 1;
                if consecutive_failures >= self.failure_threshold {
                    self.state = BreakerState::Open {
                        until: now + self.cooldown,
                    };
                    true
                } else {
                    self.state = BreakerState::Closed {
                        consecutive_failures,
                    };
                    false
                }
            }
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Open {
                    until: now + self.cooldown,
                };
                true
            }
            // A call sent before the breaker opened failed late: keep the
            // cool-down already running.
            BreakerState::Open { .. } => false,
        }
    }

    /// The half-open probe ended without an answer (the caller gave up):
    /// let the next call probe instead.
    pub(crate) fn on_probe_abandoned(&mut self) {
        if let BreakerState::HalfOpen {
            probe_in_flight: true,
        } = self.state
        {
            self.state = BreakerState::HalfOpen {
                probe_in_flight: false,
            };
        }
    }

    /// The state in words, for error messages, e.g. `circuit open for 4.2s more`.
    pub(crate) fn describe(&self, now: Instant) -> String {
        match self.state {
            BreakerState::Closed { .. } => "circuit closed".to_owned(),
            BreakerState::Open { until } => {
                let left = until.saturating_duration_since(now);
                format!(
                    "circuit open for {:.1}s more after {} consecutive failures",
                    left.as_secs_f64(),
                    self.failure_threshold
                )
            }
            BreakerState::HalfOpen { .. } => {
                "circuit half-open, a probe call is in flight".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(5);

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let now = Instant::now();
        let mut breaker = Breaker::new(3, COOLDOWN);
        assert!(!breaker.on_failure(now));
        assert!(!breaker.on_failure(now));
        breaker.on_answer(); // resets the count
        assert!(!breaker.on_failure(now));
        assert!(!breaker.on_failure(now));
        assert!(breaker.admits(now));
        assert!(breaker.on_failure(now));
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: now + COOLDOWN
            }
        );
        assert!(!breaker.admits(now));
        assert!(!breaker.admits(now + COOLDOWN - Duration::from_millis(1)));
        assert!(
            breaker
                .describe(now)
                .starts_with("circuit open for 5.0s more")
        );
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through_and_closes_on_answer() {
        let now = Instant::now();
        let mut breaker = Breaker::new(1, COOLDOWN);
        assert!(breaker.on_failure(now));
        let later = now + COOLDOWN;
        assert!(breaker.admits(later));
        assert!(
            breaker.on_dispatch(later),
            "first call after cool-down is the probe"
        );
        assert!(!breaker.admits(later), "only one probe at a time");
        assert!(breaker.is_tripped());
        breaker.on_answer();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert!(!breaker.on_dispatch(later), "closed calls are not probes");
    }

    #[test]
    fn failed_probe_reopens_with_a_new_cooldown() {
        let now = Instant::now();
        let mut breaker = Breaker::new(2, COOLDOWN);
        breaker.on_failure(now);
        breaker.on_failure(now);
        let later = now + COOLDOWN + Duration::from_secs(1);
        assert!(breaker.on_dispatch(later));
        assert!(breaker.on_failure(later));
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: later + COOLDOWN
            }
        );
    }

    #[test]
    fn abandoned_probe_lets_the_next_call_probe() {
        let now = Instant::now();
        let mut breaker = Breaker::new(1, COOLDOWN);
        breaker.on_failure(now);
        let later = now + COOLDOWN;
        assert!(breaker.on_dispatch(later));
        breaker.on_probe_abandoned();
        assert!(breaker.admits(later));
        assert!(breaker.on_dispatch(later));
    }

    #[test]
    fn late_failure_while_open_keeps_the_running_cooldown() {
        let now = Instant::now();
        let mut breaker = Breaker::new(1, COOLDOWN);
        breaker.on_failure(now);
        assert!(!breaker.on_failure(now + Duration::from_secs(4)));
        assert!(breaker.admits(now + COOLDOWN));
    }
}
