//! The gRPC expert client: the executor's [`Invoker`] over the registry.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use serde_json::Value;
use synod_executor::telemetry::end_with_result;
use synod_executor::{GuardReport, Invocation, Invoker, Need, StepOutput, Tracer, Usage};
use synod_proto::expert::expert_client::ExpertClient;
use synod_proto::expert::{InvokeRequest, InvokeResponse};
use synod_proto::json::{json_to_struct, opt_struct_to_json};
use synod_types::ErrorCode;
use synod_types::error::StepError;
use synod_types::telemetry::{RPC_SYSTEM_GRPC, attr, span};
use tokio::time::Instant;

use crate::card::check_output;
use crate::classify::{CallContext, classify_status, deadline_exceeded};
use crate::registry::{CallOutcome, Lease, Registry};

/// Sends step attempts to expert instances chosen by the [`Registry`].
///
/// Each attempt: pick an instance (healthy, breaker admitting, least loaded
/// of two), call `Invoke` with the attempt's deadline as the gRPC deadline,
/// classify failures (see [`crate::RETRYABLE_CODES`]), validate the output
/// against the skill's output schema from the instance's card, and record
/// latency, load and failures on the instance.
///
/// An instance whose card says `external` (e.g. a hosted LLM) only receives
/// inputs passed through the [`InputGuard`] (`with_guard`); without one the
/// call is refused, so data never leaves unredacted by default.
///
/// With a tracer (`with_tracer`), each call is a client span, child of the
/// driver's attempt span, and its context goes to the expert as W3C
/// `traceparent` / `tracestate` metadata.
#[derive(Debug, Clone)]
pub struct ExpertInvoker {
    registry: Registry,
    guard: Option<Arc<dyn InputGuard>>,
    tracer: Option<Tracer>,
}

impl ExpertInvoker {
    /// An invoker over `registry` (no guard: external experts are refused).
    pub fn new(registry: Registry) -> Self {
        ExpertInvoker {
            registry,
            guard: None,
            tracer: None,
        }
    }

    /// Records each call as an OpenTelemetry client span and propagates
    /// its trace context to the expert.
    #[must_use]
    pub fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = Some(tracer);
        self
    }

    /// Passes inputs for external experts through `guard`.
    #[must_use]
    pub fn with_guard(mut self, guard: Arc<dyn InputGuard>) -> Self {
        self.guard = Some(guard);
        self
    }
}

/// Redacts sensitive values from an input before it is sent to an expert
/// marked `external` (the orchestrator uses the data-protection expert's
/// scanner).
pub trait InputGuard: Send + Sync + std::fmt::Debug + 'static {
    /// `input` with sensitive values replaced, and how many were replaced
    /// per entity type.
    fn protect(&self, input: &Value) -> (Value, BTreeMap<String, u64>);
}

impl Registry {
    /// The expert client over this registry.
    pub fn invoker(&self) -> ExpertInvoker {
        ExpertInvoker::new(self.clone())
    }
}

impl ExpertInvoker {
    /// The input to send to the instance of `lease`: as given, or, for an
    /// instance whose card says `external`, through the guard (with what it
    /// redacted); refused when there is no guard.
    fn guarded_input<'c>(
        &self,
        lease: &Lease,
        call: &'c Invocation,
    ) -> Result<(Cow<'c, Value>, Option<GuardReport>), StepError> {
        if !lease.card.card.external {
            return Ok((Cow::Borrowed(&call.input), None));
        }
        let Some(guard) = &self.guard else {
            let mut error = StepError::new(
                ErrorCode::InvalidInput,
                format!(
                    "expert `{}` is marked external and no data-protection guard is configured, so its input is not sent; serve the orchestrator with the guard (the default of `synod serve`/`synod up`) or register the expert as not external",
                    call.uses.expert
                ),
            );
            error.retryable = false;
            return Err(error);
        };
        let (value, redacted) = guard.protect(&call.input);
        let report = GuardReport {
            expert: call.uses.expert.clone(),
            redacted,
        };
        Ok((Cow::Owned(value), Some(report)))
    }
}

