//! The example workflows in `workflows/` that deliver bindings, run end to
//! end over gRPC against the demo experts, with their destinations pointed
//! at a local axum receiver (the file's hosts replaced by the receiver's
//! origin) and their tokens in a secrets directory.

use serde_json::{Value, json};
use synod_integration_tests::events::assert_secret_absent;
use synod_integration_tests::receiver::Receiver;
use synod_integration_tests::{TempDir, TestOrchestrator, fast_config, repo_file};
use synod_proto::orchestrator as pb;
use synod_proto::orchestrator::RunStatus;
use synod_server::demo::{RunningExpert, start_demo_experts};
use synod_types::RunEventKind;

/// The GitHub token the dlp-scan and code-review example inputs leak.
const LEAKED_TOKEN: &str = "ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg";
const TICKET_TOKEN: &str = "tt-0c51-example";
const FIREWALL_TOKEN: &str = "fw-77aa-example";

/// The demo experts and an orchestrator over them whose bindings may reach
/// a receiver, with the binding tokens in a secrets directory.
struct Demo {
    orchestrator: TestOrchestrator,
    experts: Vec<RunningExpert>,
    /// Lives as long as the orchestrator reads secrets from it.
    _secrets: TempDir,
}

impl Demo {
    /// Starts the demo experts and an orchestrator over them whose bindings
    /// may reach `receiver`, reading `secrets` (name, value) from a fresh
    /// secrets directory.
    async fn start(receiver: &Receiver, secrets: &[(&str, &str)]) -> anyhow::Result<Demo> {
        let experts = start_demo_experts().await?;
        let dir = TempDir::new()?;
        for (name, value) in secrets {
            std::fs::write(dir.path().join(name), value)?;
        }
        let mut config = fast_config();
        config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
        config.allowed_destinations = vec![receiver.origin()];
        config.secrets_dir = Some(dir.path().to_owned());
        let orchestrator = TestOrchestrator::start_with(config).await?;
        Ok(Demo {
            orchestrator,
            experts,
            _secrets: dir,
        })
    }

