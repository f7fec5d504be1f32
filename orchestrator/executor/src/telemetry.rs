//! OpenTelemetry spans of the driver: one root span per run execution, a
//! child per step attempt, critic call, item attempt and binding delivery.
//!
//! Spans are started with explicit parent contexts (never the thread's or
//! task's current span), so runs executing concurrently on the same threads
//! each get their own trace. Names and attribute keys come from
//! [`synod_types::telemetry`]. Without a [`Tracer`] in
//! [`crate::Services`] nothing here runs: no span is created.

use std::fmt;
use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use synod_types::RunStatus;
use synod_types::error::StepError;
use synod_types::telemetry::{attr, outcome};

/// A tracer the driver and the registry's expert client start spans with;
/// cheap to clone. Built from any OpenTelemetry tracer, e.g. an
/// `opentelemetry_sdk` tracer exporting over OTLP.
#[derive(Clone)]
pub struct Tracer(Arc<BoxedTracer>);

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

impl Tracer {
    /// Wraps `tracer`.
    pub fn new<T, S>(tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer<Span = S> + Send + Sync + 'static,
        S: opentelemetry::trace::Span + Send + Sync + 'static,
    {
        Tracer(Arc::new(BoxedTracer::new(Box::new(tracer))))
    }

    /// Starts a span named `name` as a child of the span in `parent` (a new
    /// trace when `parent` holds none) and returns `parent` with the new
    /// span as its active span: the parent context for the span's children.
    pub fn start(
        &self,
        name: &'static str,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> Context {
        let span = self
            .0
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(self.0.as_ref(), parent);
        parent.with_span(span)
    }
}

/// Ends the active span of `trace` with the outcome of a step attempt (or
/// another call): `synod.outcome`, and for a failure `synod.error.code` and
/// an error status naming the code only (messages may quote inputs).
pub fn end_with_result<T>(trace: &Context, result: &Result<T, StepError>) {
    let span = trace.span();
    match result {
        Ok(_) => {
            span.set_attribute(KeyValue::new(attr::OUTCOME, outcome::SUCCEEDED));
            span.set_status(Status::Ok);
        }
        Err(error) => {
            span.set_attribute(KeyValue::new(attr::OUTCOME, outcome::FAILED));
            span.set_attribute(KeyValue::new(attr::ERROR_CODE, error.code.code()));
            span.set_status(Status::error(error.code.code()));
        }
    }
    span.end();
}

/// Ends the run span in `trace` with the run's final status.
pub(crate) fn end_run(trace: &Context, status: Option<RunStatus>) {
    let span = trace.span();
    let (value, failed) = match status {
        Some(RunStatus::Succeeded) => (outcome::SUCCEEDED, false),
        Some(RunStatus::Cancelled) => (outcome::CANCELLED, false),
        // Failed, or the driver gave up (store failure, stall).
        _ => (outcome::FAILED, true),
    };
    span.set_attribute(KeyValue::new(attr::OUTCOME, value));
    span.set_status(if failed {
        Status::error("run failed")
    } else {
        Status::Ok
    });
    span.end();
}
