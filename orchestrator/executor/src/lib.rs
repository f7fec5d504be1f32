//! synod executor: runs a [`synod_planner::Plan`] to a defined end.
//!
//! A run is a sans-IO state machine ([`RunMachine`]: `apply(input) ->
//! actions`) plus a thin async driver ([`execute`]) that performs the actions:
//! appends events to the run store, sends attempts through an [`Invoker`],
//! keeps retry timers and turns cancellation into an input.
//!
//! Layout:
//! - [`binding`]: the [`Deliverer`] trait the driver calls to deliver a
//!   workflow binding, and what it reports.
//! - [`config`]: [`ExecutorConfig`], the runtime knobs (concurrency, default
//!   timeout and retry policy, jitter seed).
//! - [`machine`]: [`RunMachine`], [`MachineInput`], [`Action`]: scheduling,
//!   retries, timeouts, skipping and cancellation rules.
//! - [`driver`]: [`execute`], [`RunOutcome`], [`ExecutorError`].
//! - [`invoke`]: the [`Invoker`] trait the driver calls to run one step
//!   attempt (implemented by the registry's gRPC expert client, and by
//!   in-process invokers in tests and benchmarks).
//! - [`telemetry`]: the OpenTelemetry spans of the driver ([`Tracer`]).
//! - [`planning`]: [`plan_with_llm`], the LLM planner's ask / validate /
//!   repair loop over an expert's `plan` skill.

pub mod binding;
pub mod config;
pub mod driver;
pub mod invoke;
pub mod machine;
pub mod planning;
pub mod telemetry;

pub use binding::{BindingCall, BindingResult, Deliverer, DeliveryAttempt};
pub use config::ExecutorConfig;
pub use driver::{
    ApprovalDecision, ExecutorError, RunOutcome, Services, execute, execute_machine, resume,
    resume_machine,
};
pub use invoke::{Feedback, GuardReport, Invocation, Invoker, Need, StepOutput, Usage};
pub use machine::{Action, ContentRedactor, MachineInput, ResumeError, RunMachine};
pub use planning::{LlmPlanning, PLAN_CRITIC, PlannerCall, plan_with_llm};
pub use telemetry::Tracer;

#[cfg(test)]
mod test_support;
