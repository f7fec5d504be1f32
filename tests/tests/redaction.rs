//! Secrets in run inputs: the expert gets the real value, the event log
//! (what WatchRun, SSE and GET /runs show) does not.

use serde_json::{Value, json};
use synod_integration_tests::experts::{serve, text_expert};
use synod_integration_tests::{Finished, TestOrchestrator};
use synod_proto::orchestrator::RunStatus;
use synod_types::RunEventKind;

const SECRET: &str = "s3cr3t-7f3a9c-value";

const WORKFLOW: &str = r#"
name: uses-a-token
inputs:
  api_token: { type: string, required: true }
steps:
  call:
    uses: text/tag
    with: { text: "${{ inputs.api_token }}", tag: "t" }
"#;

/// Runs [`WORKFLOW`] with the secret and checks that it succeeded.
async fn run_with_secret(orchestrator: &TestOrchestrator) -> anyhow::Result<Finished> {
    let run = orchestrator
        .run(WORKFLOW, json!({ "api_token": SECRET }))
        .await?;
    assert_eq!(run.status(), RunStatus::Succeeded, "{:#?}", run.events);
    Ok(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_named_inputs_are_redacted_in_the_run_record_and_run_started() -> anyhow::Result<()>
{
    let expert = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let run = run_with_secret(&orchestrator).await?;

    match &run.events[0].kind {
        RunEventKind::RunStarted { inputs, .. } => {
            assert_eq!(inputs["api_token"], "[REDACTED]", "{inputs}");
        }
        other => panic!("first event is not RunStarted: {other:?}"),
    }
    let view: Value = orchestrator
        .http()
        .get(format!("{}/runs/{}", orchestrator.http_url(), run.run_id))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["inputs"]["api_token"], "[REDACTED]", "{view}");
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_input_never_appears_in_events() -> anyhow::Result<()> {
    let expert = serve(text_expert()).await?;
    let orchestrator = TestOrchestrator::start(&[expert.endpoint()]).await?;

    let run = run_with_secret(&orchestrator).await?;

    for event in &run.events {
        let json = event.to_cloud_event_json();
        assert!(
            !json.contains(SECRET),
            "secret in event {}: {json}",
            event.seq
        );
    }
    orchestrator.shutdown().await?;
    expert.shutdown().await?;
    Ok(())
}
