//! The SDK over real gRPC on 127.0.0.1: Describe, Invoke, InvokeStream,
//! errors, health, reflection, trace context, deadlines and registration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use synod_expert_sdk::proto::expert::{DescribeRequest, InvokeRequest, invoke_stream_message};
use synod_expert_sdk::proto::json::{json_to_struct, struct_to_json};
use synod_expert_sdk::testing::TestExpert;
use synod_expert_sdk::{
    Evidence, ExpertServer, ExpertServerBuilder, Need, SkillDefinition, SkillError, SkillOutput,
    skill_fn,
};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_types::StatusExt as _;

fn echo_definition() -> SkillDefinition {
    SkillDefinition::new("echo")
        .description("returns its input under `echo`")
        .consumes(["text"])
        .produces("text")
        .input_schema(json!({
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": { "type": "string" },
                "nested": { "type": "object" },
                "count": { "type": "integer", "minimum": 0 }
            }
        }))
        .output_schema(json!({
            "type": "object",
            "required": ["echo"],
            "properties": { "echo": { "type": "object" } }
        }))
        .cost_hint(0.5)
}

fn builder() -> ExpertServerBuilder {
    ExpertServer::builder("test-expert", "1.2.3")
        .description("an expert for tests")
        .skill(skill_fn(echo_definition(), |_ctx, input| async move {
            Ok(SkillOutput::new(json!({ "echo": input }))
                .with_confidence(0.75)
                .with_evidence(Evidence::new("/text", "the text itself"))
                .with_need(Need::new("knowledge", "T1003", "to be sure")))
        }))
        .skill(skill_fn(
            SkillDefinition::new("context").streaming(true),
            |ctx, _input| async move {
                ctx.progress(0.0, "starting").await;
                ctx.progress(0.5, "halfway").await;
                Ok(SkillOutput::new(json!({
                    "run_id": ctx.run_id(),
                    "step_id": ctx.step_id(),
                    "round": ctx.round(),
                    "attempt": ctx.attempt(),
                    "artifacts": ctx.artifacts().len(),
                    "feedback": ctx.feedback().iter().map(|f| f.message.clone()).collect::<Vec<_>>(),
                    "trace_id": ctx.trace().map(|t| t.trace_id().to_owned()),
                    "sampled": ctx.trace().map(|t| t.sampled()),
                    "remaining_ms": ctx.remaining().map(|d| d.as_millis() as u64),
                })))
            },
        ))
        .skill(skill_fn(SkillDefinition::new("slow"), |_ctx, _input| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(SkillOutput::new(json!({})))
        }))
        .skill(skill_fn(
            SkillDefinition::new("broken").output_schema(json!({
                "type": "object",
                "required": ["verdict"],
                "properties": { "verdict": { "enum": ["benign", "malicious"] } }
            })),
            |_ctx, _input| async move { Ok(SkillOutput::new(json!({ "verdict": "maybe" }))) },
        ))
        .skill(skill_fn(SkillDefinition::new("flaky"), |_ctx, _input| async move {
            Err(SkillError::unavailable("the model server is restarting"))
        }))
}

