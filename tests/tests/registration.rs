//! SDK self-registration: an expert built with `register_with` shows up in
//! `ListExperts` (gRPC) and `GET /experts` with its skills and health, stays
//! registered through heartbeats while a silent registration expires,
//! registers again when the orchestrator forgets it, and deregisters on
//! shutdown.

use std::time::Duration;

use serde_json::Value;
use synod_integration_tests::experts::{serve, text_expert};
use synod_integration_tests::{TestOrchestrator, eventually, fast_config, free_addr};
use synod_proto::orchestrator::{
    DeregisterRequest, ExpertInfo, InstanceHealth, RegisterRequest, RunStatus,
};

/// The `name` expert's card and instances, if listed.
fn find<'a>(experts: &'a [ExpertInfo], name: &str) -> Option<&'a ExpertInfo> {
    experts
        .iter()
        .find(|e| e.card.as_ref().is_some_and(|c| c.name == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_expert_registers_heartbeats_and_deregisters_on_shutdown() -> anyhow::Result<()> {
    let orchestrator = TestOrchestrator::start_with(fast_config()).await?;
    // Heartbeats every TTL/3; long enough that a loaded machine keeps up.
    let ttl = Duration::from_millis(1500);
    let expert = serve(
        text_expert()
            .register_with(orchestrator.grpc_url())
            .registration_ttl(ttl),
    )
    .await?;
    let endpoint = expert.endpoint().to_owned();

    let registered = eventually("the expert to register", || async {
        orchestrator.instance_at(&endpoint).await
    })
    .await?;
    let experts = orchestrator.experts().await?;
    let info = find(&experts, "text").expect("listed under its card's name");
    let card = info.card.as_ref().expect("card");
    let mut skills: Vec<&str> = card.skills.iter().map(|s| s.name.as_str()).collect();
    skills.sort_unstable();
    assert_eq!(skills, ["join", "tag"]);
    let tag = card
        .skills
        .iter()
        .find(|s| s.name == "tag")
        .expect("skill `tag`");
    let input_schema = synod_proto::json::opt_struct_to_json(tag.input_schema.as_ref())?;
    let mut required: Vec<&str> = input_schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["tag", "text"], "{input_schema}");
    assert!(tag.output_schema.is_some());
    assert_eq!(registered.health, InstanceHealth::Healthy as i32);
    assert!(!registered.r#static);

    // A registration that never heartbeats expires; the SDK's stays.
    let (silent, silent_handle) = {
        let handle = serve(text_expert()).await?;
        (handle.endpoint().to_owned(), handle)
    };
    let granted = orchestrator
        .registry()
        .register(RegisterRequest {
            endpoint: silent.clone(),
            card: None,
            ttl_ms: 200,
        })
        .await?
        .into_inner();
    assert_eq!(granted.ttl_ms, 200);
    eventually("the silent registration to expire", || async {
        Ok(orchestrator
            .instance_at(&silent)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    // By now the instance has lived past one TTL; give it another.
    tokio::time::sleep(ttl).await;
    let alive = orchestrator
        .instance_at(&endpoint)
        .await?
        .expect("heartbeats keep the instance");
    assert_eq!(
        alive.instance_id, registered.instance_id,
        "it never re-registered"
    );
    assert_eq!(alive.health, InstanceHealth::Healthy as i32);

    // GET /experts shows the same.
    let listed: Value = orchestrator
        .http()
        .get(format!("{}/experts", orchestrator.http_url()))
        .send()
        .await?
        .json()
        .await?;
    let text = listed
        .as_array()
        .and_then(|experts| experts.iter().find(|e| e["name"] == "text"))
        .unwrap_or_else(|| panic!("`text` not in GET /experts: {listed}"));
    assert!(
        text["skills"]
            .as_array()
            .is_some_and(|skills| skills.iter().any(|s| s["name"] == "tag")),
        "{text}"
    );
    assert_eq!(text["instances"][0]["health"], "healthy", "{text}");
    assert_eq!(
        text["instances"][0]["endpoint"],
        endpoint.as_str(),
        "{text}"
    );

    // The registered expert serves runs.
    let run = orchestrator
        .run(
            "name: via-registry\nsteps:\n  a: { uses: text/tag, with: { text: x, tag: y } }\n",
            Value::Null,
        )
        .await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);

    // Graceful shutdown deregisters: gone at once, well before the TTL
    // could have expired it.
    expert.shutdown().await?;
    let experts = orchestrator.experts().await?;
    assert!(
        find(&experts, "text").is_none(),
        "the instance is still listed after shutdown: {experts:?}"
    );
    orchestrator.shutdown().await?;
    silent_handle.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_expert_registers_again_when_the_orchestrator_forgets_it() -> anyhow::Result<()> {
    let orchestrator = TestOrchestrator::start_with(fast_config()).await?;
    let expert = serve(
        text_expert()
            .register_with(orchestrator.grpc_url())
            .registration_ttl(Duration::from_secs(3)),
    )
    .await?;
    let endpoint = expert.endpoint().to_owned();
    let first = eventually("the expert to register", || async {
        let instance = orchestrator.instance_at(&endpoint).await?;
        Ok(instance.map(|i| i.instance_id))
    })
    .await?;

    orchestrator
        .registry()
        .deregister(DeregisterRequest {
            instance_id: first.clone(),
        })
        .await?;

    let second = eventually("the expert to register again", || async {
        let instance = orchestrator.instance_at(&endpoint).await?;
        Ok(instance.map(|i| i.instance_id).filter(|id| *id != first))
    })
    .await?;
    assert_ne!(first, second);
    let unknown = orchestrator
        .registry()
        .deregister(DeregisterRequest { instance_id: first })
        .await
        .expect_err("already removed");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown}");
    expert.shutdown().await?;
    orchestrator.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_rejects_unreachable_endpoints_and_mismatched_cards() -> anyhow::Result<()> {
    let orchestrator = TestOrchestrator::start_with(fast_config()).await?;
    let expert = serve(text_expert()).await?;
    let mut registry = orchestrator.registry();

    let claimed = synod_proto::expert::ExpertCard {
        name: "impostor".to_owned(),
        ..Default::default()
    };
    let mismatch = registry
        .register(RegisterRequest {
            endpoint: expert.endpoint().to_owned(),
            card: Some(claimed),
            ttl_ms: 0,
        })
        .await
        .expect_err("the served card is `text`");
    assert_eq!(mismatch.code(), tonic::Code::InvalidArgument, "{mismatch}");
    assert!(
        mismatch.message().contains("impostor") && mismatch.message().contains("text"),
        "{mismatch}"
    );

    let free = free_addr()?;
    let unreachable = registry
        .register(RegisterRequest {
            endpoint: format!("http://{free}"),
            card: None,
            ttl_ms: 0,
        })
        .await
        .expect_err("nothing listens there");
    assert_eq!(
        unreachable.code(),
        tonic::Code::Unavailable,
        "{unreachable}"
    );
    assert!(
        unreachable.message().contains(&free.to_string()),
        "{unreachable}"
    );

    let empty = registry
        .register(RegisterRequest::default())
        .await
        .expect_err("no endpoint");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument, "{empty}");
    assert!(orchestrator.experts().await?.is_empty());
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
