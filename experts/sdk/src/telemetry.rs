//! OpenTelemetry traces over OTLP (HTTP, protobuf), for experts and the
//! orchestrator alike.
//!
//! [`OtlpConfig::from_env`] reads the standard variables
//! (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_SERVICE_NAME`); with no endpoint configured there is no
//! [`Telemetry`], no exporter and no span. [`Telemetry::start`] builds a
//! tracer provider with a batch span processor; its HTTP requests are sent
//! with `reqwest` on the Tokio runtime that started it. Call
//! [`Telemetry::shutdown`] before exiting to flush the last spans.
//!
//! An [`ExpertServer`](crate::ExpertServer) given a telemetry handle
//! ([`ExpertServerBuilder::telemetry`](crate::ExpertServerBuilder::telemetry))
//! records each `Invoke` as a server span that continues the caller's W3C
//! trace context; span names and attribute keys are those of [`attr`] and
//! [`span`].

use std::fmt;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status as OtelStatus, TraceContextExt as _,
    TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use synod_types::telemetry::RPC_SYSTEM_GRPC;
use tonic::Status;

use crate::context::SkillContext;
use crate::trace::TraceContext;

pub use synod_types::telemetry::{attr, outcome, span};

/// The OTLP/HTTP path of traces under a base endpoint.
const TRACES_PATH: &str = "/v1/traces";
/// Upper bound on one export request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where traces go and under which service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Full URL of the OTLP/HTTP traces endpoint, e.g.
    /// `http://localhost:4318/v1/traces`.
    pub traces_endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl OtlpConfig {
    /// Traces to the collector at `base` (e.g. `http://localhost:4318`, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: `/v1/traces` is appended).
    pub fn new(base: &str, service_name: impl Into<String>) -> Self {
        OtlpConfig {
            traces_endpoint: format!("{}{TRACES_PATH}", base.trim_end_matches('/')),
            service_name: service_name.into(),
        }
    }

    /// The configuration from `endpoint` (a base URL given on the command
    /// line, which wins) or the environment: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// (full URL), else `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL). The service
    /// name is `OTEL_SERVICE_NAME`, else `default_service_name`. `None` when
    /// no endpoint is configured: tracing stays off.
    pub fn from_env(endpoint: Option<&str>, default_service_name: &str) -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let service_name =
            var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service_name.to_owned());
        if let Some(base) = endpoint.filter(|value| !value.is_empty()) {
            return Some(OtlpConfig::new(base, service_name));
        }
        if let Some(full) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Some(OtlpConfig {
                traces_endpoint: full,
                service_name,
            });
        }
        var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| OtlpConfig::new(&base, service_name))
    }
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// Not called within a Tokio runtime.
    #[error("OTLP tracing must be started within a Tokio runtime")]
    NoRuntime,
    /// The exporter rejected the configuration (e.g. a malformed endpoint).
    #[error(
        "cannot export traces to `{endpoint}`: {reason}; check the OTLP endpoint (e.g. http://localhost:4318)"
    )]
    Exporter {
        /// The traces endpoint.
        endpoint: String,
        /// The exporter's message.
        reason: String,
    },
}

/// A running OTLP trace pipeline. Cheap to clone; clones share the
/// exporter. Shut it down once, when the process is done with it.
#[derive(Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    config: OtlpConfig,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts exporting to `config`'s endpoint (batched, in the background).
    ///
    /// # Errors
    ///
    /// Outside a Tokio runtime, or when the exporter cannot be built.
    pub fn start(config: OtlpConfig) -> Result<Self, TelemetryError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
        let client = RuntimeClient {
            client: reqwest::Client::new(),
            runtime,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(config.traces_endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|error| TelemetryError::Exporter {
                endpoint: config.traces_endpoint.clone(),
                reason: error.to_string(),
            })?;
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        Ok(Telemetry { provider, config })
    }

    /// Starts exporting when the OpenTelemetry variables name an endpoint
    /// (see [`OtlpConfig::from_env`]); `Ok(None)` otherwise. For an
    /// expert's `main`: pass the result to
    /// [`ExpertServerBuilder::telemetry`](crate::ExpertServerBuilder::telemetry)
    /// and shut it down after serving.
    ///
    /// # Errors
    ///
    /// As [`Telemetry::start`].
    pub fn from_env(default_service_name: &str) -> Result<Option<Self>, TelemetryError> {
        OtlpConfig::from_env(None, default_service_name)
            .map(Self::start)
            .transpose()
    }

    /// What it exports to.
    pub fn config(&self) -> &OtlpConfig {
        &self.config
    }

    /// A tracer of this pipeline (instrumentation scope `synod`).
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("synod")
    }

    /// Exports the spans ended so far and waits for the export.
    pub async fn flush(&self) {
        let provider = self.provider.clone();
        // The processor blocks until its worker thread has exported, and the
        // export runs on this runtime: wait off the runtime's threads.
        let flushed = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(error = %error, "cannot flush traces");
        }
    }

    /// Exports the remaining spans and stops the pipeline; spans ended
    /// later are dropped.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = stopped {
            tracing::warn!(error = %error, "cannot flush traces at shutdown");
        }
    }
}

