//! Registry settings.

use std::time::Duration;

/// How the registry keeps instances, checks their health and breaks circuits.
///
/// Every field has a default (see [`RegistryConfig::default`]); the server
/// fills them from its own config layers.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// Heartbeat TTL applied when a registration does not ask for one (15s).
    pub default_ttl: Duration,
    /// How often every instance is health-checked with `grpc.health.v1` (5s).
    pub health_interval: Duration,
    /// Consecutive instance failures (unreachable, unavailable, overloaded,
    /// deadline exceeded) that open an instance's circuit breaker (3). Values
    /// below 1 are treated as 1.
    pub breaker_failures: u32,
    /// How long an open breaker rejects calls before it lets one probe call
    /// through (5s).
    pub breaker_cooldown: Duration,
    /// Time to establish a connection to an instance (2s). `Describe` at
    /// registration and each health check may take twice as long in total.
    pub connect_timeout: Duration,
    /// Largest response message accepted from an expert, in bytes (16 MiB).
    pub max_message_bytes: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            default_ttl: Duration::from_secs(15),
            health_interval: Duration::from_secs(5),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

impl RegistryConfig {
    /// Total time allowed for one control call (`Describe`, health check).
    pub(crate) fn control_call_timeout(&self) -> Duration {
        self.connect_timeout * 2
    }

    /// How often expired registrations are looked for: often enough that an
    /// instance outlives its TTL by at most a fraction of it.
    pub(crate) fn expiry_interval(&self) -> Duration {
        let quarter_ttl = self.default_ttl / 4;
        quarter_ttl.clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}