async fn channel(endpoint: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn request(skill: &str, input: Value) -> InvokeRequest {
    InvokeRequest {
        run_id: "run-1".into(),
        step_id: "step-a".into(),
        skill: skill.into(),
        input: Some(json_to_struct(&input).unwrap()),
        round: 2,
        attempt: 3,
        ..Default::default()
    }
}

#[tokio::test]
async fn describe_returns_the_card() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let card = client
        .describe(DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.name, "test-expert");
    assert_eq!(card.version, "1.2.3");
    assert_eq!(card.description, "an expert for tests");
    assert!(!card.external);
    let names: Vec<&str> = card.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["echo", "context", "slow", "broken", "flaky"],
        "in definition order"
    );
    let echo = card.skills.iter().find(|s| s.name == "echo").unwrap();
    assert_eq!(echo.consumes, ["text"]);
    assert_eq!(echo.produces, "text");
    assert_eq!(echo.cost_hint, 0.5);
    assert_eq!(
        struct_to_json(echo.input_schema.as_ref().unwrap()).unwrap(),
        echo_definition().input_schema
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn invoke_round_trips_nested_json() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let input = json!({
        "text": "hello",
        "count": 42,
        "nested": { "ratio": 0.125, "negative": -7, "list": [1, "two", null, true, {"deep": [2.5]}] }
    });
    let response = client
        .invoke(request("echo", input.clone()))
        .await
        .unwrap()
        .into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output, json!({ "echo": input }));
    assert_eq!(response.confidence, 0.75);
    assert_eq!(response.evidence[0].pointer, "/text");
    assert_eq!(response.needs[0].artifact_type, "knowledge");
    assert_eq!(response.needs[0].query, "T1003");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn schema_invalid_input_is_invalid_argument_naming_the_field() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let status = client
        .invoke(request("echo", json!({ "text": 5, "count": -1 })))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("`/text`"), "{}", status.message());
    assert!(
        status.message().contains("`/count`"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("found number"),
        "{}",
        status.message()
    );
    let bad_request = status.get_details_bad_request().expect("field violations");
    let mut fields: Vec<&str> = bad_request
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["/count", "/text"]);

    let status = client.invoke(request("echo", json!({}))).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("\"text\""),
        "{}",
        status.message()
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_map_to_grpc_codes() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();

    let status = client.invoke(request("nope", json!({}))).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        "expert `test-expert` has no skill `nope`; its skills are: broken, context, echo, flaky, slow"
    );

    let status = client
        .invoke(request("broken", json!({})))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("`/verdict`"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("output schema"),
        "{}",
        status.message()
    );

    let status = client
        .invoke(request("flaky", json!({})))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "the model server is restarting");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn context_carries_ids_trace_context_and_deadline() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let mut call = tonic::Request::new(InvokeRequest {
        context: vec![synod_expert_sdk::proto::expert::Artifact {
            r#type: "knowledge".into(),
            source: "kb".into(),
            data: Some(json_to_struct(&json!({"id": "T1003"})).unwrap()),
        }],
        feedback: vec![synod_expert_sdk::proto::expert::Feedback {
            critic: "rule:confidence".into(),
            message: "be more sure".into(),
            round: 1,
            details: None,
        }],
        ..request("context", json!({}))
    });
    call.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    call.set_timeout(Duration::from_secs(20));
    let response = client.invoke(call).await.unwrap().into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output["run_id"], "run-1");
    assert_eq!(output["step_id"], "step-a");
    assert_eq!(output["round"], 2);
    assert_eq!(output["attempt"], 3);
    assert_eq!(output["artifacts"], 1);
    assert_eq!(output["feedback"], json!(["be more sure"]));
    assert_eq!(output["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(output["sampled"], true);
    let remaining = output["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 10_000 && remaining <= 20_000, "{remaining}");

    // No grpc-timeout: the server's request timeout (5 minutes by default)
    // is the deadline. An invalid traceparent is ignored.
    let mut call = tonic::Request::new(request("context", json!({})));
    call.metadata_mut()
        .insert("traceparent", "00-zz-00f067aa0ba902b7-01".parse().unwrap());
    let response = client.invoke(call).await.unwrap().into_inner();
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output["trace_id"], Value::Null);
    let remaining = output["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 290_000 && remaining <= 300_000, "{remaining}");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_timeout_stops_slow_calls() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let mut call = tonic::Request::new(request("slow", json!({})));
    call.set_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let status = client.invoke(call).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // The same deadline bounds streaming calls, which answer DEADLINE_EXCEEDED.
    let mut call = tonic::Request::new(request("slow", json!({})));
    call.set_timeout(Duration::from_millis(200));
    let outcome = async {
        let mut stream = client.invoke_stream(call).await?.into_inner();
        while stream.message().await?.is_some() {}
        Ok::<(), tonic::Status>(())
    }
    .await;
    let status = outcome.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn invoke_stream_sends_progress_then_the_response() {
    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    let mut stream = client
        .invoke_stream(request("context", json!({})))
        .await
        .unwrap()
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.next().await {
        messages.push(message.unwrap().message.unwrap());
    }
    assert_eq!(messages.len(), 3, "{messages:?}");
    let invoke_stream_message::Message::Progress(first) = &messages[0] else {
        panic!("expected progress first, got {:?}", messages[0]);
    };
    assert_eq!((first.fraction, first.message.as_str()), (0.0, "starting"));
    let invoke_stream_message::Message::Progress(second) = &messages[1] else {
        panic!("expected progress second, got {:?}", messages[1]);
    };
    assert_eq!((second.fraction, second.message.as_str()), (0.5, "halfway"));
    let invoke_stream_message::Message::Response(response) = &messages[2] else {
        panic!("expected the response last, got {:?}", messages[2]);
    };
    let output = struct_to_json(response.output.as_ref().unwrap()).unwrap();
    assert_eq!(output["run_id"], "run-1");

    // Errors end the stream with the status.
    let mut stream = client
        .invoke_stream(request("echo", json!({})))
        .await
        .unwrap()
        .into_inner();
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut health = HealthClient::new(channel(endpoint).await);
    for service in ["", "synod.expert.v1.Expert"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    let status = health
        .check(HealthCheckRequest {
            service: "unknown.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let (endpoint, handle) = TestExpert::spawn(builder()).await.unwrap();
    let mut reflection = ServerReflectionClient::new(channel(endpoint).await);
    let requests = tokio_stream::iter([
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "synod.expert.v1.Expert".into(),
            )),
        },
    ]);
    let mut responses = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let first = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list, got {first:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "synod.expert.v1.Expert"
        ]
    );
    let second = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("expected descriptors, got {second:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    handle.shutdown().await.unwrap();
}

// === registration against a fake Registry ===

mod fake_registry {
    use super::*;
    use synod_expert_sdk::proto::orchestrator::registry_server::{Registry, RegistryServer};
    use synod_expert_sdk::proto::orchestrator::{
        DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse,
        ListExpertsRequest, ListExpertsResponse, RegisterRequest, RegisterResponse,
    };
    use tonic::{Request, Response, Status};

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Call {
        Register {
            endpoint: String,
            expert: String,
            skills: usize,
            ttl_ms: u64,
        },
        Heartbeat(String),
        Deregister(String),
    }

    #[derive(Debug, Default)]
    pub(super) struct State {
        pub(super) calls: Vec<Call>,
        pub(super) registrations: u32,
        /// Answer `known = false` to this many heartbeats.
        pub(super) forget: u32,
    }

    #[derive(Debug, Clone, Default)]
    pub(super) struct FakeRegistry {
        pub(super) state: Arc<Mutex<State>>,
    }

    #[tonic::async_trait]
    impl Registry for FakeRegistry {
        async fn register(
            &self,
            request: Request<RegisterRequest>,
        ) -> Result<Response<RegisterResponse>, Status> {
            let request = request.into_inner();
            let card = request.card.unwrap_or_default();
            let mut state = self.state.lock().unwrap();
            state.registrations += 1;
            state.calls.push(Call::Register {
                endpoint: request.endpoint,
                expert: card.name,
                skills: card.skills.len(),
                ttl_ms: request.ttl_ms,
            });
            Ok(Response::new(RegisterResponse {
                instance_id: format!("instance-{}", state.registrations),
                // Grant a shorter TTL than asked, so heartbeats come fast.
                ttl_ms: 150,
            }))
        }

        async fn heartbeat(
            &self,
            request: Request<HeartbeatRequest>,
        ) -> Result<Response<HeartbeatResponse>, Status> {
            let mut state = self.state.lock().unwrap();
            let id = request.into_inner().instance_id;
            state.calls.push(Call::Heartbeat(id));
            let known = if state.forget > 0 {
                state.forget -= 1;
                false
            } else {
                true
            };
            Ok(Response::new(HeartbeatResponse { known }))
        }

        async fn deregister(
            &self,
            request: Request<DeregisterRequest>,
        ) -> Result<Response<DeregisterResponse>, Status> {
            let id = request.into_inner().instance_id;
            self.state.lock().unwrap().calls.push(Call::Deregister(id));
            Ok(Response::new(DeregisterResponse {}))
        }

        async fn list_experts(
            &self,
            _request: Request<ListExpertsRequest>,
        ) -> Result<Response<ListExpertsResponse>, Status> {
            Ok(Response::new(ListExpertsResponse::default()))
        }
    }

    /// Serves the fake on 127.0.0.1:0; returns its URL.
    pub(super) async fn spawn(registry: FakeRegistry) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RegistryServer::new(registry))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        format!("http://{addr}")
    }
}

async fn wait_for(
    state: &Arc<Mutex<fake_registry::State>>,
    what: &str,
    done: impl Fn(&fake_registry::State) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if done(&state.lock().unwrap()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; calls: {:?}",
            state.lock().unwrap().calls
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn registers_heartbeats_reregisters_and_deregisters_on_shutdown() {
    use fake_registry::Call;

    let registry = fake_registry::FakeRegistry::default();
    registry.state.lock().unwrap().forget = 1;
    let url = fake_registry::spawn(registry.clone()).await;
    let (endpoint, handle) = TestExpert::spawn(
        builder()
            .register_with(url)
            .registration_ttl(Duration::from_secs(9)),
    )
    .await
    .unwrap();

    // The first heartbeat says `known = false`: the expert registers again,
    // then keeps heartbeating the new instance.
    let state = registry.state.clone();
    wait_for(&state, "re-registration and heartbeats", |state| {
        state.registrations == 2
            && state
                .calls
                .iter()
                .filter(|call| **call == Call::Heartbeat("instance-2".into()))
                .count()
                >= 2
    })
    .await;
    handle.shutdown().await.unwrap();

    let calls = state.lock().unwrap().calls.clone();
    assert_eq!(
        calls[0],
        Call::Register {
            endpoint: endpoint.clone(),
            expert: "test-expert".into(),
            skills: 5,
            ttl_ms: 9000,
        }
    );
    assert_eq!(calls[1], Call::Heartbeat("instance-1".into()));
    assert!(matches!(calls[2], Call::Register { .. }), "{calls:?}");
    assert_eq!(calls.last(), Some(&Call::Deregister("instance-2".into())));
}

#[tokio::test]
async fn keeps_retrying_when_the_orchestrator_is_down() {
    // Reserve a port, then free it: nothing listens there at first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (endpoint, handle) = TestExpert::spawn(builder().register_with(format!("http://{addr}")))
        .await
        .unwrap();

    // The expert serves regardless.
    let mut client = TestExpert::connect(&endpoint).await.unwrap();
    client.describe(DescribeRequest {}).await.unwrap();

    // When the orchestrator comes up, the expert registers.
    let registry = fake_registry::FakeRegistry::default();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                synod_expert_sdk::proto::orchestrator::registry_server::RegistryServer::new(
                    registry.clone(),
                ),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    wait_for(&registry.state, "registration", |state| {
        state.registrations >= 1
    })
    .await;
    handle.shutdown().await.unwrap();
    let calls = registry.state.lock().unwrap().calls.clone();
    assert!(
        matches!(calls.last(), Some(fake_registry::Call::Deregister(_))),
        "{calls:?}"
    );
}

#[tokio::test]
async fn concurrency_limit_with_load_shed_rejects_excess_calls() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Notify::new());
    let (skill_gate, skill_started) = (gate.clone(), started.clone());
    let builder = ExpertServer::builder("limited", "1.0.0")
        .skill(skill_fn(
            SkillDefinition::new("wait"),
            move |_ctx, _input| {
                let gate = skill_gate.clone();
                let started = skill_started.clone();
                async move {
                    started.notify_one();
                    gate.notified().await;
                    Ok(SkillOutput::new(json!({})))
                }
            },
        ))
        .concurrency_limit(1)
        .load_shed(true);
    let (endpoint, handle) = TestExpert::spawn(builder).await.unwrap();
    let client = TestExpert::connect(&endpoint).await.unwrap();

    // One call holds the only slot of the connection...
    let mut first_client = client.clone();
    let first = tokio::spawn(async move { first_client.invoke(request("wait", json!({}))).await });
    started.notified().await;
    // ...so a second call on the same connection is shed.
    let mut second_client = client.clone();
    let second = second_client.invoke(request("wait", json!({})));
    let status = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second call should be rejected at once, not queued")
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    gate.notify_one();
    first.await.unwrap().unwrap();
    handle.shutdown().await.unwrap();
}