/// `reqwest` requests run on a Tokio runtime: the batch processor exports
/// from its own thread, which has no runtime of its own.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

/// Starts the server span of one call handled by `expert`: a child of the
/// caller's span when the call carried a W3C trace context (a new trace
/// otherwise). Returns `ctx` with its trace context pointing at the new
/// span (so a skill that propagates [`SkillContext::trace`] continues under
/// it) and the span's context.
pub(crate) fn start_handler_span(
    tracer: &SdkTracer,
    expert: &str,
    method: &'static str,
    ctx: SkillContext,
) -> (SkillContext, Context) {
    let parent = match ctx.trace().and_then(remote_span_context) {
        Some(remote) => Context::new().with_remote_span_context(remote),
        None => Context::new(),
    };
    let name = if method == "InvokeStream" {
        span::EXPERT_INVOKE_STREAM
    } else {
        span::EXPERT_INVOKE
    };
    let handler = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new(attr::RPC_SYSTEM, RPC_SYSTEM_GRPC),
            KeyValue::new(attr::RPC_SERVICE, synod_proto::EXPERT_SERVICE_NAME),
            KeyValue::new(attr::RPC_METHOD, method),
            KeyValue::new(attr::EXPERT_NAME, expert.to_owned()),
            KeyValue::new(attr::SKILL, ctx.skill().to_owned()),
            KeyValue::new(attr::RUN_ID, ctx.run_id().to_owned()),
            KeyValue::new(attr::STEP_ID, ctx.step_id().to_owned()),
            KeyValue::new(attr::STEP_ATTEMPT, i64::from(ctx.attempt())),
            KeyValue::new(attr::REFLECT_ROUND, i64::from(ctx.round())),
        ])
        .start_with_context(tracer, &parent);
    let own = handler.span_context().clone();
    let tracestate = own.trace_state().header();
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        own.trace_id(),
        own.span_id(),
        own.trace_flags().to_u8()
    );
    let trace = TraceContext::parse(&traceparent, Some(&tracestate)).ok();
    (ctx.with_trace(trace), parent.with_span(handler))
}

/// Ends the server span in `handler` with the call's answer.
pub(crate) fn end_handler_span<T>(handler: &Context, answer: &Result<T, Status>) {
    let span = handler.span();
    let code = match answer {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    span.set_attribute(KeyValue::new(attr::RPC_GRPC_STATUS_CODE, code as i64));
    if code == tonic::Code::Ok {
        span.set_attribute(KeyValue::new(attr::OUTCOME, outcome::SUCCEEDED));
        span.set_status(OtelStatus::Ok);
    } else {
        span.set_attribute(KeyValue::new(attr::OUTCOME, outcome::FAILED));
        // The gRPC code only: status messages may quote the input.
        span.set_status(OtelStatus::error(format!("{code:?}")));
    }
    span.end();
}

/// The caller's span as a remote parent.
fn remote_span_context(trace: &TraceContext) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(trace.trace_id()).ok()?;
    let span_id = SpanId::from_hex(trace.parent_id()).ok()?;
    let state = TraceState::from_key_value(
        trace
            .tracestate()
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    )
    .unwrap_or_default();
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(trace.flags()),
        true,
        state,
    ))
}
