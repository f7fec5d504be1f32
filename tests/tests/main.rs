//! Integration tests (one binary): the orchestrator in-process on ephemeral
//! loopback ports, experts served separately with `synod-expert-sdk`,
//! everything over real gRPC and HTTP.

mod cancel;
mod cli;
mod concurrency;
mod dag;
mod deadline;
mod demo;
mod failover;
mod input_schema;
mod output_schema;
mod persistent;
mod python_expert;
mod redaction;
mod registration;
mod retry;
mod sse;
mod static_experts;
mod validate;
mod watch;
