//! synod expert registry: which expert instances exist, whether they are
//! healthy, and which one takes the next call.
//!
//! Main types: [`Registry`] (instances, heartbeats, TTL expiry, health checks,
//! balancing, circuit breakers; also the planner's [`synod_planner::SkillCatalog`]),
//! [`ExpertInvoker`] (the executor's [`synod_executor::Invoker`] over gRPC), and
//! [`RegistryService`] (the `synod.orchestrator.v1.Registry` gRPC service).
//!
//! Layout:
//! - [`config`]: [`RegistryConfig`] and its defaults.
//! - `registry`: the shared state, registration, instance selection.
//! - `maintenance`: expiry, health checks, static endpoint retries.
//! - `balance`: power of two choices on load (pure).
//! - `breaker`: the per-instance circuit breaker (pure).
//! - `card`: validated expert cards, the compiled output-schema cache.
//! - `classify`: failed calls to step errors ([`RETRYABLE_CODES`]).
//! - `client`: [`ExpertInvoker`].
//! - `service`: [`RegistryService`].

mod balance;
mod breaker;
mod card;
mod classify;
mod client;
pub mod config;
mod error;
mod maintenance;
mod registry;
mod service;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use classify::RETRYABLE_CODES;
pub use client::{ExpertInvoker, InputGuard};
pub use config::RegistryConfig;
pub use error::RegistryError;
pub use registry::Registry;
pub use service::{RegistryService, registry_error_status};
