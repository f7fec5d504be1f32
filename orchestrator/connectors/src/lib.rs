//! synod-connectors: how synod delivers workflow results into business systems and how
//! external systems start runs.
//!
//! - [`HttpDelivery`] sends a rendered [`BindingRequest`] over HTTP(S) with an
//!   [`Allowlist`] checked before any connection, bounded retries with backoff, jitter and
//!   `Retry-After`, a stable `Idempotency-Key`, and typed [`AttemptRecord`]s /
//!   [`DeliveryReport`]s for the executor to turn into run events.
//! - [`Secrets`] resolves `${{ secrets.X }}` from `SYNOD_SECRET_X` or a secrets directory;
//!   [`SecretValue`] never prints its value and [`Redactor`] replaces resolved values with
//!   `***` in anything recorded.
//! - [`webhook`] verifies signed webhook triggers (HMAC-SHA256, replay window); pure.
//! - [`CronSchedule`] parses `on.schedule` cron expressions and computes the next fire time; pure.
//! - [`render_dry_run`] shows a binding request exactly as it would be sent, secrets masked.
//!
//! Layout:
//! - `allowlist`: destination rules from the server config (pure)
//! - `request`: the binding request and its validated, sendable form (pure)
//! - `secrets`, `redact`: secret resolution (env/files) and masking
//! - `classify`: status/error classification, `Retry-After` parsing (pure)
//! - `record`: delivery records and outcomes
//! - `delivery`: the reqwest-based sender and its retry loop (I/O)
//! - `dry_run`, `webhook`, `schedule`

mod allowlist;
mod classify;
mod delivery;
mod dry_run;
mod record;
mod redact;
mod request;
pub mod schedule;
mod secrets;
pub mod webhook;

pub use allowlist::{
    ALLOWLIST_CONFIG_KEY, AllowRule, Allowlist, AllowlistError, DestinationError,
    DestinationRefusal,
};
pub use classify::{ErrorClass, parse_retry_after};
pub use delivery::{DeliveryPolicy, DeliveryPolicyError, HttpDelivery, HttpDeliveryError};
pub use dry_run::{DryRun, DryRunHeader, render_dry_run};
pub use record::{AttemptRecord, DeliveryOutcome, DeliveryReport};
pub use redact::{MASK, Redactor};
pub use request::{
    BindingRequest, IDEMPOTENCY_KEY_HEADER, RequestBody, RequestError, ValidRequest,
};
pub use schedule::{CronError, CronSchedule};
pub use secrets::{
    ResolvedSecrets, SECRET_ENV_PREFIX, SecretError, SecretName, SecretValue, Secrets,
};