/// The W3C `traceparent` (and `tracestate`) of the span in `trace`, as gRPC
/// metadata of `request`.
fn inject_trace_context<T>(trace: &Context, request: &mut tonic::Request<T>) {
    let span = trace.span();
    let context = span.span_context();
    if !context.is_valid() {
        return;
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    );
    let metadata = request.metadata_mut();
    if let Ok(value) = traceparent.parse() {
        metadata.insert(synod_types::telemetry::TRACEPARENT, value);
    }
    let tracestate = context.trace_state().header();
    if !tracestate.is_empty()
        && let Ok(value) = tracestate.parse()
    {
        metadata.insert(synod_types::telemetry::TRACESTATE, value);
    }
}

#[async_trait::async_trait]
impl Invoker for ExpertInvoker {
    async fn invoke(&self, call: Invocation) -> Result<StepOutput, StepError> {
        self.invoke_traced(call, &Context::new()).await
    }

    #[tracing::instrument(
        skip_all,
        fields(
            otel.name = "expert invoke",
            synod.run.id = %call.run_id,
            synod.step.id = %call.step,
            synod.attempt = call.attempt,
            synod.expert.name = %call.uses.expert,
            rpc.system = "grpc",
            rpc.service = synod_proto::EXPERT_SERVICE_NAME,
            rpc.method = "Invoke",
        )
    )]
    async fn invoke_traced(
        &self,
        call: Invocation,
        trace: &Context,
    ) -> Result<StepOutput, StepError> {
        let Some(tracer) = &self.tracer else {
            return self.call(call, None).await;
        };
        let trace = tracer.start(
            span::EXPERT_INVOKE,
            SpanKind::Client,
            vec![
                KeyValue::new(attr::RPC_SYSTEM, RPC_SYSTEM_GRPC),
                KeyValue::new(attr::RPC_SERVICE, synod_proto::EXPERT_SERVICE_NAME),
                KeyValue::new(attr::RPC_METHOD, "Invoke"),
                KeyValue::new(attr::RUN_ID, call.run_id.to_string()),
                KeyValue::new(attr::STEP_ID, call.step.to_string()),
                KeyValue::new(attr::STEP_ATTEMPT, i64::from(call.attempt)),
                KeyValue::new(attr::EXPERT_NAME, call.uses.expert.clone()),
                KeyValue::new(attr::SKILL, call.uses.skill.clone()),
            ],
            trace,
        );
        let result = self.call(call, Some(&trace)).await;
        end_with_result(&trace, &result);
        result
    }
}

