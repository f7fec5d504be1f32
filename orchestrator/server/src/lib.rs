//! The synod orchestrator server and CLI, as a library so integration tests
//! can start it in-process.
//!
//! Layout:
//! - [`app`]: [`app::Orchestrator`] wiring (gRPC + HTTP servers, registry, store, runs).
//! - [`bindings`]: [`bindings::HttpBindings`], delivering workflow bindings
//!   (secrets, allowlist, HTTP with retries).
//! - [`runs`]: [`runs::RunManager`], which starts, tracks and (after a
//!   restart) resumes runs; `recovery` holds the run specs it resumes from.
//! - [`schedules`]: the `on.schedule` cron loop of `synod serve`.
//! - [`view`]: a run's picture folded from its events.
//! - [`grpc`]: `synod.orchestrator.v1` Runs and Workflows services.
//! - [`approvals`]: `POST /runs/{id}/approvals/{binding}`.
//! - [`auth`]: access control: API tokens and roles on every HTTP route and
//!   gRPC method, rate limits, approval roles, audit log, `synod token`.
//! - [`hooks`]: `POST /hooks/{name}`, signed webhooks starting runs.
//! - [`http`]: the JSON API and the SSE event stream.
//! - [`dashboard`]: the web dashboard at `/` (embedded HTML, CSS, JS).
//! - [`metrics`]: `GET /metrics` (Prometheus), derived from run events.
//! - [`demo`]: starting the demo experts on loopback.
//! - [`cli`]: what each `synod` subcommand does.
//! - [`telemetry`]: logging set-up.

pub mod app;
pub mod approvals;
pub mod auth;
pub mod bindings;
pub mod cli;
pub mod dashboard;
pub mod demo;
pub mod grpc;
pub mod guard;
pub mod hooks;
pub mod http;
pub mod lease;
pub mod metrics;
mod recovery;
pub mod runs;
pub mod schedules;
mod store_layer;
pub mod telemetry;
pub mod view;
