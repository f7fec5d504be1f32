//! Names used in OpenTelemetry traces: span names and span attribute keys.
//!
//! The one place these strings are spelled. The orchestrator (executor
//! driver, registry client) and the expert SDK (invoke handler) use them, so
//! a trace backend query such as `synod.run.id = "<id>"` finds the spans of
//! both sides. Attribute values are identifiers, counters and outcomes only:
//! never run inputs, step outputs, error messages or secrets.
//!
//! A run's trace nests as
//! `synod.run` → `synod.step.attempt` (or `synod.critic`, `synod.item.attempt`)
//! → `synod.expert.v1.Expert/Invoke` (client, in the orchestrator)
//! → `synod.expert.v1.Expert/Invoke` (server, in the expert). Binding
//! deliveries are `synod.binding` children of the run span.

/// Span names.
pub mod span {
    /// One execution of a run (root span; a resumed run starts a new trace).
    pub const RUN: &str = "synod.run";
    /// One attempt of one step.
    pub const STEP_ATTEMPT: &str = "synod.step.attempt";
    /// One attempt for one item of a `for_each` step.
    pub const ITEM_ATTEMPT: &str = "synod.item.attempt";
    /// One call of a reflection critic skill.
    pub const CRITIC: &str = "synod.critic";
    /// One delivery of a workflow binding.
    pub const BINDING: &str = "synod.binding";
    /// The gRPC `Invoke` call, on both sides (client and server span kinds).
    pub const EXPERT_INVOKE: &str = "synod.expert.v1.Expert/Invoke";
    /// The gRPC `InvokeStream` call (server side).
    pub const EXPERT_INVOKE_STREAM: &str = "synod.expert.v1.Expert/InvokeStream";
}

/// Span attribute keys.
pub mod attr {
    /// The run id (UUID).
    pub const RUN_ID: &str = "synod.run.id";
    /// The workflow (plan) name.
    pub const WORKFLOW: &str = "synod.workflow";
    /// True on the span of a run resumed after a restart.
    pub const RUN_RESUMED: &str = "synod.run.resumed";
    /// The step id.
    pub const STEP_ID: &str = "synod.step.id";
    /// The attempt number, from 1.
    pub const STEP_ATTEMPT: &str = "synod.step.attempt";
    /// The reflection round, from 0.
    pub const REFLECT_ROUND: &str = "synod.reflect.round";
    /// The index of a `for_each` item.
    pub const ITEM_INDEX: &str = "synod.item.index";
    /// The expert's name.
    pub const EXPERT_NAME: &str = "synod.expert.name";
    /// The skill's name (without the expert).
    pub const SKILL: &str = "synod.skill";
    /// The registered expert instance that served the call.
    pub const EXPERT_INSTANCE: &str = "synod.expert.instance";
    /// The binding's name.
    pub const BINDING: &str = "synod.binding.name";
    /// How the span's work ended: see [`super::outcome`].
    pub const OUTCOME: &str = "synod.outcome";
    /// The stable error code (`synod_types::ErrorCode`) of a failure.
    pub const ERROR_CODE: &str = "synod.error.code";
    /// OpenTelemetry semantic convention: `grpc`.
    pub const RPC_SYSTEM: &str = "rpc.system";
    /// OpenTelemetry semantic convention: the full gRPC service name.
    pub const RPC_SERVICE: &str = "rpc.service";
    /// OpenTelemetry semantic convention: the gRPC method name.
    pub const RPC_METHOD: &str = "rpc.method";
    /// OpenTelemetry semantic convention: the numeric gRPC status code.
    pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
    /// OpenTelemetry semantic convention: the peer's endpoint (client spans).
    pub const SERVER_ADDRESS: &str = "server.address";
}

/// Values of [`attr::OUTCOME`].
pub mod outcome {
    /// The work succeeded.
    pub const SUCCEEDED: &str = "succeeded";
    /// The work failed (see [`super::attr::ERROR_CODE`]).
    pub const FAILED: &str = "failed";
    /// The run was cancelled.
    pub const CANCELLED: &str = "cancelled";
}

/// Values of [`attr::RPC_SYSTEM`].
pub const RPC_SYSTEM_GRPC: &str = "grpc";

/// gRPC metadata key of the W3C `traceparent` header the orchestrator sends
/// with each expert call.
pub const TRACEPARENT: &str = "traceparent";
/// gRPC metadata key of the W3C `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
