//! Traces: an orchestrator exporting over OTLP/HTTP and an SDK expert with
//! its own exporter, both sending to a local OTLP receiver (a real HTTP
//! server decoding OTLP protobuf). Each run is one trace: run span → step
//! attempt spans → expert-call client spans → the expert's server spans,
//! whose parent is the client span of the same call (propagated as W3C
//! `traceparent` in gRPC metadata). Two runs at once get two traces; no
//! input or output value appears in any attribute.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, SpanFlags};
use prost::Message as _;
use serde_json::json;
use synod_expert_sdk::telemetry::{attr, outcome, span};
use synod_expert_sdk::{OtlpConfig, Telemetry};
use synod_integration_tests::experts::{serve, text_expert};
use synod_integration_tests::{TestOrchestrator, fast_config};
use synod_proto::orchestrator::RunStatus;

const ORCHESTRATOR_SERVICE: &str = "synod-test-orchestrator";
const EXPERT_SERVICE: &str = "synod-test-text-expert";
/// Run inputs; they (and the outputs derived from them) must not appear
/// in any span attribute.
const SECRET_SEED: &str = "tok-3f9a1c77e2b84d06";

const CHAIN: &str = r#"
name: traced-chain
inputs:
  seed:
    type: string
    required: true
steps:
  first:
    uses: text/tag
    with: { text: "${{ inputs.seed }}", tag: "one" }
  second:
    needs: [first]
    uses: text/tag
    with: { text: "${{ steps.first.output.text }}", tag: "two" }
"#;

/// A span as received, with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<String> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|value| value.value.as_ref())
            .map(value_text)
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.attribute(key)?.parse().ok()
    }

    fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    fn has_remote_parent(&self) -> bool {
        self.span.flags & SpanFlags::ContextIsRemoteMask as u32 != 0
    }
}

fn value_text(value: &any_value::Value) -> String {
    match value {
        any_value::Value::StringValue(text) => text.clone(),
        any_value::Value::BoolValue(flag) => flag.to_string(),
        any_value::Value::IntValue(number) => number.to_string(),
        any_value::Value::DoubleValue(number) => number.to_string(),
        other => format!("{other:?}"),
    }
}

type Collected = Arc<Mutex<Vec<Received>>>;

/// `POST /v1/traces`: decodes an OTLP protobuf export and keeps its spans.
async fn receive(State(collected): State<Collected>, body: Bytes) -> impl IntoResponse {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut spans = collected.lock().unwrap_or_else(|p| p.into_inner());
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(value_text)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// Serves the receiver on a loopback port; returns its base URL.
async fn start_receiver(collected: Collected) -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive))
        .with_state(collected);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_is_one_trace_continued_by_the_expert() -> anyhow::Result<()> {
    let collected: Collected = Arc::default();
    let receiver = start_receiver(Arc::clone(&collected)).await?;
    // Two pipelines, as in two processes: the expert's spans reach the
    // receiver through its own exporter, and its parent only through the
    // gRPC metadata of the call.
    let orchestrator_telemetry =
        Telemetry::start(OtlpConfig::new(&receiver, ORCHESTRATOR_SERVICE))?;
    let expert_telemetry = Telemetry::start(OtlpConfig::new(&receiver, EXPERT_SERVICE))?;

    let expert = serve(text_expert().telemetry(&expert_telemetry)).await?;
    let mut config = fast_config();
    config.static_experts = vec![expert.endpoint().to_owned()];
    config.telemetry = Some(orchestrator_telemetry.clone());
    let orchestrator = TestOrchestrator::start_with(config).await?;

    // Two runs at once: their spans must not mix.
    let (one, two) = tokio::join!(
        orchestrator.run(CHAIN, json!({ "seed": SECRET_SEED })),
        orchestrator.run(CHAIN, json!({ "seed": SECRET_SEED })),
    );
    let runs = [one?, two?];
    for run in &runs {
        assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    }
    orchestrator.shutdown().await?;
    expert_telemetry.flush().await;
    orchestrator_telemetry.flush().await;
    let spans = collected.lock().unwrap_or_else(|p| p.into_inner()).clone();

    let mut trace_ids = BTreeSet::new();
    for run in &runs {
        let trace_id = check_run_trace(&spans, &run.run_id)
            .with_context(|| format!("trace of run {}", run.run_id))?;
        trace_ids.insert(trace_id);
    }
    assert_eq!(trace_ids.len(), 2, "two runs, two traces");

    // Identifiers and outcomes only: no input or output value anywhere.
    for received in &spans {
        for kv in &received.span.attributes {
            let text = kv
                .value
                .as_ref()
                .and_then(|v| v.value.as_ref())
                .map(value_text);
            assert!(
                !text.unwrap_or_default().contains(SECRET_SEED),
                "attribute `{}` of span `{}` carries a run input",
                kv.key,
                received.span.name
            );
        }
        assert!(
            !received
                .span
                .status
                .as_ref()
                .is_some_and(|status| status.message.contains(SECRET_SEED)),
            "status of span `{}` carries a run input",
            received.span.name
        );
    }

    expert.shutdown().await?;
    expert_telemetry.shutdown().await;
    orchestrator_telemetry.shutdown().await;
    Ok(())
}

