//! `synod-eval bench`: the peer benchmark's four workloads (chain6,
//! diamond6, layered100, reflect_loop) x experts (noop, 1 ms sleep, loopback
//! HTTP echo) x modes (direct, none, memory, sqlite) x transports
//! (in-process, gRPC), written in the peer's results schema (version 1) so
//! `compare.py ours.json results.json` lines them up with LangGraph.
//!
//! Layout:
//! - [`workload`]: the shapes and their unrolling into executions (pure).
//! - [`expert`]: the node bodies and the HTTP client.
//! - [`transport`]: in-process invoker, SDK expert, raw tonic echo.
//! - [`mode`]: direct / none / memory runs, the plan, result checks.
//! - [`measure`]: the protocol (warm-up, latency, throughput).
//! - [`combo`]: one combination or the calibration, as a job.
//! - [`runner`]: servers, child processes, noise, the results document.
//! - [`report`]: overheads, summary, gRPC vs raw round trip, goals (pure).
//! - [`stats`], [`sys`], [`echo`]: percentiles, `/proc`, the echo server.

pub mod combo;
pub mod echo;
pub mod expert;
pub mod measure;
pub mod mode;
pub mod report;
pub mod runner;
pub mod stats;
pub mod sys;
pub mod transport;
pub mod workload;

#[cfg(test)]
mod tests;
