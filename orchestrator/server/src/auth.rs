//! Access control: API tokens with roles on every HTTP route and gRPC
//! method, per-token rate limits, approval roles and the audit log.
//!
//! - [`role`]: the roles and what each allows (pure).
//! - [`token`]: the token format, SHA-256 hashing, constant-time check (pure).
//! - [`policy`]: which role each route and method needs (pure).
//! - [`bucket`]: the per-token rate limit's token bucket (pure).
//! - [`guard`]: [`Authenticator`] (store lookups, limits, audit) and the
//!   HTTP middleware and gRPC tower layer that put it in front of the API.
//! - [`approval`]: approval decisions checked against the binding's roles, audited.
//! - [`registry`]: the registry service with audit entries for registry changes.
//! - [`bootstrap`]: the first admin token, written to a 0600 file.
//! - [`client`]: which token the CLI sends and the channel that sends it.
//! - [`commands`]: `synod token create|list|revoke`.
//!
//! Tokens are stored hashed in the run store (`synod_store::TokenStore`).

pub mod approval;
pub mod bootstrap;
pub mod bucket;
pub mod client;
pub mod commands;
pub mod guard;
pub mod policy;
pub mod registry;
pub mod role;
pub mod token;

pub use bucket::RateLimit;
pub use guard::{AuthConfig, Authenticator, Denial, GrpcAuthLayer, Principal};
pub use policy::Access;
pub use role::Role;
