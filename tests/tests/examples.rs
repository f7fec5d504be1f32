//! The example workflows in `workflows/` that deliver bindings, run end to
//! end over gRPC against the demo experts, with their destinations pointed
//! at a local axum receiver (the file's hosts replaced by the receiver's
//! origin) and their tokens in a secrets directory.

use serde_json::json;
use synod_integration_tests::{TempDir, TestOrchestrator, fast_config, repo_file};
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::RunStatus;
use synod_server::demo::start_demo_experts;
use synod_types::RunEventKind;

use crate::bindings::{Receiver, assert_secret_absent};

const TICKET_TOKEN: &str = "tt-0c51-example";
const FIREWALL_TOKEN: &str = "fw-77aa-example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_response_tickets_at_once_and_blocks_only_after_approval() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[]).await?;
    let yaml = repo_file("workflows/incident-response.yaml")?
        .replace("https://tickets.example.org", &receiver.origin())
        .replace("https://firewall.example.org", &receiver.origin());
    let input: serde_json::Value =
        serde_json::from_str(&repo_file("workflows/examples/ioc-triage.input.json")?)?;
    let secrets = TempDir::new()?;
    std::fs::write(secrets.path().join("TICKET_TOKEN"), TICKET_TOKEN)?;
    std::fs::write(secrets.path().join("FIREWALL_TOKEN"), FIREWALL_TOKEN)?;
    let experts = start_demo_experts().await?;
    let mut config = fast_config();
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    config.allowed_destinations = vec![receiver.origin()];
    config.secrets_dir = Some(secrets.path().to_owned());
    let orchestrator = TestOrchestrator::start_with(config).await?;

    let run_id = orchestrator.start_run(&yaml, input).await?;
    orchestrator
        .wait_for_event(&run_id, "the block to ask for approval", |kind| {
            matches!(kind, RunEventKind::ApprovalRequested { binding, .. } if binding == "block")
        })
        .await?;
    // The ticket went out; the block waits.
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    let ticket = &received[0];
    assert_eq!(ticket.method, "POST");
    assert_eq!(ticket.uri, "/api/queues/soc-tier-1/issues");
    assert_eq!(
        ticket.headers["authorization"],
        format!("Bearer {TICKET_TOKEN}").as_str()
    );
    assert_eq!(
        ticket.headers["idempotency-key"],
        format!("{run_id}-ticket").as_str()
    );
    assert_eq!(ticket.body["title"], "Incident response");
    assert_eq!(ticket.body["severity"], "high");
    assert!(
        ticket.body["description"]
            .as_str()
            .unwrap_or_default()
            .contains("| Severity | Indicator |"),
        "{}",
        ticket.body
    );

    let decided = orchestrator
        .runs()
        .decide(pb::DecideRequest {
            run_id: run_id.clone(),
            binding: "block".to_owned(),
            approve: true,
            comment: "C2 confirmed".to_owned(),
        })
        .await?
        .into_inner();
    assert!(decided.accepted);
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let block = &received[1];
    assert_eq!(block.uri, "/api/blocklist");
    assert_eq!(
        block.headers["authorization"],
        format!("Bearer {FIREWALL_TOKEN}").as_str()
    );
    assert_eq!(
        block.headers["idempotency-key"],
        format!("{run_id}-block").as_str()
    );
    assert_eq!(
        block.body,
        json!({ "addresses": ["185.220.101.47"], "reason": format!("synod run {run_id}") })
    );
    // Each token only in its own request's Authorization header.
    assert!(!format!("{:?}", ticket.headers).contains(FIREWALL_TOKEN));
    assert!(!format!("{:?}", block.headers).contains(TICKET_TOKEN));
    assert_secret_absent(&run.events, TICKET_TOKEN);
    assert_secret_absent(&run.events, FIREWALL_TOKEN);
    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    Ok(())
}