/// Checks the spans of run `run_id` and returns its trace id (hex).
fn check_run_trace(spans: &[Received], run_id: &str) -> anyhow::Result<String> {
    let of_run: Vec<&Received> = spans
        .iter()
        .filter(|received| received.attribute(attr::RUN_ID).as_deref() == Some(run_id))
        .collect();
    let runs: Vec<&&Received> = of_run.iter().filter(|r| r.span.name == span::RUN).collect();
    anyhow::ensure!(runs.len() == 1, "one run span, got {}", runs.len());
    let run = runs[0];
    assert_eq!(run.service, ORCHESTRATOR_SERVICE);
    assert!(run.span.parent_span_id.is_empty(), "the run span is a root");
    assert_eq!(
        run.attribute(attr::WORKFLOW).as_deref(),
        Some("traced-chain")
    );
    assert_eq!(run.attribute(attr::RUN_RESUMED).as_deref(), Some("false"));
    assert_eq!(
        run.attribute(attr::OUTCOME).as_deref(),
        Some(outcome::SUCCEEDED)
    );
    let trace_id = run.span.trace_id.clone();
    for received in &of_run {
        assert_eq!(
            received.span.trace_id, trace_id,
            "span `{}` of the run ({}) is in another trace",
            received.span.name, received.service
        );
    }
    let by_id: BTreeMap<&[u8], &Received> = of_run
        .iter()
        .map(|received| (received.span.span_id.as_slice(), *received))
        .collect();
    let parent_of = |child: &Received| by_id.get(child.span.parent_span_id.as_slice()).copied();

    let attempts: Vec<&&Received> = of_run
        .iter()
        .filter(|r| r.span.name == span::STEP_ATTEMPT)
        .collect();
    let steps: BTreeSet<String> = attempts
        .iter()
        .filter_map(|attempt| attempt.attribute(attr::STEP_ID))
        .collect();
    assert_eq!(
        steps,
        BTreeSet::from(["first".to_owned(), "second".to_owned()])
    );
    for attempt in &attempts {
        assert_eq!(
            attempt.span.parent_span_id, run.span.span_id,
            "attempt under the run"
        );
        assert_eq!(attempt.int(attr::STEP_ATTEMPT), Some(1));
        assert_eq!(
            attempt.attribute(attr::EXPERT_NAME).as_deref(),
            Some("text")
        );
        assert_eq!(attempt.attribute(attr::SKILL).as_deref(), Some("tag"));
        assert_eq!(
            attempt.attribute(attr::OUTCOME).as_deref(),
            Some(outcome::SUCCEEDED)
        );
    }

    let clients: Vec<&&Received> = of_run
        .iter()
        .filter(|r| r.span.name == span::EXPERT_INVOKE && r.kind() == SpanKind::Client)
        .collect();
    assert_eq!(clients.len(), 2, "one expert call per attempt");
    for client in &clients {
        let parent = parent_of(client).context("client span without its parent")?;
        assert_eq!(parent.span.name, span::STEP_ATTEMPT);
        assert_eq!(
            parent.attribute(attr::STEP_ID),
            client.attribute(attr::STEP_ID)
        );
        assert_eq!(client.service, ORCHESTRATOR_SERVICE);
        assert_eq!(client.attribute(attr::RPC_SYSTEM).as_deref(), Some("grpc"));
        assert_eq!(
            client.attribute(attr::RPC_METHOD).as_deref(),
            Some("Invoke")
        );
        assert_eq!(client.int(attr::RPC_GRPC_STATUS_CODE), Some(0));
        assert!(client.attribute(attr::EXPERT_INSTANCE).is_some());
        assert!(!client.has_remote_parent());
    }

    let servers: Vec<&&Received> = of_run
        .iter()
        .filter(|r| r.kind() == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 2, "one handler span per call");
    for server in &servers {
        assert_eq!(
            server.service, EXPERT_SERVICE,
            "exported by the expert's pipeline"
        );
        assert_eq!(server.span.name, span::EXPERT_INVOKE);
        assert!(
            server.has_remote_parent(),
            "the parent came over gRPC metadata"
        );
        let parent = parent_of(server).with_context(|| {
            format!(
                "handler span's parent {} is not a span of the run",
                hex(&server.span.parent_span_id)
            )
        })?;
        assert_eq!(
            parent.kind(),
            SpanKind::Client,
            "handler under the expert-call span"
        );
        assert_eq!(
            parent.attribute(attr::STEP_ID),
            server.attribute(attr::STEP_ID)
        );
        assert_eq!(server.attribute(attr::EXPERT_NAME).as_deref(), Some("text"));
        assert_eq!(server.attribute(attr::SKILL).as_deref(), Some("tag"));
        assert_eq!(server.int(attr::STEP_ATTEMPT), Some(1));
        assert_eq!(
            server.attribute(attr::OUTCOME).as_deref(),
            Some(outcome::SUCCEEDED)
        );
    }
    Ok(hex(&trace_id))
}
