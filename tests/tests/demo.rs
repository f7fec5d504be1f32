//! The example workflow `workflows/ioc-triage.yaml` with its example input,
//! through the demo experts `synod up` starts (each on its own gRPC server),
//! started over gRPC by stored name and over HTTP as YAML text.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{Value, json};
use synod_integration_tests::events::{check_complete_after, output};
use synod_integration_tests::{TestOrchestrator, fast_config, repo_file, repo_path};
use synod_proto::orchestrator::{
    ListWorkflowsRequest, RunStatus, StartRunRequest, start_run_request,
};
use synod_server::demo::start_demo_experts;

/// `indicator -> verdict` of a classify step's findings.
fn verdicts(output: &Value) -> BTreeMap<String, String> {
    output["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|finding| {
            (
                finding["indicator"].as_str().unwrap_or_default().to_owned(),
                finding["verdict"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ioc_triage_example_runs_through_the_demo_experts() -> anyhow::Result<()> {
    let input: Value =
        serde_json::from_str(&repo_file("workflows/examples/ioc-triage.input.json")?)?;
    let experts = start_demo_experts().await?;
    let mut config = fast_config();
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    config.workflow_paths = vec![repo_path("workflows/ioc-triage.yaml")];
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let stored = orchestrator
        .workflows()
        .list(ListWorkflowsRequest {})
        .await?
        .into_inner()
        .workflows;
    let triage = stored
        .iter()
        .find(|w| w.name == "ioc-triage")
        .context("ioc-triage was not stored")?;
    assert_eq!(triage.steps, ["extract", "ips", "domains", "report"]);

    let run_id = orchestrator
        .runs()
        .start_run(StartRunRequest {
            source: Some(start_run_request::Source::WorkflowName("ioc-triage".into())),
            inputs: Some(synod_proto::json::json_to_struct(&input)?),
            file_name: String::new(),
            goal_type: String::new(),
            planner: String::new(),
        })
        .await?
        .into_inner()
        .run_id;
    let run = orchestrator.finish(&run_id).await?;

    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    check_complete_after(&run.events, 0)?;
    // The IPs of the note, placed in their IANA ranges.
    let ips = verdicts(&output(&run.events, "ips")?);
    let expected_ips = [
        ("10.20.4.17", "private"),
        ("10.20.0.5", "private"),
        ("192.168.56.101", "private"),
        ("185.220.101.47", "public"),
        ("2001:db8:4f2a::15", "documentation"),
    ];
    for (ip, verdict) in expected_ips {
        assert_eq!(
            ips.get(ip).map(String::as_str),
            Some(verdict),
            "{ip}: {ips:?}"
        );
    }
    assert_eq!(ips.len(), expected_ips.len(), "{ips:?}");
    // The phishing and C2 names, by shape.
    let domains = verdicts(&output(&run.events, "domains")?);
    for (domain, verdict) in [
        ("login-micros0ft.com", "impersonation"),
        ("secure-update.xn--pple-43d.com", "homoglyph"),
        ("kq3v9x7zt2wphm4d.net", "dga-like"),
        ("acme-corp.example", "reserved"),
    ] {
        assert_eq!(
            domains.get(domain).map(String::as_str),
            Some(verdict),
            "{domain}: {domains:?}"
        );
    }
    // The report merges both branches.
    let report = &output(&run.events, "report")?["report"];
    assert_eq!(report["title"], "IOC triage");
    assert_eq!(report["counts"]["total"], json!(ips.len() + domains.len()));
    assert_eq!(report["highest_severity"], "high");
    let markdown = report["markdown"].as_str().unwrap_or_default();
    assert!(
        markdown.contains("login-micros0ft[.]com"),
        "defanged: {markdown}"
    );
    assert!(markdown.contains("185[.]220[.]101[.]47"), "{markdown}");

    // Same workflow as YAML text over HTTP: same report.
    let response = orchestrator
        .http()
        .post(format!("{}/runs", orchestrator.http_url()))
        .json(&json!({ "workflow_yaml": repo_file("workflows/ioc-triage.yaml")?, "inputs": input }))
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let started: Value = response.json().await?;
    let http_run_id = started["run_id"].as_str().context("run_id")?;
    let http_run = orchestrator.finish(http_run_id).await?;
    assert_eq!(http_run.status(), RunStatus::Succeeded);
    assert_eq!(&output(&http_run.events, "report")?["report"], report);

    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    Ok(())
}

/// What `synod up` does: every workflow in `workflows/` is stored at start,
/// even those naming experts that are not registered (yet); their runs are
/// refused at start, naming the unknown expert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_example_workflows_are_stored_even_with_experts_not_registered() -> anyhow::Result<()> {
    let experts = start_demo_experts().await?;
    let mut config = fast_config();
    config.static_experts = experts.iter().map(|e| e.endpoint.clone()).collect();
    config.workflow_paths = vec![repo_path("workflows")];
    let orchestrator = TestOrchestrator::start_with(config).await?;
    let stored: Vec<String> = orchestrator
        .workflows()
        .list(ListWorkflowsRequest {})
        .await?
        .into_inner()
        .workflows
        .into_iter()
        .map(|workflow| workflow.name)
        .collect();
    for name in ["ioc-triage", "ioc-intel", "dlp-scan", "detect"] {
        assert!(stored.iter().any(|s| s == name), "{name} not in {stored:?}");
    }
    let refused = orchestrator
        .runs()
        .start_run(StartRunRequest {
            source: Some(start_run_request::Source::WorkflowName("ioc-intel".into())),
            inputs: Some(synod_proto::json::json_to_struct(&json!({ "text": "x" }))?),
            file_name: String::new(),
            goal_type: String::new(),
            planner: String::new(),
        })
        .await
        .expect_err("the `intel` expert is not registered");
    assert!(
        refused.message().contains("unknown expert `intel`"),
        "{}",
        refused.message()
    );
    orchestrator.shutdown().await?;
    for expert in experts {
        expert.stop().await;
    }
    Ok(())
}
