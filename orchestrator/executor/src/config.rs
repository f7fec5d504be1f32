//! [`ExecutorConfig`]: the runtime knobs of one run's execution.

use std::time::Duration;

use synod_types::RetryPolicy;

/// How the executor runs a plan. Runtime knobs (set by the server from its
/// configuration or CLI flags), not workflow fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// Most step attempts in flight at once in one run. `0` is treated as `1`.
    pub max_concurrency: usize,
    /// Deadline of one attempt of a step that sets no `timeout`.
    pub default_timeout: Duration,
    /// Retry policy of a step that sets no `retry`.
    pub default_retry: RetryPolicy,
    /// Seed of the random source for retry jitter. `Some` makes retry delays
    /// reproducible (tests, replays); `None` seeds from the system.
    pub rng_seed: Option<u64>,
}

impl Default for ExecutorConfig {
    /// 64 attempts in flight, 60 s per attempt, [`RetryPolicy::default`],
    /// system-seeded jitter.
    fn default() -> Self {
        ExecutorConfig {
            max_concurrency: 64,
            default_timeout: Duration::from_secs(60),
            default_retry: RetryPolicy::default(),
            rng_seed: None,
        }
    }
}
