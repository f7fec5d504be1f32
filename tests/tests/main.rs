//! Integration tests (one binary): the orchestrator in-process on ephemeral
//! loopback ports, experts served separately with `synod-expert-sdk`,
//! everything over real gRPC and HTTP. Shared set-up lives in the
//! `synod-integration-tests` library (`tests/src`).
//!
//! Runs: `dag` (diamond, inputs, concurrent runs), `retry`, `deadline`,
//! `cancel`, `concurrency`, `input_schema`, `output_schema`, `redaction`.
//! Experts: `failover` (two instances, restarts), `registration` (SDK
//! self-registration, heartbeats), `static_experts`, `python_expert`.
//! Events: `watch` (gRPC resume), `sse`, `persistent` (SQLite, restart).
//! Workflows: `bindings` (if, for_each, HTTP bindings to a local receiver),
//! `hooks` (signed webhooks starting runs), `approvals` (approve, reject, timeout), `examples` (workflows/ with bindings).
//! Users' paths: `demo` (ioc-triage), `validate`, `cli`, `dashboard` (headless
//! Chromium), `metrics` (Prometheus scrape), `telemetry` (OTLP traces to a
//! local receiver).

mod approvals;
mod auth;
mod bindings;
mod cancel;
mod cli;
mod concurrency;
mod crash;
mod dag;
mod dashboard;
mod deadline;
mod demo;
mod examples;
mod failover;
mod guard;
mod hooks;
mod input_schema;
mod llm_critic;
mod llm_planner;
mod metrics;
mod output_schema;
mod persistent;
mod python_expert;
mod redaction;
mod reflection;
mod registration;
mod retry;
mod sse;
mod static_experts;
mod task;
mod telemetry;
mod validate;
mod watch;
