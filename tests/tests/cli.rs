//! The CLI's commands, called as `main` calls them (output goes to the
//! captured stdout): `synod run` with and without a running orchestrator,
//! `synod runs watch --from-seq`, `synod experts list`.

use std::process::ExitCode;

use serde_json::Value;
use synod_integration_tests::experts::{flaky_expert, serve};
use synod_integration_tests::{TestOrchestrator, repo_path};
use synod_server::cli::{self, Output, RunRequest, RunWhat};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synod_run_without_a_server_uses_an_embedded_one_with_the_demo_experts()
-> anyhow::Result<()> {
    let file = repo_path("workflows/ioc-triage.yaml");
    let inputs = cli::read_inputs(
        Some(&repo_path("workflows/examples/ioc-triage.input.json")),
        &[],
    )?;
    let request = RunRequest {
        what: RunWhat::Workflow {
            source: std::fs::read_to_string(&file)?,
            file: file.display().to_string(),
        },
        inputs,
        server: "http://127.0.0.1:1".to_owned(),
        embedded: false,
        output: Output::new(true, false),
    };

    let code = synod_integration_tests::within("synod run", cli::run(request)).await??;

    assert_eq!(code, ExitCode::SUCCESS);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synod_run_and_runs_watch_report_the_outcome_in_the_exit_code() -> anyhow::Result<()> {
    let (builder, _calls) = flaky_expert(0);
    let expert = serve(builder).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;
    let server = orchestrator.grpc_url();
    let request = |uses: &str| RunRequest {
        what: RunWhat::Workflow {
            source: format!("name: one\nsteps:\n  call: {{ uses: {uses} }}\n"),
            file: "one.yaml".to_owned(),
        },
        inputs: serde_json::json!({}),
        server: server.clone(),
        embedded: false,
        output: Output::new(false, false),
    };

    assert_eq!(cli::run(request("flaky/flaky")).await?, ExitCode::SUCCESS);
    assert_eq!(cli::run(request("flaky/broken")).await?, ExitCode::FAILURE);

    // Both runs happened on this orchestrator; watch them again from seq 2.
    let runs = orchestrator
        .runs()
        .list_runs(synod_proto::orchestrator::ListRunsRequest { limit: 2 })
        .await?
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 2);
    let (failed, succeeded) = (&runs[0].run_id, &runs[1].run_id);
    assert_eq!(
        cli::runs_watch(&server, succeeded, 2, false).await?,
        ExitCode::SUCCESS
    );
    assert_eq!(
        cli::runs_watch(&server, failed, 2, true).await?,
        ExitCode::FAILURE
    );
    let unknown = cli::runs_watch(&server, "00000000-0000-4000-8000-000000000000", 0, false)
        .await
        .expect_err("unknown run");
    assert!(unknown.to_string().contains("not found"), "{unknown}");
    cli::experts_list(&server, true).await?;
    cli::experts_list(&server, false).await?;
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[test]
fn inputs_come_from_a_file_plus_overrides() -> anyhow::Result<()> {
    let inputs = cli::read_inputs(
        Some(&repo_path("workflows/examples/ioc-triage.input.json")),
        &["text=short".to_owned(), "limit=3".to_owned()],
    )?;
    assert_eq!(inputs["text"], "short");
    assert_eq!(inputs["limit"], Value::from(3));
    Ok(())
}