impl ExpertInvoker {
    /// One `Invoke` call; `trace` holds the call's client span when tracing.
    async fn call(
        &self,
        call: Invocation,
        trace: Option<&Context>,
    ) -> Result<StepOutput, StepError> {
        let uses = call.uses.to_string();
        let lease = self.registry.acquire(&call.uses, Instant::now())?;
        let (input, guard) = match self.guarded_input(&lease, &call) {
            Ok(guarded) => guarded,
            Err(error) => {
                lease.finish(CallOutcome::Answered, Instant::now());
                return Err(error);
            }
        };
        let input = json_to_struct(&input).map_err(|error| {
            StepError::new(
                ErrorCode::InvalidInput,
                format!("input of `{uses}` cannot be sent to the expert: {error}"),
            )
        })?;
        let request = InvokeRequest {
            run_id: call.run_id.to_string(),
            step_id: call.step.to_string(),
            skill: call.uses.skill.clone(),
            input: Some(input),
            context: Vec::new(),
            feedback: call
                .feedback
                .iter()
                .map(|feedback| synod_proto::expert::Feedback {
                    critic: feedback.critic.clone(),
                    message: feedback.message.clone(),
                    round: feedback.round,
                    details: None,
                })
                .collect(),
            round: call.round,
            attempt: call.attempt,
        };
        let mut client = ExpertClient::new(lease.channel.clone())
            .max_decoding_message_size(self.registry.config().max_message_bytes);
        let mut grpc_request = tonic::Request::new(request);
        grpc_request.set_timeout(call.deadline);
        if let Some(trace) = trace {
            let span = trace.span();
            span.set_attribute(KeyValue::new(
                attr::EXPERT_INSTANCE,
                lease.instance_id.to_string(),
            ));
            span.set_attribute(KeyValue::new(
                attr::SERVER_ADDRESS,
                lease.endpoint.to_string(),
            ));
            inject_trace_context(trace, &mut grpc_request);
        }
        let started = Instant::now();
        let result = tokio::time::timeout(call.deadline, client.invoke(grpc_request)).await;
        let elapsed = started.elapsed();
        if let (Some(trace), Ok(answer)) = (trace, &result) {
            let code = match answer {
                Ok(_) => tonic::Code::Ok,
                Err(status) => status.code(),
            };
            trace
                .span()
                .set_attribute(KeyValue::new(attr::RPC_GRPC_STATUS_CODE, code as i64));
        }
        let context = CallContext {
            uses: &uses,
            instance: &lease.instance_id,
            deadline: call.deadline,
            elapsed,
        };
        let response = match result {
            Err(_) => {
                let error = deadline_exceeded(&context);
                lease.finish(CallOutcome::InstanceFailure, Instant::now());
                return Err(error);
            }
            Ok(Err(status)) => {
                let (error, outcome) = classify_status(&status, &context);
                tracing::debug!(error = %error, "expert call failed");
                lease.finish(outcome, Instant::now());
                return Err(error);
            }
            Ok(Ok(response)) => response.into_inner(),
        };
        match validated_output(response, &lease, &call, &uses) {
            Ok((output, confidence, needs, usage)) => {
                let instance = lease.instance_id.clone();
                lease.finish(CallOutcome::Success { latency: elapsed }, Instant::now());
                Ok(StepOutput {
                    output,
                    confidence,
                    instance,
                    duration_ms: elapsed.as_millis() as u64,
                    needs,
                    usage,
                    guard,
                })
            }
            Err(error) => {
                tracing::warn!(error = %error, endpoint = %lease.endpoint, "expert returned an invalid output");
                lease.finish(CallOutcome::Answered, Instant::now());
                Err(error)
            }
        }
    }
}

/// The response's output as JSON, checked against the skill's output schema,
/// with its confidence, needs and usage.
fn validated_output(
    response: InvokeResponse,
    lease: &Lease,
    call: &Invocation,
    uses: &str,
) -> Result<(serde_json::Value, f64, Vec<Need>, Usage), StepError> {
    let invalid = |what: String| {
        StepError::new(
            ErrorCode::InvalidOutput,
            format!(
                "output of `{uses}` from instance `{}` {what}; fix the expert (or the output schema in its card)",
                lease.instance_id
            ),
        )
    };
    let output = opt_struct_to_json(response.output.as_ref())
        .map_err(|error| invalid(format!("is not valid JSON: {error}")))?;
    let Some(schemas) = lease.card.skills.get(&call.uses.skill) else {
        // The lease was granted because the card lists the skill.
        return Err(StepError::new(
            ErrorCode::Internal,
            format!(
                "instance `{}` was chosen for `{uses}` but its card lacks the skill",
                lease.instance_id
            ),
        ));
    };
    check_output(&schemas.output_validator, &output).map_err(|violations| {
        invalid(format!(
            "does not match the skill's output schema: {violations}"
        ))
    })?;
    let confidence = response.confidence;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(invalid(format!(
            "has confidence {confidence}, outside 0..1"
        )));
    }
    let needs = response
        .needs
        .into_iter()
        .map(|need| Need {
            artifact_type: need.artifact_type,
            query: need.query,
            reason: need.reason,
        })
        .collect();
    let usage = response
        .usage
        .map(|usage| Usage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        })
        .unwrap_or_default();
    Ok((output, confidence, needs, usage))
}
