//! Registry tests over real gRPC: fake experts on 127.0.0.1:0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use synod_executor::Invoker;
use synod_planner::SkillCatalog;
use synod_proto::expert::{Need, Usage};
use synod_proto::orchestrator::registry_client::RegistryClient;
use synod_proto::orchestrator::registry_server::RegistryServer;
use synod_proto::orchestrator::{
    DeregisterRequest, HeartbeatRequest, InstanceHealth, InstanceInfo, ListExpertsRequest,
    RegisterRequest,
};
use synod_types::{ErrorCode, SkillRef};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic_health::ServingStatus;

use crate::testing::{
    TestExpert, detector_card, handler, invocation, ok_handler, response, wait_until,
};
use crate::{Registry, RegistryConfig, RegistryError, RegistryService};

const DEADLINE: Duration = Duration::from_secs(5);

fn instance(registry: &Registry, id: &str) -> InstanceInfo {
    registry
        .list()
        .into_iter()
        .flat_map(|expert| expert.instances)
        .find(|instance| instance.instance_id == id)
        .unwrap_or_else(|| panic!("instance `{id}` is not listed"))
}

#[tokio::test]
async fn register_verifies_with_describe_and_feeds_the_catalog() {
    let expert = TestExpert::start(detector_card("det"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig::default());

    let (id, ttl) = registry
        .register(&expert.endpoint, Some(detector_card("det")), None)
        .await
        .unwrap();
    assert_eq!(ttl, Duration::from_secs(15), "default ttl");

    let experts = registry.list();
    assert_eq!(experts.len(), 1);
    assert_eq!(experts[0].card.as_ref().unwrap().name, "det");
    let info = &experts[0].instances[0];
    assert_eq!(info.instance_id, id);
    assert_eq!(info.endpoint, expert.endpoint);
    assert_eq!(info.health(), InstanceHealth::Healthy);
    assert!(!info.r#static);

    assert_eq!(registry.expert_names(), vec!["det".to_owned()]);
    assert_eq!(registry.skill_names("det"), vec!["detect".to_owned()]);
    let skill = registry.skill(&SkillRef::new("det", "detect")).unwrap();
    assert_eq!(skill.produces, "alerts");
    assert_eq!(skill.consumes, vec!["events".to_owned()]);
    assert_eq!(skill.output_schema["required"], json!(["alerts"]));
    assert_eq!(skill.input_schema, json!({"type": "object"}));
    assert!(registry.skill(&SkillRef::new("det", "nope")).is_none());
}

#[tokio::test]
async fn registration_errors_name_the_problem() {
    let expert = TestExpert::start(detector_card("det"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig {
        connect_timeout: Duration::from_millis(500),
        ..RegistryConfig::default()
    });

    let error = registry
        .register(&expert.endpoint, Some(detector_card("other")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::CardMismatch { claimed, served, .. } if claimed == "other" && served == "det"),
        "{error}"
    );

    let error = registry
        .register("127.0.0.1:80", None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::InvalidEndpoint { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("write it as `http://host:port`"),
        "{error}"
    );

    let mut gone = TestExpert::start(detector_card("det"), ok_handler(), false);
    let gone_endpoint = gone.endpoint.clone();
    gone.kill();
    let error = registry
        .register(&gone_endpoint, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&gone_endpoint), "{error}");
    assert!(registry.list().is_empty());
}

#[tokio::test]
async fn reregistering_an_endpoint_replaces_its_instance() {
    let expert = TestExpert::start(detector_card("det"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig::default());
    let (old, _) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    let (new, ttl) = registry
        .register(&expert.endpoint, None, Some(Duration::from_secs(3)))
        .await
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(ttl, Duration::from_secs(3));
    assert!(!registry.heartbeat(&old), "the replaced id is unknown");
    assert!(registry.heartbeat(&new));
    assert_eq!(registry.list()[0].instances.len(), 1);
    assert!(registry.deregister(&new));
    assert!(!registry.deregister(&new));
    assert!(registry.list().is_empty());
}

#[tokio::test]
async fn instances_expire_after_their_ttl_but_static_ones_do_not() {
    let dynamic = TestExpert::start(detector_card("det"), ok_handler(), false);
    let fixed = TestExpert::start(detector_card("det"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig::default());
    let ttl = Duration::from_secs(10);
    let (dynamic_id, _) = registry
        .register(&dynamic.endpoint, None, Some(ttl))
        .await
        .unwrap();
    let static_id = registry.add_static(&fixed.endpoint).await.unwrap();
    assert!(instance(&registry, &static_id).r#static);

    let now = Instant::now();
    assert!(registry.expire_stale(now + ttl / 2).is_empty());
    let before_heartbeat = Instant::now();
    assert!(registry.heartbeat(&dynamic_id));
    let after_heartbeat = Instant::now();
    assert!(registry.expire_stale(before_heartbeat + ttl).is_empty());
    let expired = registry.expire_stale(after_heartbeat + ttl + Duration::from_millis(1));
    assert_eq!(expired, vec![dynamic_id.clone()]);
    assert!(!registry.heartbeat(&dynamic_id), "expired: register again");
    assert!(registry.expire_stale(now + ttl * 1000).is_empty());
    let listed = registry.list();
    assert_eq!(listed[0].instances.len(), 1);
    assert_eq!(listed[0].instances[0].instance_id, static_id);
}

#[tokio::test]
async fn maintenance_task_expires_silent_instances_and_stops_on_cancel() {
    let expert = TestExpert::start(detector_card("det"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig {
        default_ttl: Duration::from_millis(200),
        ..RegistryConfig::default()
    });
    let (id, ttl) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    assert_eq!(ttl, Duration::from_millis(200));
    let cancel = CancellationToken::new();
    let task = registry.spawn_maintenance(cancel.clone());
    wait_until("the silent instance expires", || registry.list().is_empty()).await;
    assert!(!registry.heartbeat(&id));
    // Its expert stays known but has no instance: a retryable failure.
    let error = registry
        .invoker()
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ExpertUnavailable);
    assert!(error.retryable);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn invoke_sends_the_invocation_and_returns_the_validated_output() {
    let expert = TestExpert::start(
        detector_card("det"),
        handler(|_| async {
            let mut answer = response(json!({"alerts": [{"id": "a1", "score": 2.5}]}), 0.75);
            answer.needs = vec![Need {
                artifact_type: "knowledge".into(),
                query: "T1003.001".into(),
                reason: "unknown technique".into(),
            }];
            answer.usage = Some(Usage {
                input_tokens: 10,
                output_tokens: 20,
                duration_ms: 3,
            });
            Ok(answer)
        }),
        false,
    );
    let registry = Registry::new(RegistryConfig::default());
    let (id, _) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    let mut call = invocation("det/detect", Duration::from_secs(7));
    call.attempt = 2;
    call.round = 1;
    let run_id = call.run_id;

    let output = registry.invoker().invoke(call).await.unwrap();
    assert_eq!(
        output.output,
        json!({"alerts": [{"id": "a1", "score": 2.5}]})
    );
    assert_eq!(output.confidence, 0.75);
    assert_eq!(output.instance, id);
    assert_eq!(output.needs.len(), 1);
    assert_eq!(output.needs[0].query, "T1003.001");
    assert_eq!(output.usage.input_tokens, 10);
    assert_eq!(output.usage.output_tokens, 20);

    let (request, timeout) = expert.seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(request.run_id, run_id.to_string());
    assert_eq!(request.step_id, "detect");
    assert_eq!(request.skill, "detect");
    assert_eq!(request.attempt, 2);
    assert_eq!(request.round, 1);
    let input = synod_proto::json::opt_struct_to_json(request.input.as_ref()).unwrap();
    assert_eq!(input, json!({"events": [{"EventID": 1}]}));
    let timeout = timeout.expect("the deadline travels as grpc-timeout");
    assert!(
        timeout.ends_with('m') || timeout.ends_with('u'),
        "{timeout}"
    );

    let info = instance(&registry, &id);
    assert_eq!((info.calls, info.failures, info.outstanding), (1, 0, 0));
    assert!(info.latency_ewma_ms > 0.0);
}

#[tokio::test]
async fn unknown_experts_and_skills_list_what_is_known() {
    let expert = TestExpert::start(detector_card("det"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig::default());
    registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    let invoker = registry.invoker();

    let error = invoker
        .invoke(invocation("nope/detect", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UnknownSkill);
    assert!(!error.retryable);
    assert!(
        error
            .message
            .contains("expert `nope` is not registered; known experts: `det`"),
        "{}",
        error.message
    );

    let error = invoker
        .invoke(invocation("det/trace", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UnknownSkill);
    assert!(
        error
            .message
            .contains("expert `det` has no skill `trace`; its skills: `detect`"),
        "{}",
        error.message
    );
    assert_eq!(expert.calls(), 0);
}

#[tokio::test]
async fn schema_invalid_output_is_invalid_output_and_not_retryable() {
    let expert = TestExpert::start(
        detector_card("det"),
        handler(|request| async move {
            let input = synod_proto::json::opt_struct_to_json(request.input.as_ref()).unwrap();
            match input["case"].as_str() {
                Some("missing") => Ok(response(json!({"found": 1}), 0.5)),
                Some("wrong-type") => {
                    Ok(response(json!({"alerts": [{"id": "a"}, {"id": 7}]}), 0.5))
                }
                _ => Ok(response(json!({"alerts": []}), 1.5)),
            }
        }),
        false,
    );
    let registry = Registry::new(RegistryConfig {
        breaker_failures: 1,
        ..RegistryConfig::default()
    });
    let (id, _) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    let invoker = registry.invoker();
    let call = |case: &str| {
        let mut call = invocation("det/detect", DEADLINE);
        call.input = json!({"case": case});
        call
    };

    let error = invoker.invoke(call("missing")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidOutput);
    assert!(!error.retryable);
    assert!(
        error.message.contains(&format!("output of `det/detect` from instance `{id}` does not match the skill's output schema: at `/`: \"alerts\" is a required property")),
        "{}",
        error.message
    );

    let error = invoker.invoke(call("wrong-type")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidOutput);
    assert!(
        error
            .message
            .contains("at `/alerts/1/id`: 7 is not of type \"string\""),
        "{}",
        error.message
    );

    let error = invoker.invoke(call("confidence")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidOutput);
    assert!(
        error.message.contains("has confidence 1.5, outside 0..1"),
        "{}",
        error.message
    );

    // Bad outputs are failures, but the instance answered: its breaker stays closed.
    let info = instance(&registry, &id);
    assert_eq!((info.calls, info.failures), (3, 3));
    assert_eq!(info.health(), InstanceHealth::Healthy);
}

#[tokio::test]
async fn invalid_argument_maps_to_invalid_input() {
    let expert = TestExpert::start(
        detector_card("det"),
        handler(|_| async { Err(Status::invalid_argument("`events` must be an array")) }),
        false,
    );
    let registry = Registry::new(RegistryConfig {
        breaker_failures: 1,
        ..RegistryConfig::default()
    });
    let (id, _) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    for _ in 0..2 {
        let error = registry
            .invoker()
            .invoke(invocation("det/detect", DEADLINE))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidInput);
        assert!(!error.retryable);
        assert!(
            error
                .message
                .contains("InvalidArgument: `events` must be an array"),
            "{}",
            error.message
        );
    }
    assert_eq!(expert.calls(), 2, "InvalidArgument never opens the breaker");
    assert_eq!(instance(&registry, &id).health(), InstanceHealth::Healthy);
}

#[tokio::test]
async fn a_hanging_expert_exceeds_the_deadline_retryably() {
    let expert = TestExpert::start(
        detector_card("det"),
        handler(|_| async {
            futures::future::pending::<()>().await;
            Ok(response(json!({"alerts": []}), 1.0))
        }),
        false,
    );
    let registry = Registry::new(RegistryConfig::default());
    let (id, _) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    let error = registry
        .invoker()
        .invoke(invocation("det/detect", Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DeadlineExceeded);
    assert!(error.retryable);
    assert!(
        error.message.contains("deadline of 300ms"),
        "{}",
        error.message
    );
    let (_, timeout) = expert.seen.last.lock().unwrap().clone().unwrap();
    let timeout = timeout.expect("grpc-timeout sent");
    assert!(
        timeout.starts_with("300") || timeout.starts_with("299"),
        "{timeout}"
    );
    let info = instance(&registry, &id);
    assert_eq!((info.outstanding, info.failures), (0, 1));
}

#[tokio::test]
async fn breaker_opens_half_opens_and_closes() {
    let failing = Arc::new(AtomicBool::new(true));
    let expert = TestExpert::start(
        detector_card("det"),
        handler({
            let failing = failing.clone();
            move |_| {
                let failing = failing.load(Ordering::SeqCst);
                async move {
                    if failing {
                        Err(Status::unavailable("model is reloading"))
                    } else {
                        Ok(response(json!({"alerts": []}), 1.0))
                    }
                }
            }
        }),
        false,
    );
    let cooldown = Duration::from_millis(300);
    let registry = Registry::new(RegistryConfig {
        breaker_failures: 2,
        breaker_cooldown: cooldown,
        ..RegistryConfig::default()
    });
    let (id, _) = registry
        .register(&expert.endpoint, None, None)
        .await
        .unwrap();
    let invoker = registry.invoker();

    for _ in 0..2 {
        let error = invoker
            .invoke(invocation("det/detect", DEADLINE))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::ExpertTransient);
        assert!(error.retryable);
        assert!(
            error.message.contains("model is reloading"),
            "{}",
            error.message
        );
    }
    assert_eq!(instance(&registry, &id).health(), InstanceHealth::Broken);

    // Open: fail fast without calling the expert, naming the instance's state.
    let error = invoker
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ExpertUnavailable);
    assert!(error.retryable);
    assert!(
        error
            .message
            .contains("no instance of expert `det` can take calls to `detect` now"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains(&format!(
            "instance `{id}` at `{}`: circuit open for",
            expert.endpoint
        )),
        "{}",
        error.message
    );
    assert_eq!(expert.calls(), 2);

    // After the cool-down one probe goes through; it fails, so the breaker re-opens.
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    let error = invoker
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ExpertTransient);
    assert_eq!(expert.calls(), 3);
    let error = invoker
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(
        error.code,
        ErrorCode::ExpertUnavailable,
        "re-opened after the failed probe"
    );
    assert_eq!(expert.calls(), 3);

    // The expert recovers: the next probe succeeds and closes the breaker.
    failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    invoker
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap();
    assert_eq!(instance(&registry, &id).health(), InstanceHealth::Healthy);
    invoker
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap();
    assert_eq!(expert.calls(), 5);
}

#[tokio::test]
async fn concurrent_calls_are_balanced_across_two_instances() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let gated = || {
        let gate = gate.clone();
        handler(move |_| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.unwrap();
                Ok(response(json!({"alerts": []}), 1.0))
            }
        })
    };
    let first = TestExpert::start(detector_card("det"), gated(), false);
    let second = TestExpert::start(detector_card("det"), gated(), false);
    let registry = Registry::new(RegistryConfig::default());
    registry
        .register(&first.endpoint, None, None)
        .await
        .unwrap();
    registry
        .register(&second.endpoint, None, None)
        .await
        .unwrap();

    let mut calls = Vec::new();
    for _ in 0..10 {
        let invoker = registry.invoker();
        calls.push(tokio::spawn(async move {
            invoker.invoke(invocation("det/detect", DEADLINE)).await
        }));
    }
    wait_until("all ten calls reach an expert", || {
        first.calls() + second.calls() == 10
    })
    .await;
    assert_eq!((first.calls(), second.calls()), (5, 5));
    let outstanding: Vec<u32> = registry.list()[0]
        .instances
        .iter()
        .map(|i| i.outstanding)
        .collect();
    assert_eq!(outstanding, vec![5, 5]);
    gate.add_permits(10);
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let outstanding: Vec<u32> = registry.list()[0]
        .instances
        .iter()
        .map(|i| i.outstanding)
        .collect();
    assert_eq!(outstanding, vec![0, 0]);
}

#[tokio::test]
async fn calls_move_to_the_live_instance_when_one_is_killed() {
    // `fast` answers at once and `slow` after 30ms, so `fast` wins every pair
    // while it lives (lower latency).
    let mut fast = TestExpert::start(detector_card("det"), ok_handler(), false);
    let slow = TestExpert::start(
        detector_card("det"),
        handler(|_| async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok(response(json!({"alerts": []}), 1.0))
        }),
        false,
    );
    let registry = Registry::new(RegistryConfig {
        breaker_failures: 3,
        breaker_cooldown: Duration::from_secs(60),
        ..RegistryConfig::default()
    });
    let (fast_id, _) = registry.register(&fast.endpoint, None, None).await.unwrap();
    let (slow_id, _) = registry.register(&slow.endpoint, None, None).await.unwrap();
    let invoker = registry.invoker();
    for _ in 0..4 {
        invoker
            .invoke(invocation("det/detect", DEADLINE))
            .await
            .unwrap();
    }
    assert!(fast.calls() >= 2, "both instances were tried");

    fast.kill();
    let mut failures = Vec::new();
    let mut served_by = Vec::new();
    for _ in 0..8 {
        match invoker.invoke(invocation("det/detect", DEADLINE)).await {
            Ok(output) => served_by.push(output.instance),
            Err(error) => failures.push(error),
        }
    }
    assert_eq!(
        failures.len(),
        3,
        "the breaker opens after 3 failures: {failures:?}"
    );
    for error in &failures {
        assert_eq!(error.code, ErrorCode::ExpertTransient, "{error}");
        assert!(error.retryable);
    }
    assert_eq!(served_by, vec![slow_id.clone(); 5]);
    let dead = instance(&registry, &fast_id);
    assert_eq!(dead.health(), InstanceHealth::Broken);
    assert_eq!(dead.failures, 3);
    assert_eq!(
        instance(&registry, &slow_id).health(),
        InstanceHealth::Healthy
    );
}

#[tokio::test]
async fn health_checks_mark_instances_unhealthy_and_healthy_again() {
    let with_health = TestExpert::start(detector_card("det"), ok_handler(), true);
    let without_health = TestExpert::start(detector_card("plain"), ok_handler(), false);
    let registry = Registry::new(RegistryConfig::default());
    let (id, _) = registry
        .register(&with_health.endpoint, None, None)
        .await
        .unwrap();
    let (plain_id, _) = registry
        .register(&without_health.endpoint, None, None)
        .await
        .unwrap();

    let reporter = with_health.health.clone().unwrap();
    reporter
        .set_service_status(synod_proto::EXPERT_SERVICE_NAME, ServingStatus::NotServing)
        .await;
    registry.check_health().await;
    assert_eq!(instance(&registry, &id).health(), InstanceHealth::Unhealthy);
    assert_eq!(
        instance(&registry, &plain_id).health(),
        InstanceHealth::Healthy,
        "without a health service, Describe answers"
    );
    let error = registry
        .invoker()
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ExpertUnavailable);
    assert!(
        error
            .message
            .contains("unhealthy (health status is NOT_SERVING)"),
        "{}",
        error.message
    );

    reporter
        .set_service_status(synod_proto::EXPERT_SERVICE_NAME, ServingStatus::Serving)
        .await;
    registry.check_health().await;
    assert_eq!(instance(&registry, &id).health(), InstanceHealth::Healthy);
    registry
        .invoker()
        .invoke(invocation("det/detect", DEADLINE))
        .await
        .unwrap();
}

#[tokio::test]
async fn static_endpoints_are_retried_until_they_answer() {
    let registry = Registry::new(RegistryConfig {
        health_interval: Duration::from_millis(50),
        connect_timeout: Duration::from_millis(500),
        ..RegistryConfig::default()
    });
    // Reserve a port, then free it, so nothing serves there yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = format!("http://{address}");
    let error = registry.add_static(&endpoint).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error}"
    );
    assert!(registry.list().is_empty());

    let cancel = CancellationToken::new();
    let task = registry.spawn_maintenance(cancel.clone());
    let expert = TestExpert::start_on(address, detector_card("det"), ok_handler(), false);
    wait_until("the static endpoint is added", || {
        !registry.list().is_empty()
    })
    .await;
    let info = &registry.list()[0].instances[0];
    assert!(info.r#static);
    assert_eq!(info.endpoint, expert.endpoint);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn registry_service_over_grpc() {
    let registry = Registry::new(RegistryConfig {
        connect_timeout: Duration::from_millis(500),
        ..RegistryConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RegistryServer::new(RegistryService::new(registry.clone())))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mut client = RegistryClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let expert = TestExpert::start(detector_card("det"), ok_handler(), false);

    let registered = client
        .register(RegisterRequest {
            endpoint: expert.endpoint.clone(),
            card: Some(detector_card("det")),
            ttl_ms: 4000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.ttl_ms, 4000);
    let id = registered.instance_id;

    let known = client
        .heartbeat(HeartbeatRequest {
            instance_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .known;
    assert!(known);

    let listed = client
        .list_experts(ListExpertsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.experts.len(), 1);
    assert_eq!(
        listed.experts[0].card.as_ref().unwrap().skills[0].name,
        "detect"
    );
    assert_eq!(listed.experts[0].instances[0].instance_id, id);
    assert_eq!(
        listed.experts[0].instances[0].health(),
        InstanceHealth::Healthy
    );

    client
        .deregister(DeregisterRequest {
            instance_id: id.clone(),
        })
        .await
        .unwrap();
    let known = client
        .heartbeat(HeartbeatRequest {
            instance_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .known;
    assert!(!known);
    let status = client
        .deregister(DeregisterRequest {
            instance_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert!(
        status
            .message()
            .contains(&format!("instance `{id}` is not registered")),
        "{}",
        status.message()
    );

    let status = client
        .register(RegisterRequest {
            endpoint: " ".into(),
            card: None,
            ttl_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("`endpoint` is empty"),
        "{}",
        status.message()
    );

    let status = client
        .register(RegisterRequest {
            endpoint: expert.endpoint.clone(),
            card: Some(detector_card("impostor")),
            ttl_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("describes itself as `det`"),
        "{}",
        status.message()
    );

    let status = client
        .heartbeat(HeartbeatRequest {
            instance_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    drop(expert);
    server.abort();
}
