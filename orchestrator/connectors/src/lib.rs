//! synod-connectors: how synod delivers workflow results into business systems (bindings)
//! and how external systems start runs (signed webhook triggers).
//!
//! Main types:
//! - [`HttpDelivery`] (feature `http`, on by default) sends a rendered [`BindingRequest`]
//!   with reqwest over rustls (system trust store, optionally plus an internal CA:
//!   [`TlsRoots`]). The [`Allowlist`] (server config key [`ALLOWLIST_CONFIG_KEY`]) is
//!   checked before any connection; redirects are **not** followed (a 3xx ends the
//!   delivery, so nothing can be bounced to a host outside the allowlist); environment
//!   proxies are ignored. Connect errors, timeouts, broken connections, 5xx, 408 and 429 are
//!   retried under a [`DeliveryPolicy`] (exponential backoff with jitter, `Retry-After` in
//!   seconds or as an HTTP-date, bounded attempts and a total deadline); untrusted
//!   certificates and other 4xx are not. Every attempt carries the same `Idempotency-Key`.
//!   Each attempt yields an [`AttemptRecord`] and the delivery a [`DeliveryReport`] whose
//!   strings are all redacted: the executor turns them into run events.
//! - [`Secrets`] resolves `${{ secrets.X }}` from `SYNOD_SECRET_X` (then `SYNOD_SECRET_<X
//!   upper-cased>`) or the file `X` in a secrets directory. [`SecretValue`] never prints
//!   its value; [`Redactor`] (from [`ResolvedSecrets::redactor`]) replaces resolved values,
//!   also percent-encoded or JSON-escaped, with `***`.
//! - [`webhook`] verifies `POST /hooks/<name>` requests: `X-Synod-Timestamp` (Unix seconds)
//!   and `X-Synod-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`,
//!   constant-time, 5-minute replay window. Pure.
//! - [`render_dry_run`] renders a request as it would be sent, for `synod run --dry-run`.
//!
//! From a workflow binding: the workflow crate renders `bindings.<name>.http` (`method`,
//! `url`, `headers`, `body`) and `idempotency_key` with the run's values and resolved
//! secrets into a [`BindingRequest`]; the binding's `retry` ([`synod_types::RetryPolicy`])
//! becomes [`DeliveryPolicy::retry`].
//!
//! Layout:
//! - `allowlist`: destination rules (pure)
//! - `request`: the rendered request and its validated, sendable form (pure)
//! - `secrets`, `redact`: secret resolution (env, files) and masking
//! - `classify`: failure classes and `Retry-After` parsing (pure)
//! - `record`: delivery records and outcomes
//! - `delivery`: the sender, its retry decision (pure) and loop (I/O); feature `http`
//!
//! Without the `http` feature the crate does no I/O except reading secret files, so pure
//! crates (e.g. the workflow validator) can use the allowlist and the request checks.
//! - `dry_run`, `webhook`

mod allowlist;
mod classify;
#[cfg(feature = "http")]
mod delivery;
mod dry_run;
mod record;
mod redact;
mod request;
mod secrets;
pub mod webhook;

pub use allowlist::{
    ALLOWLIST_CONFIG_KEY, AllowRule, Allowlist, AllowlistError, DestinationError,
    DestinationRefusal,
};
pub use classify::{ErrorClass, parse_retry_after};
#[cfg(feature = "http")]
pub use delivery::{
    DeliveryPolicy, DeliveryPolicyError, HttpDelivery, HttpDeliveryError, TlsRoots,
};
pub use dry_run::{DryRun, DryRunHeader, render_dry_run};
pub use record::{AttemptRecord, DeliveryOutcome, DeliveryReport};
pub use redact::{MASK, Redactor};
pub use request::{
    BindingRequest, IDEMPOTENCY_KEY_HEADER, RequestBody, RequestError, ValidRequest,
};
pub use secrets::{
    ResolvedSecrets, SECRET_ENV_PREFIX, SecretError, SecretName, SecretValue, Secrets,
};