    /// Shuts the orchestrator down, then stops the experts.
    async fn shutdown(self) -> anyhow::Result<()> {
        self.orchestrator.shutdown().await?;
        for expert in self.experts {
            expert.stop().await;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_response_tickets_at_once_and_blocks_only_after_approval() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[]).await?;
    let yaml = repo_file("workflows/incident-response.yaml")?
        .replace("https://tickets.example.org", &receiver.origin())
        .replace("https://firewall.example.org", &receiver.origin());
    let input: Value =
        serde_json::from_str(&repo_file("workflows/examples/ioc-triage.input.json")?)?;
    let demo = Demo::start(
        &receiver,
        &[
            ("TICKET_TOKEN", TICKET_TOKEN),
            ("FIREWALL_TOKEN", FIREWALL_TOKEN),
        ],
    )
    .await?;
    let orchestrator = &demo.orchestrator;

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
    demo.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlp_scan_fans_out_over_the_documents_and_reports_one_case() -> anyhow::Result<()> {
    const CASES_TOKEN: &str = "cases-5e1d-example";
    let receiver = Receiver::start(&[]).await?;
    let yaml = repo_file("workflows/dlp-scan.yaml")?
        .replace("https://cases.example.org", &receiver.origin());
    let input: Value = serde_json::from_str(&repo_file("workflows/examples/dlp-scan.input.json")?)?;
    let demo = Demo::start(&receiver, &[("CASES_TOKEN", CASES_TOKEN)]).await?;
    let orchestrator = &demo.orchestrator;

    let run = orchestrator.run(&yaml, input.clone()).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let items = run
        .events
        .iter()
        .filter(|event| matches!(event.kind, RunEventKind::StepItemSucceeded { .. }))
        .count();
    assert_eq!(items, 4, "one attempt per document");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let case = &received[0];
    assert_eq!(case.method, "POST");
    assert_eq!(case.uri, "/api/dlp/cases");
    assert_eq!(
        case.headers["authorization"],
        format!("Bearer {CASES_TOKEN}").as_str()
    );
    assert_eq!(
        case.headers["idempotency-key"],
        format!("{}-dlp-case", run.run_id).as_str()
    );
    assert_eq!(case.body["run"], run.run_id);
    let documents = case.body["documents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["export.csv", "deploy.env"], "{}", case.body);
    assert_eq!(documents[0]["types"]["CREDIT_CARD"], 1, "{}", case.body);
    assert_eq!(documents[0]["level"], "restricted", "{}", case.body);
    assert!(
        documents[1]["findings"].as_u64() >= Some(1),
        "{}",
        case.body
    );
    // The report names documents, never the values.
    let body = case.body.to_string();
    for value in ["4111 1111 1111 1111", LEAKED_TOKEN] {
        assert!(!body.contains(value), "the case leaks {value}: {body}");
    }
    assert_secret_absent(&run.events, CASES_TOKEN);
    assert_secret_absent(&run.events, LEAKED_TOKEN);

    // A clean batch opens no case.
    let clean = orchestrator
        .run(
            &yaml,
            json!({ "documents": [{ "name": "a.txt", "text": "hello" }] }),
        )
        .await?;
    assert_eq!(clean.status(), RunStatus::Succeeded);
    assert_eq!(receiver.received().len(), 1);
    demo.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_review_posts_sarif_and_fails_the_change_on_injection_and_secrets()
-> anyhow::Result<()> {
    const SCM_TOKEN: &str = "scm-90d2-example";
    let receiver = Receiver::start(&[]).await?;
    let yaml = repo_file("workflows/code-review.yaml")?
        .replace("https://scm.example.org", &receiver.origin());
    let input: Value =
        serde_json::from_str(&repo_file("workflows/examples/code-review.input.json")?)?;
    let demo = Demo::start(&receiver, &[("SCM_TOKEN", SCM_TOKEN)]).await?;
    let orchestrator = &demo.orchestrator;

    let run = orchestrator.run(&yaml, input.clone()).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    let sarif = received
        .iter()
        .find(|r| r.uri.ends_with("/code-scanning/sarifs"))
        .expect("the SARIF upload");
    assert_eq!(
        sarif.uri,
        "/api/repos/acme/users-service/code-scanning/sarifs"
    );
    assert_eq!(sarif.body["sarif"]["version"], "2.1.0");
    let results = sarif.body["sarif"]["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let flagged_lines: Vec<u64> = results
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64())
        .collect();
    // The SQL query (line 13) and the shell command (line 21) of app.py.
    assert!(
        flagged_lines.contains(&13) && flagged_lines.contains(&21),
        "{flagged_lines:?}: {}",
        sarif.body
    );
    let status = received
        .iter()
        .find(|r| r.uri.ends_with("/statuses"))
        .expect("the commit status");
    assert_eq!(status.body["state"], "failure", "{}", status.body);
    assert_eq!(
        status.headers["authorization"],
        format!("Bearer {SCM_TOKEN}").as_str()
    );
    assert!(
        status.body["description"]
            .as_str()
            .unwrap_or_default()
            .ends_with("secrets in 1 file(s)"),
        "{}",
        status.body
    );
    let outputs = synod_proto::json::opt_struct_to_json(run.info.result.as_ref())?;
    assert_eq!(outputs["leaky_files"], json!(["settings.py"]), "{outputs}");
    assert_secret_absent(&run.events, SCM_TOKEN);
    assert_secret_absent(&run.events, LEAKED_TOKEN);

    // A clean change passes.
    let clean = json!({
        "owner": "acme",
        "repo": "users-service",
        "ref": "refs/pull/43/head",
        "files": [{ "path": "health.py", "content": "def health():\n    return 'ok'\n" }]
    });
    let run = orchestrator.run(&yaml, clean).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let received = receiver.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[3].body["state"], "success", "{}", received[3].body);
    demo.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_ticket_tickets_the_alerts_and_pages_on_critical_ones() -> anyhow::Result<()> {
    const TICKET_TOKEN: &str = "tt-9b2e-alerts";
    const PAGER_TOKEN: &str = "pg-31d0-alerts";
    let receiver = Receiver::start(&[]).await?;
    let yaml = repo_file("workflows/alert-ticket.yaml")?
        .replace("https://tickets.example.org", &receiver.origin())
        .replace("https://pager.example.org", &receiver.origin());
    let input: Value =
        serde_json::from_str(&repo_file("workflows/examples/sysmon-events.input.json")?)?;
    let demo = Demo::start(
        &receiver,
        &[("TICKET_TOKEN", TICKET_TOKEN), ("PAGER_TOKEN", PAGER_TOKEN)],
    )
    .await?;
    let orchestrator = &demo.orchestrator;

    let run = orchestrator.run(&yaml, input).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    let (ticket, page) = (&received[0], &received[1]);
    assert_eq!(ticket.uri, "/api/queues/soc-tier-1/issues");
    assert_eq!(
        ticket.headers["authorization"],
        format!("Bearer {TICKET_TOKEN}").as_str()
    );
    assert_eq!(
        ticket.headers["idempotency-key"],
        format!("{}-ticket", run.run_id).as_str()
    );
    assert_eq!(ticket.body["title"], "7 alerts in 15 events");
    assert_eq!(ticket.body["by_level"]["critical"], 1);
    assert_eq!(ticket.body["techniques"]["T1003.001"], 2);
    assert_eq!(ticket.body["alerts"].as_array().map(Vec::len), Some(7));
    assert_eq!(page.uri, "/api/pages");
    assert_eq!(
        page.headers["authorization"],
        format!("Bearer {PAGER_TOKEN}").as_str()
    );
    assert_eq!(
        page.body["summary"],
        format!("1 critical alert(s), run {}", run.run_id)
    );
    assert_eq!(page.body["critical"].as_array().map(Vec::len), Some(1));
    assert_secret_absent(&run.events, TICKET_TOKEN);
    assert_secret_absent(&run.events, PAGER_TOKEN);
    demo.shutdown().await?;
    Ok(())
}

const SOAR_TOKEN: &str = "soar-51c3-example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_triage_detects_traces_plans_and_contains_by_policy() -> anyhow::Result<()> {
    let receiver = Receiver::start(&[]).await?;
    let yaml = repo_file("workflows/alert-triage.yaml")?
        .replace("https://soar.example.org", &receiver.origin());
    let input: Value =
        serde_json::from_str(&repo_file("workflows/examples/alert-triage.input.json")?)?;
    let demo = Demo::start(&receiver, &[("SOAR_TOKEN", SOAR_TOKEN)]).await?;
    let orchestrator = &demo.orchestrator;

    let run_id = orchestrator.start_run(&yaml, input).await?;
    orchestrator
        .wait_for_event(&run_id, "the gated actions to ask for approval", |kind| {
            matches!(kind, RunEventKind::ApprovalRequested { binding, .. } if binding == "contain_approved")
        })
        .await?;
    // The ticket with the CACAO playbook and the unattended actions went out.
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    let (ticket, contain) = (&received[0], &received[1]);
    assert_eq!(ticket.uri, "/api/incidents");
    assert_eq!(ticket.body["playbook"]["spec_version"], "cacao-2.0");
    assert!(
        ticket.body["title"]
            .as_str()
            .unwrap_or_default()
            .contains("Root cause"),
        "{}",
        ticket.body["title"]
    );
    assert_eq!(contain.uri, "/api/actions");
    let unattended = contain.body["actions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!unattended.is_empty(), "{}", contain.body);
    assert!(
        unattended.iter().all(|a| a["requires_approval"] == false),
        "{}",
        contain.body
    );

    orchestrator
        .runs()
        .decide(pb::DecideRequest {
            run_id: run_id.clone(),
            binding: "contain_approved".to_owned(),
            approve: true,
            comment: "isolate dc1".to_owned(),
        })
        .await?;
    let run = orchestrator.finish(&run_id).await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let gated = received[2].body["actions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The domain controller is critical infrastructure: isolating it waits
    // for a human.
    assert!(
        gated
            .iter()
            .any(|a| a["kind"] == "isolate_host" && a["target"]["value"] == "dc1"),
        "{}",
        received[2].body
    );
    assert!(gated.iter().all(|a| a["requires_approval"] == true));
    // The reflection rule held in round 0.
    assert!(run.events.iter().any(|e| matches!(
        &e.kind,
        RunEventKind::StepReflected { step, stop: Some(stop), .. }
            if step.as_str() == "respond" && stop == "criterion met"
    )));
    assert_secret_absent(&run.events, SOAR_TOKEN);
    demo.shutdown().await?;
    Ok(())
}
